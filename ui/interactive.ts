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
  DEFAULT_TLS_PORT,
  LOBBY,
  MAX_NAME_LENGTH,
  nameKey,
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
import {
  type ConnectionFacts,
  dialerFor,
  type DialSettings,
  parseTarget,
  type ServerTarget,
} from "./target.ts";
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

/**
 * Asks for a server (an invite or an address) until it parses; `undefined` when the person
 * gives up.
 */
async function askTarget(
  screen: Screen,
  settings: DialSettings,
  suggestion = `localhost:${settings.plain ? DEFAULT_PORT : DEFAULT_TLS_PORT}`,
): Promise<ServerTarget | undefined> {
  while (true) {
    const answer = await screen.ask(`Server or invite [${suggestion}]: `);
    if (answer === undefined) return undefined;
    const parsed = parseTarget(answer.trim() || suggestion, { plain: settings.plain });
    if (parsed.ok) return parsed.value;
    screen.print([parsed.error]);
  }
}

/**
 * Asks a person whether to trust a server seen for the first time, showing its key fingerprint
 * and how to check it; only `y` or `yes` trusts.
 */
async function askTrust(
  screen: Screen,
  address: ServerAddress,
  fingerprint: string,
): Promise<boolean> {
  screen.print([
    `The server at ${formatAddress(address)} is new to this computer. Its key fingerprint is`,
    `  ${fingerprint}`,
    "Ask its operator whether this is the key their server shows (an invite from them carries " +
    "it and skips this question).",
  ]);
  const answer = await screen.ask("Trust this key and connect? [y/N] ");
  return answer !== undefined && /^y(es)?$/i.test(answer.trim());
}

/** Asks for a private server's password, not echoed; `undefined` when the person gives up. */
async function askPassword(screen: Screen): Promise<string | undefined> {
  while (true) {
    const answer = await screen.ask("Password: ", { secret: true });
    if (answer === undefined || answer !== "") return answer;
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

/** How the terminal client connects: as whom, over what, with which password. */
interface Way {
  self: Self;
  dial: DialSettings;
  password: string | undefined;
}

/**
 * The options to connect to a server as oneself, resuming after what was seen there; `facts`
 * is filled in as the connection is made.
 */
function connectOptions(
  target: ServerTarget,
  name: string,
  way: Way,
  facts: ConnectionFacts,
): ChatClientOptions {
  const last = way.self.seen?.lastAt(formatAddress(target.address));
  return {
    ...target.address,
    name,
    info: clientInfo(),
    reconnect: true,
    dial: dialerFor(target, way.dial, facts),
    ...(way.self.identity ? { identity: way.self.identity.identity } : {}),
    ...(last === undefined ? {} : { last }),
    ...(way.password === undefined ? {} : { password: way.password }),
    ...(target.secret === undefined ? {} : { invite: target.secret }),
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
 * The refusals a person can answer by giving something else (a name, an address, a password);
 * the others end the client, told once by its caller.
 */
const ASKED_AGAIN: ReadonlySet<string> = new Set([
  "name_taken",
  "bad_name",
  "unreachable",
  "password_required",
]);

/** A connection made: the client, where it went, and how. */
interface Connected {
  client: ChatClient;
  target: ServerTarget;
  facts: ConnectionFacts;
}

/**
 * Connects interactively: a taken or refused name asks for another, an address that cannot be
 * reached (refused, unknown, silent) asks for another address, and a private server asks for its
 * password, instead of giving up. A refused key (changed, or not trusted) ends it. Resolves to
 * the connection, or `undefined` when the person gave up.
 * @throws {ChatError} for the other refusals (banned, not admitted, key changed...).
 */
async function connectAsking(
  screen: Screen,
  first: ServerTarget,
  name: string,
  way: Way,
): Promise<Connected | undefined> {
  let wanted: string | undefined = name;
  let target: ServerTarget | undefined = first;
  while (wanted !== undefined && target !== undefined) {
    const facts: ConnectionFacts = { security: "plain", fingerprint: undefined };
    try {
      const options = connectOptions(target, wanted, way, facts);
      const client = await connectWaiting(screen, options, useColor());
      return client && { client, target, facts };
    } catch (error) {
      if (!(error instanceof ChatError) || !ASKED_AGAIN.has(error.code)) throw error;
      screen.print([sanitizeForTerminal(error.message)]);
      if (error.code === "name_taken" || error.code === "bad_name") {
        wanted = await askName(screen, suggestName(`${wanted}2`));
      } else if (error.code === "unreachable") {
        target = await askTarget(screen, way.dial, formatAddress(target.address));
      } else {
        way.password = await askPassword(screen);
        if (way.password === undefined) return undefined;
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
  server: ServerTarget | undefined,
  options: {
    name: string | undefined;
    transcript: Transcript | undefined;
    self: Self;
    /** How to dial; its `confirm` is set here, to ask on the screen. */
    dial: DialSettings;
    /** A private server's password (`--password-file`); asked for when the server wants one. */
    password?: string;
  },
): Promise<number> {
  const { transcript, self } = options;
  const screen = new Screen(denoTerminal(), new LineEditor());
  const dial: DialSettings = {
    ...options.dial,
    confirm: (address, fingerprint) => askTrust(screen, address, fingerprint),
  };
  const way: Way = { self, dial, password: options.password };
  try {
    server ??= await askTarget(screen, dial);
    const name = options.name ??
      (server && await askName(screen, suggestName(osUserName() ?? "guest")));
    if (server === undefined || name === undefined) return 0;
    const connected = await connectAsking(screen, server, name, way);
    if (connected === undefined) return 0;
    transcript?.write([transcriptHeader(connected.target.address)]);
    const chat = new ChatScreen(screen, connected, { transcript, way });
    return await chat.run(formatAddress(connected.target.address));
  } finally {
    screen.close();
    self.seen?.flush();
  }
}

/** The line shown once connected: where, and whether it is encrypted with the key pinned. */
function connectedText(connected: Connected): string {
  const where = formatAddress(connected.target.address);
  const { security, fingerprint } = connected.facts;
  return security === "tls"
    ? `* Connected to ${where} over TLS; server key ${fingerprint ?? "?"} (/server for more)`
    : `* Connected to ${where} over plain TCP: not encrypted (/server for more)`;
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
  #way: Way;
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

  /** The room an invite named, joined once the chat is on screen. */
  #inviteRoom: string | undefined;

  /** Takes over the screen for a chat on a connection just made. */
  constructor(
    screen: Screen,
    connected: Connected,
    options: { transcript: Transcript | undefined; way: Way },
  ) {
    const { client, facts } = connected;
    this.#screen = screen;
    this.#transcript = options.transcript;
    this.#way = options.way;
    this.#self = options.way.self;
    this.#inviteRoom = connected.target.room;
    this.#state = newTerminalState(client, { color: this.#color, facts });
    this.#presence = new Presence(client.name, client.welcome);
    this.#start(this.#state);
    this.#show([this.#dim(connectedText(connected))]);
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
    this.#joinInviteRoom();
    try {
      while (true) {
        const info = await this.#showEvents(where);
        const next = this.#state.next;
        if (next) {
          where = next.where;
          this.#start(
            newTerminalState(next.client, {
              color: this.#color,
              previous: this.#state,
              facts: next.facts,
            }),
          );
          this.#joinInviteRoom();
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

  /** Joins the room the invite named, once. */
  #joinInviteRoom(): void {
    if (this.#inviteRoom === undefined) return;
    handleInput(this.#state, `/join ${this.#inviteRoom}`, { pasted: false });
    this.#inviteRoom = undefined;
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

  /**
   * `ann #lobby (away) [#dev 2]> `: who, where, away, offline, and unseen activity; `(plain)`
   * when the connection is not encrypted (TLS is always pinned, so it needs no word).
   */
  #promptText(): string {
    const state = this.#state;
    const color = this.#color;
    const plain = state.facts.security === "plain" ? ` ${paint("(plain)", 33, color)}` : "";
    const away = this.#away === undefined ? "" : ` ${paint("(away)", 33, color)}`;
    const offline = state.client.connected ? "" : ` ${paint("(offline)", 31, color)}`;
    const rooms = this.#activity.rooms().map(({ room, count, mention }) =>
      paint(`${sanitizeForTerminal(room)} ${count}`, mention ? "1;33" : 33, color)
    );
    const activity = rooms.length === 0 ? "" : ` [${rooms.join(", ")}]`;
    const name = paint(sanitizeForTerminal(state.client.name), 1, color);
    return `${name} ${
      paint(sanitizeForTerminal(state.room), 36, color)
    }${plain}${away}${offline}${activity}> `;
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

  /**
   * `/connect`: joins the other server under the same name, then leaves this one. A server new
   * to this computer is asked about as at the start.
   */
  #switchServer(target: ServerTarget): void {
    const state = this.#state;
    const where = formatAddress(target.address);
    this.#show([this.#dim(`* Connecting to ${where}...`)]);
    const facts: ConnectionFacts = { security: "plain", fingerprint: undefined };
    // This server's password is not for another one.
    const way = { ...this.#way, password: undefined };
    ChatClient.connect(connectOptions(target, state.client.name, way, facts)).then(
      (next) => {
        state.next = { client: next, where, facts };
        this.#inviteRoom = target.room;
        this.#show([this.#dim(connectedText({ client: next, target, facts }))]);
        state.client.close();
      },
      (error: ChatError) => {
        this.#show([paint(`! ${sanitizeForTerminal(error.message)}`, 31, this.#color)]);
      },
    );
  }
}
