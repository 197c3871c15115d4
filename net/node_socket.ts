/**
 * A `node:net` socket (or a `node:tls` one, which is one too) behind the {@linkcode Transport}
 * seam: for what `Deno.connect` cannot do, such as choosing the local address or checking a TLS
 * server's key by its fingerprint instead of its name.
 *
 * @module
 */

import type net from "node:net";
import type { Transport, TransportListener } from "./conn.ts";

/**
 * A `node:net` socket as a {@linkcode Transport}. Reading pulls: the socket is paused while a
 * chunk waits to be read, so a reader that stops reading makes the server's writes back up, as
 * with a `Deno.TcpConn`. Node's error codes become the `Deno.errors` that mean a peer went away.
 */
export class SocketTransport implements Transport {
  readonly kind: string;
  readonly remoteAddress: string;
  #socket: net.Socket;
  #chunks: Uint8Array[] = [];
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  /** Wraps a connected socket; `kind` says what carries it (`tcp`, `tls`). */
  constructor(socket: net.Socket, remoteAddress: string, kind = "tcp") {
    this.#socket = socket;
    this.remoteAddress = remoteAddress;
    this.kind = kind;
    socket.pause();
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      socket.pause();
      this.#wakeReader();
    });
    socket.on("end", () => this.#finish());
    socket.on("close", () => this.#finish());
    socket.on("error", (error) => {
      this.#error ??= denoError(error);
      this.#wakeReader();
    });
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#wake = resolve;
      this.#socket.resume();
      await promise;
    }
    const chunk = this.#chunks[0]!;
    const n = Math.min(buffer.length, chunk.length);
    buffer.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    return n;
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#socket.destroyed) return Promise.reject(new Deno.errors.BrokenPipe("closed"));
    return new Promise((resolve, reject) => {
      this.#socket.write(bytes, (error) => {
        if (error) reject(denoError(error));
        else resolve(bytes.length);
      });
    });
  }

  close(): void {
    this.#socket.destroy();
    this.#finish();
  }

  #finish(): void {
    this.#ended = true;
    this.#wakeReader();
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** A `node:net` error as the `Deno.errors` class that means the same (a peer gone, mostly). */
function denoError(error: Error & { code?: string }): Error {
  switch (error.code) {
    case "ECONNRESET":
      return new Deno.errors.ConnectionReset(error.message);
    case "EPIPE":
    case "ERR_STREAM_DESTROYED":
    case "ERR_STREAM_WRITE_AFTER_END":
      return new Deno.errors.BrokenPipe(error.message);
    case "ECONNABORTED":
      return new Deno.errors.ConnectionAborted(error.message);
    case "ECANCELED": // our own close, with a write still pending
      return new Deno.errors.Interrupted(error.message);
    default:
      return error;
  }
}

// ==== Serving with node's servers ====

/** A listener that stops in the background: `finished` resolves once it has. */
export interface StoppingListener extends TransportListener {
  /** Resolves once the listener has stopped, after {@linkcode TransportListener.close}. */
  readonly finished: Promise<void>;
}

/**
 * The connections a node server (`node:tls`, `node:http`) has accepted, waiting for the gateway:
 * at most `max`; one offered past that, or after {@linkcode AcceptQueue.close}, is refused.
 */
export class AcceptQueue {
  #waiting: Transport[] = [];
  #wake: (() => void) | undefined;
  #closed = false;
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** Whether it still takes connections. */
  get open(): boolean {
    return !this.#closed && this.#waiting.length < this.#max;
  }

  /** Queues a connection for `accept`; `false` (the caller closes it) when full or closed. */
  offer(transport: Transport): boolean {
    if (!this.open) return false;
    this.#waiting.push(transport);
    this.#wake?.();
    return true;
  }

  /** The next connection, or `undefined` once closed. */
  async accept(): Promise<Transport | undefined> {
    while (this.#waiting.length === 0) {
      if (this.#closed) return undefined;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
    return this.#waiting.shift();
  }

  /** Takes no more; the waiting ones are closed, and a pending `accept` ends. */
  close(): void {
    this.#closed = true;
    for (const transport of this.#waiting.splice(0)) transport.close();
    this.#wake?.();
  }
}

/** What {@linkcode listenNode} needs of a node server. */
export interface NodeServer {
  listen(port: number, hostname: string, done: () => void): unknown;
  once(event: "error", listener: (error: Error) => void): unknown;
  once(event: "close", listener: () => void): unknown;
  off(event: "error", listener: (error: Error) => void): unknown;
  address(): unknown;
}

/**
 * Starts a node server listening; resolves with its address (the real port when 0 was asked
 * for) and a promise of its end.
 * @throws the listening errors (`EADDRINUSE`, `EADDRNOTAVAIL`...).
 */
export async function listenNode(
  server: NodeServer,
  hostname: string,
  port: number,
): Promise<{ addr: { hostname: string; port: number }; finished: Promise<void> }> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const finished = new Promise<void>((resolve) => server.once("close", () => resolve()));
  const address = server.address() as { port?: number } | null;
  return { addr: { hostname, port: address?.port ?? port }, finished };
}
