#!/usr/bin/env -S deno run --allow-net --allow-env=USER,USERNAME,LOGNAME --allow-sys=hostname
/**
 * The chat client: a terminal chat for people, and a line-per-message pipe for scripts.
 *
 * ```sh
 * deno task client                          # asks for the server and your name
 * deno task client 192.168.1.20 --name ann  # joins straight away
 * echo "build finished" | deno task client chat.lan --name ci
 * ```
 *
 * It is also a library: {@linkcode ChatClient} connects, sends and receives frames, and is what
 * the command line and the tests use.
 *
 * @module
 */

import process from "node:process";
import * as readline from "node:readline";
import { parseArgs } from "node:util";
import {
  CHAT_COMMANDS,
  checkHost,
  checkName,
  checkRoom,
  checkText,
  clearInputLine,
  type ClientFrame,
  type ClientInfo,
  commandHelp,
  decodeServerFrame,
  DEFAULT_PORT,
  encodeFrame,
  eraseSubmitted,
  type ErrorCode,
  type ErrorFrame,
  FATAL_ERROR_CODES,
  findCommand,
  firstSentence,
  firstWord,
  FrameTooLargeError,
  isDisconnectError,
  LineSplitter,
  LOBBY,
  MAX_NAME_LENGTH,
  mentions,
  type MessageFrame,
  nameKey,
  Outbox,
  paint,
  parseCommand,
  parsePort,
  printAbove,
  READ_BUFFER_BYTES,
  readCommandLine,
  readLines,
  renderFrame,
  type RenderOptions,
  roomKey,
  sanitizeForTerminal,
  type ServerFrame,
  unknownCommand,
  UsageError,
  VERSION,
  type WelcomeFrame,
} from "./protocol.ts";

// ==== Constants ====

/** How long connecting and waiting for the welcome may take, in milliseconds. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** Received frames held for a slow consumer before the client stops reading from the socket. */
const MAX_QUEUED_EVENTS = 10_000;
/** How long closing waits for the goodbye to be written, in milliseconds. */
const CLOSE_TIMEOUT_MS = 1000;
/** The client program's name, as reported to the server. */
const APP_NAME = `chat-client ${VERSION}`;

// ==== Client ====

/** Why a client operation failed: a server error code, or what went wrong locally. */
export type ChatErrorCode = ErrorCode | "unreachable" | "disconnected" | "no_answer";

/** A failure a caller is expected to handle: connection refused, name taken, server gone... */
export class ChatError extends Error {
  /** What kind of failure this is. */
  readonly code: ChatErrorCode;
  constructor(code: ChatErrorCode, message: string) {
    super(message);
    this.name = "ChatError";
    this.code = code;
  }
}

/** Options for {@linkcode ChatClient.connect}. */
export interface ChatClientOptions {
  /**
   * The server's host name or IP address.
   * @default {"localhost"}
   */
  hostname?: string;
  /**
   * The server's port.
   * @default {5050}
   */
  port?: number;
  /** The name to ask for. */
  name: string;
  /**
   * What to tell the server about this client (shown in its operator's log).
   * @default {{}}
   */
  info?: ClientInfo;
  /**
   * How long connecting and the hello may take, in milliseconds.
   * @default {10000}
   */
  timeoutMs?: number;
}

/** How a connection ended. */
export interface CloseInfo {
  /** `client`: {@linkcode ChatClient.close} was called; `server`: the server closed it. */
  by: "client" | "server";
  /** The server's last error before it closed the connection, e.g. `shutting_down`. */
  error?: ErrorFrame;
}

/** Options for {@linkcode ChatClient.say}. */
export interface SayOptions {
  /** The room to say it in; by default the room joined last. */
  room?: string;
  /** An emote (`/me waves`) rather than a message. */
  action?: boolean;
}

interface PendingSay {
  resolve: (message: MessageFrame) => void;
  reject: (error: ChatError) => void;
}

/**
 * A connection to a chat server under one name. Frames from the server are read continuously:
 * pings are answered and `say` acknowledgements matched here, and every frame is also queued for
 * {@linkcode ChatClient.next} and `for await`. When the consumer falls behind by
 * {@linkcode MAX_QUEUED_EVENTS} frames, reading pauses (TCP then slows the server down).
 */
export class ChatClient implements AsyncIterable<ServerFrame> {
  #name: string;
  /** The server's welcome. */
  readonly welcome: WelcomeFrame;
  /** Resolves once the connection has ended. */
  readonly closed: Promise<CloseInfo>;
  #conn: Deno.TcpConn;
  #outbox: Outbox;
  #reader: FrameReader;
  #pending = new Map<string, PendingSay>();
  #nextRef = 1;

  private constructor(
    conn: Deno.TcpConn,
    reader: FrameReader,
    outbox: Outbox,
    welcome: WelcomeFrame,
  ) {
    this.#conn = conn;
    this.#reader = reader;
    this.#outbox = outbox;
    this.welcome = welcome;
    this.#name = welcome.name;
    reader.onFrame = (frame) => this.#track(frame);
    this.closed = reader.done.then((info) => {
      for (const pending of this.#pending.values()) {
        pending.reject(new ChatError("disconnected", disconnectText(info)));
      }
      this.#pending.clear();
      return info;
    });
  }

  /**
   * Connects, says hello and resolves once the server has welcomed us.
   * @throws {ChatError} `unreachable`, `no_answer`, or the server's refusal (`name_taken`, ...).
   */
  static async connect(options: ChatClientOptions): Promise<ChatClient> {
    const hostname = options.hostname ?? "localhost";
    const port = options.port ?? DEFAULT_PORT;
    const timeoutMs = options.timeoutMs ?? CONNECT_TIMEOUT_MS;
    const conn = await openConnection(hostname, port, timeoutMs);
    conn.setNoDelay(true);
    const outbox = new Outbox(conn, { onError: () => closeQuietly(conn) });
    const reader = new FrameReader(conn);
    outbox.push(encodeFrame({ type: "hello", name: options.name, client: options.info ?? {} }));
    const first = await withTimeout(reader.next(), timeoutMs);
    if (first !== "timeout" && first?.type === "welcome") {
      return new ChatClient(conn, reader, outbox, first);
    }
    closeQuietly(conn);
    await reader.done;
    if (first === "timeout") {
      throw new ChatError("no_answer", `${hostname}:${port} did not answer: is it a chat server?`);
    }
    if (first === undefined) {
      throw new ChatError("disconnected", `${hostname}:${port} closed the connection`);
    }
    if (first.type === "error") throw new ChatError(first.code, first.message);
    throw new ChatError("bad_frame", `${hostname}:${port} sent ${first.type} instead of welcome`);
  }

  /** Our name: the one the server gave us, or the latest after a `renamed`. */
  get name(): string {
    return this.#name;
  }

  /**
   * Sends a message to a room (by default the room joined last). Resolves with the server's copy
   * (its id and time) once the server has accepted it.
   * @throws {ChatError} `bad_text` or `not_in_room` when refused, `disconnected` when the
   * connection ends first.
   */
  say(text: string, options: SayOptions = {}): Promise<MessageFrame> {
    const ref = `m${this.#nextRef++}`;
    const { promise, resolve, reject } = Promise.withResolvers<MessageFrame>();
    if (this.#reader.ended) {
      reject(new ChatError("disconnected", "Not connected"));
      return promise;
    }
    this.#pending.set(ref, { resolve, reject });
    this.send({
      type: "say",
      text,
      ref,
      ...(options.room === undefined ? {} : { room: options.room }),
      ...(options.action ? { action: true } : {}),
    });
    return promise;
  }

  /** Whether the connection is still open. */
  get connected(): boolean {
    return !this.#reader.ended;
  }

  /** Asks for the list of people present; the answer arrives as a `users` frame. */
  who(): void {
    this.send({ type: "who" });
  }

  /** Sends any client frame as it is. */
  send(frame: ClientFrame): void {
    this.#outbox.push(encodeFrame(frame));
  }

  /** The next frame from the server, or `undefined` once the connection has ended. */
  next(): Promise<ServerFrame | undefined> {
    return this.#reader.next();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ServerFrame> {
    let frame;
    while ((frame = await this.next()) !== undefined) yield frame;
  }

  /** Says goodbye (with a message for everyone), waits briefly for it to be written, closes. */
  async close(message?: string): Promise<void> {
    if (!this.#reader.ended) {
      this.#reader.closing = true;
      this.send(message ? { type: "bye", message } : { type: "bye" });
      await withTimeout(this.#outbox.drained(), CLOSE_TIMEOUT_MS);
      closeQuietly(this.#conn);
    }
    await this.closed;
  }

  #track(frame: ServerFrame): void {
    if (frame.type === "renamed" && frame.from === this.#name) {
      this.#name = frame.to;
    } else if (frame.type === "ping") {
      this.send({ type: "pong" });
    } else if (frame.type === "message" && frame.ref !== undefined && frame.from === this.name) {
      this.#pending.get(frame.ref)?.resolve(frame);
      this.#pending.delete(frame.ref);
    } else if (frame.type === "error" && frame.ref !== undefined) {
      this.#pending.get(frame.ref)?.reject(new ChatError(frame.code, frame.message));
      this.#pending.delete(frame.ref);
    }
  }
}

/**
 * Reads frames off the socket in the background and queues them, pausing while the queue is
 * full. Lines that are not valid server frames are skipped: a newer server may send types this
 * version does not know.
 */
class FrameReader {
  /** Called for every frame as it arrives, before it is queued. */
  onFrame: (frame: ServerFrame) => void = () => {};
  /** Set when our own side is closing, so the end counts as ours. */
  closing = false;
  ended = false;
  readonly done: Promise<CloseInfo>;
  #conn: Deno.TcpConn;
  #queue: ServerFrame[] = [];
  #consumers: (() => void)[] = [];
  #wakeReader: (() => void) | undefined;
  #lastError: ErrorFrame | undefined;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    this.done = this.#run();
  }

  async next(): Promise<ServerFrame | undefined> {
    while (this.#queue.length === 0) {
      if (this.ended) return undefined;
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#consumers.push(resolve);
      await promise;
    }
    const frame = this.#queue.shift();
    this.#wakeReader?.();
    return frame;
  }

  async #run(): Promise<CloseInfo> {
    const splitter = new LineSplitter();
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    const onLine = (line: string) => this.#onLine(line);
    try {
      while (true) {
        if (this.#queue.length >= MAX_QUEUED_EVENTS) await this.#roomInQueue();
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        splitter.push(buffer.subarray(0, n), onLine);
      }
    } catch (error) {
      if (!isDisconnectError(error) && !(error instanceof FrameTooLargeError)) throw error;
    } finally {
      closeQuietly(this.#conn);
      this.ended = true;
      this.#wakeConsumers();
    }
    const by = this.closing ? "client" : "server";
    return this.#lastError ? { by, error: this.#lastError } : { by };
  }

  #roomInQueue(): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#wakeReader = resolve;
    return promise;
  }

  #onLine(line: string): void {
    const decoded = decodeServerFrame(line);
    if (!decoded.ok) return;
    const frame = decoded.frame;
    if (frame.type === "error") this.#lastError = frame;
    this.onFrame(frame);
    this.#queue.push(frame);
    this.#wakeConsumers();
  }

  #wakeConsumers(): void {
    for (const wake of this.#consumers.splice(0)) wake();
  }
}

async function openConnection(
  hostname: string,
  port: number,
  timeoutMs: number,
): Promise<Deno.TcpConn> {
  const where = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    return await Deno.connect({ hostname, port, signal: abort.signal });
  } catch (error) {
    throw new ChatError("unreachable", connectErrorText(error, where, hostname, abort.signal));
  } finally {
    clearTimeout(timer);
  }
}

function connectErrorText(
  error: unknown,
  where: string,
  hostname: string,
  signal: AbortSignal,
): string {
  if (signal.aborted) {
    return `Cannot connect to ${where}: no answer in time (wrong address, or a firewall?)`;
  }
  if (error instanceof Deno.errors.ConnectionRefused) {
    return `Cannot connect to ${where}: connection refused (is the server running on that port?)`;
  }
  const text = error instanceof Error ? error.message : String(error);
  if (/lookup|resolve|name or service|no address/i.test(text)) {
    return `Cannot find host "${hostname}": check the spelling, or use its IP address`;
  }
  return `Cannot connect to ${where}: ${text.replace(/ \(os error \d+\)$/, "")}`;
}

/** Resolves with the promise's value, or with `"timeout"` if it takes longer than `ms`. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => timer = setTimeout(resolve, ms, "timeout"));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}

function disconnectText(info: CloseInfo): string {
  if (info.error?.code === "shutting_down") return "Disconnected: the server is shutting down";
  if (info.error) return `Disconnected by the server: ${sanitizeForTerminal(info.error.message)}`;
  return info.by === "client" ? "Disconnected" : "Connection to the server lost";
}

// ==== Addresses ====

/** A server address. */
export interface ServerAddress {
  hostname: string;
  port: number;
}

/**
 * Parses `host`, `host:port`, `[ipv6]:port` or a bare IPv6 address, checking the host and the
 * port before any connection is tried.
 */
export function parseAddress(
  text: string,
): { ok: true; address: ServerAddress } | { ok: false; error: string } {
  const trimmed = text.trim();
  let hostname = trimmed;
  let portText = String(DEFAULT_PORT);
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(trimmed);
  if (bracketed) {
    hostname = bracketed[1]!;
    portText = bracketed[2] ?? portText;
  } else if (trimmed.split(":").length === 2) {
    [hostname, portText] = trimmed.split(":") as [string, string];
  }
  const hostError = checkHost(hostname);
  if (hostError) return { ok: false, error: hostError };
  const port = parsePort(portText);
  if (!port.ok) return { ok: false, error: port.error };
  return { ok: true, address: { hostname, port: port.port } };
}

// ==== Interactive terminal ====

/** What the terminal chat remembers between lines. */
export interface Session {
  client: ChatClient;
  view: RenderOptions;
  /** Where plain input goes. */
  room: string;
  /** The rooms we are in, as the server names them. */
  rooms: string[];
  /** Rooms we have heard of, for Tab completion. */
  knownRooms: Set<string>;
  /** People we have seen, for Tab completion. */
  users: Set<string>;
  lastPrivate: string | undefined;
  /** Name keys of people whose messages are hidden. */
  ignored: Set<string>;
  bell: boolean;
  /** Set by /connect: the client to carry on with once this one has closed. */
  next: ChatClient | undefined;
}

/** A fresh session for a client; `previous` carries the ignore list and bell setting over. */
export function newSession(client: ChatClient, previous?: Session): Session {
  return {
    client,
    view: { me: client.name, color: useColor(), time: true, skipOwn: false, room: LOBBY },
    room: client.welcome.room ?? LOBBY,
    rooms: [client.welcome.room ?? LOBBY],
    knownRooms: new Set([LOBBY]),
    users: new Set(client.welcome.users),
    lastPrivate: undefined,
    ignored: previous?.ignored ?? new Set(),
    bell: previous?.bell ?? true,
    next: undefined,
  };
}

function promptText(session: Session): string {
  const { color } = session.view;
  return `${paint(session.client.name, 1, color)} ${paint(session.room, 36, color)}> `;
}

function completer(session: () => Session): (line: string) => [string[], string] {
  return (line) => {
    if (/^\/\S*$/.test(line)) {
      const names = CHAT_COMMANDS.flatMap((c) => [c.name, ...c.aliases]).map((n) => `/${n}`);
      return [names.filter((n) => n.startsWith(line.toLowerCase())), line];
    }
    const word = /\S*$/.exec(line)![0];
    if (word === "") return [[], word];
    const { rooms, knownRooms, users } = session();
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
    if (parsed.ok) return parsed.address;
    console.log(parsed.error);
  }
}

async function askName(rl: readline.Interface, suggestion: string): Promise<string | undefined> {
  while (true) {
    const answer = await ask(rl, `Your name [${suggestion}]: `);
    if (answer === undefined) return undefined;
    const checked = checkName(answer.trim() || suggestion);
    if (checked.ok) return checked.name;
    console.log(checked.error);
  }
}

/** Connects interactively: a taken or refused name asks for another instead of giving up. */
async function connectAsking(
  rl: readline.Interface,
  address: ServerAddress,
  name: string,
): Promise<ChatClient | undefined> {
  let wanted: string | undefined = name;
  while (wanted !== undefined) {
    try {
      return await ChatClient.connect({ ...address, name: wanted, info: clientInfo() });
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

/** Runs the interactive chat; resolves to the exit code. */
async function runInteractive(address: ServerAddress | undefined, name: string | undefined) {
  let session: Session | undefined;
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    completer: completer(() => session!),
    historySize: 500,
    terminal: true,
  });
  try {
    address ??= await askAddress(rl);
    name ??= address && await askName(rl, suggestName(osUserName() ?? "guest"));
    if (address === undefined || name === undefined) return 0;
    const client = await connectAsking(rl, address, name);
    if (client === undefined) return 0;
    session = newSession(client);
    let quitting = false;
    const quit = (message?: string) => {
      quitting = true;
      session!.client.close(message);
    };
    rl.on("SIGINT", () => quit());
    rl.on("close", () => quit());
    rl.on("line", (line) => onInput(rl, session!, line, quit));
    while (true) {
      const info = await chat(rl, session);
      if (session.next) {
        session = newSession(session.next, session);
        continue;
      }
      clearInputLine(rl);
      if (quitting) return 0;
      process.stdout.write(paint(disconnectText(info), 31, session.view.color) + "\n");
      return 1;
    }
  } finally {
    rl.close();
  }
}

/** Shows the frames of one connection until it ends. */
async function chat(rl: readline.Interface, session: Session): Promise<CloseInfo> {
  rl.setPrompt(promptText(session));
  printAbove(rl, renderFrame(session.client.welcome, session.view));
  for await (const frame of session.client) {
    const lines = follow(session, frame);
    rl.setPrompt(promptText(session));
    if (lines === "bell") {
      process.stdout.write("\x07");
      printAbove(rl, renderFrame(frame, session.view));
    } else if (lines) {
      printAbove(rl, renderFrame(frame, session.view));
    }
  }
  return await session.client.closed;
}

/**
 * Updates the session from a frame and says whether to show it (`false` for ignored people and
 * for fatal errors, which are told once as the reason for disconnecting), and whether to ring.
 */
export function follow(session: Session, frame: ServerFrame): boolean | "bell" {
  const me = session.client.name;
  switch (frame.type) {
    case "room":
      if (!session.rooms.includes(frame.room)) session.rooms.push(frame.room);
      session.room = frame.room;
      session.view.room = frame.room;
      for (const user of frame.users) session.users.add(user);
      return true;
    case "left":
      if (frame.name === me && frame.room !== undefined) {
        session.rooms = session.rooms.filter((r) => r !== frame.room);
        if (session.room === frame.room) session.room = session.rooms.at(-1) ?? LOBBY;
        session.view.room = session.room;
      }
      return true;
    case "joined":
      session.users.add(frame.name);
      return true;
    case "users":
      for (const user of frame.users) session.users.add(user);
      return true;
    case "room_list":
      for (const info of frame.rooms) session.knownRooms.add(info.room);
      return true;
    case "renamed":
      session.users.delete(frame.from);
      session.users.add(frame.to);
      session.view.me = me;
      return true;
    case "message":
      if (session.ignored.has(nameKey(frame.from))) return false;
      return frame.from !== me && session.bell && mentions(frame.text, me) ? "bell" : true;
    case "private":
      if (frame.from === me) return true;
      if (session.ignored.has(nameKey(frame.from))) return false;
      session.lastPrivate = frame.from;
      return session.bell ? "bell" : true;
    case "error":
      return !FATAL_ERROR_CODES.has(frame.code);
    default:
      return true;
  }
}

/** Acts on one typed line: a message for the current room, or a command. */
function onInput(
  rl: readline.Interface,
  session: Session,
  line: string,
  quit: (message?: string) => void,
): void {
  const reply = handleInput(session, line);
  if (reply === "sent") {
    eraseSubmitted(rl, line);
  } else if (typeof reply === "object" && "quit" in reply) {
    return quit(reply.quit);
  } else if (typeof reply === "object" && "connect" in reply) {
    switchServer(rl, session, reply.connect);
  } else {
    printAbove(rl, reply.map((l) => paint(l, 2, session.view.color)));
  }
  rl.setPrompt(promptText(session));
  rl.prompt();
}

/**
 * What a typed line led to: lines to show, `sent` (the server's copy will show it), or a request
 * to quit or to move to another server.
 */
export type InputResult =
  | string[]
  | "sent"
  | { quit: string | undefined }
  | { connect: ServerAddress };

/** Works out what a typed line means, doing what can be done at once. */
export function handleInput(session: Session, line: string): InputResult {
  if (line.trim() === "") return [];
  const { client } = session;
  const parsed = parseCommand(line);
  if (parsed === undefined) {
    const checked = checkText(line.startsWith("//") ? line.slice(1) : line);
    if (!checked.ok) return [checked.error];
    // The server's copy of the message shows it; a refusal arrives as an error frame.
    client.say(checked.text, { room: session.room }).catch(() => {});
    return "sent";
  }
  const command = findCommand(CHAT_COMMANDS, parsed.name);
  if (command === undefined) return [unknownCommand(parsed.name)];
  const [first] = firstWord(parsed.args);
  switch (command.name) {
    case "help":
      return first ? commandHelp(CHAT_COMMANDS, first) : [
        "Type a message and press Enter to send it to the current room. Commands:",
        ...commandHelp(CHAT_COMMANDS),
        "  //text               Send a message that starts with /",
      ];
    case "switch":
      return switchRoom(session, first);
    case "ignore":
    case "unignore":
      return ignore(session, command.name === "ignore", first);
    case "bell":
      if (first !== "" && first !== "on" && first !== "off") return ["Usage: /bell [on|off]"];
      session.bell = first === "" ? !session.bell : first === "on";
      return [`Bell ${session.bell ? "on" : "off"} for private messages and mentions`];
    case "connect": {
      const address = parseAddress(first);
      return address.ok ? { connect: address.address } : [address.error];
    }
    case "quit":
      return { quit: parsed.args.trim() || undefined };
  }
  const frame = command.frame?.(parsed.args, {
    room: session.room,
    lastPrivate: session.lastPrivate,
  });
  if (frame === undefined) return [unknownCommand(parsed.name)];
  if (typeof frame === "string") return [frame];
  if (frame.type === "say") {
    client.say(frame.text, { room: session.room, action: frame.action ?? false }).catch(() => {});
    return "sent";
  }
  client.send(frame);
  return frame.type === "msg" ? "sent" : [];
}

function switchRoom(session: Session, room: string): string[] {
  const checked = checkRoom(room);
  if (!room || !checked.ok) return ["Usage: /switch <#room>"];
  const joined = session.rooms.find((r) => roomKey(r) === roomKey(checked.room));
  if (joined === undefined) return [`You are not in ${checked.room}: /join it first`];
  session.room = joined;
  session.view.room = joined;
  return [`Now talking in ${joined}`];
}

function ignore(session: Session, on: boolean, name: string): string[] {
  const checked = checkName(name);
  if (!checked.ok) return [`Usage: /${on ? "ignore" : "unignore"} <name>`];
  if (on) session.ignored.add(nameKey(checked.name));
  else session.ignored.delete(nameKey(checked.name));
  return [
    on
      ? `Ignoring ${checked.name}: their messages are hidden from you (/unignore to undo)`
      : `No longer ignoring ${checked.name}`,
  ];
}

/** `/connect`: joins the other server under the same name, then leaves this one. */
function switchServer(rl: readline.Interface, session: Session, address: ServerAddress): void {
  const where = `${address.hostname}:${address.port}`;
  printAbove(rl, [paint(`* Connecting to ${where}...`, 2, session.view.color)]);
  ChatClient.connect({ ...address, name: session.client.name, info: clientInfo() }).then(
    (next) => {
      session.next = next;
      session.client.close();
    },
    (error: ChatError) => {
      printAbove(rl, [paint(`! ${sanitizeForTerminal(error.message)}`, 31, session.view.color)]);
    },
  );
}

// ==== Scripting ====

/**
 * Sends each line of standard input as a message and prints what others say as plain lines.
 * Resolves to the exit code once every message sent was acknowledged, or as soon as the
 * connection ends.
 */
async function runScript(client: ChatClient): Promise<number> {
  const view: RenderOptions = {
    me: client.name,
    color: false,
    time: false,
    skipOwn: true,
    room: client.welcome.room ?? LOBBY,
  };
  const printing = (async () => {
    for await (const frame of client) {
      // A fatal error is told once, as the reason for the disconnection.
      if (frame.type === "error" && FATAL_ERROR_CODES.has(frame.code)) continue;
      const lines = renderFrame(frame, view);
      if (frame.type === "error") console.error(lines.join("\n"));
      else if (lines.length > 0) console.log(lines.join("\n"));
    }
  })();
  let ok = await sendInput(client);
  if (client.connected) {
    await client.close();
  } else {
    console.error(`client: ${disconnectText(await client.closed)}`);
    ok = false;
  }
  await printing;
  return ok ? 0 : 1;
}

/**
 * Sends every line of standard input, stopping early if the connection ends. Resolves to whether
 * every line was sent and accepted.
 */
async function sendInput(client: ChatClient): Promise<boolean> {
  const lines = readLines(Deno.stdin);
  const disconnected = client.closed.then(() => "disconnected" as const);
  // Each outcome is settled as it happens, so no refusal is ever an unhandled rejection.
  const outcomes: Promise<boolean>[] = [];
  let ok = true;
  try {
    while (true) {
      const next = await Promise.race([lines.next(), disconnected]);
      if (next === "disconnected" || next.done) break;
      const checked = checkText(next.value);
      if (!checked.ok) {
        console.error(`client: skipped a line: ${checked.error}`);
        ok = false;
        continue;
      }
      outcomes.push(client.say(checked.text).then(() => true, () => false));
    }
  } catch (error) {
    if (!(error instanceof FrameTooLargeError)) throw error;
    console.error("client: an input line is longer than 64 KiB: stopped reading input");
    ok = false;
  }
  const accepted = await Promise.all(outcomes);
  return ok && accepted.every((a) => a);
}

// ==== Command line ====

const USAGE = `Chat client ${VERSION}: talk with everyone on a chat server.

USAGE:
  deno task client [HOST[:PORT]] [OPTIONS]

  On a terminal it asks for what is not given. With input from a pipe or file
  it sends each line as a message, prints what others say, and exits when the
  server has acknowledged the last line.

ARGUMENTS:
  HOST[:PORT]        The server: a name, an IPv4 address, or [IPv6]:PORT
                                              (default: localhost:${DEFAULT_PORT})
OPTIONS:
  -n, --name NAME    Your name: 1-${MAX_NAME_LENGTH} letters, digits, _ or -
                                              (default: your user name)
  -h, --help         Show this help and exit
  -V, --version      Show the version and exit

In the chat, type /help for commands.`;

interface CliOptions {
  help: boolean;
  version: boolean;
  address: ServerAddress | undefined;
  name: string | undefined;
}

function parseCli(args: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        name: { type: "string", short: "n" },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "V", default: false },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError(firstSentence(error));
  }
  const { values, positionals } = parsed;
  if (positionals.length > 1) {
    throw new UsageError(`Expected one server address, got ${positionals.length}`);
  }
  let address: ServerAddress | undefined;
  if (positionals[0] !== undefined) {
    const parsedAddress = parseAddress(positionals[0]);
    if (!parsedAddress.ok) throw new UsageError(parsedAddress.error);
    address = parsedAddress.address;
  }
  let name: string | undefined;
  if (values.name !== undefined) {
    const checked = checkName(values.name);
    if (!checked.ok) throw new UsageError(checked.error);
    name = checked.name;
  }
  return { help: values.help, version: values.version, address, name };
}

function useColor(): boolean {
  return Deno.stdout.isTerminal() && !Deno.noColor;
}

function osUserName(): string | undefined {
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
  return checked.ok ? checked.name : "guest";
}

function clientInfo(): ClientInfo {
  const info: ClientInfo = { app: APP_NAME, os: Deno.build.os };
  try {
    info.host = Deno.hostname();
  } catch {
    // Without --allow-sys=hostname the server just does not learn it.
  }
  return info;
}

/** Runs the client's command line; resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  const options = readCommandLine("client", args, parseCli, USAGE);
  if (typeof options === "number") return options;
  try {
    if (Deno.stdin.isTerminal()) return await runInteractive(options.address, options.name);
    const client = await ChatClient.connect({
      ...(options.address ?? { hostname: "localhost", port: DEFAULT_PORT }),
      name: options.name ?? suggestName(osUserName() ?? "guest"),
      info: clientInfo(),
    });
    return await runScript(client);
  } catch (error) {
    if (!(error instanceof ChatError)) throw error;
    console.error(`client: ${sanitizeForTerminal(error.message)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
