/**
 * A `node:net` socket (or a `node:tls` one, which is one too) behind the {@linkcode Transport}
 * seam: for what `Deno.connect` cannot do, such as choosing the local address or checking a TLS
 * server's key by its fingerprint instead of its name.
 *
 * @module
 */

import type net from "node:net";
import type { Transport } from "./conn.ts";

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
