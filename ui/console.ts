/**
 * The server's operator console: the log on standard output, and commands typed at the
 * `server>` prompt (or piped in) to announce, kick, ban, and shut down.
 *
 * @module
 */

import process from "node:process";
import * as readline from "node:readline";
import type { Bans } from "../chat/bans.ts";
import { describeClient, type Member, type Peer } from "../chat/directory.ts";
import type { Hub } from "../chat/hub.ts";
import { type ActionResult, CONSOLE } from "../chat/moderation.ts";
import { writeLinesSync } from "../net/outbox.ts";
import { type BanInfo, checkText, cleanLine, errorFrame } from "../protocol.ts";
import {
  type CommandHandlers,
  commandHelp,
  commandWords,
  findCommand,
  firstWord,
  OPERATOR_COMMANDS,
  type OperatorCommand,
  parseCommand,
  unknownCommand,
} from "./commands.ts";
import { describeBan } from "./render.ts";
import { clearInputLine, printAbove } from "./tty.ts";

// ==== Commands ====

/** What the console acts on: a running server. */
export interface OperatorTarget {
  /** The chat. */
  readonly hub: Hub;
  /** The names and addresses kept out. */
  readonly bans: Bans;
  /** Every connection, with its member once it has joined. */
  connections(): Iterable<Peer & { readonly member: Member | undefined }>;
}

/** What an operator command did: lines to show the operator, and whether to shut down. */
export interface OperatorResult {
  lines: string[];
  /** Present when the operator asked to stop the server: the reason to tell everyone. */
  shutdown?: string;
}

/**
 * Carries out one line typed at the server's console: plain text is announced to everyone,
 * `/kick`, `/ban` and the rest act on the server. The console's commands exist only here: no
 * frame a client can send reaches them.
 */
export function runOperatorCommand(server: OperatorTarget, line: string): OperatorResult {
  const text = line.trim();
  if (text === "") return { lines: [] };
  const parsed = parseCommand(text);
  if (parsed === undefined) {
    const announcement = text.startsWith("//") ? text.slice(1) : text;
    const checked = checkText(announcement);
    if (!checked.ok) return { lines: [checked.error] };
    server.hub.announce(checked.value);
    return { lines: [] };
  }
  const name = findCommand(OPERATOR_COMMANDS, parsed.name);
  if (name === undefined) return { lines: [unknownCommand(parsed.name)] };
  return OPERATOR_HANDLERS[name](parsed.args, server);
}

/** How the console carries out each operator command. */
const OPERATOR_HANDLERS: CommandHandlers<OperatorCommand, OperatorTarget, OperatorResult> = {
  help: (args) => {
    const [name] = firstWord(args);
    return {
      lines: name ? commandHelp(OPERATOR_COMMANDS, { name }) : [
        "Plain text is announced to everyone. Commands:",
        ...commandHelp(OPERATOR_COMMANDS),
      ],
    };
  },
  who: (_args, server) => ({ lines: operatorWho(server) }),
  kick: (args, server) => {
    const [name, reason] = firstWord(args);
    return { lines: [outcome(server.hub.moderation.kick(name, reason, CONSOLE))] };
  },
  ban: (args, server) => ({ lines: [ban(server, args)] }),
  unban: (args, server) => ({
    lines: [outcome(server.hub.moderation.unban(firstWord(args)[0], CONSOLE))],
  }),
  bans: (_args, server) => ({ lines: banList(server.hub.moderation.bans()) }),
  release: (args, server) => ({
    lines: [outcome(server.hub.moderation.release(firstWord(args)[0], CONSOLE))],
  }),
  op: (args, server) => ({
    lines: [outcome(server.hub.moderation.op(firstWord(args)[0], CONSOLE))],
  }),
  deop: (args, server) => ({
    lines: [outcome(server.hub.moderation.deop(firstWord(args)[0], CONSOLE))],
  }),
  ops: (_args, server) => ({ lines: operatorList(server) }),
  say: (args, server) => {
    const [room, rest] = firstWord(args);
    const checked = checkText(rest);
    if (!room || !checked.ok) return { lines: ["Usage: /say <#room> <text>"] };
    const problem = server.hub.sayAsServer(room, checked.value);
    return { lines: problem ? [problem] : [] };
  },
  motd: (args, server) => {
    if (args.trim()) server.hub.setMotd(args);
    const motd = server.hub.motd;
    return { lines: [motd ? `Message of the day: ${motd}` : "No message of the day"] };
  },
  shutdown: (args) => ({
    lines: ["Shutting down"],
    shutdown: cleanLine(args) || "The server is shutting down",
  }),
};

function operatorWho(server: OperatorTarget): string[] {
  const lines: string[] = [];
  for (const member of server.hub.members) {
    if (member.link.state === "held") {
      lines.push(`${member.name} from ${member.link.address}: connection lost, held for a while`);
    }
  }
  for (const { address, member } of server.connections()) {
    lines.push(
      member
        ? `${member.name} from ${address}${describeClient(member.info)} in ${
          [...member.rooms].map((r) => r.name).join(" ")
        }${member.away ? `, away: ${member.away}` : ""}`
        : `(no name yet) from ${address}`,
    );
  }
  return lines.length
    ? [`${lines.length} present:`, ...lines.map((l) => `  ${l}`)]
    : ["Nobody is connected"];
}

/** An action's line for the operator: what it did, or why it was refused. */
function outcome(result: ActionResult): string {
  return result.ok ? result.value : result.error.message;
}

/**
 * `/ban <target> [minutes] [reason]`: bans through the hub (which removes everyone present it
 * covers), then turns away connections from a banned address that have not said hello yet.
 */
function ban(server: OperatorTarget, args: string): string {
  const [target, rest] = firstWord(args);
  const [first, afterFirst] = firstWord(rest);
  const minutes = /^\d+(\.\d+)?$/.test(first) ? Number(first) : undefined;
  const reason = minutes === undefined ? rest : afterFirst;
  const result = server.hub.moderation.ban(target, { minutes, reason }, CONSOLE);
  if (!result.ok) return result.error.message;
  let turnedAway = 0;
  for (const peer of [...server.connections()]) {
    if (peer.member || !server.hub.bans.find({ address: peer.address })) continue;
    peer.end(errorFrame("banned", "You are banned from this server"), "banned");
    turnedAway++;
  }
  return turnedAway ? `${result.value}; turned away ${turnedAway} more` : result.value;
}

function banList(bans: readonly BanInfo[]): string[] {
  if (bans.length === 0) return ["No bans"];
  return bans.map((ban) => `  ${describeBan(ban)}`);
}

function operatorList(server: OperatorTarget): string[] {
  const operators = server.hub.people.operators();
  if (operators.length === 0) return ["No operators: /op <name> makes someone one"];
  return operators.map((o) =>
    `  ${o.fingerprint}${o.name ? ` (${o.name})` : ""}${o.source === "flag" ? " from --op" : ""}`
  );
}

// ==== The screen ====

/** Where the operator reads: the log, and (with the console on) command replies. */
export interface OperatorScreen {
  /** Prints lines, above the console's prompt when there is one. */
  print(lines: string[]): void;
}

let stampSecond = -1;
let stampText = "";

/** The log's `2026-11-21 14:02:05`, formatted once a second however many lines share it. */
export function timestamp(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== stampSecond) {
    const date = new Date(now);
    const pad = (n: number) => String(n).padStart(2, "0");
    stampSecond = second;
    stampText = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
      `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  }
  return stampText;
}

/**
 * Log lines on standard output, gathered and written together at the end of each turn of the
 * event loop: a busy server logs thousands of lines a second, and one write per line would cost
 * more than the chat itself.
 */
export function bufferedOutput(): OperatorScreen & { flush(): void } {
  let pending: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const lines = pending;
    pending = [];
    writeLinesSync(Deno.stdout, lines);
  };
  return {
    print(lines: string[]): void {
      pending.push(...lines);
      timer ??= setTimeout(flush, 0);
    },
    flush,
  };
}

/**
 * Reads operator commands from standard input: with a prompt that log lines never garble on a
 * terminal, or line by line from a pipe. Calls `onShutdown` when the operator asks for it.
 */
export function startConsole(
  server: OperatorTarget,
  onShutdown: (reason: string) => void,
): OperatorScreen & { close(): void } {
  const terminal = Deno.stdin.isTerminal();
  const commands = commandWords(OPERATOR_COMMANDS);
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal,
    historySize: 200,
    completer: (line: string): [string[], string] => {
      const names = commands.filter((c) => c.startsWith(line));
      return [line.startsWith("/") ? names : [], line];
    },
  });
  const screen = {
    print(lines: string[]): void {
      if (lines.length === 0) return;
      if (terminal) printAbove(rl, lines);
      else console.log(lines.join("\n"));
    },
    close(): void {
      if (terminal) clearInputLine(rl);
      rl.close();
    },
  };
  if (terminal) {
    rl.setPrompt("server> ");
    rl.prompt();
    rl.on("SIGINT", () => onShutdown("SIGINT: shutting down"));
  }
  rl.on("line", (line) => {
    const result = runOperatorCommand(server, line);
    screen.print(result.lines);
    if (terminal) rl.prompt();
    if (result.shutdown !== undefined) onShutdown(result.shutdown);
  });
  return screen;
}
