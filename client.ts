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
  errorFrame,
  FATAL_ERROR_CODES,
  findCommand,
  firstSentence,
  firstWord,
  FrameTooLargeError,
  heartbeat,
  HEARTBEAT_MS,
  type HelloFrame,
  isDisconnectError,
  LineSplitter,
  LOBBY,
  MAX_NAME_LENGTH,
  MAX_TEXT_LENGTH,
  mentions,
  type MessageFrame,
  type MsgFrame,
  nameKey,
  Outbox,
  paint,
  parseCommand,
  parsePort,
  printAbove,
  type PrivateFrame,
  READ_BUFFER_BYTES,
  readCommandLine,
  readLines,
  RECONNECT_ERROR_CODES,
  renderFrame,
  type RenderOptions,
  roomKey,
  sanitizeForTerminal,
  type SayFrame,
  type ServerFrame,
  stripAnsi,
  TokenBucket,
  unknownCommand,
  UsageError,
  VERSION,
  type WelcomeFrame,
  writeLinesSync,
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
  /**
   * Whether to reconnect (and resume the session) on its own when the connection is lost. While
   * reconnecting, messages are kept and sent once back.
   * @default {false}
   */
  reconnect?: boolean;
  /**
   * The first wait before reconnecting, in milliseconds; it doubles on each failure.
   * @default {500}
   */
  retryMinMs?: number;
  /**
   * The longest wait between reconnection attempts, in milliseconds.
   * @default {30000}
   */
  retryMaxMs?: number;
  /**
   * How long the server may be silent before it is pinged, and then before the connection is
   * given up as dead, in milliseconds.
   * @default {30000}
   */
  heartbeatMs?: number;
  /**
   * The most messages kept waiting to be sent (while offline, or paced by the server's limits).
   * @default {1000}
   */
  maxUnsent?: number;
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

/**
 * What a reconnecting client reports between frames: the connection was lost (or an attempt
 * failed) and the next attempt is in `delayMs`; or it is back, with its session (`resumed`) or
 * as a new arrival.
 */
export type ConnectionEvent =
  | { type: "reconnecting"; attempt: number; delayMs: number; reason: string }
  | { type: "reconnected"; resumed: boolean; welcome: WelcomeFrame };

/** Everything {@linkcode ChatClient.next} yields: the server's frames and the client's own news. */
export type ChatEvent = ServerFrame | ConnectionEvent;

type ResolvedOptions = Required<Omit<ChatClientOptions, "info">> & { info: ClientInfo };

/** A message (or private message) waiting for the server's acknowledgement. */
interface Tracked {
  frame: SayFrame | MsgFrame;
  resolve: (frame: MessageFrame | PrivateFrame) => void;
  reject: (error: ChatError) => void;
}

/** One frame waiting to go out: a tracked message, or any other frame. */
type Queued = { tracked: Tracked } | { frame: ClientFrame };

/** Error codes after which trying to reconnect is pointless: the server would refuse again. */
const FINAL_CONNECT_CODES: ReadonlySet<ChatErrorCode> = new Set<ChatErrorCode>([
  "bad_name",
  "name_taken",
  "banned",
  "kicked",
  "replaced",
]);

/**
 * A connection to a chat server under one name. Frames from the server are read continuously:
 * pings are answered and acknowledgements matched here, and every frame is also queued for
 * {@linkcode ChatClient.next} and `for await`. When the consumer falls behind by
 * {@linkcode MAX_QUEUED_EVENTS} frames, reading pauses (TCP then slows the server down).
 *
 * Everything sent is paced to the rate the server announced, so the server never has to refuse
 * it. With `reconnect`, a lost connection is re-established with backoff and the session resumed:
 * same name, same rooms, and exactly the messages missed; messages said meanwhile are kept and
 * sent once back, each with an id the server deduplicates, so none shows twice.
 */
export class ChatClient implements AsyncIterable<ChatEvent> {
  #name: string;
  #welcome: WelcomeFrame;
  /** Resolves once the client is finished: closed by us, or the connection lost for good. */
  readonly closed: Promise<CloseInfo>;
  #options: ResolvedOptions;
  #link: Link;
  #events: ChatEvent[] = [];
  #consumers: (() => void)[] = [];
  #wakeReader: (() => void) | undefined;
  #outgoing: Queued[] = [];
  #inFlight = new Map<string, Tracked>();
  #bucket: TokenBucket;
  #pumpTimer: ReturnType<typeof setTimeout> | undefined;
  #awaitingDrain = false;
  #heartbeat: ReturnType<typeof setInterval>;
  #retry: { timer: ReturnType<typeof setTimeout>; wake: () => void } | undefined;
  #session = crypto.randomUUID().slice(0, 8);
  #nextRef = 1;
  #lastSeen: number | undefined;
  #rooms: string[];
  #closing = false;
  #finished = false;
  #finish: (info: CloseInfo) => void;

  private constructor(link: Link, welcome: WelcomeFrame, options: ResolvedOptions) {
    this.#options = options;
    this.#link = link;
    this.#welcome = welcome;
    this.#name = welcome.name;
    this.#rooms = [welcome.room ?? LOBBY];
    this.#lastSeen = welcome.last;
    this.#bucket = paceFor(welcome);
    const { promise, resolve } = Promise.withResolvers<CloseInfo>();
    this.closed = promise;
    this.#finish = resolve;
    this.#heartbeat = setInterval(
      () => this.#checkHeartbeat(),
      Math.max(10, Math.floor(options.heartbeatMs / 4)),
    );
    this.#attach(link);
  }

  /**
   * Connects, says hello and resolves once the server has welcomed us.
   * @throws {ChatError} `unreachable`, `no_answer`, or the server's refusal (`name_taken`, ...).
   */
  static async connect(options: ChatClientOptions): Promise<ChatClient> {
    const full = {
      hostname: options.hostname ?? "localhost",
      port: options.port ?? DEFAULT_PORT,
      name: options.name,
      info: options.info ?? {},
      timeoutMs: options.timeoutMs ?? CONNECT_TIMEOUT_MS,
      reconnect: options.reconnect ?? false,
      retryMinMs: options.retryMinMs ?? RETRY_MIN_MS,
      retryMaxMs: options.retryMaxMs ?? RETRY_MAX_MS,
      heartbeatMs: options.heartbeatMs ?? HEARTBEAT_MS,
      maxUnsent: options.maxUnsent ?? MAX_UNSENT,
    };
    const { link, welcome } = await Link.open(full, {
      type: "hello",
      name: options.name,
      client: full.info,
    });
    return new ChatClient(link, welcome, full);
  }

  /** Our name: the one the server gave us, or the latest after a `renamed`. */
  get name(): string {
    return this.#name;
  }

  /** The server's latest welcome (a new one after each reconnection). */
  get welcome(): WelcomeFrame {
    return this.#welcome;
  }

  /** The id of the newest message seen, if any: what a resumed session continues after. */
  get lastSeen(): number | undefined {
    return this.#lastSeen;
  }

  /** Whether the connection is open now (it may be reconnecting when not). */
  get connected(): boolean {
    return !this.#link.ended && !this.#finished;
  }

  /** How many messages wait to be sent or acknowledged. */
  get unsent(): number {
    return this.#inFlight.size + this.#outgoing.filter((q) => "tracked" in q).length;
  }

  /**
   * Sends a message to a room (by default the room joined last). Resolves with the server's copy
   * (its id and time) once the server has stored it. While reconnecting it waits to be sent.
   * @throws {ChatError} `bad_text` or `not_in_room` when refused, `disconnected` when the client
   * is finished first or too many messages are already waiting.
   */
  say(text: string, options: SayOptions = {}): Promise<MessageFrame> {
    return this.#track({
      type: "say",
      text,
      ...(options.room === undefined ? {} : { room: options.room }),
      ...(options.action ? { action: true } : {}),
    }) as Promise<MessageFrame>;
  }

  /**
   * Sends a private message. Resolves with the server's copy once stored; like
   * {@linkcode ChatClient.say}, it waits while reconnecting.
   * @throws {ChatError} `no_such_user` or `bad_text` when refused, `disconnected` as for `say`.
   */
  tell(to: string, text: string, options: { action?: boolean } = {}): Promise<PrivateFrame> {
    return this.#track({
      type: "msg",
      to,
      text,
      ...(options.action ? { action: true } : {}),
    }) as Promise<PrivateFrame>;
  }

  /** Asks for the list of people present; the answer arrives as a `users` frame. */
  who(): void {
    this.send({ type: "who" });
  }

  /**
   * Sends any client frame as it is, paced to the server's rate. Returns `false` (sending
   * nothing) while not connected: only messages wait for a reconnection.
   */
  send(frame: ClientFrame): boolean {
    if (!this.connected) return false;
    this.#outgoing.push({ frame });
    this.#pump();
    return true;
  }

  /** The next frame or event, or `undefined` once the client is finished. */
  async next(): Promise<ChatEvent | undefined> {
    while (this.#events.length === 0) {
      if (this.#finished) return undefined;
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#consumers.push(resolve);
      await promise;
    }
    const event = this.#events.shift();
    if (this.#events.length < MAX_QUEUED_EVENTS) this.#wakeReader?.();
    return event;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ChatEvent> {
    let event;
    while ((event = await this.next()) !== undefined) yield event;
  }

  /** Says goodbye (with a message for everyone), waits briefly for it to be written, closes. */
  async close(message?: string): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#retry?.wake();
      const link = this.#link;
      if (!link.ended) {
        link.closing = true;
        link.outbox.push(encodeFrame(message ? { type: "bye", message } : { type: "bye" }));
        await withTimeout(link.outbox.drained(), CLOSE_TIMEOUT_MS);
        closeQuietly(link.conn);
      } else {
        this.#end({ by: "client" });
      }
    }
    await this.closed;
  }

  #track(frame: SayFrame | MsgFrame): Promise<MessageFrame | PrivateFrame> {
    const { promise, resolve, reject } = Promise.withResolvers<MessageFrame | PrivateFrame>();
    if (this.#finished || this.#closing) {
      reject(new ChatError("disconnected", "Not connected"));
    } else if (this.unsent >= this.#options.maxUnsent) {
      reject(
        new ChatError(
          "disconnected",
          `${this.unsent} messages already wait to be sent: this one was not kept`,
        ),
      );
    } else {
      // One id serves as both: `ref` for the acknowledgement, `cid` against duplicates.
      const id = `${this.#session}.${this.#nextRef++}`;
      this.#outgoing.push({ tracked: { frame: { ...frame, ref: id, cid: id }, resolve, reject } });
      this.#pump();
    }
    return promise;
  }

  /**
   * Sends what waits, as fast as the server's rate allows, while connected, and never more than
   * the socket's outbox holds: when it is full, sending resumes once it has drained.
   */
  #pump(): void {
    if (this.#pumpTimer !== undefined || this.#awaitingDrain) return;
    const link = this.#link;
    while (this.#outgoing.length > 0 && !link.ended) {
      const wait = this.#bucket.wait();
      if (wait > 0) {
        this.#pumpTimer = setTimeout(() => {
          this.#pumpTimer = undefined;
          this.#pump();
        }, wait);
        return;
      }
      const next = this.#outgoing[0]!;
      if (!link.outbox.push(encodeFrame("tracked" in next ? next.tracked.frame : next.frame))) {
        this.#awaitingDrain = true;
        link.outbox.drained().then(() => {
          this.#awaitingDrain = false;
          this.#pump();
        });
        return;
      }
      this.#bucket.take();
      this.#outgoing.shift();
      if ("tracked" in next) this.#inFlight.set(next.tracked.frame.ref!, next.tracked);
    }
  }

  /** Takes a link into use: its frames come to us, and its end decides what happens next. */
  #attach(link: Link): void {
    this.#link = link;
    link.attach({
      frame: (frame) => this.#receive(frame),
      hasRoom: () => this.#events.length < MAX_QUEUED_EVENTS,
      waitRoom: () => new Promise<void>((resolve) => this.#wakeReader = resolve),
    });
    link.done.then((info) => this.#onLinkEnd(link, info));
  }

  #receive(frame: ServerFrame): void {
    // A message at or below the newest id seen is a repeat (the acknowledgement of a message
    // resent after a drop, which the replay already showed): it settles a promise, no more.
    const repeat = (frame.type === "message" && !frame.history || frame.type === "private") &&
      this.#lastSeen !== undefined && frame.id <= this.#lastSeen;
    this.#follow(frame);
    if (!repeat) this.#emit(frame);
  }

  #emit(event: ChatEvent): void {
    this.#events.push(event);
    for (const wake of this.#consumers.splice(0)) wake();
  }

  #follow(frame: ServerFrame): void {
    switch (frame.type) {
      case "renamed":
        if (frame.from === this.#name) this.#name = frame.to;
        return;
      case "ping":
        this.#link.outbox.push(encodeFrame({ type: "pong" }));
        return;
      case "room":
        this.#rooms = [
          ...this.#rooms.filter((r) => roomKey(r) !== roomKey(frame.room)),
          frame.room,
        ];
        return;
      case "left":
        if (frame.name === this.#name && frame.room !== undefined) {
          this.#rooms = this.#rooms.filter((r) => roomKey(r) !== roomKey(frame.room!));
        }
        return;
      case "message":
      case "private":
        if (frame.type === "private" || !frame.history) {
          this.#lastSeen = Math.max(this.#lastSeen ?? 0, frame.id);
        }
        if (frame.ref !== undefined && nameKey(frame.from) === nameKey(this.#name)) {
          this.#inFlight.get(frame.ref)?.resolve(frame);
          this.#inFlight.delete(frame.ref);
        }
        return;
      case "error":
        if (frame.ref !== undefined) {
          this.#inFlight.get(frame.ref)?.reject(new ChatError(frame.code, frame.message));
          this.#inFlight.delete(frame.ref);
        }
        return;
    }
  }

  #onLinkEnd(link: Link, info: CloseInfo): void {
    if (link !== this.#link || this.#finished) return;
    const retryable = info.error === undefined || RECONNECT_ERROR_CODES.has(info.error.code);
    if (this.#closing || !this.#options.reconnect || !retryable || info.by === "client") {
      this.#end(info);
      return;
    }
    this.#reconnect(info.error?.message ?? link.silence ?? "The connection was lost");
  }

  async #reconnect(firstReason: string): Promise<void> {
    let reason = firstReason;
    for (let attempt = 1; !this.#closing; attempt++) {
      const delayMs = backoff(attempt, this.#options.retryMinMs, this.#options.retryMaxMs);
      this.#emit({ type: "reconnecting", attempt, delayMs, reason });
      await this.#sleep(delayMs);
      if (this.#closing) break;
      try {
        const { link, welcome } = await Link.open(this.#options, this.#resumeHello());
        if (this.#closing) {
          closeQuietly(link.conn);
          await link.done;
          break;
        }
        this.#resumed(link, welcome);
        return;
      } catch (error) {
        if (!(error instanceof ChatError)) throw error;
        if (FINAL_CONNECT_CODES.has(error.code)) {
          this.#end({ by: "server", error: errorFrame(error.code as ErrorCode, error.message) });
          return;
        }
        reason = error.message;
      }
    }
    this.#end({ by: "client" });
  }

  #resumeHello(): HelloFrame {
    return {
      type: "hello",
      name: this.#name,
      client: this.#options.info,
      ...(this.#welcome.resume === undefined ? {} : { resume: this.#welcome.resume }),
      ...(this.#lastSeen === undefined ? {} : { last: this.#lastSeen }),
    };
  }

  /** Back on a new link: rejoin rooms if the session was not kept, then resend what waits. */
  #resumed(link: Link, welcome: WelcomeFrame): void {
    this.#welcome = welcome;
    this.#name = welcome.name;
    this.#bucket = paceFor(welcome);
    const rooms = this.#rooms;
    // Messages sent but not acknowledged go again, first and in order: duplicates are dropped.
    this.#outgoing = [
      ...[...this.#inFlight.values()].map((tracked) => ({ tracked })),
      ...this.#outgoing.filter((q) => "tracked" in q),
    ];
    this.#inFlight.clear();
    // A server that forgot the session may have forgotten its message ids too.
    if (!welcome.resumed) this.#lastSeen = welcome.last;
    this.#emit({ type: "reconnected", resumed: welcome.resumed === true, welcome });
    this.#rooms = [welcome.room ?? LOBBY];
    this.#attach(link);
    if (!welcome.resumed) {
      const joins = rooms.filter((r) => roomKey(r) !== roomKey(LOBBY) || rooms.at(-1) === r);
      this.#outgoing.unshift(...joins.map((room) => ({ frame: { type: "join", room } as const })));
    }
    this.#pump();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(this.#retry?.timer);
        this.#retry = undefined;
        resolve();
      };
      this.#retry = { timer: setTimeout(wake, ms), wake };
    });
  }

  #checkHeartbeat(): void {
    const link = this.#link;
    if (link.ended) return;
    const silent = performance.now() - link.lastHeard;
    const verdict = heartbeat(silent, this.#options.heartbeatMs, link.pinged);
    if (verdict === "give_up") {
      // The server is gone without a word: treat it as a drop.
      link.silence = `The server has not answered for ${Math.round(silent / 1000)} s`;
      closeQuietly(link.conn);
    } else if (verdict === "ping") {
      link.pinged = true;
      link.outbox.push(encodeFrame({ type: "ping" }));
    }
  }

  #end(info: CloseInfo): void {
    if (this.#finished) return;
    this.#finished = true;
    clearInterval(this.#heartbeat);
    clearTimeout(this.#pumpTimer);
    this.#retry?.wake();
    const error = new ChatError("disconnected", disconnectText(info));
    for (const tracked of this.#inFlight.values()) tracked.reject(error);
    for (const queued of this.#outgoing) if ("tracked" in queued) queued.tracked.reject(error);
    this.#inFlight.clear();
    this.#outgoing = [];
    for (const wake of this.#consumers.splice(0)) wake();
    this.#finish(info);
  }
}

/** The first wait before reconnecting, in milliseconds. */
export const RETRY_MIN_MS = 500;
/** The longest wait between reconnection attempts, in milliseconds. */
export const RETRY_MAX_MS = 30_000;
/** The most messages kept waiting to be sent. */
export const MAX_UNSENT = 1000;

/**
 * The wait before reconnection attempt `attempt` (from 1): `minMs` doubling up to `maxMs`, with
 * jitter (between half and all of it) so that many clients dropped at once do not return at once.
 */
export function backoff(attempt: number, minMs: number, maxMs: number): number {
  const full = Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(full / 2 + Math.random() * full / 2);
}

/**
 * A bucket a little slower than the server's announced limits, so that network jitter never
 * makes paced frames arrive too fast.
 */
function paceFor(welcome: WelcomeFrame): TokenBucket {
  const limits = welcome.limits;
  if (!limits || limits.rate === 0) return new TokenBucket({ rate: 0, burst: 1 });
  return new TokenBucket({
    rate: limits.rate * 0.8,
    burst: Math.max(1, Math.floor(limits.burst / 2)),
  });
}

/** Where a link hands its frames once attached, and how it learns the consumer is behind. */
interface LinkSink {
  frame(frame: ServerFrame): void;
  hasRoom(): boolean;
  waitRoom(): Promise<void>;
}

/**
 * One TCP connection to the server: its outbox and a reader that runs in the background. Until a
 * client attaches, the frames read are held, so nothing that arrives right behind the welcome is
 * lost. Lines that are not valid server frames are skipped: a newer server may send types this
 * version does not know.
 */
class Link {
  readonly conn: Deno.TcpConn;
  readonly outbox: Outbox;
  /** Resolves when the connection has ended, with how. */
  readonly done: Promise<CloseInfo>;
  /** Set when our own side is closing, so the end counts as ours. */
  closing = false;
  ended = false;
  /** When anything last arrived, on the `performance.now()` clock. */
  lastHeard = performance.now();
  /** Whether a ping went out since anything last arrived. */
  pinged = false;
  /** Set when the heartbeat gave the connection up: why. */
  silence: string | undefined;
  #held: ServerFrame[] = [];
  #sink: LinkSink | undefined;
  #firstFrame = Promise.withResolvers<ServerFrame | undefined>();
  #lastError: ErrorFrame | undefined;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    conn.setNoDelay(true);
    conn.setKeepAlive(true);
    this.outbox = new Outbox(conn, { onError: () => closeQuietly(conn) });
    this.done = this.#run();
  }

  /**
   * Connects and sends the hello; resolves once the server has welcomed us.
   * @throws {ChatError} `unreachable`, `no_answer`, or the server's refusal.
   */
  static async open(
    options: { hostname: string; port: number; timeoutMs: number },
    hello: HelloFrame,
  ): Promise<{ link: Link; welcome: WelcomeFrame }> {
    const { hostname, port, timeoutMs } = options;
    const link = new Link(await openConnection(hostname, port, timeoutMs));
    link.outbox.push(encodeFrame(hello));
    const first = await withTimeout(link.#firstFrame.promise, timeoutMs);
    if (first !== "timeout" && first?.type === "welcome") {
      link.#held.shift();
      return { link, welcome: first };
    }
    closeQuietly(link.conn);
    await link.done;
    if (first === "timeout") {
      throw new ChatError("no_answer", `${hostname}:${port} did not answer: is it a chat server?`);
    }
    if (first === undefined) {
      throw new ChatError("disconnected", `${hostname}:${port} closed the connection`);
    }
    if (first.type === "error") throw new ChatError(first.code, first.message);
    throw new ChatError("bad_frame", `${hostname}:${port} sent ${first.type} instead of welcome`);
  }

  /** Hands the frames held so far, and every later one, to `sink`. */
  attach(sink: LinkSink): void {
    this.#sink = sink;
    for (const frame of this.#held.splice(0)) sink.frame(frame);
  }

  async #run(): Promise<CloseInfo> {
    const splitter = new LineSplitter();
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    const onLine = (line: string) => this.#onLine(line);
    try {
      while (true) {
        if (this.#sink && !this.#sink.hasRoom()) await this.#sink.waitRoom();
        const n = await this.conn.read(buffer);
        if (n === null) break;
        this.lastHeard = performance.now();
        this.pinged = false;
        splitter.push(buffer.subarray(0, n), onLine);
      }
    } catch (error) {
      if (!isDisconnectError(error) && !(error instanceof FrameTooLargeError)) throw error;
    } finally {
      closeQuietly(this.conn);
      this.ended = true;
      this.#firstFrame.resolve(undefined);
    }
    const by = this.closing ? "client" : "server";
    return this.#lastError ? { by, error: this.#lastError } : { by };
  }

  #onLine(line: string): void {
    const decoded = decodeServerFrame(line);
    if (!decoded.ok) return;
    const frame = decoded.frame;
    if (frame.type === "error") this.#lastError = frame;
    this.#firstFrame.resolve(frame);
    if (this.#sink) this.#sink.frame(frame);
    else this.#held.push(frame);
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

/** A transcript file: every line shown is appended to it, without colours. */
export class Transcript {
  #file: Deno.FsFile | undefined;
  #path: string;

  private constructor(file: Deno.FsFile, path: string) {
    this.#file = file;
    this.#path = path;
  }

  /**
   * Opens (creating) a file to append to.
   * @throws {TranscriptError} when it cannot be opened for writing.
   */
  static open(path: string): Transcript {
    try {
      return new Transcript(Deno.openSync(path, { append: true, create: true }), path);
    } catch (error) {
      const why = error instanceof Deno.errors.PermissionDenied
        ? "permission denied"
        : error instanceof Deno.errors.NotFound
        ? "its folder does not exist"
        : firstSentence(error);
      throw new TranscriptError(`Cannot write the log ${path}: ${why}`);
    }
  }

  /** Appends lines; after a failed write (disk full...) it says so once and stops. */
  write(lines: readonly string[]): void {
    if (!this.#file || lines.length === 0) return;
    try {
      writeLinesSync(this.#file, lines.map(stripAnsi));
    } catch (error) {
      console.error(`client: stopped writing the log ${this.#path}: ${firstSentence(error)}`);
      this.close();
    }
  }

  /** Closes the file; later writes do nothing. */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }
}

/** The line a transcript starts each session with: when, and which server. */
function transcriptHeader(address: ServerAddress): string {
  return `--- ${new Date().toString()}: ${address.hostname}:${address.port} ---`;
}

/** A log file that cannot be opened. */
export class TranscriptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TranscriptError";
  }
}

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
  /** Per room key, the oldest message id shown as history: where `/history` goes on from. */
  oldest: Map<string, number>;
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
    oldest: new Map(),
    next: undefined,
  };
}

function promptText(session: Session): string {
  const { color } = session.view;
  const offline = session.client.connected ? "" : ` ${paint("(offline)", 31, color)}`;
  return `${paint(session.client.name, 1, color)} ${paint(session.room, 36, color)}${offline}> `;
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
      return await ChatClient.connect({
        ...address,
        name: wanted,
        info: clientInfo(),
        reconnect: true,
      });
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
 * Splits a pasted block into messages: lines stay together while they fit in
 * {@linkcode MAX_TEXT_LENGTH} characters, and a longer line is cut.
 */
export function splitMessage(text: string): string[] {
  const messages: string[] = [];
  let current: string[] = [];
  for (const line of text.split("\n")) {
    for (const piece of chunk(Array.from(line), MAX_TEXT_LENGTH)) {
      const joined = [...current, piece].join("\n");
      if (Array.from(joined).length > MAX_TEXT_LENGTH) {
        messages.push(current.join("\n"));
        current = [piece];
      } else {
        current.push(piece);
      }
    }
  }
  if (current.join("").trim() !== "") messages.push(current.join("\n"));
  return messages.filter((m) => m.trim() !== "");
}

function chunk(chars: string[], size: number): string[] {
  if (chars.length === 0) return [""];
  const pieces: string[] = [];
  for (let i = 0; i < chars.length; i += size) pieces.push(chars.slice(i, i + size).join(""));
  return pieces;
}

/** Runs the interactive chat; resolves to the exit code. */
async function runInteractive(
  address: ServerAddress | undefined,
  name: string | undefined,
  transcript: Transcript | undefined,
) {
  let session: Session | undefined;
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    completer: completer(() => session!),
    historySize: 500,
    terminal: true,
  });
  const show = (lines: string[]) => {
    printAbove(rl, lines);
    transcript?.write(lines);
  };
  try {
    address ??= await askAddress(rl);
    name ??= address && await askName(rl, suggestName(osUserName() ?? "guest"));
    if (address === undefined || name === undefined) return 0;
    const client = await connectAsking(rl, address, name);
    if (client === undefined) return 0;
    session = newSession(client);
    transcript?.write([transcriptHeader(address)]);
    let quitting = false;
    const quit = (message?: string) => {
      quitting = true;
      session!.client.close(message);
    };
    rl.on("SIGINT", () => quit());
    rl.on("close", () => quit());
    rl.on("line", gatherLines((lines) => onInput(rl, session!, lines, quit, show)));
    while (true) {
      const info = await chat(rl, session, show);
      if (session.next) {
        session = newSession(session.next, session);
        continue;
      }
      clearInputLine(rl);
      if (quitting) return 0;
      const text = paint(disconnectText(info), 31, session.view.color);
      process.stdout.write(text + "\n");
      transcript?.write([text]);
      return 1;
    }
  } finally {
    rl.close();
  }
}

/** Shows the frames and events of one client until it is finished. */
async function chat(
  rl: readline.Interface,
  session: Session,
  show: (lines: string[]) => void,
): Promise<CloseInfo> {
  rl.setPrompt(promptText(session));
  show(renderFrame(session.client.welcome, session.view));
  for await (const event of session.client) {
    const shown = follow(session, event);
    rl.setPrompt(promptText(session));
    if (shown === "bell") process.stdout.write("\x07");
    if (shown) show(renderEvent(event, session.view));
    else rl.prompt(true);
  }
  return await session.client.closed;
}

/** The lines to show for a frame, or for one of the client's own connection events. */
export function renderEvent(event: ChatEvent, view: RenderOptions): string[] {
  switch (event.type) {
    case "reconnecting": {
      const seconds = (event.delayMs / 1000).toFixed(1);
      const text = event.attempt === 1
        ? `! ${sanitizeForTerminal(event.reason)}: reconnecting in ${seconds} s ` +
          "(what you type is kept and sent once back; /quit to give up)"
        : `! Still offline (${sanitizeForTerminal(event.reason)}): next try in ${seconds} s`;
      return [paint(text, 33, view.color)];
    }
    case "reconnected":
      return [
        paint(
          event.resumed
            ? `* Reconnected as ${event.welcome.name}: anything you missed follows`
            : `* Reconnected as ${event.welcome.name}, as a new arrival (the server forgot ` +
              "the session): rejoining your rooms",
          32,
          view.color,
        ),
      ];
    default:
      return renderFrame(event, view);
  }
}

/**
 * Updates the session from a frame or event and says whether to show it (`false` for ignored
 * people and for fatal errors, which are told once as the reason for disconnecting), and whether
 * to ring.
 */
export function follow(session: Session, event: ChatEvent): boolean | "bell" {
  const me = session.client.name;
  switch (event.type) {
    case "reconnected":
      session.view.me = event.welcome.name;
      return true;
    case "room":
      if (!session.rooms.includes(event.room)) session.rooms.push(event.room);
      session.room = event.room;
      session.view.room = event.room;
      for (const user of event.users) session.users.add(user);
      return true;
    case "left":
      if (event.name === me && event.room !== undefined) {
        session.rooms = session.rooms.filter((r) => r !== event.room);
        if (session.room === event.room) session.room = session.rooms.at(-1) ?? LOBBY;
        session.view.room = session.room;
      }
      return true;
    case "joined":
      session.users.add(event.name);
      return true;
    case "users":
      for (const user of event.users) session.users.add(user);
      return true;
    case "room_list":
      for (const info of event.rooms) session.knownRooms.add(info.room);
      return true;
    case "renamed":
      session.users.delete(event.from);
      session.users.add(event.to);
      session.view.me = me;
      return true;
    case "message": {
      if (event.history) {
        const key = roomKey(event.room ?? LOBBY);
        session.oldest.set(key, Math.min(session.oldest.get(key) ?? Infinity, event.id));
      }
      if (session.ignored.has(nameKey(event.from))) return false;
      const rings = !event.history && event.from !== me && mentions(event.text, me);
      return rings && session.bell ? "bell" : true;
    }
    case "private":
      if (event.from === me) return true;
      if (session.ignored.has(nameKey(event.from))) return false;
      session.lastPrivate = event.from;
      return session.bell ? "bell" : true;
    case "error":
      return !FATAL_ERROR_CODES.has(event.code);
    default:
      return true;
  }
}

/** Acts on typed lines: one message or command, or a pasted block sent as one message. */
function onInput(
  rl: readline.Interface,
  session: Session,
  lines: string[],
  quit: (message?: string) => void,
  show: (lines: string[]) => void,
): void {
  const pasted = lines.length > 1 && lines.every((line) => parseCommand(line) === undefined);
  const inputs = pasted ? [lines.join("\n")] : lines;
  let erased = false;
  for (const input of inputs) {
    const reply = handleInput(session, input);
    if (reply === "sent") {
      // The server's copy replaces what was typed.
      if (!erased) eraseSubmitted(rl, lines);
      erased = true;
    } else if (typeof reply === "object" && "quit" in reply) {
      return quit(reply.quit);
    } else if (typeof reply === "object" && "connect" in reply) {
      switchServer(rl, session, reply.connect, show);
    } else {
      show(reply.map((l) => paint(l, 2, session.view.color)));
    }
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

/** Works out what a typed line (or pasted block) means, doing what can be done at once. */
export function handleInput(session: Session, line: string): InputResult {
  if (line.trim() === "") return [];
  const { client } = session;
  const parsed = parseCommand(line);
  if (parsed === undefined) {
    const text = line.startsWith("//") ? line.slice(1) : line;
    const messages = text.includes("\n") ? splitMessage(text) : [text];
    for (const message of messages) {
      const checked = checkText(message);
      if (!checked.ok) return [checked.error];
      // The server's copy of the message shows it; a refusal arrives as an error frame.
      client.say(checked.text, { room: session.room }).catch(() => {});
    }
    return whenOffline(client, messages.length);
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
    oldest: session.oldest.get(roomKey(session.room)),
  });
  if (frame === undefined) return [unknownCommand(parsed.name)];
  if (typeof frame === "string") return [frame];
  if (frame.type === "say") {
    client.say(frame.text, { room: session.room, action: frame.action ?? false }).catch(() => {});
    return whenOffline(client, 1);
  }
  if (frame.type === "msg") {
    client.tell(frame.to, frame.text).catch(() => {});
    return whenOffline(client, 1);
  }
  return client.send(frame) ? [] : ["Not connected: try again once reconnected"];
}

/** `sent` while connected; offline, a word that the message is kept for later. */
function whenOffline(client: ChatClient, count: number): InputResult {
  if (client.connected) return "sent";
  return [
    `Offline: ${
      count === 1 ? "the message is" : `${count} messages are`
    } kept and will be sent once reconnected`,
  ];
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
function switchServer(
  rl: readline.Interface,
  session: Session,
  address: ServerAddress,
  show: (lines: string[]) => void,
): void {
  const where = `${address.hostname}:${address.port}`;
  show([paint(`* Connecting to ${where}...`, 2, session.view.color)]);
  ChatClient.connect({
    ...address,
    name: session.client.name,
    info: clientInfo(),
    reconnect: true,
  }).then(
    (next) => {
      session.next = next;
      session.client.close();
    },
    (error: ChatError) => {
      show([paint(`! ${sanitizeForTerminal(error.message)}`, 31, session.view.color)]);
      rl.prompt(true);
    },
  );
}

// ==== Scripting ====

/** How many messages a script may have waiting for acknowledgement before reading more input. */
const SCRIPT_WINDOW = 100;

/**
 * Sends each line of standard input as a message and prints what others say as plain lines.
 * Resolves to the exit code once every message sent was acknowledged, or as soon as the
 * connection ends.
 */
async function runScript(client: ChatClient, transcript: Transcript | undefined): Promise<number> {
  const view: RenderOptions = {
    me: client.name,
    color: false,
    time: false,
    skipOwn: true,
    room: client.welcome.room ?? LOBBY,
  };
  const printing = (async () => {
    for await (const event of client) {
      // A fatal error is told once, as the reason for the disconnection.
      if (event.type === "error" && FATAL_ERROR_CODES.has(event.code)) continue;
      const lines = renderEvent(event, view);
      transcript?.write(lines);
      if (event.type === "error") console.error(lines.join("\n"));
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
 * Sends every line of standard input, stopping early if the connection ends. At most
 * {@linkcode SCRIPT_WINDOW} messages wait for acknowledgement at a time, so a long input is read
 * as fast as the server takes it. Resolves to whether every line was sent and accepted.
 */
async function sendInput(client: ChatClient): Promise<boolean> {
  const lines = readLines(Deno.stdin);
  const disconnected = client.closed.then(() => "disconnected" as const);
  // Each outcome is settled as it happens, so no refusal is ever an unhandled rejection.
  const outcomes: Promise<boolean>[] = [];
  let settled = 0;
  let ok = true;
  try {
    while (true) {
      if (outcomes.length - settled >= SCRIPT_WINDOW) {
        await Promise.race([outcomes[settled], disconnected]);
        settled++;
      }
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
      --log FILE     Append every line shown to FILE, as plain text
  -h, --help         Show this help and exit
  -V, --version      Show the version and exit

On a terminal, a lost connection is re-established on its own and the session
resumed, with what you missed. In the chat, type /help for commands.`;

interface CliOptions {
  help: boolean;
  version: boolean;
  address: ServerAddress | undefined;
  name: string | undefined;
  log: string | undefined;
}

function parseCli(args: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        name: { type: "string", short: "n" },
        log: { type: "string" },
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
  if (values.log !== undefined && values.log.trim() === "") {
    throw new UsageError("--log needs a file name");
  }
  return { help: values.help, version: values.version, address, name, log: values.log };
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
  let transcript: Transcript | undefined;
  try {
    if (options.log !== undefined) transcript = Transcript.open(options.log);
    if (Deno.stdin.isTerminal()) {
      return await runInteractive(options.address, options.name, transcript);
    }
    const address = options.address ?? { hostname: "localhost", port: DEFAULT_PORT };
    const client = await ChatClient.connect({
      ...address,
      name: options.name ?? suggestName(osUserName() ?? "guest"),
      info: clientInfo(),
    });
    transcript?.write([transcriptHeader(address)]);
    return await runScript(client, transcript);
  } catch (error) {
    if (!(error instanceof ChatError || error instanceof TranscriptError)) throw error;
    console.error(`client: ${sanitizeForTerminal(error.message)}`);
    return 1;
  } finally {
    transcript?.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
