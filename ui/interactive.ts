/**
 * The terminal chat: asks for what the command line did not give, connects (asking for another
 * name when one is taken), then shows what arrives above the line being typed and sends what is
 * typed, reconnecting on its own when the connection drops.
 *
 * @module
 */

import process from "node:process";
import * as readline from "node:readline";
import {
  ChatClient,
  type ChatClientOptions,
  ChatError,
  type CloseInfo,
  disconnectText,
} from "../net/chat_client.ts";
import { formatAddress } from "../net/tcp.ts";
import {
  checkName,
  type ClientInfo,
  DEFAULT_PORT,
  MAX_NAME_LENGTH,
  nameKey,
  parseAddress,
  sanitizeForTerminal,
  type ServerAddress,
  VERSION,
} from "../protocol.ts";
import { CHAT_COMMANDS, commandWords, parseCommand } from "./commands.ts";
import type { LoadedIdentity, SeenFile } from "./config.ts";
import { applyEvent, handleInput, newTerminalState, type TerminalState } from "./input.ts";
import { paint, renderEvent, renderFrame } from "./render.ts";
import { type Transcript, transcriptHeader } from "./transcript.ts";
import { clearInputLine, eraseSubmitted, printAbove } from "./tty.ts";

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

function promptText(state: TerminalState): string {
  const { color } = state.view;
  const offline = state.client.connected ? "" : ` ${paint("(offline)", 31, color)}`;
  return `${paint(state.client.name, 1, color)} ${paint(state.room, 36, color)}${offline}> `;
}

function completer(state: () => TerminalState): (line: string) => [string[], string] {
  const commands = commandWords(CHAT_COMMANDS);
  return (line) => {
    if (/^\/\S*$/.test(line)) {
      return [commands.filter((n) => n.startsWith(line.toLowerCase())), line];
    }
    const word = /\S*$/.exec(line)![0];
    if (word === "") return [[], word];
    const { rooms, knownRooms, users } = state();
    const candidates = word.startsWith("#") ? [...new Set([...rooms, ...knownRooms])] : [...users];
    return [candidates.filter((c) => nameKey(c).startsWith(nameKey(word))), word];
  };
}

function ask(rl: readline.Interface, question: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const onClose = () => resolve(undefined);
    rl.once("close", onClose);
    rl.question(question, (answer) => {
      rl.off("close", onClose);
      resolve(answer);
    });
  });
}

async function askAddress(rl: readline.Interface): Promise<ServerAddress | undefined> {
  while (true) {
    const answer = await ask(rl, `Server address [localhost:${DEFAULT_PORT}]: `);
    if (answer === undefined) return undefined;
    const parsed = parseAddress(answer.trim() || `localhost:${DEFAULT_PORT}`);
    if (parsed.ok) return parsed.value;
    console.log(parsed.error);
  }
}

async function askName(rl: readline.Interface, suggestion: string): Promise<string | undefined> {
  while (true) {
    const answer = await ask(rl, `Your name [${suggestion}]: `);
    if (answer === undefined) return undefined;
    const checked = checkName(answer.trim() || suggestion);
    if (checked.ok) return checked.value;
    console.log(checked.error);
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

/** Connects interactively: a taken or refused name asks for another instead of giving up. */
async function connectAsking(
  rl: readline.Interface,
  address: ServerAddress,
  name: string,
  self: Self,
): Promise<ChatClient | undefined> {
  let wanted: string | undefined = name;
  while (wanted !== undefined) {
    try {
      return await ChatClient.connect(connectOptions(address, wanted, self));
    } catch (error) {
      if (
        !(error instanceof ChatError && (error.code === "name_taken" || error.code === "bad_name"))
      ) {
        throw error;
      }
      console.log(sanitizeForTerminal(error.message));
      wanted = await askName(rl, suggestName(`${wanted}2`));
    }
  }
  return undefined;
}

// ==== The chat on screen ====

/** How long typed lines are gathered before sending: lines pasted at once arrive within it. */
const PASTE_MS = 15;

/**
 * Gathers lines that arrive together (a paste) and hands them over as one batch, so that a
 * pasted block becomes one multi-line message.
 */
function gatherLines(onBatch: (lines: string[]) => void): (line: string) => void {
  let batch: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  return (line) => {
    batch.push(line);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const lines = batch;
      batch = [];
      onBatch(lines);
    }, PASTE_MS);
  };
}

/**
 * Runs the terminal chat, asking for the address and the name when not given; resolves to the
 * exit code: 0 after `/quit` (or Ctrl+C, Ctrl+D), 1 when the connection is lost for good.
 * @throws {ChatError} when the first connection fails.
 */
export async function runInteractive(
  address: ServerAddress | undefined,
  options: { name: string | undefined; transcript: Transcript | undefined; self: Self },
): Promise<number> {
  const { transcript, self } = options;
  let name = options.name;
  let state: TerminalState | undefined;
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    completer: completer(() => state!),
    historySize: 500,
    terminal: true,
  });
  const show = (lines: string[]) => {
    printAbove(rl, lines);
    transcript?.write(lines);
  };
  // Messages are wrapped to the terminal's width, each row after the first marked as theirs.
  const fitWidth = () => {
    if (state) state.view.width = process.stdout.columns || 80;
  };
  try {
    address ??= await askAddress(rl);
    name ??= address && await askName(rl, suggestName(osUserName() ?? "guest"));
    if (address === undefined || name === undefined) return 0;
    const client = await connectAsking(rl, address, name, self);
    if (client === undefined) return 0;
    state = newTerminalState(client, { color: useColor() });
    fitWidth();
    process.stdout.on("resize", fitWidth);
    transcript?.write([transcriptHeader(address)]);
    let where = formatAddress(address);
    let quitting = false;
    const quit = (message?: string) => {
      quitting = true;
      state!.client.close(message);
    };
    rl.on("SIGINT", () => quit());
    rl.on("close", () => quit());
    rl.on("line", gatherLines((lines) => onInput(rl, state!, lines, { quit, show, self })));
    if (self.identity?.created) {
      show([
        paint(
          `* Made your identity ${self.identity.facts.fingerprint}, kept in ${self.identity.path}`,
          2,
          state.view.color,
        ),
      ]);
    }
    while (true) {
      const info = await showEvents(rl, state, { show, seen: self.seen, where });
      if (state.next) {
        where = state.next.where;
        state = newTerminalState(state.next.client, { color: useColor(), previous: state });
        fitWidth();
        continue;
      }
      clearInputLine(rl);
      if (quitting) return 0;
      const text = paint(disconnectText(info), 31, state.view.color);
      process.stdout.write(text + "\n");
      transcript?.write([text]);
      return 1;
    }
  } finally {
    process.stdout.off("resize", fitWidth);
    rl.close();
    self.seen?.flush();
  }
}

/** Shows the frames and events of one client until it is finished. */
async function showEvents(
  rl: readline.Interface,
  state: TerminalState,
  output: { show: (lines: string[]) => void; seen: SeenFile | undefined; where: string },
): Promise<CloseInfo> {
  const { show, seen, where } = output;
  rl.setPrompt(promptText(state));
  show(renderFrame(state.client.welcome, state.view));
  for await (const event of state.client) {
    const shown = applyEvent(state, event);
    const { client } = state;
    const serverId = client.welcome.server.id;
    if (seen && serverId !== undefined && client.lastSeen !== undefined) {
      seen.note(where, serverId, client.lastSeen);
    }
    rl.setPrompt(promptText(state));
    if (shown === "bell") process.stdout.write("\x07");
    if (shown) show(renderEvent(event, state.view));
    else rl.prompt(true);
  }
  return await state.client.closed;
}

/** Acts on typed lines: one message or command, or a pasted block sent as one message. */
function onInput(
  rl: readline.Interface,
  state: TerminalState,
  lines: string[],
  actions: { quit: (message?: string) => void; show: (lines: string[]) => void; self: Self },
): void {
  const pasted = lines.length > 1 && lines.every((line) => parseCommand(line) === undefined);
  const inputs = pasted ? [lines.join("\n")] : lines;
  let erased = false;
  for (const input of inputs) {
    const reply = handleInput(state, input);
    if (reply === "sent") {
      // The server's copy replaces what was typed.
      if (!erased) eraseSubmitted(rl, lines);
      erased = true;
    } else if (typeof reply === "object" && "quit" in reply) {
      return actions.quit(reply.quit);
    } else if (typeof reply === "object" && "connect" in reply) {
      switchServer(rl, state, reply.connect, actions);
    } else {
      actions.show(reply.map((l) => paint(l, 2, state.view.color)));
    }
  }
  rl.setPrompt(promptText(state));
  rl.prompt();
}

/** `/connect`: joins the other server under the same name, then leaves this one. */
function switchServer(
  rl: readline.Interface,
  state: TerminalState,
  address: ServerAddress,
  actions: { show: (lines: string[]) => void; self: Self },
): void {
  const { show, self } = actions;
  show([paint(`* Connecting to ${formatAddress(address)}...`, 2, state.view.color)]);
  ChatClient.connect(connectOptions(address, state.client.name, self)).then(
    (next) => {
      state.next = { client: next, where: formatAddress(address) };
      state.client.close();
    },
    (error: ChatError) => {
      show([paint(`! ${sanitizeForTerminal(error.message)}`, 31, state.view.color)]);
      rl.prompt(true);
    },
  );
}
