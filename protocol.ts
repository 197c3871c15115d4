/**
 * The chat wire protocol, shared by `server.ts` and `client.ts`.
 *
 * TCP carrying newline-delimited JSON: one JSON object per line, UTF-8, `\n`-terminated, at most
 * {@linkcode MAX_FRAME_BYTES} per line including the newline. Every frame has a string `type`.
 * This module holds every rule both ends must agree on: the frame types, their validation, the
 * name and text rules, the error codes, the line framing and the outgoing queue.
 *
 * @module
 */

import process from "node:process";
import * as readline from "node:readline";

// ==== Constants ====

/** The product's version, reported by both programs and in the server's welcome. */
export const VERSION = "0.1.0";
/** The TCP port the server listens on and the client connects to by default. */
export const DEFAULT_PORT = 5050;
/** The longest line either side accepts, in bytes, including the `\n`. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** The longest name, in characters. */
export const MAX_NAME_LENGTH = 24;
/** The longest message text, in characters. */
export const MAX_TEXT_LENGTH = 2000;
/** The longest `client` info field in a hello (`app`, `os`, `host`), in characters. */
export const MAX_INFO_LENGTH = 64;
/** The longest `ref` a client may attach to a `say`. */
export const MAX_REF_LENGTH = 64;
/** The longest room name, in characters, not counting the `#`. */
export const MAX_ROOM_LENGTH = 32;
/** The longest topic or away message, in characters. */
export const MAX_TOPIC_LENGTH = 200;
/** The room everyone is in on arrival; it never disappears. */
export const LOBBY = "#lobby";
/** A `users` list names at most this many people; `count` gives the total. */
export const MAX_LISTED_USERS = 500;
/** How long a new connection has to send its hello, in milliseconds. */
export const HELLO_TIMEOUT_MS = 10_000;
/** How long either side waits in silence before it pings, and then for an answer, in milliseconds. */
export const HEARTBEAT_MS = 30_000;
/** The most messages one `history` request returns. */
export const MAX_HISTORY_PAGE = 200;
/** How many messages `/history` asks for when not told. */
export const HISTORY_PAGE = 50;
/** Names nobody may take, compared case-insensitively. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  "server",
  "system",
  "admin",
  "operator",
  "you",
]);

/** Letters (any script), digits, `_` and `-`, one to {@linkcode MAX_NAME_LENGTH} of them. */
const NAME_REGEXP = /^[\p{L}\p{N}_-]{1,24}$/u;
/** `#` and then letters (any script), digits, `_` and `-`, one to {@linkcode MAX_ROOM_LENGTH}. */
const ROOM_REGEXP = /^#[\p{L}\p{N}_-]{1,32}$/u;
/** What a `ref` may contain: short, printable, no spaces. */
const REF_REGEXP = /^[A-Za-z0-9_.:-]{1,64}$/;
/** C0 controls except tab and newline, DEL, and C1 controls. */
const CONTROL_REGEXP = /(?![\t\n])\p{Cc}/gu;
/**
 * Everything a terminal could act on: all C0/C1 controls (newline and tab included), DEL, and the
 * bidirectional overrides that can make text read differently from what it is.
 */
const TERMINAL_UNSAFE_REGEXP = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/gu;

// ==== Error codes ====

/**
 * Every error code the server sends, with what it means. The README's table is this table.
 * Codes marked fatal are followed by the server closing the connection.
 */
export const ERROR_CODES = {
  bad_frame: "The line is not valid JSON or not a well-formed frame",
  too_large: "A line exceeded the frame limit (fatal)",
  bad_name: "The name breaks the name rules",
  name_taken: "Somebody else is using that name",
  hello_first: "The first frame must be a hello",
  bad_text: "The message text is empty, too long or made only of control characters",
  bad_room: "The room name breaks the room rules, or there is no such room",
  not_in_room: "The command needs a room you are in",
  no_such_user: "Nobody by that name is here",
  not_allowed: "The server does not allow that",
  timeout: "No hello, or no answer to a ping, arrived in time (fatal)",
  too_many_errors: "Too many bad frames in a row (fatal)",
  too_slow: "The client stopped reading and its outgoing queue filled up (fatal)",
  shutting_down: "The server is shutting down (fatal)",
  kicked: "The server's operator removed you (fatal)",
  banned: "The server's operator has banned you or your address (fatal)",
  rate_limited: "Too many frames too fast: the frame was dropped; slow down",
  flooding: "Kept sending too fast after being told to slow down (fatal)",
  server_full:
    "The server, or its limit for your address, has no room for another connection (fatal)",
  replaced: "The same session connected again from elsewhere (fatal)",
  storage_failed: "The server could not store the message: it was not sent; try again",
} as const;

/** A stable error code, as sent in an `error` frame. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes after which the server closes the connection. */
export const FATAL_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "too_large",
  "timeout",
  "too_many_errors",
  "too_slow",
  "shutting_down",
  "kicked",
  "banned",
  "flooding",
  "server_full",
  "replaced",
]);

/**
 * The fatal codes that say nothing against trying again: a client that was cut off for one of
 * these reconnects (and resumes) on its own.
 */
export const RECONNECT_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "timeout",
  "too_slow",
  "shutting_down",
  "server_full",
]);

// ==== Frames ====

/** Facts a client chooses to report about itself in its hello. */
export interface ClientInfo {
  /** The client program and its version, e.g. `chat-client 0.1.0`. */
  app?: string;
  /** The operating system, e.g. `linux`. */
  os?: string;
  /** The computer's host name. */
  host?: string;
}

/**
 * Client → server: the first frame, claiming a name. After a disconnection a client sends the
 * `resume` token from its welcome and the id of the `last` message it saw: the server gives it its
 * name and rooms back and sends exactly the messages it missed.
 */
export interface HelloFrame {
  type: "hello";
  name: string;
  client?: ClientInfo;
  resume?: string;
  last?: number;
}
/**
 * Client → server: a message for a room (by default the room the sender last joined or
 * switched to); `ref` comes back in the message as an acknowledgement, `action` makes it an emote.
 * `cid` is an id the client chose for this message: the server stores a message with a given
 * `cid` once per sender, so sending it again after an unclear failure only repeats the
 * acknowledgement.
 */
export interface SayFrame {
  type: "say";
  text: string;
  room?: string;
  ref?: string;
  cid?: string;
  action?: boolean;
}
/** Client → server: a private message to one person; `ref` and `cid` as in {@linkcode SayFrame}. */
export interface MsgFrame {
  type: "msg";
  to: string;
  text: string;
  ref?: string;
  cid?: string;
  action?: boolean;
}
/** Client → server: asks for the people in a room, or everyone present when `room` is absent. */
export interface WhoFrame {
  type: "who";
  room?: string;
}
/** Client → server: joins a room (creating it), or makes an already joined room current. */
export interface JoinFrame {
  type: "join";
  room: string;
}
/** Client → server: leaves a room (by default the current one). */
export interface LeaveFrame {
  type: "leave";
  room?: string;
}
/** Client → server: asks for the list of rooms. */
export interface RoomsFrame {
  type: "rooms";
}
/** Client → server: sets a room's topic, or asks for it when `topic` is absent. */
export interface TopicFrame {
  type: "topic";
  room: string;
  topic?: string;
}
/** Client → server: asks about one person. */
export interface WhoisFrame {
  type: "whois";
  name: string;
}
/** Client → server: changes one's name. */
export interface NickFrame {
  type: "nick";
  name: string;
}
/** Client → server: marks one away; the message is shown to whoever writes privately. */
export interface AwayFrame {
  type: "away";
  message: string;
}
/** Client → server: no longer away. */
export interface BackFrame {
  type: "back";
}
/** Either direction: asks the peer to answer with a pong. */
export interface PingFrame {
  type: "ping";
}
/** Either direction: the answer to a ping. */
export interface PongFrame {
  type: "pong";
}
/** Client → server: the client is leaving on purpose, with an optional goodbye. */
export interface ByeFrame {
  type: "bye";
  message?: string;
}
/**
 * Client → server: asks for a room's earlier messages (by default the current room's): at most
 * `limit` of them, all older than message id `before` (by default the newest).
 */
export interface HistoryFrame {
  type: "history";
  room?: string;
  before?: number;
  limit?: number;
}

/** Every frame a client may send. */
export type ClientFrame =
  | HelloFrame
  | SayFrame
  | MsgFrame
  | WhoFrame
  | JoinFrame
  | LeaveFrame
  | RoomsFrame
  | TopicFrame
  | WhoisFrame
  | NickFrame
  | AwayFrame
  | BackFrame
  | PingFrame
  | PongFrame
  | ByeFrame
  | HistoryFrame;

/** Server → client: the hello was accepted; the member is in {@linkcode LOBBY}. */
export interface WelcomeFrame {
  type: "welcome";
  name: string;
  /** The people in the lobby. */
  users: string[];
  /** How many people are in the lobby; `users` may list only the first {@linkcode MAX_LISTED_USERS}. */
  count?: number;
  server: { name: string; version: string };
  /** The room the member starts in. */
  room?: string;
  /** The message of the day. */
  motd?: string;
  /** The token that lets this session resume after a disconnection; keep it secret. */
  resume?: string;
  /** Present and true when a `resume` in the hello gave back an earlier session. */
  resumed?: boolean;
  /** The newest message id when this welcome was sent: where "what I missed" starts. */
  last?: number;
  /** How fast the client may send: `rate` frames a second after a `burst`; 0 means no limit. */
  limits?: { rate: number; burst: number };
}
/**
 * Server → client: a message in a room, sent to the room's members, its sender included. Ids grow
 * with time across rooms and restarts. `history` marks an earlier message sent after a `history`
 * frame rather than live.
 */
export interface MessageFrame {
  type: "message";
  id: number;
  ts: number;
  from: string;
  text: string;
  room?: string;
  ref?: string;
  action?: boolean;
  history?: boolean;
}
/** Server → client: a private message, sent to its recipient and (as acknowledgement) its sender. */
export interface PrivateFrame {
  type: "private";
  id: number;
  ts: number;
  from: string;
  to: string;
  text: string;
  ref?: string;
  action?: boolean;
}
/** Server → client: somebody arrived in a room. */
export interface JoinedFrame {
  type: "joined";
  name: string;
  ts: number;
  room?: string;
}
/** Server → client: somebody left a room (or the server), and why. */
export interface LeftFrame {
  type: "left";
  name: string;
  ts: number;
  reason: string;
  room?: string;
}
/** Server → client: the answer to `who`. */
export interface UsersFrame {
  type: "users";
  users: string[];
  count?: number;
  room?: string;
}
/** Server → client: you are now in this room (after `join`, or a server-side switch). */
export interface RoomFrame {
  type: "room";
  room: string;
  topic: string;
  users: string[];
  count: number;
}
/** One line of a room list. */
export interface RoomInfo {
  room: string;
  count: number;
  topic: string;
}
/** Server → client: the answer to `rooms`. */
export interface RoomListFrame {
  type: "room_list";
  rooms: RoomInfo[];
}
/** Server → client: a room's topic, when asked or when somebody (`by`) changes it. */
export interface TopicInfoFrame {
  type: "topic";
  room: string;
  topic: string;
  by?: string;
  ts?: number;
}
/** Server → client: somebody who shares a room with you changed their name. */
export interface RenamedFrame {
  type: "renamed";
  from: string;
  to: string;
  ts: number;
}
/** Server → client: the answer to `whois`. */
export interface WhoisInfoFrame {
  type: "whois";
  name: string;
  rooms: string[];
  /** Milliseconds since the person last said anything. */
  idle: number;
  /** When the person arrived. */
  since: number;
  away?: string;
  client?: ClientInfo;
}
/** Server → client: a line for this person only (command replies, away notices). */
export interface NoticeFrame {
  type: "notice";
  text: string;
}
/** Server → client: the server's operator speaking to everyone. */
export interface AnnounceFrame {
  type: "announce";
  text: string;
  ts: number;
}
/**
 * Server → client: a page of a room's history follows: `count` messages marked `history`, oldest
 * first. `more` says whether earlier ones exist.
 */
export interface HistoryInfoFrame {
  type: "history";
  room: string;
  count: number;
  more: boolean;
}
/**
 * Server → client: somebody who shares a room with you lost their connection and is `away` for
 * now (their name is held for them), or (no `away`) is back.
 */
export interface PresenceFrame {
  type: "presence";
  name: string;
  ts: number;
  away?: string;
}
/** Server → client: something the client did was refused, or the connection is about to close. */
export interface ErrorFrame {
  type: "error";
  code: ErrorCode;
  message: string;
  ref?: string;
}

/** Every frame the server may send. */
export type ServerFrame =
  | WelcomeFrame
  | MessageFrame
  | PrivateFrame
  | JoinedFrame
  | LeftFrame
  | UsersFrame
  | RoomFrame
  | RoomListFrame
  | TopicInfoFrame
  | RenamedFrame
  | WhoisInfoFrame
  | NoticeFrame
  | AnnounceFrame
  | HistoryInfoFrame
  | PresenceFrame
  | PingFrame
  | PongFrame
  | ErrorFrame;

/** Any frame, either direction. */
export type Frame = ClientFrame | ServerFrame;

// ==== Encoding and decoding ====

const encoder = new TextEncoder();

/** Serialises a frame to its wire form: JSON, a `\n`, UTF-8. */
export function encodeFrame(frame: Frame): Uint8Array {
  return encoder.encode(JSON.stringify(frame) + "\n");
}

/** Why a line could not be decoded into a frame. */
export type DecodeErrorKind = "bad_json" | "bad_field" | "unknown_type" | "too_large";

/** A line that is not a valid frame, with what is wrong with it. */
export class DecodeError extends Error {
  /** What kind of fault this is. */
  readonly kind: DecodeErrorKind;
  constructor(kind: DecodeErrorKind, message: string) {
    super(message);
    this.name = "DecodeError";
    this.kind = kind;
  }
}

/** The outcome of decoding one line: a typed frame, or a typed error. */
export type DecodeResult<F> = { ok: true; frame: F } | { ok: false; error: DecodeError };

type JsonObject = Record<string, unknown>;
type FrameReader<F> = (o: JsonObject) => F;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function badField(key: string, want: string): DecodeError {
  return new DecodeError("bad_field", `Field "${key}" must be ${want}`);
}

function readString(o: JsonObject, key: string): string {
  const value = o[key];
  if (typeof value !== "string") throw badField(key, "a string");
  return value;
}

function readInteger(o: JsonObject, key: string): number {
  const value = o[key];
  if (!Number.isSafeInteger(value)) throw badField(key, "an integer");
  return value as number;
}

function readStringArray(o: JsonObject, key: string): string[] {
  const value = o[key];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw badField(key, "an array of strings");
  }
  return value;
}

/** Copies `key` into a new object when present, so optional fields stay absent, never undefined. */
function optional<T>(
  o: JsonObject,
  key: string,
  read: (o: JsonObject, key: string) => T,
): Record<string, T> {
  return o[key] === undefined ? {} : { [key]: read(o, key) };
}

function readClientInfo(o: JsonObject, key: string): ClientInfo {
  const info = o[key];
  if (!isObject(info)) throw badField(key, "an object");
  return {
    ...optional(info, "app", readString),
    ...optional(info, "os", readString),
    ...optional(info, "host", readString),
  };
}

function readBoolean(o: JsonObject, key: string): boolean {
  const value = o[key];
  if (typeof value !== "boolean") throw badField(key, "true or false");
  return value;
}

function readLimits(o: JsonObject, key: string): { rate: number; burst: number } {
  const limits = o[key];
  if (!isObject(limits)) throw badField(key, "an object");
  return { rate: readNumber(limits, "rate"), burst: readNumber(limits, "burst") };
}

function readNumber(o: JsonObject, key: string): number {
  const value = o[key];
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw badField(key, "a number of at least 0");
  }
  return value;
}

function readServerInfo(o: JsonObject, key: string): WelcomeFrame["server"] {
  const info = o[key];
  if (!isObject(info)) throw badField(key, "an object");
  return { name: readString(info, "name"), version: readString(info, "version") };
}

function readRoomInfos(o: JsonObject, key: string): RoomInfo[] {
  const value = o[key];
  if (!Array.isArray(value)) throw badField(key, "an array");
  return value.map((item) => {
    if (!isObject(item)) throw badField(key, "an array of objects");
    return {
      room: readString(item, "room"),
      count: readInteger(item, "count"),
      topic: readString(item, "topic"),
    };
  });
}

function readErrorCode(o: JsonObject, key: string): ErrorCode {
  const code = readString(o, key);
  // An unknown code from a newer server is still an error: keep it readable as `bad_frame`.
  return Object.hasOwn(ERROR_CODES, code) ? code as ErrorCode : "bad_frame";
}

const CLIENT_FRAME_READERS: { [K in ClientFrame["type"]]: FrameReader<ClientFrame> } = {
  hello: (o) => ({
    type: "hello",
    name: readString(o, "name"),
    ...optional(o, "client", readClientInfo),
    ...optional(o, "resume", readString),
    ...optional(o, "last", readInteger),
  }),
  say: (o) => ({
    type: "say",
    text: readString(o, "text"),
    ...optional(o, "room", readString),
    ...optional(o, "ref", readString),
    ...optional(o, "cid", readString),
    ...optional(o, "action", readBoolean),
  }),
  msg: (o) => ({
    type: "msg",
    to: readString(o, "to"),
    text: readString(o, "text"),
    ...optional(o, "ref", readString),
    ...optional(o, "cid", readString),
    ...optional(o, "action", readBoolean),
  }),
  who: (o) => ({ type: "who", ...optional(o, "room", readString) }),
  join: (o) => ({ type: "join", room: readString(o, "room") }),
  leave: (o) => ({ type: "leave", ...optional(o, "room", readString) }),
  rooms: () => ({ type: "rooms" }),
  topic: (o) => ({
    type: "topic",
    room: readString(o, "room"),
    ...optional(o, "topic", readString),
  }),
  whois: (o) => ({ type: "whois", name: readString(o, "name") }),
  nick: (o) => ({ type: "nick", name: readString(o, "name") }),
  away: (o) => ({ type: "away", message: readString(o, "message") }),
  back: () => ({ type: "back" }),
  ping: () => ({ type: "ping" }),
  pong: () => ({ type: "pong" }),
  bye: (o) => ({ type: "bye", ...optional(o, "message", readString) }),
  history: (o) => ({
    type: "history",
    ...optional(o, "room", readString),
    ...optional(o, "before", readInteger),
    ...optional(o, "limit", readInteger),
  }),
};

const SERVER_FRAME_READERS: { [K in ServerFrame["type"]]: FrameReader<ServerFrame> } = {
  welcome: (o) => ({
    type: "welcome",
    name: readString(o, "name"),
    users: readStringArray(o, "users"),
    ...optional(o, "count", readInteger),
    server: readServerInfo(o, "server"),
    ...optional(o, "room", readString),
    ...optional(o, "motd", readString),
    ...optional(o, "resume", readString),
    ...optional(o, "resumed", readBoolean),
    ...optional(o, "last", readInteger),
    ...optional(o, "limits", readLimits),
  }),
  message: (o) => ({
    type: "message",
    id: readInteger(o, "id"),
    ts: readInteger(o, "ts"),
    from: readString(o, "from"),
    text: readString(o, "text"),
    ...optional(o, "room", readString),
    ...optional(o, "ref", readString),
    ...optional(o, "action", readBoolean),
    ...optional(o, "history", readBoolean),
  }),
  private: (o) => ({
    type: "private",
    id: readInteger(o, "id"),
    ts: readInteger(o, "ts"),
    from: readString(o, "from"),
    to: readString(o, "to"),
    text: readString(o, "text"),
    ...optional(o, "ref", readString),
    ...optional(o, "action", readBoolean),
  }),
  joined: (o) => ({
    type: "joined",
    name: readString(o, "name"),
    ts: readInteger(o, "ts"),
    ...optional(o, "room", readString),
  }),
  left: (o) => ({
    type: "left",
    name: readString(o, "name"),
    ts: readInteger(o, "ts"),
    reason: readString(o, "reason"),
    ...optional(o, "room", readString),
  }),
  users: (o) => ({
    type: "users",
    users: readStringArray(o, "users"),
    ...optional(o, "count", readInteger),
    ...optional(o, "room", readString),
  }),
  room: (o) => ({
    type: "room",
    room: readString(o, "room"),
    topic: readString(o, "topic"),
    users: readStringArray(o, "users"),
    count: readInteger(o, "count"),
  }),
  room_list: (o) => ({ type: "room_list", rooms: readRoomInfos(o, "rooms") }),
  topic: (o) => ({
    type: "topic",
    room: readString(o, "room"),
    topic: readString(o, "topic"),
    ...optional(o, "by", readString),
    ...optional(o, "ts", readInteger),
  }),
  renamed: (o) => ({
    type: "renamed",
    from: readString(o, "from"),
    to: readString(o, "to"),
    ts: readInteger(o, "ts"),
  }),
  whois: (o) => ({
    type: "whois",
    name: readString(o, "name"),
    rooms: readStringArray(o, "rooms"),
    idle: readInteger(o, "idle"),
    since: readInteger(o, "since"),
    ...optional(o, "away", readString),
    ...optional(o, "client", readClientInfo),
  }),
  notice: (o) => ({ type: "notice", text: readString(o, "text") }),
  announce: (o) => ({ type: "announce", text: readString(o, "text"), ts: readInteger(o, "ts") }),
  history: (o) => ({
    type: "history",
    room: readString(o, "room"),
    count: readInteger(o, "count"),
    more: readBoolean(o, "more"),
  }),
  presence: (o) => ({
    type: "presence",
    name: readString(o, "name"),
    ts: readInteger(o, "ts"),
    ...optional(o, "away", readString),
  }),
  ping: () => ({ type: "ping" }),
  pong: () => ({ type: "pong" }),
  error: (o) => ({
    type: "error",
    code: readErrorCode(o, "code"),
    message: readString(o, "message"),
    ...optional(o, "ref", readString),
  }),
};

function decodeWith<F>(
  line: string,
  readers: Readonly<Record<string, FrameReader<F>>>,
): DecodeResult<F> {
  // A UTF-16 unit takes one to three UTF-8 bytes, so only long strings need measuring.
  if (line.length * 3 >= MAX_FRAME_BYTES && encoder.encode(line).length >= MAX_FRAME_BYTES) {
    return { ok: false, error: new DecodeError("too_large", "Frame is larger than 64 KiB") };
  }
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, error: new DecodeError("bad_json", "Frame is not valid JSON") };
  }
  if (!isObject(value)) {
    return { ok: false, error: new DecodeError("bad_field", "Frame must be a JSON object") };
  }
  const type = value.type;
  if (typeof type !== "string") return { ok: false, error: badField("type", "a string") };
  if (!Object.hasOwn(readers, type)) {
    const shown = JSON.stringify(type.length > 40 ? `${type.slice(0, 40)}...` : type);
    return { ok: false, error: new DecodeError("unknown_type", `Unknown frame type: ${shown}`) };
  }
  try {
    return { ok: true, frame: readers[type]!(value) };
  } catch (error) {
    if (error instanceof DecodeError) return { ok: false, error };
    throw error;
  }
}

/**
 * Validates one line from a client into a {@linkcode ClientFrame}. Fields the frame type does not
 * define are dropped; a missing or wrongly typed field, an unknown type or bad JSON is an error.
 */
export function decodeClientFrame(line: string): DecodeResult<ClientFrame> {
  return decodeWith(line, CLIENT_FRAME_READERS);
}

/**
 * Validates one line from the server into a {@linkcode ServerFrame}. Clients ignore frames whose
 * error kind is `unknown_type`: newer servers may send types this version does not know.
 */
export function decodeServerFrame(line: string): DecodeResult<ServerFrame> {
  return decodeWith(line, SERVER_FRAME_READERS);
}

// ==== Names and text ====

/** Builds an `error` frame for a code, with an optional human-readable detail. */
export function errorFrame(code: ErrorCode, message: string = ERROR_CODES[code]): ErrorFrame {
  return { type: "error", code, message };
}

/**
 * The form two names are compared in: `Ann` and `ann` are the same person, and so are look-alikes
 * that compatibility normalisation (NFKC) folds together, like full-width `Ａｎｎ`.
 */
export function nameKey(name: string): string {
  return name.normalize("NFKC").toLowerCase();
}

/**
 * Checks a name against the name rules and returns it in normal form (NFC), or an error message
 * that says what to change.
 */
export function checkName(name: string): { ok: true; name: string } | { ok: false; error: string } {
  const normal = name.normalize("NFC");
  if (!NAME_REGEXP.test(normal)) {
    return {
      ok: false,
      error: `Invalid name "${quoteInput(name)}": use 1-${MAX_NAME_LENGTH} letters, digits, _ or -`,
    };
  }
  if (RESERVED_NAMES.has(nameKey(normal))) {
    return { ok: false, error: `The name "${normal}" is reserved: choose another` };
  }
  return { ok: true, name: normal };
}

/** The form two room names are compared in, like {@linkcode nameKey}. */
export function roomKey(room: string): string {
  return room.normalize("NFKC").toLowerCase();
}

/**
 * Checks a room name and returns it in normal form, `#` first (`dev` becomes `#dev`), or an
 * error message that says what to change.
 */
export function checkRoom(room: string): { ok: true; room: string } | { ok: false; error: string } {
  const normal = (room.startsWith("#") ? room : `#${room}`).normalize("NFC");
  if (!ROOM_REGEXP.test(normal)) {
    return {
      ok: false,
      error: `Invalid room "${
        quoteInput(room)
      }": use # and 1-${MAX_ROOM_LENGTH} letters, digits, _ or -`,
    };
  }
  return { ok: true, room: normal };
}

/**
 * Cleans a topic or an away message: one line, no control characters, at most
 * {@linkcode MAX_TOPIC_LENGTH} characters (longer text is cut).
 */
export function cleanLine(text: string): string {
  return Array.from(sanitizeForTerminal(text).toWellFormed().trim()).slice(0, MAX_TOPIC_LENGTH)
    .join("");
}

/**
 * Cleans message text: control characters other than tab and newline are removed and lone
 * surrogates replaced. Returns the clean text, or an error when it is empty (or only white space)
 * or longer than {@linkcode MAX_TEXT_LENGTH} characters.
 */
export function checkText(text: string): { ok: true; text: string } | { ok: false; error: string } {
  const clean = text.replace(CONTROL_REGEXP, "").toWellFormed();
  if (clean.trim() === "") return { ok: false, error: "Message is empty" };
  if (clean.length > MAX_TEXT_LENGTH && countCharacters(clean) > MAX_TEXT_LENGTH) {
    return { ok: false, error: `Message is longer than ${MAX_TEXT_LENGTH} characters` };
  }
  return { ok: true, text: clean };
}

/** Cleans a client-info field: no control characters, at most {@linkcode MAX_INFO_LENGTH} long. */
export function cleanInfo(value: string): string {
  return Array.from(sanitizeForTerminal(value).toWellFormed()).slice(0, MAX_INFO_LENGTH).join("");
}

/** Whether a `ref` is acceptable: 1-64 characters of letters, digits and `_.:-`. */
export function isValidRef(ref: string): boolean {
  return REF_REGEXP.test(ref);
}

/**
 * Makes untrusted text safe to print on a terminal: every control character (escape sequences
 * included) and bidirectional override is removed. Newlines and tabs become spaces; callers that
 * want multi-line output split on `\n` first.
 */
export function sanitizeForTerminal(text: string): string {
  return text.replace(TERMINAL_UNSAFE_REGEXP, (c) => c === "\n" || c === "\t" ? " " : "");
}

/** The longest piece of someone's input an error message repeats, in characters. */
const MAX_QUOTED = 40;

/**
 * Someone's input as an error message may repeat it: safe to print, and cut to
 * {@linkcode MAX_QUOTED} characters, so an answer is never much longer than a line.
 */
export function quoteInput(text: string): string {
  const chars = Array.from(sanitizeForTerminal(text));
  return chars.length > MAX_QUOTED ? `${chars.slice(0, MAX_QUOTED).join("")}...` : chars.join("");
}

function countCharacters(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

// ==== Addresses ====

const HOSTNAME_LABEL_REGEXP = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
const IPV4_LIKE_REGEXP = /^[0-9.]+$/;

/**
 * Checks a host name or IP address and returns an error message, or `undefined` when it is fine.
 * Dotted numbers must be a real IPv4 address (`999.1.1.1` is refused); IPv6 is accepted bare or in
 * brackets.
 */
export function checkHost(host: string): string | undefined {
  if (host === "") return "Host is empty";
  if (IPV4_LIKE_REGEXP.test(host)) {
    const parts = host.split(".");
    const valid = parts.length === 4 &&
      parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
    return valid ? undefined : `Invalid IPv4 address "${host}": use four numbers from 0 to 255`;
  }
  if (host.includes(":")) {
    const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
    return isIpv6(bare) ? undefined : `Invalid IPv6 address "${quoteInput(host)}"`;
  }
  const labels = host.endsWith(".") ? host.slice(0, -1).split(".") : host.split(".");
  if (host.length > 253 || !labels.every((l) => HOSTNAME_LABEL_REGEXP.test(l))) {
    return `Invalid host name "${quoteInput(host)}"`;
  }
  return undefined;
}

function isIpv6(text: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return false;
  // The URL parser implements the full IPv6 grammar and needs no permission.
  return URL.canParse(`http://[${text}]/`);
}

/** Parses a port number (1-65535) and returns it, or an error message. */
export function parsePort(text: string): { ok: true; port: number } | { ok: false; error: string } {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    return { ok: false, error: `Invalid port "${quoteInput(text)}": use 1 to 65535` };
  }
  return { ok: true, port };
}

// ==== Rendering ====

/** How frames are turned into lines of text for a person to read. */
export interface RenderOptions {
  /** The reader's own name: their messages show as `You`. Empty for a shared rendering. */
  me: string;
  /** Whether to use ANSI colours. */
  color: boolean;
  /** Whether lines start with the time, `[14:02]`. */
  time: boolean;
  /** Whether the reader's own messages are left out (scripts know what they sent). */
  skipOwn: boolean;
  /** The room the reader is looking at: its messages show without the room's name. */
  room?: string;
}

const NAME_COLORS = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];
// deno-lint-ignore no-control-regex -- matching the escape character is the point
const ANSI_REGEXP = /\x1b\[[0-9;]*m/g;
/** East Asian wide and full-width characters, and emoji shown as pictures: two columns each. */
const WIDE_REGEXP =
  /[\u1100-\u115F\u2E80-\uA4CF\uAC00-\uD7A3\uF900-\uFAFF\uFE30-\uFE4F\uFF00-\uFF60\uFFE0-\uFFE6\u{20000}-\u{3FFFD}]|\p{Emoji_Presentation}|\uFE0F/u;
/** Marks and format characters that take no column of their own. */
const ZERO_WIDTH_REGEXP = /^[\p{Mn}\p{Me}\p{Cf}]+$/u;
const graphemes = new Intl.Segmenter();

/** Removes the colour codes {@linkcode paint} adds, for a plain-text copy of what was shown. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI_REGEXP, "");
}

/** Wraps text in an ANSI style (`1` bold, `2` dim, `31` red...) when colour is on. */
export function paint(text: string, style: number | string, color: boolean): string {
  return color ? `\x1b[${style}m${text}\x1b[0m` : text;
}

/** A colour for a name that stays the same across runs and computers. */
export function nameColor(name: string): number {
  let hash = 0;
  for (const char of nameKey(name)) hash = (hash * 31 + char.codePointAt(0)!) >>> 0;
  return NAME_COLORS[hash % NAME_COLORS.length]!;
}

/**
 * How many terminal columns text takes, counted per grapheme (what a person sees as one
 * character): wide East Asian characters and emoji take two, combining marks none.
 */
export function displayWidth(text: string): number {
  let width = 0;
  for (const { segment } of graphemes.segment(text.replace(ANSI_REGEXP, ""))) {
    width += ZERO_WIDTH_REGEXP.test(segment) ? 0 : WIDE_REGEXP.test(segment) ? 2 : 1;
  }
  return width;
}

/** Whether text mentions a name as a word of its own, ignoring case: `hi @ann!` mentions ann. */
export function mentions(text: string, name: string): boolean {
  if (name === "") return false;
  const key = nameKey(name);
  return nameKey(text).split(/[^\p{L}\p{N}_-]+/u).includes(key);
}

/** A span of milliseconds as people say it: `45s`, `12m`, `3h 5m`, `2d 4h`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

function clock(ts: number): string {
  const date = new Date(ts);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `[${pad(date.getHours())}:${pad(date.getMinutes())}]`;
}

/** `[14:02]` for today, `[Nov 20 14:02]` for an earlier day: history can be days old. */
function dayClock(ts: number): string {
  const date = new Date(ts);
  if (date.toDateString() === new Date().toDateString()) return clock(ts);
  const day = date.toLocaleString("en", { month: "short", day: "numeric" });
  return `[${day} ${clock(ts).slice(1)}`;
}

function stamp(ts: number | undefined, options: RenderOptions): string {
  return options.time && ts !== undefined ? `${paint(clock(ts), 2, options.color)} ` : "";
}

/** Joins a prefix and a possibly multi-line text, indenting the continuation lines under it. */
function speech(prefix: string, text: string, style?: string): string[] {
  const width = displayWidth(prefix);
  const [first = "", ...rest] = text.split("\n").map(sanitizeForTerminal);
  const body = (line: string) => style ? paint(line, style, true) : line;
  return [`${prefix}${body(first)}`, ...rest.map((line) => " ".repeat(width) + body(line))];
}

function notice(text: string, ts: number | undefined, options: RenderOptions): string[] {
  return [`${stamp(ts, options)}${paint(`* ${sanitizeForTerminal(text)}`, 2, options.color)}`];
}

function speaker(name: string, options: RenderOptions): string {
  if (options.me !== "" && nameKey(name) === nameKey(options.me)) {
    return paint("You", 1, options.color);
  }
  const clean = sanitizeForTerminal(name);
  return paint(clean, nameColor(clean), options.color);
}

function listUsers(users: string[], count: number | undefined, where: string): string {
  const total = count ?? users.length;
  const names = users.map(sanitizeForTerminal).sort((a, b) => a.localeCompare(b)).join(", ");
  const more = total > users.length ? ` and ${total - users.length} more` : "";
  return `${total} ${total === 1 ? "person" : "people"} ${where}: ${names}${more}`;
}

function renderMessage(frame: MessageFrame, options: RenderOptions): string[] {
  const mine = options.me !== "" && nameKey(frame.from) === nameKey(options.me);
  if (mine && options.skipOwn) return [];
  const room = frame.room !== undefined && frame.room !== options.room
    ? `${paint(sanitizeForTerminal(frame.room), 36, options.color)} `
    : "";
  const highlight = !mine && options.color && mentions(frame.text, options.me) ? "1;33" : undefined;
  const who = speaker(frame.from, options);
  const time = frame.history && options.time
    ? `${paint(dayClock(frame.ts), 2, options.color)} `
    : stamp(frame.ts, options);
  const prefix = frame.action ? `${time}${room}* ${who} ` : `${time}${room}${who}: `;
  // Earlier messages read dimmer than live ones.
  return speech(
    prefix,
    frame.text,
    highlight ?? (frame.history && options.color ? "2" : undefined),
  );
}

function renderPrivate(frame: PrivateFrame, options: RenderOptions): string[] {
  const mine = options.me !== "" && nameKey(frame.from) === nameKey(options.me);
  if (mine && options.skipOwn) return [];
  const tag = paint("(private)", 35, options.color);
  const who = speaker(frame.from, options);
  const to = options.me !== "" && !mine ? "" : ` → ${speaker(frame.to, options)}`;
  const prefix = frame.action
    ? `${stamp(frame.ts, options)}${tag} * ${who}${to} `
    : `${stamp(frame.ts, options)}${tag} ${who}${to}: `;
  return speech(prefix, frame.text);
}

function renderWhois(frame: WhoisInfoFrame): string {
  const client = frame.client ?? {};
  const parts = [
    `in ${frame.rooms.join(" ") || "no room"}`,
    `idle ${formatDuration(frame.idle)}`,
    `here since ${clock(frame.since).slice(1, -1)}`,
    ...(frame.away === undefined ? [] : [`away: ${frame.away}`]),
    ...(client.app ? [`using ${client.app}${client.os ? ` on ${client.os}` : ""}`] : []),
  ];
  return `${frame.name}: ${parts.join("; ")}`;
}

/**
 * The lines to show a person for a frame, already sanitised; an empty array for frames that show
 * nothing. Everything a server or another person wrote passes through
 * {@linkcode sanitizeForTerminal}, so no escape sequence reaches the terminal.
 */
export function renderFrame(frame: ServerFrame, options: RenderOptions): string[] {
  switch (frame.type) {
    case "message":
      return renderMessage(frame, options);
    case "private":
      return renderPrivate(frame, options);
    case "joined":
      return notice(`${frame.name} joined${frame.room ? ` ${frame.room}` : ""}`, frame.ts, options);
    case "left":
      return notice(
        `${frame.name} left${frame.room ? ` ${frame.room}` : ""} (${frame.reason})`,
        frame.ts,
        options,
      );
    case "renamed":
      return notice(`${frame.from} is now known as ${frame.to}`, frame.ts, options);
    case "users":
      return notice(
        listUsers(frame.users, frame.count, frame.room ? `in ${frame.room}` : "here"),
        undefined,
        options,
      );
    case "room":
      return notice(
        `You are in ${frame.room}${frame.topic ? ` (topic: ${frame.topic})` : ""}. ` +
          listUsers(frame.users, frame.count, "here"),
        undefined,
        options,
      );
    case "room_list":
      return [
        ...notice(
          `${frame.rooms.length} ${frame.rooms.length === 1 ? "room" : "rooms"}:`,
          undefined,
          options,
        ),
        ...frame.rooms.map((r) =>
          `  ${sanitizeForTerminal(r.room)} (${r.count})${
            r.topic ? ` ${sanitizeForTerminal(r.topic)}` : ""
          }`
        ),
      ];
    case "topic":
      return notice(
        frame.by !== undefined
          ? `${frame.by} set the topic of ${frame.room}: ${frame.topic}`
          : frame.topic
          ? `Topic of ${frame.room}: ${frame.topic}`
          : `${frame.room} has no topic`,
        frame.ts,
        options,
      );
    case "whois":
      return notice(renderWhois(frame), undefined, options);
    case "notice":
      return notice(frame.text, undefined, options);
    case "history":
      return notice(
        frame.count === 0
          ? `No earlier messages in ${frame.room}`
          : `${frame.count} earlier ${
            frame.count === 1 ? "message" : "messages"
          } in ${frame.room}` +
            (frame.more ? " (/history for more):" : ":"),
        undefined,
        options,
      );
    case "presence":
      return notice(
        frame.away === undefined ? `${frame.name} is back` : `${frame.name} is away: ${frame.away}`,
        frame.ts,
        options,
      );
    case "announce":
      return speech(
        `${stamp(frame.ts, options)}${paint("** server:", "1;35", options.color)} `,
        frame.text,
      );
    case "welcome":
      return [
        ...notice(
          `Joined ${frame.server.name} as ${frame.name}. ` +
            listUsers(frame.users, frame.count, `in ${frame.room ?? LOBBY}`),
          undefined,
          options,
        ),
        ...(frame.motd ? notice(`Message of the day: ${frame.motd}`, undefined, options) : []),
      ];
    case "error":
      return [paint(`! ${sanitizeForTerminal(frame.message)}`, 31, options.color)];
    case "ping":
    case "pong":
      return [];
    default: {
      const unexpected: never = frame;
      return unexpected;
    }
  }
}

// ==== Terminal ====

/** Readline's editing state; its typings call it read-only, but redrawing needs to set it. */
interface EditState {
  line: string;
  cursor: number;
}

/**
 * Prints lines above the input line without disturbing what the person is typing. Readline
 * remembers how many rows the typed line took, so the line is emptied and redrawn first (which
 * also clears its wrapped rows), then the output is printed, then the typed text and the cursor
 * are put back.
 */
export function printAbove(rl: readline.Interface, lines: string[]): void {
  if (lines.length === 0) return;
  const state = rl as unknown as EditState;
  const { line, cursor } = state;
  state.line = "";
  state.cursor = 0;
  rl.prompt(true);
  readline.cursorTo(process.stdout, 0);
  readline.clearLine(process.stdout, 0);
  process.stdout.write(lines.join("\n") + "\n");
  state.line = line;
  state.cursor = cursor;
  rl.prompt(true);
}

/** Clears the prompt and whatever is typed after it, leaving the cursor at the start of its row. */
export function clearInputLine(rl: readline.Interface): void {
  readline.moveCursor(process.stdout, 0, -rl.getCursorPos().rows);
  readline.cursorTo(process.stdout, 0);
  readline.clearScreenDown(process.stdout);
}

/**
 * Removes the lines the person just sent (one typed line, or several pasted at once, the first
 * after the prompt) from the screen: the server's copy of the message, shown when it arrives,
 * takes their place.
 */
export function eraseSubmitted(rl: readline.Interface, lines: readonly string[]): void {
  const columns = process.stdout.columns || 80;
  let rows = 0;
  lines.forEach((line, i) => {
    const width = (i === 0 ? displayWidth(rl.getPrompt()) : 0) + displayWidth(line);
    rows += Math.floor(width / columns) + 1;
  });
  readline.moveCursor(process.stdout, 0, -rows);
  readline.clearScreenDown(process.stdout);
}

// ==== Chat commands ====

/** What a command needs to know to build its frame. */
export interface CommandContext {
  /** The room plain input goes to. */
  room: string;
  /** Who last wrote privately, for `/reply`. */
  lastPrivate?: string | undefined;
  /** The oldest message id seen in the room, for `/history` to page back from. */
  oldest?: number | undefined;
}

/** A command as people type it: `/name arguments`. */
export interface CommandSpec {
  /** The name, without the slash. */
  name: string;
  /** Other names for it. */
  aliases: readonly string[];
  /** Its arguments as the help shows them: `<name> <text>`, `[#room]`. */
  args: string;
  /** One line of help. */
  help: string;
  /**
   * Builds the frame the command sends, or returns a message saying what is wrong with the
   * arguments. Absent for commands that the program itself carries out (`/help`, `/ignore`...).
   */
  frame?: (args: string, context: CommandContext) => ClientFrame | string;
}

/** Splits off the first word: `"bob hi there"` → `["bob", "hi there"]`. */
export function firstWord(text: string): [string, string] {
  const match = /^\s*(\S*)\s*([\s\S]*)$/.exec(text)!;
  return [match[1]!, match[2]!];
}

function usage(spec: string): string {
  return `Usage: ${spec}`;
}

function joinCommand(args: string): ClientFrame | string {
  const [room] = firstWord(args);
  return room ? { type: "join", room } : usage("/join <#room>");
}

function leaveCommand(args: string, context: CommandContext): ClientFrame {
  const [room] = firstWord(args);
  return { type: "leave", room: room || context.room };
}

function topicCommand(args: string, context: CommandContext): ClientFrame {
  const topic = args.trim();
  return topic
    ? { type: "topic", room: context.room, topic }
    : { type: "topic", room: context.room };
}

function whoCommand(args: string): ClientFrame {
  const [room] = firstWord(args);
  return room ? { type: "who", room } : { type: "who" };
}

function whoisCommand(args: string): ClientFrame | string {
  const [name] = firstWord(args);
  return name ? { type: "whois", name } : usage("/whois <name>");
}

function msgCommand(args: string): ClientFrame | string {
  const [to, text] = firstWord(args);
  return to && text.trim() ? { type: "msg", to, text } : usage("/msg <name> <text>");
}

function replyCommand(args: string, context: CommandContext): ClientFrame | string {
  if (!context.lastPrivate) return "Nobody has written to you privately yet";
  return args.trim()
    ? { type: "msg", to: context.lastPrivate, text: args }
    : usage("/reply <text>");
}

function meCommand(args: string, context: CommandContext): ClientFrame | string {
  return args.trim()
    ? { type: "say", room: context.room, text: args, action: true }
    : usage("/me <action>");
}

function nickCommand(args: string): ClientFrame | string {
  const [name, rest] = firstWord(args);
  return name && !rest ? { type: "nick", name } : usage("/nick <newname>");
}

function awayCommand(args: string): ClientFrame {
  return { type: "away", message: args.trim() || "away" };
}

function historyCommand(args: string, context: CommandContext): ClientFrame | string {
  const text = args.trim();
  const limit = text === "" ? HISTORY_PAGE : Number(text);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_HISTORY_PAGE) {
    return usage(`/history [count]: count is 1-${MAX_HISTORY_PAGE}`);
  }
  return {
    type: "history",
    room: context.room,
    limit,
    ...(context.oldest === undefined ? {} : { before: context.oldest }),
  };
}

function quitCommand(args: string): ClientFrame {
  const message = args.trim();
  return message ? { type: "bye", message } : { type: "bye" };
}

/**
 * Every command a chat user can type, described once: the client's `/help` and Tab completion
 * and the server's handling of plain-text users all come from this table.
 */
export const CHAT_COMMANDS: readonly CommandSpec[] = [
  { name: "help", aliases: ["?"], args: "[command]", help: "List the commands, or explain one" },
  {
    name: "join",
    aliases: ["j"],
    args: "<#room>",
    help: "Join a room (creating it) and make it current",
    frame: joinCommand,
  },
  { name: "leave", aliases: ["part"], args: "[#room]", help: "Leave a room", frame: leaveCommand },
  {
    name: "switch",
    aliases: ["sw"],
    args: "<#room>",
    help: "Make another of your rooms current",
  },
  {
    name: "rooms",
    aliases: ["list"],
    args: "",
    help: "List the rooms, their sizes and topics",
    frame: () => ({ type: "rooms" }),
  },
  {
    name: "topic",
    aliases: [],
    args: "[text]",
    help: "Show or set the current room's topic",
    frame: topicCommand,
  },
  {
    name: "history",
    aliases: ["h"],
    args: "[count]",
    help: "Show earlier messages of the current room, further back each time",
    frame: historyCommand,
  },
  {
    name: "who",
    aliases: ["names"],
    args: "[#room]",
    help: "List the people here or in a room",
    frame: whoCommand,
  },
  {
    name: "whois",
    aliases: [],
    args: "<name>",
    help: "Show someone's rooms, idle time, away message and client",
    frame: whoisCommand,
  },
  {
    name: "msg",
    aliases: ["m", "tell"],
    args: "<name> <text>",
    help: "Send a private message",
    frame: msgCommand,
  },
  {
    name: "reply",
    aliases: ["r"],
    args: "<text>",
    help: "Answer the last person who wrote to you privately",
    frame: replyCommand,
  },
  {
    name: "me",
    aliases: [],
    args: "<action>",
    help: "Act something out: /me waves",
    frame: meCommand,
  },
  {
    name: "nick",
    aliases: ["name"],
    args: "<newname>",
    help: "Change your name",
    frame: nickCommand,
  },
  {
    name: "away",
    aliases: [],
    args: "[message]",
    help: "Mark yourself away; private messages get the message",
    frame: awayCommand,
  },
  {
    name: "back",
    aliases: [],
    args: "",
    help: "You are no longer away",
    frame: () => ({ type: "back" }),
  },
  { name: "ignore", aliases: [], args: "<name>", help: "Hide someone's messages from you" },
  { name: "unignore", aliases: [], args: "<name>", help: "Show someone's messages again" },
  { name: "bell", aliases: [], args: "[on|off]", help: "Ring on private messages and mentions" },
  { name: "connect", aliases: ["server"], args: "<host[:port]>", help: "Move to another server" },
  {
    name: "quit",
    aliases: ["exit", "bye"],
    args: "[message]",
    help: "Leave the chat, saying goodbye",
    frame: quitCommand,
  },
];

/** The commands of the server's operator console; the server carries them all out itself. */
export const OPERATOR_COMMANDS: readonly CommandSpec[] = [
  { name: "help", aliases: ["?"], args: "[command]", help: "List the commands, or explain one" },
  { name: "who", aliases: [], args: "", help: "Everyone, with address, app, OS and host" },
  { name: "kick", aliases: [], args: "<name> [reason]", help: "Disconnect someone" },
  {
    name: "ban",
    aliases: [],
    args: "<name|address> [minutes]",
    help: "Keep a name or an IP address out (for good, or some minutes)",
  },
  { name: "unban", aliases: [], args: "<name|address>", help: "Lift a ban" },
  { name: "bans", aliases: [], args: "", help: "List the bans" },
  { name: "say", aliases: [], args: "<#room> <text>", help: "Speak in one room as the server" },
  { name: "motd", aliases: [], args: "[text]", help: "Show or set the message of the day" },
  { name: "shutdown", aliases: [], args: "[reason]", help: "Tell everyone, then stop the server" },
];

/**
 * Splits a typed line into a command name and its arguments, or returns `undefined` for
 * ordinary text. `//text` is text that starts with a slash.
 */
export function parseCommand(line: string): { name: string; args: string } | undefined {
  if (!line.startsWith("/") || line.startsWith("//")) return undefined;
  const [name, args] = firstWord(line.slice(1));
  return { name: name.toLowerCase(), args };
}

/** Finds a command by name or alias. */
export function findCommand(
  table: readonly CommandSpec[],
  name: string,
): CommandSpec | undefined {
  const wanted = name.toLowerCase();
  return table.find((c) => c.name === wanted || c.aliases.includes(wanted));
}

/** The help for one command, or for all of them: generated from the table, so it never lies. */
export function commandHelp(table: readonly CommandSpec[], name?: string): string[] {
  const format = (c: CommandSpec, width: number) =>
    `/${`${c.name} ${c.args}`.trim().padEnd(width)}  ${c.help}` +
    (c.aliases.length ? ` (also ${c.aliases.map((a) => `/${a}`).join(", ")})` : "");
  if (name !== undefined) {
    const command = findCommand(table, name.replace(/^\//, ""));
    return command
      ? [format(command, 0)]
      : [`Unknown command /${quoteInput(name)}: type /help for the list`];
  }
  const width = Math.max(...table.map((c) => `${c.name} ${c.args}`.trim().length));
  return table.map((c) => `  ${format(c, width)}`);
}

/** The one line an unknown command gets: nothing was sent. */
export function unknownCommand(name: string): string {
  return `Unknown command /${quoteInput(name)}: type /help for the list (nothing was sent)`;
}

// ==== Command lines ====

/** A command-line mistake (exit code 2): the message says what to change. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * What both command lines share: parses the arguments, prints the usage for `--help` and the
 * version for `--version`, and turns a {@linkcode UsageError} into one line on standard error.
 * Returns the options to run with, or the exit code when there is nothing more to do (0 after help
 * or version, 2 after a usage error).
 */
export function readCommandLine<T extends { help: boolean; version: boolean }>(
  program: "client" | "server",
  args: string[],
  parse: (args: string[]) => T,
  usage: string,
): T | number {
  let options: T;
  try {
    options = parse(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${program}: ${error.message}\nRun with --help for usage.`);
    return 2;
  }
  if (options.help) {
    console.log(usage);
    return 0;
  }
  if (options.version) {
    console.log(`chat ${program} ${VERSION}`);
    return 0;
  }
  return options;
}

/** The first sentence of an error's message, e.g. of `parseArgs`'s long explanations. */
export function firstSentence(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split(/\.\s/)[0]!.replace(/\.$/, "");
}

// ==== Line framing ====

/** A line went past the frame limit before its newline arrived. */
export class FrameTooLargeError extends Error {
  constructor(limit: number) {
    super(`Line is longer than ${limit} bytes`);
    this.name = "FrameTooLargeError";
  }
}

/** Options for {@linkcode LineSplitter} and {@linkcode readLines}. */
export interface LineOptions {
  /**
   * The longest line accepted, in bytes, including its `\n`.
   * @default {MAX_FRAME_BYTES}
   */
  maxLineBytes?: number;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
/** Decodes whole lines only (never a part of a character), so every splitter can share it. */
const lineDecoder = new TextDecoder();

/**
 * Splits a byte stream into lines. Splitting happens on bytes, so a UTF-8 character cut across two
 * chunks is decoded whole; only the unfinished tail is kept between chunks, and it is never allowed
 * to grow past the limit. A trailing `\r` is dropped (CRLF is accepted) and blank lines are skipped.
 * Invalid UTF-8 becomes U+FFFD.
 */
export class LineSplitter {
  #maxLineBytes: number;
  #tail: Uint8Array[] = [];
  #tailBytes = 0;

  constructor(options: LineOptions = {}) {
    this.#maxLineBytes = options.maxLineBytes ?? MAX_FRAME_BYTES;
  }

  /** How many bytes of an unfinished line are held. */
  get pendingBytes(): number {
    return this.#tailBytes;
  }

  /**
   * Feeds one chunk and calls `onLine` for each line it completes.
   * @throws {FrameTooLargeError} when a line passes the limit; the splitter is then unusable.
   */
  push(chunk: Uint8Array, onLine: (line: string) => void): void {
    let start = 0;
    let end: number;
    while ((end = chunk.indexOf(NEWLINE, start)) !== -1) {
      this.#checkLength(this.#tailBytes + end - start + 1);
      const bytes = this.#tailBytes === 0
        ? chunk.subarray(start, end)
        : this.#takeTail(chunk.subarray(start, end));
      this.#emit(bytes, onLine);
      start = end + 1;
    }
    if (start < chunk.length) {
      // The newline still to come counts towards the limit too.
      this.#checkLength(this.#tailBytes + chunk.length - start + 1);
      this.#tail.push(chunk.slice(start));
      this.#tailBytes += chunk.length - start;
    }
  }

  #checkLength(bytes: number): void {
    if (bytes > this.#maxLineBytes) {
      this.#tail = [];
      this.#tailBytes = 0;
      throw new FrameTooLargeError(this.#maxLineBytes);
    }
  }

  #takeTail(last: Uint8Array): Uint8Array {
    this.#tail.push(last);
    const joined = joinChunks(this.#tail);
    this.#tail = [];
    this.#tailBytes = 0;
    return joined;
  }

  #emit(bytes: Uint8Array, onLine: (line: string) => void): void {
    const length = bytes.length > 0 && bytes[bytes.length - 1] === CARRIAGE_RETURN
      ? bytes.length - 1
      : bytes.length;
    if (length === 0) return;
    const line = lineDecoder.decode(bytes.subarray(0, length));
    if (line.trim() !== "") onLine(line);
  }
}

/** The size of the buffer each connection reads into. */
export const READ_BUFFER_BYTES = 8 * 1024;

/** Something bytes can be read from, like a `Deno.Conn`. */
export interface ByteReader {
  read(buffer: Uint8Array): Promise<number | null>;
}

/**
 * Yields the lines read from a connection until it closes. Reads go into one small reused buffer.
 * @throws {FrameTooLargeError} when a line passes the limit.
 */
export async function* readLines(
  reader: ByteReader,
  options: LineOptions = {},
): AsyncGenerator<string> {
  const splitter = new LineSplitter(options);
  const buffer = new Uint8Array(READ_BUFFER_BYTES);
  const lines: string[] = [];
  const collect = (line: string) => lines.push(line);
  while (true) {
    const n = await reader.read(buffer);
    if (n === null) return;
    try {
      splitter.push(buffer.subarray(0, n), collect);
    } catch (error) {
      // Lines completed before the over-long one are still good: hand them out first.
      yield* lines;
      throw error;
    }
    yield* lines;
    lines.length = 0;
  }
}

/**
 * Whether an error only means the peer went away (closed, reset, or our own close interrupting a
 * pending read or write). Such errors end a connection quietly.
 */
export function isDisconnectError(error: unknown): boolean {
  return error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.NotConnected;
}

// ==== Liveness ====

/** What a heartbeat check decides about a peer: nothing yet, ping it, or give it up. */
export type HeartbeatVerdict = "fine" | "ping" | "give_up";

/**
 * The heartbeat rule both sides follow: after `heartbeatMs` of silence ping the peer (once),
 * and after twice that, with still no word, give the connection up.
 */
export function heartbeat(
  silentMs: number,
  heartbeatMs: number,
  pinged: boolean,
): HeartbeatVerdict {
  if (silentMs >= 2 * heartbeatMs) return "give_up";
  return silentMs >= heartbeatMs && !pinged ? "ping" : "fine";
}

// ==== Rate limiting ====

/** Options for {@linkcode TokenBucket}. */
export interface TokenBucketOptions {
  /** Tokens added per second; 0 means no limit at all. */
  rate: number;
  /** The most tokens held, which is the largest burst allowed after a quiet spell. */
  burst: number;
  /**
   * The clock, in milliseconds.
   * @default {performance.now}
   */
  now?: () => number;
}

/**
 * A token bucket: each action takes a token, tokens come back at `rate` a second, and at most
 * `burst` are saved up. The server uses one per connection to refuse floods; the client uses one
 * to pace what it sends so that the server never has to.
 */
export class TokenBucket {
  #rate: number;
  #burst: number;
  #now: () => number;
  #tokens: number;
  #at: number;

  constructor(options: TokenBucketOptions) {
    this.#rate = options.rate;
    this.#burst = Math.max(1, options.burst);
    this.#now = options.now ?? (() => performance.now());
    this.#tokens = this.#burst;
    this.#at = this.#now();
  }

  /** Takes a token if one is there; returns whether it did. */
  take(): boolean {
    if (this.#rate === 0) return true;
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** How long until a token is there, in milliseconds (0 when one is there now). */
  wait(): number {
    if (this.#rate === 0) return 0;
    this.#refill();
    return this.#tokens >= 1 ? 0 : Math.ceil((1 - this.#tokens) * 1000 / this.#rate);
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#rate / 1000);
    this.#at = now;
  }
}

// ==== Outgoing queue ====

/** Something bytes can be written to, like a `Deno.Conn`. */
export interface ByteWriter {
  write(bytes: Uint8Array): Promise<number>;
}

/** Options for {@linkcode Outbox}. */
export interface OutboxOptions {
  /**
   * How many queued bytes are allowed before {@linkcode Outbox.push} refuses more.
   * @default {1048576}
   */
  maxBytes?: number;
  /** Called once when a write fails; the outbox then discards everything. */
  onError?: (error: unknown) => void;
}

/**
 * A bounded per-connection queue of encoded frames, drained by one flusher that starts at the end
 * of the turn in which something was queued, joins whatever is queued into a single write and
 * loops until every byte is written. Pushing never waits; a peer
 * that stops reading makes `push` return `false` once the bound is passed, and is never waited for.
 */
export class Outbox {
  #writer: ByteWriter;
  #maxBytes: number;
  #onError: (error: unknown) => void;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #flushing: Promise<void> | undefined;
  #failed = false;

  constructor(writer: ByteWriter, options: OutboxOptions = {}) {
    this.#writer = writer;
    this.#maxBytes = options.maxBytes ?? 1024 * 1024;
    this.#onError = options.onError ?? (() => {});
  }

  /** Bytes queued and not yet handed to the socket. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Queues bytes to be written. Returns `false`, queuing nothing, when that would pass the bound
   * or a write has already failed.
   */
  push(bytes: Uint8Array): boolean {
    if (this.#failed || this.#queuedBytes + bytes.length > this.#maxBytes) return false;
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
    // Writing starts at the end of this turn, so everything queued during it goes in one write.
    this.#flushing ??= Promise.resolve().then(() => this.#flush());
    return true;
  }

  /** Resolves once everything queued so far is written (or writing failed). */
  async drained(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.length === 1 ? this.#queue[0]! : joinChunks(this.#queue);
        this.#queue = [];
        await writeAll(this.#writer, batch);
        this.#queuedBytes -= batch.length;
      }
    } catch (error) {
      this.#failed = true;
      this.#queue = [];
      this.#queuedBytes = 0;
      this.#onError(error);
    } finally {
      this.#flushing = undefined;
    }
  }
}

function joinChunks(chunks: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  return joined;
}

/** Something bytes can be written to synchronously, like `Deno.stdout` or a `Deno.FsFile`. */
export interface SyncByteWriter {
  writeSync(bytes: Uint8Array): number;
}

/** Writes lines (each with a `\n`) synchronously, looping until every byte is taken. */
export function writeLinesSync(writer: SyncByteWriter, lines: readonly string[]): void {
  const bytes = encoder.encode(lines.map((line) => `${line}\n`).join(""));
  let written = 0;
  while (written < bytes.length) written += writer.writeSync(bytes.subarray(written));
}

/** Writes every byte, looping because one `write` may take only part of the buffer. */
export async function writeAll(writer: ByteWriter, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await writer.write(bytes.subarray(offset));
}
