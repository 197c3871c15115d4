/**
 * Helpers shared by the test files: a deadline for waits, and a real server on a free loopback
 * port with clients connected to it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ChatClient, type ChatEvent } from "./client.ts";
import {
  type ClientFrame,
  type ClientInfo,
  decodeServerFrame,
  encodeFrame,
  type ErrorCode,
  type ErrorFrame,
  readLines,
  type ServerFrame,
} from "./protocol.ts";
import { type ChatServer, type ServerOptions, startServer } from "./server.ts";

const encoder = new TextEncoder();

/** The longest any single wait in the tests may take, in milliseconds: a guard, not a sleep. */
export const WAIT_MS = 10_000;

/** Resolves like `promise`, or rejects once `ms` have passed without an answer. */
export async function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts a server on a free loopback port, runs `fn`, and always closes the server. */
export async function withServer(
  fn: (server: ChatServer) => Promise<void>,
  options: ServerOptions = {},
): Promise<void> {
  const server = startServer({ hostname: "127.0.0.1", port: 0, ...options });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

/** Connects a client to a test server under `name`. */
export function connect(server: ChatServer, name: string, info?: ClientInfo): Promise<ChatClient> {
  return ChatClient.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
    name,
    ...(info ? { info } : {}),
  });
}

/** The frame (or event) of one type. */
export type FrameOf<T extends ChatEvent["type"]> = Extract<ChatEvent, { type: T }>;

/** Anything frames can be read from: a {@linkcode ChatClient} or a {@linkcode RawClient}. */
export interface FrameSource {
  next(): Promise<ChatEvent | undefined>;
}

/** Reads frames until one of the given type (matching `match`) arrives; fails if the stream ends. */
export async function until<T extends ChatEvent["type"]>(
  source: FrameSource,
  type: T,
  match: (frame: FrameOf<T>) => boolean = () => true,
): Promise<FrameOf<T>> {
  while (true) {
    const frame = await within(source.next(), `a ${type} frame`);
    if (frame === undefined) throw new Error(`Connection ended while waiting for ${type}`);
    if (frame.type === type && match(frame as FrameOf<T>)) return frame as FrameOf<T>;
  }
}

/** Reads frames until one matches; returns all of them, the match last. */
export async function framesUntil(
  source: FrameSource,
  match: (frame: ChatEvent) => boolean,
): Promise<ChatEvent[]> {
  const frames: ChatEvent[] = [];
  while (true) {
    const frame = await within(source.next(), "a frame");
    if (frame === undefined) throw new Error("Connection ended while waiting for a frame");
    frames.push(frame);
    if (match(frame)) return frames;
  }
}

/** Waits for the next error frame and checks its code. */
export async function expectError(source: FrameSource, code: ErrorCode): Promise<ErrorFrame> {
  const error = await until(source, "error");
  assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
  return error;
}

/** A client on a bare socket, for sending what a real client never would. */
export class RawClient {
  #conn: Deno.TcpConn;
  #lines: AsyncGenerator<string>;
  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    this.#lines = readLines(conn);
  }
  /** Connects to a test server (or to any port on 127.0.0.1). */
  static async open(server: ChatServer | number): Promise<RawClient> {
    const port = typeof server === "number" ? server : server.addr.port;
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }
  async write(data: string | Uint8Array | ClientFrame): Promise<void> {
    const bytes = typeof data === "string"
      ? encoder.encode(data)
      : data instanceof Uint8Array
      ? data
      : encodeFrame(data);
    let offset = 0;
    while (offset < bytes.length) offset += await this.#conn.write(bytes.subarray(offset));
  }
  /** The next frame, or `undefined` once the server has closed the connection. */
  async next(): Promise<ServerFrame | undefined> {
    try {
      const { value, done } = await this.#lines.next();
      if (done) return undefined;
      const decoded = decodeServerFrame(value);
      assert.ok(decoded.ok, `server sent an invalid frame: ${value}`);
      return decoded.frame;
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) return undefined;
      throw error;
    }
  }
  /** Resolves once the server has closed the connection, skipping frames until then. */
  async closedByServer(): Promise<void> {
    while (await within(this.next(), "the server to close the connection") !== undefined);
  }
  close(): void {
    try {
      this.#conn.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
  }
}

/**
 * Reads a text stream as it arrives: `waitFor` resolves once a marker has been seen, and `done`
 * resolves with the whole text once the stream ends.
 */
export class StreamText {
  text = "";
  readonly done: Promise<string>;
  #ended = false;
  #waiters = new Set<{ marker: string; resolve: () => void; reject: (error: Error) => void }>();

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = this.#pump(stream);
  }

  /** Resolves once the text so far contains `marker`; rejects if the stream ends first. */
  waitFor(marker: string): Promise<void> {
    if (this.text.includes(marker)) return Promise.resolve();
    if (this.#ended) return Promise.reject(this.#missing(marker));
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiters.add({ marker, resolve, reject });
    return promise;
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<string> {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        this.text += value;
        for (const waiter of this.#waiters) {
          if (!this.text.includes(waiter.marker)) continue;
          this.#waiters.delete(waiter);
          waiter.resolve();
        }
      }
    } finally {
      reader.releaseLock();
      this.#ended = true;
      for (const waiter of this.#waiters) waiter.reject(this.#missing(waiter.marker));
      this.#waiters.clear();
    }
    return this.text;
  }

  #missing(marker: string): Error {
    return new Error(`Output ended without ${JSON.stringify(marker)}:\n${this.text}`);
  }
}
