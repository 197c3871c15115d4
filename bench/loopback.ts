/**
 * Connections from any loopback address, so that one machine can play many: on Linux every
 * address in 127.0.0.0/8 is this computer, and a connection bound to `127.1.0.7` reaches a
 * server on `127.0.0.1` looking as if it came from another computer. The benchmark's hostile
 * scenario and the attack tests use it to give bystanders and attackers addresses of their own,
 * as the server's per-address limits expect of separate people.
 *
 * `Deno.connect` cannot choose its local address; `node:net` can, so these connections are
 * `node:net` sockets behind the {@linkcode Transport} seam.
 *
 * @module
 */

import net from "node:net";
import { fail, ok, type Result, type ServerAddress } from "../protocol.ts";
import type { Transport } from "../net/conn.ts";

/**
 * The `index`-th address of a `group` of loopback addresses: `127.<group>.<i / 250>.<i % 250 + 1>`.
 * Groups keep kinds of clients apart (bystanders in one, attackers in another); group 0 starts
 * at `127.0.0.1`, the usual loopback address.
 * @throws {RangeError} for a group outside 0-255 or an index past 62,499.
 */
export function loopbackAddress(group: number, index: number): string {
  if (!Number.isInteger(group) || group < 0 || group > 255) {
    throw new RangeError(`No loopback group ${group}: use 0-255`);
  }
  if (!Number.isInteger(index) || index < 0 || index >= 250 * 250) {
    throw new RangeError(`No loopback address ${index} in a group: use 0-62499`);
  }
  return `127.${group}.${Math.floor(index / 250)}.${(index % 250) + 1}`;
}

/**
 * A dialer (as `ChatClientOptions.dial` takes) whose connections come from `localAddress`.
 * Fails with one line when the connection cannot be made within `timeoutMs`.
 */
export function dialFrom(
  localAddress: string,
): (address: ServerAddress, timeoutMs: number) => Promise<Result<Transport>> {
  return (address, timeoutMs) => connectFrom(localAddress, address, timeoutMs);
}

/** Connects to `address` from `localAddress`; see {@linkcode dialFrom}. */
export function connectFrom(
  localAddress: string,
  address: ServerAddress,
  timeoutMs = 10_000,
): Promise<Result<Transport>> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address.hostname, port: address.port, localAddress });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(fail(`Cannot connect from ${localAddress}: timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("error", (error) => {
      clearTimeout(timer);
      resolve(fail(`Cannot connect from ${localAddress}: ${error.message}`));
    });
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      socket.setNoDelay(true);
      resolve(ok(new SocketTransport(socket, address.hostname)));
    });
  });
}

/**
 * A `node:net` socket as a {@linkcode Transport}. Reading pulls: the socket is paused while a
 * chunk waits to be read, so a reader that stops reading makes the server's writes back up, as
 * with a `Deno.TcpConn`. Node's error codes become the `Deno.errors` that mean a peer went away.
 */
class SocketTransport implements Transport {
  readonly kind = "tcp";
  readonly remoteAddress: string;
  #socket: net.Socket;
  #chunks: Uint8Array[] = [];
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(socket: net.Socket, remoteAddress: string) {
    this.#socket = socket;
    this.remoteAddress = remoteAddress;
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
