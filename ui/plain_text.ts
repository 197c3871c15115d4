/**
 * The plain-text face of the server: how people with nothing but `nc` or `telnet` chat. The
 * server asks them for a name, shows every frame as a readable line, and turns what they type
 * into the frames a chat program would have sent: text for the current room, or a command from
 * the command table.
 *
 * @module
 */

import type { Member } from "../chat/directory.ts";
import type { TextFace, TextInput } from "../net/connection.ts";
import { type ClientFrame, errorFrame, VERSION } from "../protocol.ts";
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
import { renderFrame, type RenderOptions } from "./render.ts";

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

/** The byte that starts a telnet command (Interpret As Command), RFC 854. */
const IAC = 0xff;

/**
 * Removes telnet option negotiation (IAC sequences, RFC 854) from the bytes a plain-text client
 * sends, so a `telnet` user's name and lines arrive clean. Keeps state across reads.
 */
export class TelnetFilter {
  #state: "data" | "iac" | "option" | "sub" | "sub_iac" = "data";

  /** The chunk without its telnet commands (the same chunk when it has none). */
  filter(chunk: Uint8Array): Uint8Array {
    if (this.#state === "data" && !chunk.includes(IAC)) return chunk;
    const out = new Uint8Array(chunk.length);
    let n = 0;
    for (const byte of chunk) {
      switch (this.#state) {
        case "data":
          if (byte === IAC) this.#state = "iac";
          else out[n++] = byte;
          break;
        case "iac":
          // WILL, WONT, DO, DONT carry an option byte; SB opens a subnegotiation.
          this.#state = byte >= 0xfb && byte <= 0xfe ? "option" : byte === 0xfa ? "sub" : "data";
          break;
        case "option":
          this.#state = "data";
          break;
        case "sub":
          if (byte === IAC) this.#state = "sub_iac";
          break;
        case "sub_iac":
          this.#state = byte === 0xf0 ? "data" : "sub"; // IAC SE ends it
          break;
      }
    }
    return out.subarray(0, n);
  }
}

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
 * Turns a line typed on `nc` or `telnet` into what a program would have sent: a name before
 * joining, then a message for the current room or a command from the command table.
 */
function readTyped(line: string, member: Member | undefined): TextInput {
  if (member === undefined) {
    const hello: ClientFrame = {
      type: "hello",
      name: line.trim(),
      client: { app: "plain text (nc or telnet)" },
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

/** The plain-text face, for the server's gateway. */
export const PLAIN_TEXT_FACE: TextFace = {
  encoder: { encode: (frame) => encodeText(renderFrame(frame, PLAIN_TEXT_VIEW)) },
  lines: encodeText,
  inputFilter() {
    const telnet = new TelnetFilter();
    return (chunk) => telnet.filter(chunk);
  },
  greeting: (serverName) => [
    `Welcome to ${serverName} (chat ${VERSION}).`,
    "Type your name and press Enter (1-24 letters, digits, _ or -):",
  ],
  askAgain: ["Type your name and press Enter:"],
  welcomed: (name) => [`Hello ${name}: type to talk, /help for commands.`],
  read: readTyped,
};
