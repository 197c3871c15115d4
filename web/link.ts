/**
 * The page's connection to the server: one WebSocket at a time on `/ws`, each text message one
 * JSON frame of the protocol. It says hello (and proves the identity when the server challenges),
 * answers pings, paces what it sends to the welcome's `limits`, keeps messages while offline and
 * sends them once back, and reconnects with a growing wait when the connection drops.
 *
 * @module
 */

import {
  type ClientFrame,
  decodeServerFrame,
  type ErrorFrame,
  FATAL_ERROR_CODES,
  frameCost,
  HEARTBEAT_MS,
  type HelloFrame,
  type MsgFrame,
  RECONNECT_ERROR_CODES,
  type SayFrame,
  type ServerFrame,
  type WelcomeFrame,
} from "../protocol.ts";
import type { PageIdentity } from "./identity.ts";

/** Where the link is: what the page shows as online or offline. */
export type LinkStatus =
  | { state: "connecting" }
  | { state: "online"; welcome: WelcomeFrame }
  | { state: "offline"; reason: string; retryInMs: number }
  | { state: "ended"; reason: string; error?: ErrorFrame };

/** What a {@linkcode Link} needs. */
export interface LinkOptions {
  /** The WebSocket address, `ws://host:port/ws`. */
  url: string;
  /** The hello to send, made again for each attempt (it carries the latest resume token). */
  hello: () => HelloFrame;
  identity: PageIdentity | undefined;
  /**
   * Whether this continues an earlier session (a reload): the link then keeps trying when the
   * server cannot be reached, rather than giving up at once.
   */
  resuming: boolean;
  onFrame: (frame: ServerFrame) => void;
  onStatus: (status: LinkStatus) => void;
}

/** The first wait before reconnecting, and the longest, in milliseconds. */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

/** A message on its way: sent again after a reconnection until the server acknowledges it. */
type Tracked = (SayFrame | MsgFrame) & { ref: string; cid: string };

/** A connection that comes back by itself. */
export class Link {
  #options: LinkOptions;
  #socket: WebSocket | undefined;
  #welcomed = false;
  #everWelcomed: boolean;
  #ended = false;
  #attempt = 0;
  #lastError: ErrorFrame | undefined;
  #queue: ClientFrame[] = [];
  #inFlight = new Map<string, Tracked>();
  #bucket = new Bucket(0, 1);
  #pumpTimer: ReturnType<typeof setTimeout> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #lastHeard = Date.now();
  #pinged = false;
  #heartbeat = setInterval(() => this.#checkHeartbeat(), 5000);
  #onOnline = () => this.retryNow();

  constructor(options: LinkOptions) {
    this.#options = options;
    this.#everWelcomed = options.resuming;
    globalThis.addEventListener("online", this.#onOnline);
  }

  /** Whether the server has welcomed us on the current socket. */
  get online(): boolean {
    return this.#welcomed;
  }

  /** Opens the first connection. */
  start(): void {
    this.#open();
  }

  /**
   * Sends a frame, paced. A message (with its `ref` and `cid`) waits while offline and is sent
   * again after a reconnection until acknowledged; anything else is sent only while online
   * (returns `false` otherwise).
   */
  send(frame: ClientFrame): boolean {
    const tracked = (frame.type === "say" || frame.type === "msg") && frame.ref !== undefined;
    if (!tracked && !this.#welcomed) return false;
    if (this.#ended) return false;
    this.#queue.push(frame);
    this.#pump();
    return true;
  }

  /**
   * The messages not yet acknowledged, in the order they were typed: what a reload must not
   * lose (the page keeps them with its session and sends them again; the server drops
   * repeats by `cid`).
   */
  unsent(): (SayFrame | MsgFrame)[] {
    const queued = this.#queue.filter((frame): frame is SayFrame | MsgFrame =>
      (frame.type === "say" || frame.type === "msg") && frame.ref !== undefined
    );
    return [...this.#inFlight.values(), ...queued];
  }

  /** Tries to reconnect at once, if waiting to. */
  retryNow(): void {
    if (this.#retryTimer === undefined) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#open();
  }

  /** Leaves: says goodbye and closes for good. */
  close(frame: ClientFrame = { type: "bye" }): void {
    if (this.#welcomed) this.#socket?.send(JSON.stringify(frame));
    this.#end("You left the chat.");
    this.#socket?.close(1000);
  }

  #open(): void {
    this.#options.onStatus({ state: "connecting" });
    this.#lastError = undefined;
    const socket = new WebSocket(this.#options.url);
    this.#socket = socket;
    socket.onopen = () => this.#write(this.#options.hello());
    socket.onmessage = (event) => {
      if (socket === this.#socket && typeof event.data === "string") this.#received(event.data);
    };
    socket.onclose = () => {
      if (socket === this.#socket) this.#closed();
    };
  }

  /** One frame from the server. */
  #received(text: string): void {
    this.#lastHeard = Date.now();
    this.#pinged = false;
    const decoded = decodeServerFrame(text);
    if (!decoded.ok) {
      console.warn("chat: a frame the page does not understand:", decoded.error.message);
      return;
    }
    const frame = decoded.value;
    switch (frame.type) {
      case "challenge":
        this.#prove(frame.nonce);
        return;
      case "ping":
        this.#write({ type: "pong" });
        return;
      case "welcome":
        this.#welcome(frame);
        break;
      case "message":
      case "private":
        if (frame.ref !== undefined) this.#inFlight.delete(frame.ref);
        break;
      case "error":
        if (frame.ref !== undefined) this.#inFlight.delete(frame.ref);
        if (!this.#welcomed || FATAL_ERROR_CODES.has(frame.code)) this.#lastError = frame;
        break;
    }
    this.#options.onFrame(frame);
    // A refused hello (a taken name, a ban, a password wanted) ends this attempt.
    if (frame.type === "error" && !this.#welcomed) this.#socket?.close();
  }

  async #prove(nonce: string): Promise<void> {
    const identity = this.#options.identity;
    if (identity) this.#write({ type: "proof", signature: await identity.prove(nonce) });
  }

  #welcome(frame: WelcomeFrame): void {
    this.#welcomed = true;
    this.#everWelcomed = true;
    this.#attempt = 0;
    const limits = frame.limits ?? { rate: 0, burst: 1 };
    this.#bucket = new Bucket(limits.rate, limits.burst);
    // The server counted the hello (and the proof) against the same allowance.
    this.#bucket.take(this.#options.identity ? 2 : 1);
    // What was sent and not acknowledged goes again first: the server drops repeats by `cid`.
    this.#queue = [...this.#inFlight.values(), ...this.#queue];
    this.#inFlight.clear();
    this.#options.onStatus({ state: "online", welcome: frame });
    this.#pump();
  }

  #closed(): void {
    const error = this.#lastError;
    this.#welcomed = false;
    clearTimeout(this.#pumpTimer);
    this.#pumpTimer = undefined;
    if (this.#ended) return;
    // Not welcomed yet, every refusal is final (a taken name, a ban); later only those that say
    // nothing against trying again (a restart, a full server) are worth another attempt.
    const retry = error === undefined
      ? this.#everWelcomed
      : this.#everWelcomed && RECONNECT_ERROR_CODES.has(error.code);
    const reason = error?.message ?? "The connection to the server was lost";
    if (!retry) {
      this.#end(
        this.#everWelcomed ? reason : error?.message ?? "Cannot reach the chat server",
        error,
      );
      return;
    }
    this.#attempt++;
    const wait = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (this.#attempt - 1));
    const retryInMs = Math.round(wait * (0.75 + Math.random() / 2));
    this.#options.onStatus({ state: "offline", reason, retryInMs });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#open();
    }, retryInMs);
  }

  #end(reason: string, error?: ErrorFrame): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#welcomed = false;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#heartbeat);
    globalThis.removeEventListener("online", this.#onOnline);
    this.#options.onStatus({ state: "ended", reason, ...(error ? { error } : {}) });
  }

  /** Sends what waits, as fast as the server's limits allow. */
  #pump(): void {
    if (this.#pumpTimer !== undefined) return;
    while (this.#welcomed && this.#queue.length > 0) {
      const frame = this.#queue[0]!;
      const wait = this.#bucket.wait(frameCost(frame));
      if (wait > 0) {
        this.#pumpTimer = setTimeout(() => {
          this.#pumpTimer = undefined;
          this.#pump();
        }, wait);
        return;
      }
      this.#queue.shift();
      if ((frame.type === "say" || frame.type === "msg") && frame.ref !== undefined) {
        this.#inFlight.set(frame.ref, frame as Tracked);
      }
      this.#write(frame);
    }
  }

  /** One frame out: one WebSocket text message (the JSON of the frame, no newline). */
  #write(frame: ClientFrame): void {
    if (this.#socket?.readyState !== WebSocket.OPEN) return;
    this.#bucket.take(frameCost(frame));
    this.#socket.send(JSON.stringify(frame));
  }

  /** Pings a silent server; closes (and so reconnects) when it stays silent. */
  #checkHeartbeat(): void {
    if (!this.#welcomed) return;
    const silent = Date.now() - this.#lastHeard;
    if (silent > 2 * HEARTBEAT_MS) this.#socket?.close();
    else if (silent > HEARTBEAT_MS && !this.#pinged) {
      this.#pinged = true;
      this.#write({ type: "ping" });
    }
  }
}

/** A token bucket: `rate` tokens a second, at most `burst` saved; rate 0 is no limit. */
class Bucket {
  #tokens: number;
  #at = performance.now();
  constructor(readonly rate: number, readonly burst: number) {
    this.#tokens = burst;
  }

  /** How long until `cost` tokens are there, in milliseconds. */
  wait(cost: number): number {
    if (this.rate === 0) return 0;
    this.#refill();
    const needed = Math.min(cost, this.burst);
    return this.#tokens >= needed ? 0 : Math.ceil((needed - this.#tokens) * 1000 / this.rate);
  }

  take(cost: number): void {
    this.#refill();
    this.#tokens -= Math.min(cost, this.burst);
  }

  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + (now - this.#at) * this.rate / 1000);
    this.#at = now;
  }
}
