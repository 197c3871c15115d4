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
import { type ByteWriter, writeAll } from "../net/outbox.ts";
import { TokenBucket } from "../net/pace.ts";
import { type BanInfo, checkRoom, checkText, cleanLine, errorFrame } from "../protocol.ts";
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
import { describeBan, formatDateTime } from "./render.ts";
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
  /** Invites to the server (see `ChatServer.invites`); absent for a server without TLS. */
  invites?(options: { room?: string; oneTime?: boolean }): string[];
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
    // Plain text goes nowhere: a command typed without its slash must not reach everyone.
    const [word] = firstWord(text);
    const meant = findCommand(OPERATOR_COMMANDS, word.toLowerCase());
    return {
      lines: [
        meant === undefined
          ? "Not sent: to speak to everyone, use /announce <text> (/help lists the commands)"
          : `Not sent: did you mean /${meant}? (to speak to everyone, use /announce <text>)`,
      ],
    };
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
        "Commands (plain text is not sent anywhere; /announce speaks to everyone):",
        ...commandHelp(OPERATOR_COMMANDS),
      ],
    };
  },
  who: (_args, server) => ({ lines: operatorWho(server) }),
  invite: (args, server) => {
    const [room] = firstWord(args);
    const checked = room ? checkRoom(room) : undefined;
    if (checked && !checked.ok) return { lines: [checked.error] };
    const invites = server.invites?.({
      oneTime: true,
      ...(checked ? { room: checked.value } : {}),
    });
    if (!invites || invites.length === 0) {
      return { lines: ["No invite without TLS: the server listens with --no-tls"] };
    }
    return {
      lines: [
        "A one-time invite (good for one person, once, within a day; keep it secret):",
        ...invites.map((invite) => `  ${invite}`),
      ],
    };
  },
  announce: (args, server) => {
    const checked = checkText(args);
    if (!checked.ok) {
      return { lines: [args.trim() === "" ? "Usage: /announce <text>" : checked.error] };
    }
    server.hub.announce(checked.value);
    return { lines: [] };
  },
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
    stampSecond = second;
    stampText = formatDateTime(now, { seconds: true });
  }
  return stampText;
}

/** How many bytes of log may wait for a slow reader before lines are dropped (and counted). */
export const MAX_QUEUED_LOG_BYTES = 1024 * 1024;

/**
 * Log lines on standard output, gathered and written together at the end of each turn of the
 * event loop (a busy server logs thousands of lines a second). Writing never blocks the chat: it
 * is asynchronous, at most {@linkcode MAX_QUEUED_LOG_BYTES} wait for a slow or paused reader (the
 * rest is dropped and counted), and a reader that went away (a broken pipe) silences the log
 * instead of stopping the server.
 */
export function logOutput(
  writer: ByteWriter = Deno.stdout,
  options: { maxQueuedBytes?: number } = {},
): OperatorScreen & { flush(timeoutMs?: number): Promise<void> } {
  const maxQueued = options.maxQueuedBytes ?? MAX_QUEUED_LOG_BYTES;
  let queue: string[] = [];
  let queuedBytes = 0;
  let dropped = 0;
  let writing: Promise<void> | undefined;
  let gone = false;
  const encoder = new TextEncoder();
  const drain = async () => {
    await Promise.resolve();
    while (queue.length > 0 && !gone) {
      if (dropped > 0) {
        queue.push(`... ${dropped} log lines dropped: the log's reader is too slow`);
        dropped = 0;
      }
      const text = queue.map((line) => `${line}\n`).join("");
      queue = [];
      queuedBytes = 0;
      try {
        await writeAll(writer, encoder.encode(text));
      } catch {
        // The reader went away: nobody reads the log any more, and the chat goes on.
        gone = true;
        queue = [];
      }
    }
    writing = undefined;
  };
  return {
    print(lines: string[]): void {
      if (gone || lines.length === 0) return;
      const size = lines.reduce((n, line) => n + line.length + 1, 0);
      if (queuedBytes + size > maxQueued) {
        dropped += lines.length;
        return;
      }
      queue.push(...lines);
      queuedBytes += size;
      writing ??= drain();
    },
    async flush(timeoutMs = 1000): Promise<void> {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs));
      while (writing && !gone) {
        const done = await Promise.race([writing.then(() => true), timeout.then(() => false)]);
        if (!done) break;
      }
      clearTimeout(timer);
    },
  };
}

/** How much one source (an address) may log, and the whole server. */
export interface LogLimits {
  /** Lines a second one address may log, after a burst of ten times as many. @default {10} */
  perSource?: number;
  /** Lines a second the whole log takes, after a burst of five times as many. @default {200} */
  total?: number;
  /** How often the lines left out are summed up, in milliseconds. @default {10000} */
  summaryMs?: number;
}

/** How many sources are remembered at most (idle ones are forgotten first). */
const MAX_LOG_SOURCES = 10_000;

/**
 * Wraps a log so that no source floods it: each address (the first word of a line) and the whole
 * log have an allowance; lines past it are counted, and summed up every few seconds in one line
 * (`10.0.0.5 ... and 1,234 more lines`).
 */
export function limitLog(
  log: (line: string) => void,
  limits: LogLimits = {},
): ((line: string) => void) & { close(): void } {
  const perSource = limits.perSource ?? 10;
  const total = new TokenBucket({ rate: limits.total ?? 200, burst: (limits.total ?? 200) * 5 });
  const sources = new Map<string, { bucket: TokenBucket; dropped: number }>();
  let droppedByTotal = 0;
  const summarize = () => {
    for (const [source, entry] of sources) {
      if (entry.dropped > 0) {
        log(`${source} ... and ${entry.dropped.toLocaleString("en")} more lines (log limit)`);
        entry.dropped = 0;
      } else if (entry.bucket.full) {
        sources.delete(source);
      }
    }
    if (droppedByTotal > 0) {
      log(`... and ${droppedByTotal.toLocaleString("en")} more lines from everyone (log limit)`);
      droppedByTotal = 0;
    }
  };
  const timer = setInterval(summarize, limits.summaryMs ?? 10_000);
  const limited = (line: string) => {
    const first = line.slice(0, line.indexOf(" "));
    const source = /^[0-9A-Fa-f:.]+$/.test(first) ? first : "*";
    let entry = sources.get(source);
    if (entry === undefined) {
      if (sources.size >= MAX_LOG_SOURCES) summarize();
      entry = { bucket: new TokenBucket({ rate: perSource, burst: perSource * 10 }), dropped: 0 };
      sources.set(source, entry);
    }
    if (!entry.bucket.take()) {
      entry.dropped++;
      return;
    }
    if (!total.take()) {
      droppedByTotal++;
      return;
    }
    log(line);
  };
  return Object.assign(limited, {
    close(): void {
      clearInterval(timer);
      summarize();
    },
  });
}

/**
 * What Tab offers on the console: command names for the first word, then the names of the
 * people present (and rooms, for a word starting with `#`), each followed by a space.
 */
export function completeOperatorLine(
  server: OperatorTarget,
  commands: readonly string[],
  line: string,
): [string[], string] {
  const words = /^(\S*)$/.exec(line);
  if (words) {
    const word = words[1]!;
    return [
      word.startsWith("/") ? commands.filter((c) => c.startsWith(word)).map((c) => `${c} `) : [],
      word,
    ];
  }
  const last = /(\S*)$/.exec(line)![1]!;
  const key = last.toLowerCase();
  const candidates = last.startsWith("#")
    ? [...new Set([...server.hub.members].flatMap((m) => [...m.rooms].map((r) => r.name)))]
    : [...server.hub.members].map((m) => m.name);
  return [
    candidates.filter((c) => c.toLowerCase().startsWith(key)).sort().map((c) => `${c} `),
    last,
  ];
}

/**
 * Reads operator commands from standard input: with a prompt that log lines never garble on a
 * terminal, or line by line from a pipe. Calls `onShutdown` when the operator asks for it.
 */
export function startConsole(
  server: OperatorTarget,
  options: { onShutdown: (reason: string) => void; output: OperatorScreen },
): OperatorScreen & { close(): void } {
  const { onShutdown, output } = options;
  const terminal = Deno.stdin.isTerminal();
  const commands = commandWords(OPERATOR_COMMANDS);
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal,
    historySize: 200,
    completer: (line: string) => completeOperatorLine(server, commands, line),
  });
  // Ctrl+D (or the end of piped commands) closes the console, not the server: from then on the
  // log goes on without a prompt, and Ctrl+C (a signal once readline has let go of the terminal)
  // or SIGTERM still shuts down in order.
  let open = true;
  rl.on("close", () => {
    if (!open) return;
    open = false;
    output.print([
      "Console closed (end of input): the server goes on; Ctrl+C or SIGTERM stops it.",
    ]);
  });
  const screen = {
    print(lines: string[]): void {
      if (lines.length === 0) return;
      if (terminal && open) printAbove(rl, lines);
      else output.print(lines);
    },
    close(): void {
      if (!open) return;
      open = false;
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
