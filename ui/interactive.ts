/**
 * The terminal chat: asks for what the command line did not give, connects (asking for another
 * name when one is taken), then shows what arrives above the line being typed and sends what is
 * typed, reconnecting on its own when the connection drops.
 *
 * The screen (`ui/screen.ts`) keeps a live area at the bottom: the messages still waiting for the
 * server's acknowledgement (marked `[sending]`), then the prompt (name, room, away, offline, and
 * the other rooms with unseen messages) and the line being typed. A line typed and sent with
 * Enter is a command when it starts with `/`; anything pasted is text.
 *
 * @module
 */

import {
  ChatClient,
  type ChatClientOptions,
  ChatError,
  type ChatEvent,
  type CloseInfo,
  disconnectText,
} from "../net/chat_client.ts";
import { formatAddress } from "../net/tcp.ts";
import {
  checkName,
  type ClientInfo,
  DEFAULT_PORT,
  LOBBY,
  MAX_NAME_LENGTH,
  nameKey,
  parseAddress,
  roomKey,
  sanitizeForTerminal,
  type ServerAddress,
  VERSION,
} from "../protocol.ts";
import { CHAT_COMMANDS, commandWords, findCommand, parseCommand } from "./commands.ts";
import type { LoadedIdentity, SeenFile } from "./config.ts";
import { type Completer, LineEditor, type SubmittedLine } from "./editor.ts";
import { applyEvent, handleInput, newTerminalState, type TerminalState } from "./input.ts";
import { mentions, paint, renderEvent, renderFrame, stripAnsi } from "./render.ts";
import { denoTerminal, MAX_STATUS_ROWS, Screen } from "./screen.ts";
import { Activity, DayMarks, eventTime, Presence, WaitingMessages } from "./tracking.ts";
import { type Transcript, transcriptHeader } from "./transcript.ts";

// ==== Who this is ====

/** The client program's name, as reported to the server. */
const APP_NAME = `chat-client ${VERSION}`;

/** Whether to colour the output: on a terminal, unless `NO_COLOR` is set. */
export function useColor(): boolean {
  return Deno.stdout.isTerminal() && !Deno.noColor;
}

/** The user's name on this computer, if the environment tells it. */
export function osUserName(): string | undefined {
  try {
    return Deno.env.get("USER") ?? Deno.env.get("USERNAME") ?? Deno.env.get("LOGNAME");
  } catch {
    return undefined;
  }
}

/** Turns any text (an OS user name, say) into a name that passes the name rules. */
export function suggestName(text: string): string {
  const cleaned = Array.from(text.normalize("NFC").replace(/[^\p{L}\p{N}_-]/gu, "_"))
    .slice(0, MAX_NAME_LENGTH).join("");
  const checked = checkName(cleaned);
  return checked.ok ? checked.value : "guest";
}

/** What the client tells the server about itself: program, operating system, host name. */
export function clientInfo(): ClientInfo {
  const info: ClientInfo = { app: APP_NAME, os: Deno.build.os };
  try {
    info.host = Deno.hostname();
  } catch {
    // Without --allow-sys=hostname the server just does not learn it.
  }
  return info;
}

// ==== Asking ====

/** Asks for a server's address until it parses; `undefined` when the person gives up. */
async function askAddress(
  screen: Screen,
  suggestion = `localhost:${DEFAULT_PORT}`,
): Promise<ServerAddress | undefined> {
  while (true) {
    const answer = await screen.ask(`Server address [${suggestion}]: `);
    if (answer === undefined) return undefined;
    const parsed = parseAddress(answer.trim() || suggestion);
    if (parsed.ok) return parsed.value;
    screen.print([parsed.error]);
  }
}

async function askName(screen: Screen, suggestion: string): Promise<string | undefined> {
  while (true) {
    const answer = await screen.ask(`Your name [${suggestion}]: `);
    if (answer === undefined) return undefined;
    const checked = checkName(answer.trim() || suggestion);
    if (checked.ok) return checked.value;
    screen.print([checked.error]);
  }
}

/** Who the terminal client is: its identity (unless anonymous) and what it saw where. */
export interface Self {
  identity: LoadedIdentity | undefined;
  seen: SeenFile | undefined;
}

/** The options to connect to a server as oneself, resuming after what was seen there. */
function connectOptions(address: ServerAddress, name: string, self: Self): ChatClientOptions {
  const last = self.seen?.lastAt(formatAddress(address));
  return {
    ...address,
    name,
    info: clientInfo(),
    reconnect: true,
    ...(self.identity ? { identity: self.identity.identity } : {}),
    ...(last === undefined ? {} : { last }),
  };
}

/**
 * Connects while the screen says so; Ctrl+C (or Ctrl+D) gives up waiting, which resolves to
 * `undefined` (a client that connects after that is closed).
 */
async function connectWaiting(
  screen: Screen,
  options: ChatClientOptions,
  color: boolean,
): Promise<ChatClient | undefined> {
  const { promise: cancelled, resolve: cancel } = Promise.withResolvers<undefined>();
  const handler = screen.handler;
  const prompt = screen.editor.prompt;
  screen.handler = {
    line: () => screen.print([paint("Not connected yet: a moment", 2, color)]),
    interrupt: () => cancel(undefined),
    eof: () => cancel(undefined),
  };
  screen.prompt(`${paint("(connecting)", 2, color)} > `);
  const connecting = ChatClient.connect(options);
  try {
    const client = await Promise.race([connecting, cancelled]);
    if (client === undefined) connecting.then((late) => late.close(), () => {});
    return client;
  } finally {
    screen.handler = handler;
    screen.prompt(prompt);
  }
}

/**
 * Connects interactively: a taken or refused name asks for another, and an address that cannot
 * be reached (refused, unknown, silent) asks for another address, instead of giving up.
 * Resolves to the client and the address it reached, or `undefined` when the person gave up.
 */
async function connectAsking(
  screen: Screen,
  address: ServerAddress,
  name: string,
  self: Self,
): Promise<{ client: ChatClient; address: ServerAddress } | undefined> {
  let wanted: string | undefined = name;
  let where: ServerAddress | undefined = address;
  while (wanted !== undefined && where !== undefined) {
    try {
      const client = await connectWaiting(screen, connectOptions(where, wanted, self), useColor());
      return client && { client, address: where };
    } catch (error) {
      if (!(error instanceof ChatError)) throw error;
      screen.print([sanitizeForTerminal(error.message)]);
      if (error.code === "name_taken" || error.code === "bad_name") {
        wanted = await askName(screen, suggestName(`${wanted}2`));
      } else if (error.code === "unreachable") {
        where = await askAddress(screen, formatAddress(where));
      } else {
        throw error;
      }
    }
  }
  return undefined;
}

// ==== The chat on screen ====

/**
 * Runs the terminal chat, asking for the address and the name when not given; resolves to the
 * exit code: 0 after `/quit` (or Ctrl+C or Ctrl+D on an empty line), 1 when the connection is
 * lost for good.
 * @throws {ChatError} when the first connection fails.
 */
export async function runInteractive(
  address: ServerAddress | undefined,
  options: { name: string | undefined; transcript: Transcript | undefined; self: Self },
): Promise<number> {
  const { transcript, self } = options;
  const screen = new Screen(denoTerminal(), new LineEditor());
  try {
    address ??= await askAddress(screen);
    const name = options.name ??
      (address && await askName(screen, suggestName(osUserName() ?? "guest")));
    if (address === undefined || name === undefined) return 0;
    const connected = await connectAsking(screen, address, name, self);
    if (connected === undefined) return 0;
    transcript?.write([transcriptHeader(connected.address)]);
    const chat = new ChatScreen(screen, connected.client, { transcript, self });
    return await chat.run(formatAddress(connected.address));
  } finally {
    screen.close();
    self.seen?.flush();
  }
}

/** How often messages waiting for acknowledgement are looked at again, in milliseconds. */
const WAITING_CHECK_MS = 250;

/**
 * The chat on screen: shows what arrives, acts on what is typed, and keeps the prompt and the
 * messages still waiting up to date. One per run; it carries on across `/connect`.
 */
class ChatScreen {
  #screen: Screen;
  #transcript: Transcript | undefined;
  #self: Self;
  #color = useColor();
  #state: TerminalState;
  #presence: Presence;
  #activity = new Activity();
  #days = new DayMarks();
  #waiting = new WaitingMessages();
  #waitingTimer: ReturnType<typeof setInterval> | undefined;
  /** The away message set with `/away`, until `/back`. */
  #away: string | undefined;
  #quitting = false;

  /** Takes over the screen for a chat on `client`. */
  constructor(
    screen: Screen,
    client: ChatClient,
    options: { transcript: Transcript | undefined; self: Self },
  ) {
    this.#screen = screen;
    this.#transcript = options.transcript;
    this.#self = options.self;
    this.#state = newTerminalState(client, { color: this.#color });
    this.#presence = new Presence(client.name, client.welcome);
    this.#start(this.#state);
  }

  /**
   * Chats (on the first client, then on those `/connect` moves to) until the person quits or the
   * connection is lost for good; resolves to the exit code. `firstWhere` is the server's address.
   */
  async run(firstWhere: string): Promise<number> {
    const screen = this.#screen;
    let where = firstWhere;
    screen.onResize((size) => this.#state.view.width = size.columns);
    screen.editor.completer = this.#completer();
    screen.handler = {
      line: (line) => this.#onLine(line),
      interrupt: () => this.#quit(),
      eof: () => this.#quit(),
    };
    const identity = this.#self.identity;
    if (identity?.created) {
      this.#show([
        this.#dim(`* Made your identity ${identity.facts.fingerprint}, kept in ${identity.path}`),
      ]);
    }
    try {
      while (true) {
        const info = await this.#showEvents(where);
        const next = this.#state.next;
        if (next) {
          where = next.where;
          this.#start(newTerminalState(next.client, { color: this.#color, previous: this.#state }));
          continue;
        }
        if (this.#quitting) return 0;
        this.#show([paint(disconnectText(info), 31, this.#color)]);
        return 1;
      }
    } finally {
      clearInterval(this.#waitingTimer);
      screen.handler = undefined;
    }
  }

  /** Takes a (new) client's state into use. */
  #start(state: TerminalState): void {
    this.#state = state;
    state.view.width = this.#screen.size.columns;
    this.#presence = new Presence(state.client.name, state.client.welcome);
    this.#waiting = new WaitingMessages();
    this.#away = undefined;
    this.#refresh();
  }

  /** Shows the frames and events of one client until it is finished. */
  async #showEvents(where: string): Promise<CloseInfo> {
    const state = this.#state;
    const seen = this.#self.seen;
    this.#show(renderFrame(state.client.welcome, state.view));
    for await (const event of state.client) {
      const shown = applyEvent(state, event);
      const { client } = state;
      const serverId = client.welcome.server.id;
      if (seen && serverId !== undefined && client.lastSeen !== undefined) {
        seen.note(where, serverId, client.lastSeen);
      }
      this.#follow(event, shown !== false);
      if (shown === "bell") this.#screen.bell();
      if (shown) this.#showEvent(event);
      this.#refresh();
    }
    return await state.client.closed;
  }

  /** Keeps presence, activity and away up to date with an event. */
  #follow(event: ChatEvent, shown: boolean): void {
    const state = this.#state;
    this.#presence.apply(event);
    if (event.type === "reconnected" && !event.resumed) this.#away = undefined;
    if (event.type === "left" && nameKey(event.name) === nameKey(state.client.name)) {
      if (event.room !== undefined) this.#activity.clear(event.room);
    }
    if (event.type === "message" && shown && !event.history) {
      const mine = nameKey(event.from) === nameKey(state.client.name);
      if (!mine) {
        const mention = mentions(event.text, state.client.name);
        this.#activity.message(event.room ?? LOBBY, state.room, mention);
      }
    }
  }

  /** Shows an event, after a line saying the day changed when it did. */
  #showEvent(event: ChatEvent): void {
    const lines = renderEvent(event, this.#state.view);
    if (lines.length === 0) return;
    const ts = eventTime(event);
    const day = ts === undefined ? undefined : this.#days.before(ts);
    this.#show(day === undefined ? lines : [this.#dim(day), ...lines]);
  }

  /** Shows lines above the prompt, and writes them to the transcript. */
  #show(lines: string[]): void {
    this.#screen.print(lines);
    this.#transcript?.write(lines);
  }

  #dim(text: string): string {
    return paint(text, 2, this.#color);
  }

  /** Brings the prompt and the rows of waiting messages up to date. */
  #refresh(): void {
    const state = this.#state;
    this.#activity.clear(state.room);
    this.#waiting.settle(state.client.unsent);
    this.#screen.batch(() => {
      this.#screen.status(this.#waiting.rows(MAX_STATUS_ROWS), (row) => this.#dim(row));
      this.#screen.prompt(this.#promptText());
    });
    // A message acknowledged while reconnecting brings no event: look again now and then.
    if (this.#waiting.length > 0 && this.#waitingTimer === undefined) {
      this.#waitingTimer = setInterval(() => this.#refresh(), WAITING_CHECK_MS);
    } else if (this.#waiting.length === 0 && this.#waitingTimer !== undefined) {
      clearInterval(this.#waitingTimer);
      this.#waitingTimer = undefined;
    }
  }

  /** `ann #lobby (away) [#dev 2]> `: who, where, away, offline, and unseen activity. */
  #promptText(): string {
    const state = this.#state;
    const color = this.#color;
    const away = this.#away === undefined ? "" : ` ${paint("(away)", 33, color)}`;
    const offline = state.client.connected ? "" : ` ${paint("(offline)", 31, color)}`;
    const rooms = this.#activity.rooms().map(({ room, count, mention }) =>
      paint(`${sanitizeForTerminal(room)} ${count}`, mention ? "1;33" : 33, color)
    );
    const activity = rooms.length === 0 ? "" : ` [${rooms.join(", ")}]`;
    const name = paint(sanitizeForTerminal(state.client.name), 1, color);
    return `${name} ${
      paint(sanitizeForTerminal(state.room), 36, color)
    }${away}${offline}${activity}> `;
  }

  /** What Tab completes: commands at the start, rooms after `#`, else people present now. */
  #completer(): Completer {
    const commands = commandWords(CHAT_COMMANDS);
    return (word, first) => {
      if (first && word.startsWith("/")) {
        return commands.filter((command) => command.startsWith(word.toLowerCase()));
      }
      if (word === "") return [];
      const state = this.#state;
      if (word.startsWith("#")) {
        const rooms = new Map<string, string>();
        for (const room of [...state.rooms, ...state.knownRooms]) rooms.set(roomKey(room), room);
        return [...rooms.values()].filter((room) => roomKey(room).startsWith(roomKey(word)));
      }
      const key = nameKey(word);
      return this.#presence.names().filter((name) => nameKey(name).startsWith(key));
    };
  }

  #quit(message?: string): void {
    this.#quitting = true;
    this.#state.client.close(message);
  }

  /**
   * Acts on a line sent with Enter: a typed command, or text (pasted text always) sent as one
   * message or, when longer than a message may be, several. What is sent shows as waiting until
   * the server's copy arrives; a command that sends nothing is repeated above, as typed.
   */
  #onLine(line: SubmittedLine): void {
    const state = this.#state;
    if (line.text.trim() === "") return;
    const parsed = line.typed ? parseCommand(line.text) : undefined;
    const before = state.client.unsent;
    const reply = handleInput(state, line.text, { pasted: !line.typed });
    const queued = state.client.unsent - before;
    if (queued > 0) {
      this.#waiting.sent(parsed ? line.text : `You: ${line.text}`, queued);
    } else if (parsed) {
      const prompt = stripAnsi(this.#screen.editor.prompt);
      this.#show([this.#dim(`${prompt}${line.text.split("\n")[0]}`)]);
    }
    if (reply === "sent") {
      // The server's copy shows it.
    } else if (Array.isArray(reply)) {
      this.#show(reply.map((text) => this.#dim(text)));
      if (reply.length === 0 && parsed) this.#noteAway(parsed.name, parsed.args);
    } else if ("quit" in reply) {
      this.#quit(reply.quit);
    } else {
      this.#switchServer(reply.connect);
    }
    this.#refresh();
  }

  /** `/away` and `/back`, once sent: the prompt shows the state. */
  #noteAway(typed: string, args: string): void {
    const command = findCommand(CHAT_COMMANDS, typed);
    if (command === "away") this.#away = args.trim() || "away";
    if (command === "back") this.#away = undefined;
  }

  /** `/connect`: joins the other server under the same name, then leaves this one. */
  #switchServer(address: ServerAddress): void {
    const state = this.#state;
    this.#show([this.#dim(`* Connecting to ${formatAddress(address)}...`)]);
    ChatClient.connect(connectOptions(address, state.client.name, this.#self)).then(
      (next) => {
        state.next = { client: next, where: formatAddress(address) };
        state.client.close();
      },
      (error: ChatError) => {
        this.#show([paint(`! ${sanitizeForTerminal(error.message)}`, 31, this.#color)]);
      },
    );
  }
}
