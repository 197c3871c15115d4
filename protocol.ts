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
/** A `users` list names at most this many people; `count` gives the total. */
export const MAX_LISTED_USERS = 500;
/** How long a new connection has to send its hello, in milliseconds. */
export const HELLO_TIMEOUT_MS = 10_000;
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
  timeout: "No hello arrived in time (fatal)",
  too_many_errors: "Too many bad frames in a row (fatal)",
  too_slow: "The client stopped reading and its outgoing queue filled up (fatal)",
  shutting_down: "The server is shutting down (fatal)",
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

/** Client → server: the first frame, claiming a name. */
export interface HelloFrame {
  type: "hello";
  name: string;
  client?: ClientInfo;
}
/** Client → server: a message for everyone; `ref` comes back in the message as an acknowledgement. */
export interface SayFrame {
  type: "say";
  text: string;
  ref?: string;
}
/** Client → server: asks for the list of people present. */
export interface WhoFrame {
  type: "who";
}
/** Either direction: asks the peer to answer with a pong. */
export interface PingFrame {
  type: "ping";
}
/** Either direction: the answer to a ping. */
export interface PongFrame {
  type: "pong";
}
/** Client → server: the client is leaving on purpose. */
export interface ByeFrame {
  type: "bye";
}

/** Every frame a client may send. */
export type ClientFrame = HelloFrame | SayFrame | WhoFrame | PingFrame | PongFrame | ByeFrame;

/** Server → client: the hello was accepted. */
export interface WelcomeFrame {
  type: "welcome";
  name: string;
  users: string[];
  /** How many people are present in all; `users` may list only the first {@linkcode MAX_LISTED_USERS}. */
  count?: number;
  server: { name: string; version: string };
}
/** Server → client: a chat message, sent to everyone, its sender included. */
export interface MessageFrame {
  type: "message";
  id: number;
  ts: number;
  from: string;
  text: string;
  ref?: string;
}
/** Server → client: somebody arrived. */
export interface JoinedFrame {
  type: "joined";
  name: string;
  ts: number;
}
/** Server → client: somebody went, and why. */
export interface LeftFrame {
  type: "left";
  name: string;
  ts: number;
  reason: string;
}
/** Server → client: the answer to `who`. */
export interface UsersFrame {
  type: "users";
  users: string[];
  count?: number;
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
  | JoinedFrame
  | LeftFrame
  | UsersFrame
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

function readServerInfo(o: JsonObject, key: string): WelcomeFrame["server"] {
  const info = o[key];
  if (!isObject(info)) throw badField(key, "an object");
  return { name: readString(info, "name"), version: readString(info, "version") };
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
  }),
  say: (o) => ({ type: "say", text: readString(o, "text"), ...optional(o, "ref", readString) }),
  who: () => ({ type: "who" }),
  ping: () => ({ type: "ping" }),
  pong: () => ({ type: "pong" }),
  bye: () => ({ type: "bye" }),
};

const SERVER_FRAME_READERS: { [K in ServerFrame["type"]]: FrameReader<ServerFrame> } = {
  welcome: (o) => ({
    type: "welcome",
    name: readString(o, "name"),
    users: readStringArray(o, "users"),
    ...optional(o, "count", readInteger),
    server: readServerInfo(o, "server"),
  }),
  message: (o) => ({
    type: "message",
    id: readInteger(o, "id"),
    ts: readInteger(o, "ts"),
    from: readString(o, "from"),
    text: readString(o, "text"),
    ...optional(o, "ref", readString),
  }),
  joined: (o) => ({ type: "joined", name: readString(o, "name"), ts: readInteger(o, "ts") }),
  left: (o) => ({
    type: "left",
    name: readString(o, "name"),
    ts: readInteger(o, "ts"),
    reason: readString(o, "reason"),
  }),
  users: (o) => ({
    type: "users",
    users: readStringArray(o, "users"),
    ...optional(o, "count", readInteger),
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
      error: `Invalid name "${
        sanitizeForTerminal(name)
      }": use 1-${MAX_NAME_LENGTH} letters, digits, _ or -`,
    };
  }
  if (RESERVED_NAMES.has(nameKey(normal))) {
    return { ok: false, error: `The name "${normal}" is reserved: choose another` };
  }
  return { ok: true, name: normal };
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
    return isIpv6(bare) ? undefined : `Invalid IPv6 address "${sanitizeForTerminal(host)}"`;
  }
  const labels = host.endsWith(".") ? host.slice(0, -1).split(".") : host.split(".");
  if (host.length > 253 || !labels.every((l) => HOSTNAME_LABEL_REGEXP.test(l))) {
    return `Invalid host name "${sanitizeForTerminal(host)}"`;
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
    return { ok: false, error: `Invalid port "${sanitizeForTerminal(text)}": use 1 to 65535` };
  }
  return { ok: true, port };
}

// ==== Command lines ====

/** A command-line mistake (exit code 2): the message says what to change. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
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

/**
 * Splits a byte stream into lines. Splitting happens on bytes, so a UTF-8 character cut across two
 * chunks is decoded whole; only the unfinished tail is kept between chunks, and it is never allowed
 * to grow past the limit. A trailing `\r` is dropped (CRLF is accepted) and blank lines are skipped.
 * Invalid UTF-8 becomes U+FFFD.
 */
export class LineSplitter {
  #maxLineBytes: number;
  #decoder = new TextDecoder();
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
    const line = this.#decoder.decode(bytes.subarray(0, length));
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
 * A bounded per-connection queue of encoded frames, drained by one flusher that joins whatever is
 * queued into a single write and loops until every byte is written. Pushing never waits; a peer
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
    this.#flushing ??= this.#flush();
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

/** Writes every byte, looping because one `write` may take only part of the buffer. */
export async function writeAll(writer: ByteWriter, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await writer.write(bytes.subarray(offset));
}
