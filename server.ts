#!/usr/bin/env -S deno run --allow-net --allow-sys=hostname,networkInterfaces
/**
 * The chat server: accepts TCP connections, lets people pick a unique name and relays their
 * messages to everyone present.
 *
 * ```sh
 * deno task server                 # listen on 0.0.0.0:5050
 * deno task server --port 6000     # another port
 * ```
 *
 * It is also a library: {@linkcode startServer} runs a server in-process (tests and benchmarks use
 * it), and {@linkcode ChatCore} is the chat itself, with no sockets in it.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  checkHost,
  checkName,
  checkText,
  cleanInfo,
  type ClientFrame,
  type ClientInfo,
  decodeClientFrame,
  DEFAULT_PORT,
  encodeFrame,
  type ErrorCode,
  type ErrorFrame,
  errorFrame,
  firstSentence,
  FrameTooLargeError,
  HELLO_TIMEOUT_MS,
  type HelloFrame,
  isDisconnectError,
  isValidRef,
  LineSplitter,
  MAX_FRAME_BYTES,
  MAX_LISTED_USERS,
  type MessageFrame,
  nameKey,
  Outbox,
  parsePort,
  READ_BUFFER_BYTES,
  sanitizeForTerminal,
  type ServerFrame,
  UsageError,
  VERSION,
} from "./protocol.ts";

// ==== Constants ====

/** The address the CLI listens on unless told otherwise: every IPv4 interface. */
export const DEFAULT_HOST = "0.0.0.0";
/** How many bytes may wait for one slow client before it is disconnected. */
export const DEFAULT_MAX_QUEUE_BYTES = 1024 * 1024;
/** Bad frames in a row that make the server give up on a connection. */
export const MAX_ERRORS_IN_A_ROW = 5;
/** How long a closing connection gets to receive its last frames, in milliseconds. */
const CLOSE_GRACE_MS = 1000;

// ==== Chat core ====

/**
 * The chat core's view of one connection: somewhere to send bytes, and a way to end it. The core
 * never touches sockets; the network layer (or a test) implements this.
 */
export interface Peer {
  /** The remote IP address, for the operator's log. */
  readonly address: string;
  /** Queues an encoded frame. Must not block; a peer that cannot keep up disconnects itself. */
  send(bytes: Uint8Array): void;
}

/** Somebody who has said hello and holds a name. */
export interface Member {
  /** The name as chosen, in normal form. */
  readonly name: string;
  /** What the client reported about itself, cleaned. */
  readonly info: ClientInfo;
  /** When the member joined, in milliseconds since the epoch. */
  readonly since: number;
  /** Where frames for this member go. */
  readonly peer: Peer;
}

/** Options for {@linkcode ChatCore}. */
export interface ChatCoreOptions {
  /**
   * The server's name, sent in every welcome.
   * @default {"chat"}
   */
  serverName?: string;
  /**
   * Receives one line per event for the operator: joins, leaves, messages, refusals.
   * @default {no logging}
   */
  log?: (line: string) => void;
  /**
   * The clock, in milliseconds since the epoch.
   * @default {Date.now}
   */
  now?: () => number;
}

/** The outcome of a hello: the new member, or an error frame for the peer alone. */
export type JoinResult = { ok: true; member: Member } | { ok: false; error: ErrorFrame };

/**
 * The chat itself: members and their unique names, messages, join and leave notices. It turns
 * frames from members into frames for members and knows nothing about the network.
 */
export class ChatCore {
  #members = new Map<string, Member>();
  #serverName: string;
  #log: (line: string) => void;
  #now: () => number;
  #nextMessageId = 1;
  #quiet = false;

  constructor(options: ChatCoreOptions = {}) {
    this.#serverName = options.serverName ?? "chat";
    this.#log = options.log ?? (() => {});
    this.#now = options.now ?? Date.now;
  }

  /** Everyone present, in the order they joined. */
  get members(): Iterable<Member> {
    return this.#members.values();
  }

  /** How many people are present. */
  get size(): number {
    return this.#members.size;
  }

  /**
   * Handles a hello: on success the peer becomes a member, gets a welcome, and everyone else a
   * `joined` notice. On failure nothing changes and the returned error is for the peer alone.
   */
  join(peer: Peer, hello: HelloFrame): JoinResult {
    const checked = checkName(hello.name);
    if (!checked.ok) return { ok: false, error: errorFrame("bad_name", checked.error) };
    const key = nameKey(checked.name);
    if (this.#members.has(key)) {
      const message = `The name "${checked.name}" is taken: choose another`;
      return { ok: false, error: errorFrame("name_taken", message) };
    }
    const member: Member = {
      name: checked.name,
      info: cleanClientInfo(hello.client),
      since: this.#now(),
      peer,
    };
    this.#members.set(key, member);
    peer.send(encodeFrame({
      type: "welcome",
      name: member.name,
      ...this.#userList(),
      server: { name: this.#serverName, version: VERSION },
    }));
    this.#broadcast({ type: "joined", name: member.name, ts: member.since }, member);
    this.#log(`${peer.address} + ${member.name} joined${describeClient(member.info)}`);
    return { ok: true, member };
  }

  /**
   * Handles a frame from a member. Returns an error frame for the member when the frame is
   * refused; `bye` is the network layer's to act on and is ignored here.
   */
  receive(member: Member, frame: ClientFrame): ErrorFrame | undefined {
    switch (frame.type) {
      case "say":
        return this.#say(member, frame.text, frame.ref);
      case "who":
        member.peer.send(encodeFrame({ type: "users", ...this.#userList() }));
        return undefined;
      case "ping":
        member.peer.send(encodeFrame({ type: "pong" }));
        return undefined;
      case "pong":
      case "bye":
        return undefined;
      case "hello":
        return errorFrame("bad_frame", "Already joined: hello is only for the first frame");
      default: {
        const unexpected: never = frame;
        throw new TypeError(`Unhandled frame: ${JSON.stringify(unexpected)}`);
      }
    }
  }

  /** Removes a member and tells everyone else why it went. Leaving twice is harmless. */
  leave(member: Member, reason: string): void {
    const key = nameKey(member.name);
    if (this.#members.get(key) !== member) return;
    this.#members.delete(key);
    this.#log(`${member.peer.address} - ${member.name} left (${reason})`);
    if (!this.#quiet) {
      this.#broadcast({ type: "left", name: member.name, ts: this.#now(), reason });
    }
  }

  /** Stops announcing leaves: the server is going down and everyone is leaving at once. */
  quiet(): void {
    this.#quiet = true;
  }

  #say(member: Member, text: string, ref: string | undefined): ErrorFrame | undefined {
    if (ref !== undefined && !isValidRef(ref)) {
      return errorFrame("bad_frame", 'Field "ref" must be 1-64 letters, digits or _.:-');
    }
    const checked = checkText(text);
    if (!checked.ok) {
      const error = errorFrame("bad_text", checked.error);
      return ref === undefined ? error : { ...error, ref };
    }
    const message: MessageFrame = {
      type: "message",
      id: this.#nextMessageId++,
      ts: this.#now(),
      from: member.name,
      text: checked.text,
      ...(ref === undefined ? {} : { ref }),
    };
    this.#broadcast(message);
    this.#log(`${member.peer.address} ${member.name}: ${checked.text}`);
    return undefined;
  }

  /** Encodes a frame once and queues the same bytes for every member (but `except`). */
  #broadcast(frame: ServerFrame, except?: Member): void {
    const bytes = encodeFrame(frame);
    for (const member of this.#members.values()) {
      if (member !== except) member.peer.send(bytes);
    }
  }

  #userList(): { users: string[]; count: number } {
    const users: string[] = [];
    for (const member of this.#members.values()) {
      if (users.length === MAX_LISTED_USERS) break;
      users.push(member.name);
    }
    return { users, count: this.#members.size };
  }
}

function cleanClientInfo(info: ClientInfo | undefined): ClientInfo {
  if (info === undefined) return {};
  const clean: ClientInfo = {};
  if (info.app) clean.app = cleanInfo(info.app);
  if (info.os) clean.os = cleanInfo(info.os);
  if (info.host) clean.host = cleanInfo(info.host);
  return clean;
}

function describeClient(info: ClientInfo): string {
  const parts = [info.app, info.os && `on ${info.os}`, info.host && `host ${info.host}`];
  const known = parts.filter((p) => p);
  return known.length === 0 ? "" : ` (${known.join(", ")})`;
}

// ==== Network layer ====

/** Options for {@linkcode startServer}. */
export interface ServerOptions extends ChatCoreOptions {
  /**
   * The address to listen on.
   * @default {"0.0.0.0"}
   */
  hostname?: string;
  /**
   * The TCP port; 0 picks a free one (see {@linkcode ChatServer.addr}).
   * @default {5050}
   */
  port?: number;
  /**
   * How long a new connection has to say hello, in milliseconds.
   * @default {10000}
   */
  helloTimeoutMs?: number;
  /**
   * How many bytes may wait for one client before it counts as too slow and is disconnected.
   * @default {1048576}
   */
  maxQueueBytes?: number;
}

/** A running server. */
export interface ChatServer {
  /** Where it listens, with the real port when 0 was asked for. */
  readonly addr: Deno.NetAddr;
  /** The chat core, for inspection. */
  readonly core: ChatCore;
  /**
   * Tells every client the server is shutting down, gives them a moment to receive it, closes
   * every connection and the listener, and resolves when all of that is done.
   */
  close(reason?: string): Promise<void>;
}

/** Starts a chat server and resolves once it is listening. */
export function startServer(options: ServerOptions = {}): ChatServer {
  const listener = Deno.listen({
    hostname: options.hostname ?? DEFAULT_HOST,
    port: options.port ?? DEFAULT_PORT,
  });
  const core = new ChatCore(options);
  const log = options.log ?? (() => {});
  const settings: ConnectionSettings = {
    helloTimeoutMs: options.helloTimeoutMs ?? HELLO_TIMEOUT_MS,
    maxQueueBytes: options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES,
    log,
  };
  const connections = new Set<Connection>();
  const handlers = new Set<Promise<void>>();
  const accepting = acceptLoop(listener, (conn) => {
    const connection = new Connection(conn, settings);
    connections.add(connection);
    const handler = serveConnection(connection, core, log).finally(() => {
      connections.delete(connection);
      handlers.delete(handler);
    });
    handlers.add(handler);
  }, log);

  let closing: Promise<void> | undefined;
  async function close(reason = "The server is shutting down"): Promise<void> {
    listener.close();
    await accepting;
    core.quiet();
    const notice = encodeFrame(errorFrame("shutting_down", reason));
    for (const connection of connections) {
      connection.send(notice);
      connection.closeAfterFlush("server shutting down");
    }
    await Promise.all(handlers);
  }
  return {
    addr: listener.addr,
    core,
    close: (reason) => closing ??= close(reason),
  };
}

async function acceptLoop(
  listener: Deno.Listener,
  onConnection: (conn: Deno.TcpConn) => void,
  log: (line: string) => void,
): Promise<void> {
  while (true) {
    let conn: Deno.TcpConn;
    try {
      conn = await listener.accept() as Deno.TcpConn;
    } catch (error) {
      if (error instanceof Deno.errors.BadResource) return; // the listener was closed
      // Running out of file descriptors and the like: report and keep serving the others.
      log(`! accept failed: ${errorText(error)}`);
      continue;
    }
    onConnection(conn);
  }
}

interface ConnectionSettings {
  helloTimeoutMs: number;
  maxQueueBytes: number;
  log: (line: string) => void;
}

/**
 * One client connection: its socket, its bounded outbox, its hello deadline and how it ends.
 * This is the core's {@linkcode Peer}.
 */
class Connection implements Peer {
  readonly address: string;
  /** Set once the hello is accepted. */
  member: Member | undefined;
  errorsInARow = 0;
  /** Why the connection is ending, once it is; also the reason given in `left`. */
  endReason: string | undefined;
  /** Resolves when the socket is closed. */
  readonly closed: Promise<void>;
  #conn: Deno.TcpConn;
  #outbox: Outbox;
  #helloTimer: ReturnType<typeof setTimeout>;
  #markClosed: () => void;

  constructor(conn: Deno.TcpConn, settings: ConnectionSettings) {
    this.#conn = conn;
    this.address = displayAddress(conn.remoteAddr);
    conn.setNoDelay(true);
    this.#outbox = new Outbox(conn, {
      maxBytes: settings.maxQueueBytes,
      onError: () => this.close("disconnected"),
    });
    const { promise, resolve } = Promise.withResolvers<void>();
    this.closed = promise;
    this.#markClosed = resolve;
    this.#helloTimer = setTimeout(() => {
      settings.log(`${this.address} ! no hello within ${settings.helloTimeoutMs} ms`);
      this.fail("timeout", "No hello received in time", "timed out");
    }, settings.helloTimeoutMs);
  }

  /** The socket, for the read loop. */
  get conn(): Deno.TcpConn {
    return this.#conn;
  }

  /** Whether the connection is ending and should take no more frames. */
  get ending(): boolean {
    return this.endReason !== undefined;
  }

  /** Records the accepted hello and stops the hello deadline. */
  joined(member: Member): void {
    this.member = member;
    clearTimeout(this.#helloTimer);
  }

  send(bytes: Uint8Array): void {
    if (this.ending) return;
    if (!this.#outbox.push(bytes)) this.close("too slow");
  }

  sendFrame(frame: ServerFrame): void {
    this.send(encodeFrame(frame));
  }

  /** Sends a fatal error, then closes once it is delivered (or the grace time is over). */
  fail(code: ErrorCode, message: string, reason: string): void {
    if (this.ending) return;
    this.sendFrame(errorFrame(code, message));
    this.closeAfterFlush(reason);
  }

  /** Closes once everything queued is written, or after {@linkcode CLOSE_GRACE_MS}. */
  closeAfterFlush(reason: string): void {
    if (this.ending) return;
    this.endReason = reason;
    const timer = setTimeout(() => this.close(reason), CLOSE_GRACE_MS);
    this.#outbox.drained().then(() => {
      clearTimeout(timer);
      this.close(reason);
    });
  }

  /** Closes the socket now; a pending read then ends the read loop. Closing twice is harmless. */
  close(reason: string): void {
    this.endReason ??= reason;
    clearTimeout(this.#helloTimer);
    try {
      this.#conn.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
    this.#markClosed();
  }
}

/** Reads lines from one connection and feeds them to the core until the connection ends. */
async function serveConnection(
  connection: Connection,
  core: ChatCore,
  log: (line: string) => void,
): Promise<void> {
  const splitter = new LineSplitter({ maxLineBytes: MAX_FRAME_BYTES });
  const buffer = new Uint8Array(READ_BUFFER_BYTES);
  const onLine = (line: string) => {
    if (!connection.ending) handleLine(connection, core, line, log);
  };
  try {
    while (!connection.ending) {
      const n = await connection.conn.read(buffer);
      if (n === null) break;
      splitter.push(buffer.subarray(0, n), onLine);
    }
  } catch (error) {
    if (error instanceof FrameTooLargeError) {
      log(`${connection.address} ! too_large: line over ${MAX_FRAME_BYTES} bytes`);
      connection.fail("too_large", `Line is longer than ${MAX_FRAME_BYTES} bytes`, "sent too much");
    } else if (!isDisconnectError(error)) {
      log(`${connection.address} ! read failed: ${errorText(error)}`);
    }
  } finally {
    connection.closeAfterFlush("disconnected");
    if (connection.member) core.leave(connection.member, connection.endReason ?? "disconnected");
  }
  await connection.closed;
}

/** Decodes one line and acts on it; bad frames are answered, and too many in a row end it all. */
function handleLine(
  connection: Connection,
  core: ChatCore,
  line: string,
  log: (line: string) => void,
): void {
  const error = dispatchLine(connection, core, line);
  if (error === undefined) {
    connection.errorsInARow = 0;
    return;
  }
  log(`${connection.address} ! ${error.code}: ${error.message}`);
  connection.sendFrame(error);
  if (++connection.errorsInARow >= MAX_ERRORS_IN_A_ROW) {
    connection.fail("too_many_errors", "Too many bad frames in a row", "too many bad frames");
  }
}

function dispatchLine(
  connection: Connection,
  core: ChatCore,
  line: string,
): ErrorFrame | undefined {
  const decoded = decodeClientFrame(line);
  if (!decoded.ok) {
    return errorFrame(
      decoded.error.kind === "too_large" ? "too_large" : "bad_frame",
      decoded.error.message,
    );
  }
  const frame = decoded.frame;
  if (frame.type === "bye") {
    connection.closeAfterFlush("quit");
    return undefined;
  }
  if (connection.member) return core.receive(connection.member, frame);
  if (frame.type !== "hello") {
    return errorFrame("hello_first", 'The first frame must be {"type":"hello","name":"..."}');
  }
  const joined = core.join(connection, frame);
  if (!joined.ok) return joined.error;
  connection.joined(joined.member);
  return undefined;
}

/** An address as people write it: `10.0.0.5` rather than `::ffff:10.0.0.5`. */
function displayAddress(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") return addr.transport;
  return addr.hostname.startsWith("::ffff:") ? addr.hostname.slice(7) : addr.hostname;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ==== Command line ====

const USAGE =
  `Chat server ${VERSION}: people on this computer or others connect with the chat client.

USAGE:
  deno task server [OPTIONS]

OPTIONS:
      --host HOST    Address to listen on: 0.0.0.0 for every IPv4 interface,
                     :: for IPv6 and IPv4, 127.0.0.1 for this computer only
                                                     (default: ${DEFAULT_HOST})
  -p, --port PORT    TCP port to listen on           (default: ${DEFAULT_PORT})
      --name NAME    Server name shown to people who join
                                                     (default: this computer's name)
  -h, --help         Show this help and exit
  -V, --version      Show the version and exit

Stop it with Ctrl+C: everyone connected is told the server is shutting down.`;

interface CliOptions {
  help: boolean;
  version: boolean;
  hostname: string;
  port: number;
  serverName: string | undefined;
}

function parseCli(args: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        host: { type: "string", default: DEFAULT_HOST },
        port: { type: "string", short: "p", default: String(DEFAULT_PORT) },
        name: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "V", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError(firstSentence(error));
  }
  const { values } = parsed;
  const hostError = checkHost(values.host);
  if (hostError) throw new UsageError(hostError);
  const port = parsePort(values.port);
  if (!port.ok) throw new UsageError(port.error);
  return {
    help: values.help,
    version: values.version,
    hostname: values.host.replace(/^\[(.*)\]$/, "$1"),
    port: port.port,
    serverName: values.name,
  };
}

function timestamp(date = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function logLine(line: string): void {
  console.log(`${timestamp()} ${sanitizeForTerminal(line)}`);
}

function localHostname(): string | undefined {
  try {
    return Deno.hostname();
  } catch {
    return undefined;
  }
}

/** The addresses other computers can reach this one on: IPv4, not loopback or link-local. */
function lanAddresses(): string[] {
  try {
    return Deno.networkInterfaces()
      .filter((i) =>
        i.family === "IPv4" && !i.address.startsWith("127.") &&
        !i.address.startsWith("169.254.")
      )
      .map((i) => i.address);
  } catch {
    return [];
  }
}

function printBanner(addr: Deno.NetAddr): void {
  const where = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  console.log(`Chat server ${VERSION} listening on ${where}:${addr.port}`);
  const wildcard = addr.hostname === "0.0.0.0" || addr.hostname === "::";
  const loopback = addr.hostname.startsWith("127.") || addr.hostname === "::1";
  const port = addr.port === DEFAULT_PORT ? "" : `:${addr.port}`;
  if (loopback) {
    console.log("Only this computer can connect (use --host 0.0.0.0 to let others in).");
  } else if (wildcard) {
    const addresses = lanAddresses();
    if (addresses.length > 0) {
      console.log("People on other computers join with:");
      for (const address of addresses) console.log(`  deno task client ${address}${port}`);
    }
  }
  console.log(`On this computer: deno task client localhost${port}`);
  console.log("Press Ctrl+C to stop.");
}

function listenErrorText(error: unknown, hostname: string, port: number): string {
  const where = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  if (error instanceof Deno.errors.AddrInUse) {
    return `Cannot listen on ${where}: the port is in use (another server running? try --port ${
      port + 1
    })`;
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return `Cannot listen on ${where}: this computer has no such address (try --host 0.0.0.0)`;
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return `Cannot listen on ${where}: permission denied (ports below 1024 need privileges; try --port ${DEFAULT_PORT})`;
  }
  return `Cannot listen on ${where}: ${errorText(error)}`;
}

/** Waits for Ctrl+C (SIGINT) or SIGTERM; a second one exits at once. */
function untilSignal(): Promise<string> {
  const { promise, resolve } = Promise.withResolvers<string>();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  let received = false;
  for (const signal of signals) {
    Deno.addSignalListener(signal, () => {
      if (received) Deno.exit(1);
      received = true;
      resolve(signal);
    });
  }
  return promise;
}

/** Runs the server's command line; resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  let options: CliOptions;
  try {
    options = parseCli(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`server: ${error.message}\nRun with --help for usage.`);
    return 2;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  if (options.version) {
    console.log(`chat server ${VERSION}`);
    return 0;
  }
  let server: ChatServer;
  try {
    server = startServer({
      hostname: options.hostname,
      port: options.port,
      serverName: options.serverName ?? localHostname() ?? "chat",
      log: logLine,
    });
  } catch (error) {
    console.error(`server: ${listenErrorText(error, options.hostname, options.port)}`);
    return 1;
  }
  printBanner(server.addr);
  const signal = await untilSignal();
  logLine(`${signal}: shutting down, telling ${server.core.size} people`);
  await server.close();
  logLine("stopped");
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
