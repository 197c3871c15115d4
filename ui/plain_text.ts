/**
 * The plain-text face of the server: how people with nothing but `nc` or `telnet` chat. The
 * server asks them for a name, shows every frame as a readable line, and turns what they type
 * into the frames a chat program would have sent: text for the current room, or a command from
 * the command table. Telnet's commands are answered where telnet waits for an answer (RFC 854,
 * RFC 860) and otherwise taken out of what was typed.
 *
 * @module
 */

import type { Member } from "../chat/directory.ts";
import type { DaySpan, TextFace, TextInput, TextLink } from "../net/connection.ts";
import { type ClientFrame, errorFrame, type ServerFrame, VERSION } from "../protocol.ts";
import {
  CHAT_COMMANDS,
  type ChatCommand,
  type CommandHandlers,
  commandHelp,
  commandNames,
  findCommand,
  firstWord,
  type FrameBuilder,
  frameBuilder,
  frameCommandHandlers,
  parseCommand,
  unknownCommand,
} from "./commands.ts";
import { dayLine, NOTICE_MARK, renderFrame, type RenderOptions } from "./render.ts";

/**
 * How frames read on a plain-text client: times, rooms always named, no colours, wrapped at 80
 * columns (a terminal's width at least) with each message's rows marked as its own, and at most
 * 20 rows a message.
 */
const PLAIN_TEXT_VIEW: RenderOptions = {
  me: "",
  color: false,
  time: true,
  skipOwn: false,
  width: 80,
  maxRows: 20,
};
const textEncoder = new TextEncoder();

/** Encodes lines of text for a plain-text client: CRLF line ends, as telnet expects. */
export function encodeText(lines: readonly string[]): Uint8Array {
  return textEncoder.encode(lines.map((line) => `${line}\r\n`).join(""));
}

// ==== Telnet ====

/** Telnet's command bytes (RFC 854) and the options this face answers about. */
const TELNET = {
  /** Interpret As Command: starts every command; doubled, it is a data byte 255. */
  IAC: 0xff,
  DONT: 0xfe,
  DO: 0xfd,
  WONT: 0xfc,
  WILL: 0xfb,
  /** Subnegotiation Begin; `IAC SE` ends it. */
  SB: 0xfa,
  /** Erase Line: the line being typed is dropped. */
  EL: 0xf8,
  /** Are You There: asks for a visible answer. */
  AYT: 0xf6,
  /** Interrupt Process: what telnet sends for Ctrl+C. */
  IP: 0xf4,
  /** Subnegotiation End. */
  SE: 0xf0,
  /** The TIMING-MARK option (RFC 860): telnet discards output until it is answered. */
  TIMING_MARK: 0x06,
} as const;

const CARRIAGE_RETURN = 0x0d;
const LINE_FEED = 0x0a;
const NUL = 0x00;

/** What the filter answers `IAC AYT` with (RFC 854 asks for something visible). */
const ARE_YOU_THERE_ANSWER = encodeText([`${NOTICE_MARK} Yes, the chat is here.`]);
/**
 * What a person who pressed Ctrl+C in telnet is told, after the answer telnet waits for: telnet
 * does not leave on Ctrl+C, it sends the server an interrupt.
 */
export const INTERRUPTED_LINES: readonly string[] = [
  // Telnet has echoed ^C after what was typed: the notice starts on a line of its own.
  "",
  `${NOTICE_MARK} Interrupted: what you typed and was not sent yet was dropped.`,
  `${NOTICE_MARK} To leave, type /quit (or press Ctrl+] and type quit).`,
];
const INTERRUPTED_TEXT = encodeText(INTERRUPTED_LINES);

/** Where the filter is in telnet's byte stream. */
type TelnetState =
  | "data"
  | "iac"
  | "option"
  | "sub"
  | "sub_iac";

/**
 * A link that answers nothing and cancels nothing, for a filter used on its own: bytes are only
 * cleaned.
 */
const DETACHED_LINK: TextLink = { person: true, reply() {}, dropLine() {}, interrupt() {} };

/**
 * Cleans what a plain-text client sends before it is split into lines, keeping its state across
 * reads:
 *
 * - Telnet commands (RFC 854) are taken out. `IAC DO TIMING-MARK`, which telnet sends after
 *   Ctrl+C and then shows nothing until it is answered, is answered `IAC WILL TIMING-MARK`
 *   (RFC 860); other options asked for are refused (`DO` with `WONT`, `WILL` with `DONT`, once
 *   each per option, RFC 1143), so telnet echoes what is typed itself. `IAC IP` (Ctrl+C) drops
 *   whatever was typed and not carried out yet (the line being typed, lines still waiting for
 *   the sending allowance) and says how to leave; `IAC EL` drops the line being typed;
 *   `IAC AYT` gets a line back. `IAC IAC` is the data byte 255.
 * - Every carriage return ends a line: CR LF and CR NUL (what telnet sends for Enter, RFC 854)
 *   and a CR alone, even at the end of a read (the LF or NUL that may follow in the next read is
 *   then skipped). Lines reach the splitter ending in LF alone.
 *
 * Until the connection is known to be a person's (`link.person`), nothing is answered and
 * carriage returns pass as they are: a program's JSON must arrive untouched.
 */
export class TelnetFilter {
  #state: TelnetState = "data";
  /** The command (`DO`, `WILL`...) whose option byte comes next. */
  #command = 0;
  /** Whether the last byte was a CR ending a line: an LF or NUL right after it is skipped. */
  #afterCr = false;
  /** The options already refused, so a client asking again and again gets one answer each. */
  #refused: Set<number> | undefined;
  /** Whether an interrupt (Ctrl+C) waits to be explained once its timing mark is answered. */
  #interrupted = false;
  readonly #link: TextLink;

  constructor(link: TextLink = DETACHED_LINK) {
    this.#link = link;
  }

  /** The chunk without its telnet commands, with its line ends made LF (the same chunk if clean). */
  filter(chunk: Uint8Array): Uint8Array {
    const person = this.#link.person;
    if (this.#isClean(chunk, person)) return chunk;
    const out = new Uint8Array(chunk.length);
    let n = 0;
    /** Where the line being typed starts in `out`; -1 while it started in an earlier chunk. */
    let lineStart = -1;
    for (const byte of chunk) {
      if (this.#afterCr) {
        this.#afterCr = false;
        if (this.#state === "data" && (byte === LINE_FEED || byte === NUL)) continue;
      }
      switch (this.#state) {
        case "data":
          if (byte === TELNET.IAC) this.#state = "iac";
          else if (byte === CARRIAGE_RETURN && person) {
            out[n++] = LINE_FEED;
            lineStart = n;
            this.#afterCr = true;
          } else {
            out[n++] = byte;
            if (byte === LINE_FEED) lineStart = n;
          }
          break;
        case "iac":
          this.#state = "data";
          if (byte === TELNET.IAC) {
            out[n++] = byte;
          } else if (byte >= TELNET.WILL && byte <= TELNET.DONT) {
            this.#command = byte;
            this.#state = "option";
          } else if (byte === TELNET.SB) {
            this.#state = "sub";
          } else if (byte === TELNET.EL) {
            // The line being typed is dropped: its bytes here, and those of earlier chunks.
            if (lineStart === -1) this.#link.dropLine();
            n = Math.max(0, lineStart);
            lineStart = n;
          } else if (byte === TELNET.IP) {
            // Ctrl+C: whatever was typed and not carried out yet is dropped.
            this.#link.interrupt();
            n = 0;
            lineStart = 0;
            if (person) this.#interrupted = true;
          } else if (byte === TELNET.AYT && person) {
            this.#link.reply(ARE_YOU_THERE_ANSWER);
          }
          break;
        case "option":
          this.#state = "data";
          if (person) this.#answer(this.#command, byte);
          break;
        case "sub":
          if (byte === TELNET.IAC) this.#state = "sub_iac";
          break;
        case "sub_iac":
          this.#state = byte === TELNET.SE ? "data" : "sub";
          break;
      }
    }
    if (this.#interrupted) {
      // Ctrl+C without the timing mark telnet usually sends after it: say so now.
      this.#interrupted = false;
      this.#link.reply(INTERRUPTED_TEXT);
    }
    return out.subarray(0, n);
  }

  /** Whether a chunk needs no change: plain data, with no command and no CR to translate. */
  #isClean(chunk: Uint8Array, person: boolean): boolean {
    if (this.#state !== "data" || this.#afterCr || chunk.includes(TELNET.IAC)) return false;
    return !person || !chunk.includes(CARRIAGE_RETURN);
  }

  /** Answers a negotiation: the timing mark always, other options refused once each. */
  #answer(command: number, option: number): void {
    if (command === TELNET.DO && option === TELNET.TIMING_MARK) {
      this.#link.reply(new Uint8Array([TELNET.IAC, TELNET.WILL, TELNET.TIMING_MARK]));
      if (this.#interrupted) {
        this.#interrupted = false;
        this.#link.reply(INTERRUPTED_TEXT);
      }
      return;
    }
    // WONT and DONT need no answer: the option is off, as it always is here (RFC 1143).
    if (command !== TELNET.DO && command !== TELNET.WILL) return;
    const key = command << 8 | option;
    this.#refused ??= new Set();
    if (this.#refused.has(key)) return;
    this.#refused.add(key);
    const refusal = command === TELNET.DO ? TELNET.WONT : TELNET.DONT;
    this.#link.reply(new Uint8Array([TELNET.IAC, refusal, option]));
  }
}

// ==== Days and time zone ====

const WEEKDAY_FORMAT = new Intl.DateTimeFormat("en", { weekday: "long" });
const MONTH_FORMAT = new Intl.DateTimeFormat("en", { month: "long" });

/** The local day (in the server's time zone) that `ts` falls on, as a span of the epoch clock. */
export function localDay(ts: number): DaySpan {
  const date = new Date(ts);
  const start = new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
  const end = new Date(date.getFullYear(), date.getMonth(), date.getDate() + 1).getTime();
  return { start, end };
}

/** A day as people say it: `Tuesday 1 December 2026`, in the server's time zone. */
export function dayName(ts: number): string {
  const date = new Date(ts);
  return `${WEEKDAY_FORMAT.format(date)} ${date.getDate()} ${
    MONTH_FORMAT.format(date)
  } ${date.getFullYear()}`;
}

/**
 * The server's time zone, for people whose times are shown in it: its offset from UTC at `ts`
 * and its name, `UTC+01:00 (Europe/Paris)`; just `UTC` for UTC.
 */
export function timeZoneText(ts: number): string {
  const minutes = -new Date(ts).getTimezoneOffset();
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const utc = /^(Etc\/)?(UTC|GMT|UCT|Zulu|Universal)$/i.test(zone ?? "");
  if (minutes === 0 && (utc || !zone)) return "UTC";
  const sign = minutes < 0 ? "-" : "+";
  const pad = (n: number) => String(n).padStart(2, "0");
  const offset = `UTC${sign}${pad(Math.floor(Math.abs(minutes) / 60))}:${
    pad(Math.abs(minutes) % 60)
  }`;
  return zone ? `${offset} (${zone})` : offset;
}

/**
 * The time a frame is shown with, in milliseconds since the epoch: what a day-change line is
 * about. `undefined` for frames shown without a time.
 */
export function shownTime(frame: ServerFrame): number | undefined {
  switch (frame.type) {
    case "message":
    case "private":
    case "joined":
    case "left":
    case "renamed":
    case "presence":
    case "announce":
    case "topic":
      return frame.ts;
    default:
      return undefined;
  }
}

// ==== Typed lines ====

type TextHandler = (args: string, member: Member) => TextInput;

/** Sends the frame a command builds, as a chat program would. */
function sendFrame(build: FrameBuilder): TextHandler {
  return (args, member) => {
    const built = build(args, {
      room: member.current.name,
      lastPrivate: member.lastPrivateFrom,
      oldest: member.historyFrom.get(member.current),
    });
    return built.ok
      ? { kind: "frame", frame: built.value }
      : { kind: "error", error: errorFrame("bad_frame", built.error) };
  };
}

/** A command only the chat client can carry out (it keeps state the server does not). */
function needsClient(name: ChatCommand): TextHandler {
  return () => ({
    kind: "error",
    error: errorFrame("not_allowed", `/${name} needs the chat client: it is not available here`),
  });
}

/** How the plain-text face carries out each chat command. */
const TEXT_COMMANDS: CommandHandlers<ChatCommand, Member, TextInput> = {
  help: (args) => ({ kind: "reply", lines: textHelp(args) }),
  ...frameCommandHandlers(sendFrame),
  switch: (args) => ({ kind: "switch", room: firstWord(args)[0] }),
  ignore: needsClient("ignore"),
  unignore: needsClient("unignore"),
  bell: needsClient("bell"),
  connect: needsClient("connect"),
};

/** The commands a plain-text user can use, in the table's order. */
const TEXT_COMMAND_NAMES = commandNames(CHAT_COMMANDS).filter((name) =>
  name === "help" || name === "switch" || frameBuilder(CHAT_COMMANDS, name) !== undefined
);

function textHelp(args: string): string[] {
  const topic = firstWord(args)[0];
  if (topic) return commandHelp(CHAT_COMMANDS, { name: topic, names: TEXT_COMMAND_NAMES });
  return [
    "Type to talk in your current room. Commands:",
    ...commandHelp(CHAT_COMMANDS, { names: TEXT_COMMAND_NAMES }),
  ];
}

/**
 * A line as the person meant it: each Backspace (BS, or DEL, which telnet in character mode
 * and many terminals send for it) takes back the character before it.
 */
export function applyErasures(line: string): string {
  if (!/[\b\x7f]/.test(line)) return line;
  const kept: string[] = [];
  for (const char of line) {
    if (char === "\b" || char === "\x7f") kept.pop();
    else kept.push(char);
  }
  return kept.join("");
}

/**
 * Turns a line typed on `nc` or `telnet` into what a program would have sent: a name before
 * joining, then a message for the current room or a command from the command table.
 */
function readTyped(
  typedLine: string,
  member: Member | undefined,
  passwordFor?: string,
): TextInput {
  const line = applyErasures(typedLine);
  if (member === undefined) {
    // A way out at the name or password question, as once in: /quit (or its aliases).
    const first = parseCommand(line);
    if (first && findCommand(CHAT_COMMANDS, first.name) === "quit") {
      return { kind: "frame", frame: { type: "bye" } };
    }
    // After a name comes its password, when the server asked for one.
    const hello: ClientFrame = {
      type: "hello",
      name: passwordFor ?? line.trim(),
      client: { app: "plain text (nc or telnet)" },
      ...(passwordFor === undefined ? {} : { password: line.trim() }),
    };
    return { kind: "frame", frame: hello };
  }
  const parsed = parseCommand(line);
  if (parsed === undefined) {
    return {
      kind: "frame",
      frame: { type: "say", text: line.startsWith("//") ? line.slice(1) : line },
    };
  }
  const name = findCommand(CHAT_COMMANDS, parsed.name);
  if (name === undefined) {
    return { kind: "error", error: errorFrame("bad_frame", unknownCommand(parsed.name)) };
  }
  return TEXT_COMMANDS[name](parsed.args, member);
}

// ==== The face ====

/**
 * What a person is told right after the welcome, before any time is shown: the day, and the
 * time zone every time they see is in (the server's: `nc` cannot say which zone its user is in).
 */
function todayLines(now: number): string[] {
  return [`Today is ${dayName(now)}; times shown are ${timeZoneText(now)}.`];
}

/** The plain-text face, for the server's gateway. */
export const PLAIN_TEXT_FACE: TextFace = {
  encoder: { encode: (frame) => encodeText(renderFrame(frame, PLAIN_TEXT_VIEW)) },
  lines: encodeText,
  inputFilter(link) {
    const telnet = new TelnetFilter(link);
    return (chunk) => telnet.filter(chunk);
  },
  greeting: (serverName) => [
    `Welcome to ${serverName} (chat ${VERSION}).`,
    "Type your name and press Enter (1-24 letters, digits, _ or -):",
  ],
  askAgain: ["Type your name and press Enter:"],
  askPassword: (encrypted) => [
    encrypted
      ? "Password (it shows as you type; the connection is encrypted):"
      : "Password (it shows as you type; over nc, anyone on the way can read it):",
  ],
  todayLines,
  welcomed: (name) => [`Hello ${name}: type to talk, /help for commands.`],
  timeOf: shownTime,
  dayOf: localDay,
  dayLines: (ts) => [dayLine(ts)],
  closing: [
    `${NOTICE_MARK} Connection closed. If nc does not exit by itself, press Ctrl+C or Ctrl+D.`,
  ],
  read: readTyped,
};
