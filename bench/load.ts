#!/usr/bin/env -S deno run --allow-net
/**
 * The benchmark's load generator: one process that opens many loopback connections to a chat
 * server (or to the raw forwarder, `bench/raw_forward.ts`), confirms that every one has joined,
 * has some of them send numbered, timestamped messages and checks every copy every client gets.
 * It prints one JSON {@linkcode LoadResult} on standard output.
 *
 * ```sh
 * deno run --allow-net bench/load.ts --port 5050 --clients 50 --senders 5 --messages 1000
 * deno run --allow-net bench/load.ts --port 5050 --clients 200 --rate 200 --messages 200
 * deno run --allow-net bench/load.ts --port 5050 --idle 10000
 * deno run --allow-net --allow-read=cert.pem bench/load.ts --port 5051 --tls --ca cert.pem
 * deno run --allow-net bench/load.ts --port 5080 --ws
 * ```
 *
 * Each payload is `~<sender>.<seq>.<send time in µs>.` padded to `--size` bytes with a fixed
 * pattern, so a receiver can check a copy without decoding it: lines are classified and payloads
 * parsed on bytes, and only error frames are ever decoded as text. With `--sync`, it writes
 * `phase ready` (everyone joined, the server quiet) and `phase end` (the last copy arrived) to
 * standard error and waits for a line on standard input after each, so that a harness can sample
 * the server exactly around the measured phase.
 *
 * With `--tls --ca FILE`, every connection is TLS (`Deno.connectTls`, trusting the certificate in
 * `FILE`, which must name 127.0.0.1), for the chat server's TLS port; the handshake is part of
 * connecting, so the sending phase holds only the record layer's cost.
 *
 * With `--ws`, every connection is a WebSocket (Deno's global `WebSocket` client) to
 * `ws://127.0.0.1:PORT/ws`, the chat server's web port. Each frame of the protocol travels as one
 * text message of its own, without the newline: every message the client sends holds exactly one
 * frame, and a message from the server that holds a newline counts as corrupted. A message is
 * copied into a reused buffer as UTF-8 and checked by the same code as a TCP line, so the
 * verification (loss, duplicates, order, latency) is the same over both.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Outbox, writeAll } from "../net/outbox.ts";
import { closeQuietly, errorText, isDisconnectError } from "../net/conn.ts";

// ==== Constants ====

/** Where the load generator connects: loopback only. */
export const LOAD_HOST = "127.0.0.1";
/** The path of the chat server's WebSocket endpoint on its web port. */
export const WS_PATH = "/ws";
/** How long nothing may arrive before the server counts as quiet after everyone joined. */
export const QUIET_MS = 200;
/** How long a probe may reach no new client before the next one goes (raw mode). */
const PROBE_MS = 20;
/** How long nothing may arrive while copies are awaited before the run counts as stalled. */
export const STALL_MS = 5000;
/** Connections being opened at once. */
const CONNECT_CONCURRENCY = 64;
/** Bytes a sender may have queued and unwritten; far more than any window needs. */
const SENDER_QUEUE_BYTES = 16 * 1024 * 1024;
/** The most (client, sender, message) combinations tracked; each takes a byte. */
const MAX_TRACKED = 200_000_000;
/** How long the WebSocket clients may take to finish closing once the run is over. */
const WS_CLOSE_MS = 5000;

const NEWLINE = 0x0a;
const QUOTE = 0x22;
const DOT = 0x2e;
const TILDE = 0x7e;
const DIGIT_0 = 0x30;
const LETTER_A = 0x61;
const OPEN_BRACE = 0x7b;
/** Every frame starts like this: `encodeFrame` puts `type` first. */
const TYPE_PREFIX = new TextEncoder().encode('{"type":"');
/** The first letter of a frame's type, just after {@linkcode TYPE_PREFIX}. */
const TYPE_LETTER = {
  message: 0x6d, // "message" from the chat server
  say: 0x73, // a "say" relayed as it is by the raw forwarder
  welcome: 0x77,
  error: 0x65,
  probe: 0x70, // only the raw forwarder relays probes ("presence", "ping"... in chat)
} as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ==== Options and results ====

/** What to run: the CLI flags of the same names. */
export interface LoadOptions {
  /** The server's (or forwarder's) port on 127.0.0.1. */
  port: number;
  /** `chat`: say hello and wait for the welcome; `raw`: no handshake, for the raw forwarder. */
  mode: "chat" | "raw";
  /** Connections. */
  clients: number;
  /** How many of the connections send (the first ones). */
  senders: number;
  /** Messages per sender. */
  messages: number;
  /** Bytes of each message's text. */
  size: number;
  /** Messages a second from all senders together; 0 sends as fast as the window allows. */
  rate: number;
  /** Messages each sender may have sent and not yet seen delivered (window mode). */
  window: number;
  /** Seconds after which the run stops, finished or not. */
  timeout: number;
  /** Size of each connection's reused read buffer. */
  readBufferBytes: number;
  /**
   * Connect with TLS, trusting these certificates (PEM); without it, plain TCP.
   * @default {undefined}
   */
  tls?: { caCerts: string[] } | undefined;
  /**
   * Connect with WebSocket to `ws://127.0.0.1:PORT/ws` (the chat server's web port), one frame
   * per message; without it, TCP (or TLS).
   * @default {false}
   */
  ws?: boolean | undefined;
  /** Called at `ready` and `end`; the run waits for it. */
  onPhase?: (phase: Phase) => Promise<void>;
}

/** The moments a harness may sample the server at. */
export type Phase = "ready" | "end";

/** Latency percentiles, in milliseconds. */
export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** What one run measured; printed as JSON. */
export interface LoadResult {
  mode: "chat" | "raw";
  /** Whether the connections were TLS. */
  tls: boolean;
  /** Whether the connections were WebSockets. */
  ws: boolean;
  clients: number;
  senders: number;
  messages: number;
  size: number;
  rate: number;
  window: number;
  /** Messages sent; 0 when the run stopped before sending. */
  sent: number;
  /** Copies that should arrive: every message at every client (but its sender in raw mode). */
  expected: number;
  /** Distinct good copies that arrived. */
  received: number;
  lost: number;
  duplicates: number;
  /** Copies that arrived before an earlier message of the same sender. */
  outOfOrder: number;
  /** Lines (WebSocket messages) that were not a well-formed frame or payload. */
  corrupted: number;
  /** The start of the first corrupted line, if any. */
  firstCorrupted?: string;
  /**
   * Plain-text lines before a welcome: the server's prompt for people on `nc`, sent when it did not
   * read a client's hello within its prompt delay (1 s), as happens when it is overloaded.
   */
  textPrompts: number;
  /** Error frames from the server. */
  errors: number;
  /** The first error frame or failure, if any. */
  firstError?: string;
  /** Connections that could not be opened or that the server closed, and sends that failed. */
  failures: number;
  /** Clients confirmed joined (all of them unless the run stopped early). */
  joined: number;
  /** From the first connect until every connection was open. */
  connectMs: number;
  /** From the first connect until every client was confirmed joined. */
  joinMs: number;
  /** From everyone joined until nothing arrived for {@linkcode QUIET_MS} (not included). */
  settleMs: number;
  /** From the first message sent until the last copy arrived. */
  sendMs: number;
  deliveriesPerSecond: number;
  latencyMs: Latency;
  /** Why the run ended before every copy arrived: `timeout`, `stalled`, or a failure. */
  stopped?: string;
}

// ==== Payloads ====

/**
 * The text of one message: `~sender.seq.time.` and then the padding pattern (`a` to `z` by
 * position in the text) up to `size` bytes. Only ASCII letters, digits, `.` and `~`: no escaping.
 */
export function encodePayload(sender: number, seq: number, timeUs: number, size: number): string {
  const head = `~${sender}.${seq}.${timeUs}.`;
  return head.length >= size ? head : head + padding(size).slice(head.length);
}

const paddings = new Map<number, string>();

function padding(size: number): string {
  let pad = paddings.get(size);
  if (pad === undefined) {
    pad = Array.from({ length: size }, (_, i) => String.fromCharCode(LETTER_A + i % 26)).join("");
    paddings.set(size, pad);
  }
  return pad;
}

/** A copy as parsed from bytes: sender, sequence number and send time, or `sender: -1`. */
interface ParsedPayload {
  sender: number;
  seq: number;
  timeUs: number;
}

/** Where {@linkcode readNumber} stopped: shared, so that parsing a copy allocates nothing. */
const cursor = { pos: 0 };

/** Reads a decimal number ending in `.` at `cursor.pos`, leaving it after the dot; -1 if bad. */
function readNumber(bytes: Uint8Array, end: number): number {
  let value = 0;
  let i = cursor.pos;
  const start = i;
  while (i < end) {
    const digit = bytes[i]! - DIGIT_0;
    if (digit < 0 || digit > 9) break;
    value = value * 10 + digit;
    i++;
  }
  if (i === start || i >= end || bytes[i] !== DOT || i - start > 15) return -1;
  cursor.pos = i + 1;
  return value;
}

/**
 * Finds and checks the payload in a line (from `start` to the newline at `end`): the fields, the
 * padding byte by byte against `pattern` (the padding of the largest payload), and the length.
 * Fills `out`, with `out.sender = -1` when anything is wrong. Positional for speed: it runs for
 * every copy.
 */
function parsePayload(
  bytes: Uint8Array,
  start: number,
  end: number,
  pattern: Uint8Array,
  out: ParsedPayload,
): void {
  out.sender = -1;
  const tilde = bytes.indexOf(TILDE, start + TYPE_PREFIX.length);
  if (tilde === -1 || tilde >= end) return;
  cursor.pos = tilde + 1;
  const sender = readNumber(bytes, end);
  const seq = sender < 0 ? -1 : readNumber(bytes, end);
  const timeUs = seq < 0 ? -1 : readNumber(bytes, end);
  if (timeUs < 0) return;
  let i = cursor.pos;
  while (i < end && bytes[i] !== QUOTE) {
    if (bytes[i] !== pattern[i - tilde]) return;
    i++;
  }
  const headLength = cursor.pos - tilde;
  if (i >= end || i - tilde !== Math.max(pattern.length, headLength)) return;
  out.sender = sender;
  out.seq = seq;
  out.timeUs = timeUs;
}

/** Percentiles of latencies (nearest rank); sorts them in place. */
export function percentiles(samples: Float32Array): Latency {
  if (samples.length === 0) return { p50: 0, p90: 0, p99: 0, max: 0 };
  samples.sort();
  const at = (q: number) => round3(samples[Math.max(0, Math.ceil(q * samples.length) - 1)]!);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round3(samples[samples.length - 1]!) };
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

// ==== The run ====

/** Waits `ms` milliseconds. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Microseconds on the process's `performance.now()` clock, as a whole number. */
function nowUs(): number {
  return Math.floor(performance.now() * 1000);
}

/** One load run: its connections, what each has received, and the counts. */
class LoadRun {
  readonly #o: LoadOptions;
  readonly #conns: (Deno.Conn | undefined)[];
  /** With `ws`: each client's WebSocket, instead of a connection and an outbox. */
  readonly #sockets: (WebSocket | undefined)[];
  /** A WebSocket message as UTF-8, to be checked as a line; reused, grown as needed. */
  #messageBytes = new Uint8Array(4096);
  readonly #outboxes: Outbox[] = [];
  readonly #tails: (Uint8Array | undefined)[];
  readonly #readers: Promise<void>[] = [];
  /** 1 once a client is confirmed joined (welcome, or a relayed probe). */
  readonly #joined: Uint8Array;
  #joinedCount = 0;
  #joinTarget: number;
  /** One byte per (client, sender, seq): whether that copy arrived. */
  readonly #seen: Uint8Array;
  /** The next sequence number each client expects from each sender. */
  readonly #nextSeq: Uint32Array;
  readonly #sent: Uint32Array;
  #sentCount = 0;
  readonly #inFlight: Uint32Array;
  readonly #latencies: Float32Array;
  #received = 0;
  #duplicates = 0;
  #outOfOrder = 0;
  #corrupted = 0;
  #errors = 0;
  #firstError: string | undefined;
  #firstCorrupted: string | undefined;
  #prompts = 0;
  #failures = 0;
  readonly #expected: number;
  #lastReadAt = 0;
  #firstSendAt = 0;
  #lastDeliveryAt = 0;
  /** Why the run stopped early; set once. */
  #stopped: string | undefined;
  #finished = false;
  readonly #everyoneJoined = Promise.withResolvers<void>();
  readonly #complete = Promise.withResolvers<void>();
  readonly #stop = Promise.withResolvers<void>();
  readonly #parsed: ParsedPayload = { sender: -1, seq: 0, timeUs: 0 };
  /** What a payload of `size` bytes holds at each position, after its head. */
  readonly #pattern: Uint8Array;
  readonly #toPump: number[] = [];
  readonly #tag = Math.floor(Math.random() * 36 ** 4).toString(36);

  constructor(options: LoadOptions) {
    this.#o = options;
    const { clients: n, senders: s, messages: m, mode } = options;
    this.#conns = new Array(n).fill(undefined);
    this.#sockets = new Array(n).fill(undefined);
    this.#tails = new Array(n).fill(undefined);
    this.#joined = new Uint8Array(n);
    this.#joinTarget = mode === "chat" ? n : n - 1;
    this.#seen = new Uint8Array(n * s * m);
    this.#nextSeq = new Uint32Array(n * s);
    this.#sent = new Uint32Array(s);
    this.#inFlight = new Uint32Array(s);
    this.#expected = mode === "chat" ? n * s * m : (n - 1) * s * m;
    this.#latencies = new Float32Array(this.#expected);
    this.#pattern = encoder.encode(padding(options.size));
    if (this.#expected === 0) this.#complete.resolve();
    if (this.#joinTarget === 0) this.#everyoneJoined.resolve();
  }

  /** Runs every phase, stopping early at the timeout; always closes every connection. */
  async run(): Promise<LoadResult> {
    const timer = setTimeout(() => this.#halt("timeout"), this.#o.timeout * 1000);
    const started = performance.now();
    let connectMs = 0, joinMs = 0, settleMs = 0;
    try {
      await this.#race(this.#connectAll());
      connectMs = performance.now() - started;
      await this.#race(this.#confirmJoined());
      joinMs = performance.now() - started;
      if (this.#stopped === undefined) {
        settleMs = await this.#settle();
        await this.#o.onPhase?.("ready");
        this.#startSending();
        await this.#race(this.#whileFlowing(this.#complete.promise));
      }
      if (this.#stopped === undefined) await this.#o.onPhase?.("end");
    } finally {
      clearTimeout(timer);
      this.#finished = true;
      this.#closeAll();
      // A TCP read ends as soon as its connection is closed; a WebSocket waits for the server's
      // answer to its close, which an overloaded server may be slow to send.
      const reading = Promise.all(this.#readers);
      await (this.#o.ws ? waitAtMost(reading, WS_CLOSE_MS) : reading);
    }
    return this.#result({ connectMs, joinMs, settleMs });
  }

  #race(promise: Promise<void>): Promise<void> {
    return Promise.race([promise, this.#stop.promise]);
  }

  /** Ends the run early, keeping the first reason. */
  #halt(reason: string): void {
    this.#stopped ??= reason;
    this.#stop.resolve();
  }

  /**
   * Resolves with `promise`, or halts the run as `stalled` once nothing has arrived for
   * {@linkcode STALL_MS} while a reply is awaited (in rate mode, after the last message went out).
   */
  async #whileFlowing(promise: Promise<void>): Promise<void> {
    let done = false;
    promise.then(() => done = true);
    while (!done && this.#stopped === undefined) {
      await Promise.race([promise, sleep(STALL_MS / 10)]);
      const allSent = this.#o.rate === 0 || this.#sentCount === this.#o.senders * this.#o.messages;
      if (!done && allSent && performance.now() - this.#lastReadAt > STALL_MS) {
        this.#halt("stalled");
      }
    }
  }

  // ---- Connecting and joining ----

  async #connectAll(): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < this.#o.clients && this.#stopped === undefined) await this.#open(next++);
    };
    await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, worker));
  }

  async #open(client: number): Promise<void> {
    if (this.#o.ws) return this.#openWebSocket(client);
    let conn: Deno.Conn;
    try {
      conn = await this.#connect();
    } catch (error) {
      this.#halt(this.#fail(`Cannot connect client ${client}: ${errorText(error)}`));
      return;
    }
    if (this.#finished) return void closeQuietly(conn);
    this.#conns[client] = conn;
    if (client < this.#o.senders) {
      const onError = (error: unknown) => this.#fail(`Sender ${client}: ${errorText(error)}`);
      this.#outboxes[client] = new Outbox(conn, { maxBytes: SENDER_QUEUE_BYTES, onError });
    }
    this.#readers.push(this.#read(client, conn));
    if (this.#o.mode === "chat") {
      await writeAll(conn, encoder.encode(`${this.#hello(client)}\n`)).catch(
        (error) => this.#fail(`Hello of client ${client}: ${errorText(error)}`),
      );
    }
  }

  /**
   * One WebSocket client (chat mode only): opened, its messages checked as they come, its hello
   * sent. Its reader is the wait for its close.
   */
  async #openWebSocket(client: number): Promise<void> {
    let socket: WebSocket;
    try {
      socket = await openWebSocket(`ws://${LOAD_HOST}:${this.#o.port}${WS_PATH}`);
    } catch (error) {
      this.#halt(this.#fail(`Cannot connect client ${client}: ${errorText(error)}`));
      return;
    }
    if (this.#finished) return void socket.close();
    this.#sockets[client] = socket;
    const closed = Promise.withResolvers<void>();
    socket.onmessage = (event: MessageEvent<unknown>) => this.#onMessage(client, event.data);
    socket.onerror = () => {}; // the close that follows tells
    socket.onclose = (event) => {
      const reason = event.reason === "" ? "" : `: ${event.reason}`;
      if (!this.#finished) {
        this.#halt(this.#fail(`The server closed client ${client} (code ${event.code}${reason})`));
      }
      closed.resolve();
    };
    this.#readers.push(closed.promise);
    this.#send(client, [this.#hello(client)]);
  }

  /**
   * One connection: TCP with Nagle off, or TLS with its handshake done (so that a refused
   * certificate fails here, and no handshake falls in the sending phase).
   */
  async #connect(): Promise<Deno.Conn> {
    const { port, tls } = this.#o;
    if (tls === undefined) {
      const conn = await Deno.connect({ hostname: LOAD_HOST, port });
      conn.setNoDelay(true);
      return conn;
    }
    const conn = await Deno.connectTls({ hostname: LOAD_HOST, port, caCerts: tls.caCerts });
    try {
      await conn.handshake();
    } catch (error) {
      closeQuietly(conn);
      throw error;
    }
    return conn;
  }

  /** A hello with a name unique to this run (`c<client>_<tag>`), as names outlive connections. */
  #hello(client: number): string {
    return `{"type":"hello","name":"c${client}_${this.#tag}"}`;
  }

  /** Chat: every welcome is in. Raw: client 0's probe has reached every other client. */
  async #confirmJoined(): Promise<void> {
    if (this.#o.mode === "chat") return this.#everyoneJoined.promise;
    const probe = encoder.encode('{"type":"probe"}\n');
    let joined = false;
    this.#everyoneJoined.promise.then(() => joined = true);
    while (!joined && this.#stopped === undefined) {
      this.#outboxes[0]?.push(probe);
      // Probe again only once this probe has stopped reaching more clients.
      let reached = -1;
      while (reached !== this.#joinedCount && !joined && this.#stopped === undefined) {
        reached = this.#joinedCount;
        await Promise.race([this.#everyoneJoined.promise, this.#stop.promise, sleep(PROBE_MS)]);
      }
    }
    if (joined) this.#joinedCount++; // client 0 too: its probes reached everyone
  }

  /** Waits until nothing has arrived for {@linkcode QUIET_MS}; returns how long that took. */
  async #settle(): Promise<number> {
    const started = performance.now();
    this.#lastReadAt = Math.max(this.#lastReadAt, started);
    while (this.#stopped === undefined) {
      const quietFor = performance.now() - this.#lastReadAt;
      if (quietFor >= QUIET_MS) break;
      await sleep(QUIET_MS - quietFor + 1);
    }
    return Math.max(0, this.#lastReadAt - started);
  }

  // ---- Sending ----

  #startSending(): void {
    this.#firstSendAt = performance.now();
    if (this.#o.rate > 0) {
      void this.#paced();
      return;
    }
    for (let sender = 0; sender < this.#o.senders; sender++) this.#pump(sender);
  }

  /** Window mode: sends until the sender has `window` messages on the way. */
  #pump(sender: number): void {
    const { window, messages } = this.#o;
    const frames: string[] = [];
    while (this.#inFlight[sender]! < window && this.#sent[sender]! < messages) {
      frames.push(this.#say(sender, this.#sent[sender]!++));
      this.#inFlight[sender]!++;
    }
    if (frames.length > 0) this.#send(sender, frames);
  }

  /** Rate mode: message `k` of all goes out at `k / rate` seconds, senders taking turns. */
  async #paced(): Promise<void> {
    const { senders, messages, rate } = this.#o;
    const total = senders * messages;
    const start = performance.now();
    for (let k = 0; k < total && !this.#finished;) {
      const due = Math.min(total, Math.floor((performance.now() - start) * rate / 1000) + 1);
      for (; k < due; k++) {
        const sender = k % senders;
        this.#send(sender, [this.#say(sender, this.#sent[sender]!++)]);
      }
      if (k < total) await sleep(Math.max(0, start + k * 1000 / rate - performance.now()));
    }
  }

  /** The frame of a sender's message `seq`, without a newline. */
  #say(sender: number, seq: number): string {
    this.#sentCount++;
    const text = encodePayload(sender, seq, nowUs(), this.#o.size);
    return `{"type":"say","text":"${text}","ref":"r${seq}"}`;
  }

  /**
   * Sends frames from a client: over WebSocket each as a message of its own, over TCP as lines
   * through its outbox, in one write.
   */
  #send(client: number, frames: readonly string[]): void {
    const socket = this.#sockets[client];
    if (socket === undefined) {
      if (!this.#outboxes[client]?.push(encoder.encode(`${frames.join("\n")}\n`))) {
        this.#fail(`Sender ${client} could not queue its messages`);
      }
      return;
    }
    if (socket.bufferedAmount > SENDER_QUEUE_BYTES) {
      this.#fail(`Sender ${client} could not queue its messages`);
      return;
    }
    try {
      for (const frame of frames) socket.send(frame);
    } catch (error) {
      this.#fail(`Sender ${client}: ${errorText(error)}`);
    }
  }

  /** Who acknowledges a sender's message: the sender itself in chat, the next client in raw. */
  #ackerOf(sender: number): number {
    return this.#o.mode === "chat" ? sender : (sender + 1) % this.#o.clients;
  }

  // ---- Receiving ----

  async #read(client: number, conn: Deno.Conn): Promise<void> {
    const buffer = new Uint8Array(this.#o.readBufferBytes);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        this.#onChunk(client, buffer.subarray(0, n));
      }
    } catch (error) {
      if (!isDisconnectError(error)) throw error;
    }
    if (!this.#finished) this.#halt(this.#fail(`The server closed client ${client}`));
  }

  #onChunk(client: number, chunk: Uint8Array): void {
    const now = performance.now();
    this.#lastReadAt = now;
    let start = 0;
    let end = chunk.indexOf(NEWLINE);
    const tail = this.#tails[client];
    if (tail !== undefined) {
      if (end === -1) {
        this.#tails[client] = concat(tail, chunk);
        return;
      }
      const line = concat(tail, chunk.subarray(0, end + 1));
      this.#tails[client] = undefined;
      this.#onLine(client, line, 0, line.length - 1, now);
      start = end + 1;
      end = chunk.indexOf(NEWLINE, start);
    }
    while (end !== -1) {
      this.#onLine(client, chunk, start, end, now);
      start = end + 1;
      end = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.length) this.#tails[client] = chunk.slice(start);
    while (this.#toPump.length > 0) this.#pump(this.#toPump.pop()!);
  }

  /**
   * One WebSocket message, which must hold exactly one frame: copied as UTF-8 into a reused
   * buffer and checked as a TCP line is. A binary message or one with a newline is corrupted.
   */
  #onMessage(client: number, data: unknown): void {
    const now = performance.now();
    this.#lastReadAt = now;
    if (typeof data !== "string") {
      this.#onCorrupted(data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array());
    } else {
      if (this.#messageBytes.length < data.length * 3) {
        this.#messageBytes = new Uint8Array(data.length * 3);
      }
      const bytes = this.#messageBytes;
      const { written } = encoder.encodeInto(data, bytes);
      if (data.includes("\n")) this.#onCorrupted(bytes.subarray(0, written));
      else this.#onLine(client, bytes, 0, written, now);
    }
    while (this.#toPump.length > 0) this.#pump(this.#toPump.pop()!);
  }

  /** Checks one line (`start` to `end`, the newline or the end of a message, excluded). */
  #onLine(client: number, bytes: Uint8Array, start: number, end: number, now: number): void {
    if (end - start <= TYPE_PREFIX.length || !hasTypePrefix(bytes, start)) {
      // Before its hello is read, a silent client is taken for a person and sent a text prompt.
      if (this.#joined[client] === 0 && bytes[start] !== OPEN_BRACE) this.#prompts++;
      else this.#onCorrupted(bytes.subarray(start, end));
      return;
    }
    switch (bytes[start + TYPE_PREFIX.length]) {
      case TYPE_LETTER.message:
      case TYPE_LETTER.say:
        return this.#onCopy(client, bytes, start, end, now);
      case TYPE_LETTER.welcome:
        if (this.#o.mode === "chat") this.#markJoined(client);
        return;
      case TYPE_LETTER.probe:
        if (this.#o.mode === "raw") this.#markJoined(client);
        return;
      case TYPE_LETTER.error:
        return this.#onError(client, bytes.subarray(start, end));
    }
  }

  #onCorrupted(line: Uint8Array): void {
    this.#corrupted++;
    this.#firstCorrupted ??= decoder.decode(line.subarray(0, 200));
  }

  /** Counts an error frame; one before the welcome means that client cannot take part. */
  #onError(client: number, line: Uint8Array): void {
    const text = decoder.decode(line);
    this.#errors++;
    this.#firstError ??= text;
    if (this.#joined[client] === 0) this.#halt(`Client ${client} could not join: ${text}`);
  }

  #markJoined(client: number): void {
    if (this.#joined[client] === 1) return;
    this.#joined[client] = 1;
    if (++this.#joinedCount === this.#joinTarget) this.#everyoneJoined.resolve();
  }

  /** Checks one copy of a message: well formed, first of its kind, in order; then the counts. */
  #onCopy(client: number, bytes: Uint8Array, start: number, end: number, now: number): void {
    const { senders, messages, rate } = this.#o;
    const copy = this.#parsed;
    parsePayload(bytes, start, end, this.#pattern, copy);
    const { sender, seq } = copy;
    if (sender < 0 || sender >= senders || seq >= messages) {
      return this.#onCorrupted(bytes.subarray(start, end));
    }
    const stream = client * senders + sender;
    const slot = stream * messages + seq;
    if (this.#seen[slot] === 1) {
      this.#duplicates++;
      return;
    }
    this.#seen[slot] = 1;
    if (seq !== this.#nextSeq[stream]) this.#outOfOrder++;
    this.#nextSeq[stream] = Math.max(this.#nextSeq[stream]!, seq + 1);
    this.#latencies[this.#received++] = (now * 1000 - copy.timeUs) / 1000;
    if (rate === 0 && this.#ackerOf(sender) === client) {
      this.#inFlight[sender]!--;
      this.#toPump.push(sender);
    }
    if (this.#received === this.#expected) {
      this.#lastDeliveryAt = now;
      this.#complete.resolve();
    }
  }

  // ---- Ending ----

  /** Counts a failure and returns its message. */
  #fail(message: string): string {
    if (!this.#finished) {
      this.#failures++;
      this.#firstError ??= message;
    }
    return message;
  }

  #closeAll(): void {
    for (const conn of this.#conns) if (conn) closeQuietly(conn);
    for (const socket of this.#sockets) socket?.close();
  }

  #result(times: { connectMs: number; joinMs: number; settleMs: number }): LoadResult {
    const o = this.#o;
    const sendMs = this.#firstSendAt === 0
      ? 0
      : this.#received === this.#expected
      ? this.#lastDeliveryAt - this.#firstSendAt
      : performance.now() - this.#firstSendAt;
    return {
      mode: o.mode,
      tls: o.tls !== undefined,
      ws: o.ws === true,
      clients: o.clients,
      senders: o.senders,
      messages: o.messages,
      size: o.size,
      rate: o.rate,
      window: o.window,
      sent: this.#sentCount,
      expected: this.#expected,
      received: this.#received,
      lost: this.#expected - this.#received,
      duplicates: this.#duplicates,
      outOfOrder: this.#outOfOrder,
      corrupted: this.#corrupted,
      textPrompts: this.#prompts,
      errors: this.#errors,
      ...(this.#firstError === undefined ? {} : { firstError: this.#firstError }),
      ...(this.#firstCorrupted === undefined ? {} : { firstCorrupted: this.#firstCorrupted }),
      failures: this.#failures,
      joined: this.#joinedCount,
      connectMs: round3(times.connectMs),
      joinMs: round3(times.joinMs),
      settleMs: round3(times.settleMs),
      sendMs: round3(sendMs),
      deliveriesPerSecond: sendMs > 0 ? Math.round(this.#received / sendMs * 1000) : 0,
      latencyMs: percentiles(this.#latencies.subarray(0, this.#received)),
      ...(this.#stopped === undefined ? {} : { stopped: this.#stopped }),
    };
  }
}

function hasTypePrefix(bytes: Uint8Array, start: number): boolean {
  for (let i = 0; i < TYPE_PREFIX.length; i++) {
    if (bytes[start + i] !== TYPE_PREFIX[i]) return false;
  }
  return true;
}

/**
 * Opens a WebSocket that delivers binary messages as `ArrayBuffer`s; rejects if it fails or
 * closes before it opens.
 */
function openWebSocket(url: string): Promise<WebSocket> {
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  return new Promise((resolve, reject) => {
    socket.onopen = () => {
      socket.onopen = socket.onerror = socket.onclose = null;
      resolve(socket);
    };
    socket.onerror = (event) => {
      reject(new Error(event instanceof ErrorEvent ? event.message : `Cannot open ${url}`));
    };
    socket.onclose = (event) => {
      reject(new Error(`${url} closed before it opened: code ${event.code} ${event.reason}`));
    };
  });
}

/** Resolves once `promise` settles or `ms` have passed, whichever is first; never rejects. */
async function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  try {
    await Promise.race([promise.catch(() => {}), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

/**
 * Runs the load against a server on 127.0.0.1 and resolves to what it measured. Never rejects for
 * what the server does (failures are counted); stops by itself after `options.timeout` seconds.
 * @throws {RangeError} when the options cannot make a run.
 */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  checkOptions(options, options.tls !== undefined);
  return new LoadRun(options).run();
}

function checkOptions(o: Omit<LoadOptions, "tls">, tls: boolean): void {
  if (o.senders > o.clients) throw new RangeError("Senders cannot outnumber clients");
  if (o.mode === "raw" && o.clients < 2) throw new RangeError("Raw mode needs 2 clients or more");
  if (o.clients * o.senders * o.messages > MAX_TRACKED) {
    throw new RangeError(`Too many copies to track: at most ${MAX_TRACKED}`);
  }
  if (o.mode === "raw" && tls) throw new RangeError("The raw forwarder does not speak TLS");
  if (o.mode === "raw" && o.ws) {
    throw new RangeError("The raw forwarder does not speak WebSocket");
  }
  if (tls && o.ws) throw new RangeError("Use --tls or --ws, not both");
  if (o.mode === "chat" && o.size > 2000) {
    throw new RangeError("The chat server takes at most 2000 characters per message");
  }
}

// ==== Command line ====

const USAGE = `Load generator for the chat benchmark: prints one JSON result.

USAGE:
  deno run --allow-net bench/load.ts --port PORT [OPTIONS]

OPTIONS:
      --port PORT       Port of the server on ${LOAD_HOST}        (required)
      --mode MODE       chat (hello, welcome, say) or raw (the raw forwarder)
                                                          (default: chat)
      --clients N       Connections                       (default: 50)
      --senders S       How many of them send             (default: 5)
      --messages M      Messages per sender               (default: 1000)
      --size BYTES      Bytes of each message's text      (default: 100)
      --rate MSG/S      Messages a second from all senders; 0 sends as fast as the
                        window allows                     (default: 0)
      --window W        Messages in flight per sender     (default: 32)
      --idle N          N clients join, then one message goes to all of them
                        (sets --clients N --senders 1 --messages 1)
      --timeout SECONDS Stop after this long, finished or not (default: 60)
      --read-buffer BYTES
                        Each connection's read buffer     (default: 16384, 4096 over
                                                          2000 clients)
      --tls             Connect with TLS (the chat server's TLS port); needs --ca
      --ca FILE         The certificate (PEM) to trust for --tls; it must name
                        ${LOAD_HOST}. Read it with --allow-read=FILE
      --ws              Connect with WebSocket to ws://${LOAD_HOST}:PORT${WS_PATH} (the chat
                        server's web port), one frame per message
      --sync            Write "phase ready" and "phase end" to standard error and
                        wait for a line on standard input after each
  -h, --help            Show this help`;

/** Reads a whole-number flag within limits; throws a `RangeError` naming the flag. */
function wholeNumber(
  values: Record<string, unknown>,
  flag: string,
  fallback: number,
  min = 0,
): number {
  const text = values[flag];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (typeof text !== "string" || !/^\d+$/.test(text) || value < min) {
    throw new RangeError(`--${flag} must be a whole number of at least ${min}, not "${text}"`);
  }
  return value;
}

/** What the command line asks for: the options (without `onPhase` and `tls`) and the flags. */
export type LoadArgs = Omit<LoadOptions, "onPhase" | "tls"> & {
  sync: boolean;
  /** With `--tls`: the certificate file to trust. */
  caFile: string | undefined;
};

/** Parses the command line into options; `undefined` for `--help`. */
export function parseLoadArgs(args: string[]): LoadArgs | undefined {
  const text = { type: "string" } as const;
  const { values } = parseArgs({
    args,
    options: {
      port: text,
      mode: { type: "string", default: "chat" },
      clients: text,
      senders: text,
      messages: text,
      size: text,
      rate: text,
      window: text,
      idle: text,
      timeout: text,
      "read-buffer": text,
      tls: { type: "boolean", default: false },
      ca: text,
      ws: { type: "boolean", default: false },
      sync: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return undefined;
  if (values.port === undefined) throw new RangeError("--port is required");
  if (values.mode !== "chat" && values.mode !== "raw") {
    throw new RangeError(`--mode must be chat or raw, not "${values.mode}"`);
  }
  if (values.tls !== (values.ca !== undefined)) {
    throw new RangeError("--tls and --ca FILE go together");
  }
  const idle = wholeNumber(values, "idle", 0);
  const clients = idle || wholeNumber(values, "clients", 50, 1);
  return {
    port: wholeNumber(values, "port", 0, 1),
    mode: values.mode,
    clients,
    senders: idle ? 1 : wholeNumber(values, "senders", 5, 1),
    messages: idle ? 1 : wholeNumber(values, "messages", 1000, 1),
    size: wholeNumber(values, "size", 100, 1),
    rate: wholeNumber(values, "rate", 0),
    window: wholeNumber(values, "window", 32, 1),
    timeout: wholeNumber(values, "timeout", 60, 1),
    readBufferBytes: wholeNumber(values, "read-buffer", clients > 2000 ? 4096 : 16384, 256),
    ws: values.ws,
    sync: values.sync,
    caFile: values.ca,
  };
}

/** Writes a phase marker to standard error and waits for a line on standard input. */
async function syncPhase(phase: Phase): Promise<void> {
  await writeAll(Deno.stderr, encoder.encode(`phase ${phase}\n`));
  const buffer = new Uint8Array(64);
  while (true) {
    const n = await Deno.stdin.read(buffer);
    if (n === null || buffer.subarray(0, n).includes(NEWLINE)) return;
  }
}

/** Runs the command line; resolves to the exit code (2 for a usage error). */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseLoadArgs(args);
    if (parsed === undefined) {
      console.log(USAGE);
      return 0;
    }
    checkOptions(parsed, parsed.caFile !== undefined);
  } catch (error) {
    console.error(`load: ${errorText(error)}\n${USAGE}`);
    return 2;
  }
  const { sync, caFile, ...load } = parsed;
  let tls: LoadOptions["tls"];
  if (caFile !== undefined) {
    try {
      tls = { caCerts: [await Deno.readTextFile(caFile)] };
    } catch (error) {
      console.error(`load: Cannot read ${caFile}: ${errorText(error)}`);
      return 2;
    }
  }
  const options: LoadOptions = { ...load, tls, ...(sync ? { onPhase: syncPhase } : {}) };
  const result = await runLoad(options);
  console.log(JSON.stringify(result));
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
