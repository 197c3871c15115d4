/**
 * The chat client as a library: {@linkcode ChatClient} connects to a server, says hello, sends
 * messages paced to the server's limits, matches their acknowledgements, answers pings, and (when
 * asked) reconnects and resumes the session by itself. The terminal chat, the pipe mode, the
 * benchmark and the tests all use it.
 *
 * @module
 */

import {
  type ClientFrame,
  type ClientInfo,
  decodeServerFrame,
  DEFAULT_PORT,
  encodeFrame,
  type ErrorCode,
  type ErrorFrame,
  errorFrame,
  FATAL_ERROR_CODES,
  frameCost,
  HEARTBEAT_MS,
  type HelloFrame,
  LOBBY,
  type MessageFrame,
  type MsgFrame,
  nameKey,
  type PrivateFrame,
  RECONNECT_ERROR_CODES,
  type Result,
  roomKey,
  sanitizeForTerminal,
  type SayFrame,
  type ServerAddress,
  type ServerFrame,
  type WelcomeFrame,
} from "../protocol.ts";
import { type DialRefusal, isDisconnectError, type Transport } from "./conn.ts";
import { FrameTooLargeError, LineSplitter, READ_BUFFER_BYTES } from "./lines.ts";
import { Outbox } from "./outbox.ts";
import { type Identity, signProof } from "./identity.ts";
import { backoff, heartbeat, TokenBucket } from "./pace.ts";
import { dialTcp } from "./tcp.ts";

/** How long connecting and waiting for the welcome may take, in milliseconds. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** Received frames held for a slow consumer before the client stops reading from the socket. */
const MAX_QUEUED_EVENTS = 10_000;
/** How long closing waits for the goodbye to be written, in milliseconds. */
const CLOSE_TIMEOUT_MS = 1000;

/** Why a client operation failed: a server error code, or what went wrong locally. */
export type ChatErrorCode =
  | ErrorCode
  | "unreachable"
  | "disconnected"
  | "no_answer"
  | "key_changed"
  | "not_trusted";

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
   * Opens the connection: TCP by default. Another transport (TLS...) plugs in here; it fails with
   * one line for a person, like {@linkcode dialTcp}.
   * @default {dialTcp}
   */
  dial?: (
    address: ServerAddress,
    timeoutMs: number,
  ) => Promise<Result<Transport, string | DialRefusal>>;
  /**
   * The key pair that proves who we are: the hello carries its public key and the client signs
   * the server's challenge. Without one the client is known only by its session.
   * @default {none}
   */
  identity?: Identity;
  /**
   * A private server's password, sent in every hello (resumes too: a session whose server
   * forgot it comes back as a new arrival, which needs it again).
   * @default {none}
   */
  password?: string;
  /**
   * A one-time invite's secret, sent in the first hello only (it admits once).
   * @default {none}
   */
  invite?: string;
  /**
   * The id of the newest message this person saw in an earlier run of the program (kept on
   * disk): with an identity, the server gives the person's session back and sends exactly what
   * came after it.
   * @default {none}
   */
  last?: number;
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
  /**
   * Why the client would not reconnect to what answered: a TLS server whose key is not the
   * pinned one, or a first contact nobody trusted. Nothing was sent to it.
   */
  refusal?: { code: "key_changed" | "not_trusted"; message: string };
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

type ResolvedOptions =
  & Required<Omit<ChatClientOptions, "info" | "identity" | "last" | "password" | "invite">>
  & { info: ClientInfo; identity: Identity | undefined; password: string | undefined };

/** A message (or private message) waiting for the server's acknowledgement. */
interface Tracked {
  frame: SayFrame | MsgFrame;
  resolve: (frame: MessageFrame | PrivateFrame) => void;
  reject: (error: ChatError) => void;
}

/** One frame waiting to go out: a tracked message, or any other frame. */
type Queued = { tracked: Tracked } | { frame: ClientFrame };

/**
 * The server's refusals after which trying to reconnect is pointless: it would refuse again. (A
 * refused key, `key_changed` or `not_trusted`, ends reconnecting too, as the client's refusal.)
 */
const FINAL_CONNECT_CODES: ReadonlySet<ChatErrorCode> = new Set<ChatErrorCode>([
  "bad_name",
  "name_taken",
  "banned",
  "kicked",
  "replaced",
  "password_required",
  "not_admitted",
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

  private constructor(
    link: Link,
    welcome: WelcomeFrame,
    options: ResolvedOptions,
    last: number | undefined,
  ) {
    this.#options = options;
    this.#link = link;
    this.#welcome = welcome;
    this.#name = welcome.name;
    this.#rooms = [welcome.room ?? LOBBY];
    // A session given back (to our key, after a restart of this program) replays what came
    // after the last message we saw, which is then where "new" starts.
    this.#lastSeen = welcome.resumed && last !== undefined ? last : welcome.last;
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
      dial: options.dial ?? dialTcp,
      identity: options.identity,
      password: options.password,
    };
    const { link, welcome } = await Link.open(full, {
      type: "hello",
      name: options.name,
      client: full.info,
      ...(options.identity ? { key: options.identity.publicKey } : {}),
      ...(options.last === undefined ? {} : { last: options.last }),
      ...(options.password === undefined ? {} : { password: options.password }),
      ...(options.invite === undefined ? {} : { invite: options.invite }),
    });
    return new ChatClient(link, welcome, full, options.last);
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
  /** Where the client connects: the server's host name or address, and port. */
  get address(): ServerAddress {
    return { hostname: this.#options.hostname, port: this.#options.port };
  }

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
        link.transport.close();
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
      const next = this.#outgoing[0]!;
      const frame = "tracked" in next ? next.tracked.frame : next.frame;
      const cost = frameCost(frame);
      const wait = this.#bucket.wait(cost);
      if (wait > 0) {
        this.#pumpTimer = setTimeout(() => {
          this.#pumpTimer = undefined;
          this.#pump();
        }, wait);
        return;
      }
      if (!link.outbox.push(encodeFrame(frame))) {
        this.#awaitingDrain = true;
        link.outbox.drained().then(() => {
          this.#awaitingDrain = false;
          this.#pump();
        });
        return;
      }
      this.#bucket.take(cost);
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
    this.#observe(frame);
    if (!repeat) this.#emit(frame);
  }

  #emit(event: ChatEvent): void {
    this.#events.push(event);
    for (const wake of this.#consumers.splice(0)) wake();
  }

  /** Keeps the client's own state in step with a frame: name, rooms, last id seen, acknowledgements. */
  #observe(frame: ServerFrame): void {
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
          link.transport.close();
          await link.done;
          break;
        }
        this.#resumed(link, welcome);
        return;
      } catch (error) {
        if (!(error instanceof ChatError)) throw error;
        if (error.code === "key_changed" || error.code === "not_trusted") {
          this.#end({ by: "client", refusal: { code: error.code, message: error.message } });
          return;
        }
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
      ...(this.#options.identity ? { key: this.#options.identity.publicKey } : {}),
      ...(this.#options.password === undefined ? {} : { password: this.#options.password }),
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
      link.transport.close();
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
 * One connection to the server: its outbox and a reader that runs in the background. Until a
 * client attaches, the frames read are held, so nothing that arrives right behind the welcome is
 * lost. Lines that are not valid server frames are skipped: a newer server may send types this
 * version does not know.
 */
class Link {
  readonly transport: Transport;
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
  #waiter: (() => void) | undefined;
  #lastError: ErrorFrame | undefined;

  private constructor(transport: Transport) {
    this.transport = transport;
    this.outbox = new Outbox(transport, { onError: () => transport.close() });
    this.done = this.#run();
  }

  /**
   * Connects and sends the hello; resolves once the server has welcomed us.
   * @throws {ChatError} `unreachable`, `no_answer`, or the server's refusal.
   */
  static async open(
    options: Pick<ResolvedOptions, "hostname" | "port" | "timeoutMs" | "dial" | "identity">,
    hello: HelloFrame,
  ): Promise<{ link: Link; welcome: WelcomeFrame }> {
    const { hostname, port, timeoutMs, identity } = options;
    // The dial has its own timeout; the hello's starts once it is done, so the time a person
    // takes to look at a new server's key is not counted against the server.
    const dialed = await options.dial({ hostname, port }, timeoutMs);
    const deadline = performance.now() + timeoutMs;
    if (!dialed.ok) {
      const { error } = dialed;
      throw typeof error === "string"
        ? new ChatError("unreachable", error)
        : new ChatError(error.code, error.message);
    }
    const link = new Link(dialed.value);
    link.outbox.push(encodeFrame(hello));
    let first = await withTimeout(link.#nextHeld(), deadline - performance.now());
    if (first !== "timeout" && first?.type === "challenge" && identity) {
      // The server checks that we hold the key of the hello: sign its fresh nonce.
      const signature = await signProof(identity, first.nonce);
      link.outbox.push(encodeFrame({ type: "proof", signature }));
      first = await withTimeout(link.#nextHeld(), deadline - performance.now());
    }
    if (first !== "timeout" && first?.type === "welcome") return { link, welcome: first };
    link.transport.close();
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

  /** The next frame held for {@linkcode Link.open}, or `undefined` once the link ended. */
  async #nextHeld(): Promise<ServerFrame | undefined> {
    while (this.#held.length === 0 && !this.ended) {
      await new Promise<void>((resolve) => this.#waiter = resolve);
    }
    return this.#held.shift();
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
        const n = await this.transport.read(buffer);
        if (n === null) {
          splitter.end(onLine); // a last frame the server sent without its newline
          break;
        }
        this.lastHeard = performance.now();
        this.pinged = false;
        splitter.push(buffer.subarray(0, n), onLine);
      }
    } catch (error) {
      if (!isDisconnectError(error) && !(error instanceof FrameTooLargeError)) throw error;
    } finally {
      this.transport.close();
      this.ended = true;
      this.#waiter?.();
    }
    const by = this.closing ? "client" : "server";
    return this.#lastError ? { by, error: this.#lastError } : { by };
  }

  #onLine(line: string): void {
    const decoded = decodeServerFrame(line);
    if (!decoded.ok) return;
    const frame = decoded.value;
    // Only a fatal error says why the link ends: a refused /whois or /nick long before a drop is
    // no reason to give up reconnecting.
    if (frame.type === "error" && FATAL_ERROR_CODES.has(frame.code)) this.#lastError = frame;
    if (this.#sink) {
      this.#sink.frame(frame);
    } else {
      this.#held.push(frame);
      this.#waiter?.();
    }
  }
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

/** Why a client is finished, in one line for a person. */
export function disconnectText(info: CloseInfo): string {
  if (info.refusal) return `Not reconnected: ${sanitizeForTerminal(info.refusal.message)}`;
  if (info.error?.code === "shutting_down") return "Disconnected: the server is shutting down";
  if (info.error) return `Disconnected by the server: ${sanitizeForTerminal(info.error.message)}`;
  return info.by === "client" ? "Disconnected" : "Connection to the server lost";
}
