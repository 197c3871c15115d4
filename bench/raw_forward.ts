#!/usr/bin/env -S deno run --allow-net
/**
 * The raw forwarding ceiling for the benchmark: a minimal TCP relay that copies every whole line it
 * reads from one connection to every other connection, with no parsing, no names and no rooms. It
 * writes through the same bounded {@linkcode Outbox} as the chat server, so the chat server's
 * results can be given as ratios to this, not as absolute times that drift on a shared machine.
 *
 * ```sh
 * deno run --allow-net bench/raw_forward.ts 0     # prints "listening on <port>"; Ctrl+C stops it
 * ```
 *
 * Lines from different senders interleave, so each connection keeps the unfinished tail of its
 * last read and only whole lines (up to the last `\n` of a chunk) are copied.
 *
 * @module
 */

import { closeQuietly, isDisconnectError } from "../net/conn.ts";
import { Outbox } from "../net/outbox.ts";

// ==== Constants ====

/** Where the forwarder listens: loopback only. */
export const RAW_HOST = "127.0.0.1";
/** The size of each connection's reused read buffer, in bytes. */
export const RAW_READ_BUFFER_BYTES = 8 * 1024;
/** Bytes queued for one connection before it counts as too slow and is closed (as the server). */
export const RAW_MAX_QUEUE_BYTES = 1024 * 1024;

const NEWLINE = 0x0a;

// ==== The forwarder ====

/** Options for {@linkcode startRawForwarder}. */
export interface RawForwarderOptions {
  /**
   * The TCP port; 0 picks a free one.
   * @default {0}
   */
  port?: number;
  /**
   * Bytes queued for one connection before it is closed as too slow.
   * @default {RAW_MAX_QUEUE_BYTES}
   */
  maxQueueBytes?: number;
}

/** A running forwarder. */
export interface RawForwarder {
  /** Where it listens. */
  readonly addr: Deno.NetAddr;
  /** Stops accepting, closes every connection and waits for every handler to end. */
  close(): Promise<void>;
}

/** One relayed connection: its socket, its outbox and the unfinished tail of its last read. */
interface Relay {
  conn: Deno.TcpConn;
  outbox: Outbox;
  tail: Uint8Array | undefined;
}

/** Starts the forwarder on 127.0.0.1; it is listening when this returns. */
export function startRawForwarder(options: RawForwarderOptions = {}): RawForwarder {
  const listener = Deno.listen({ hostname: RAW_HOST, port: options.port ?? 0 });
  const maxBytes = options.maxQueueBytes ?? RAW_MAX_QUEUE_BYTES;
  const relays = new Set<Relay>();
  const handlers = new Set<Promise<void>>();
  const accepting = (async () => {
    for await (const conn of listener) {
      conn.setNoDelay(true);
      const relay: Relay = { conn, tail: undefined, outbox: new Outbox(conn, { maxBytes }) };
      relays.add(relay);
      const handler = relayLines(relay, relays).finally(() => {
        relays.delete(relay);
        handlers.delete(handler);
      });
      handlers.add(handler);
    }
  })();
  async function close(): Promise<void> {
    listener.close();
    await accepting.catch(() => {});
    for (const relay of relays) closeQuietly(relay.conn);
    await Promise.all(handlers);
  }
  return { addr: listener.addr as Deno.NetAddr, close };
}

/** Reads one connection until it ends, copying each batch of whole lines to every other one. */
async function relayLines(relay: Relay, relays: Set<Relay>): Promise<void> {
  const buffer = new Uint8Array(RAW_READ_BUFFER_BYTES);
  try {
    while (true) {
      const n = await relay.conn.read(buffer);
      if (n === null) break;
      const lines = wholeLines(relay, buffer.subarray(0, n));
      if (lines) copyToOthers(lines, relay, relays);
    }
  } catch (error) {
    if (!isDisconnectError(error)) throw error;
  } finally {
    relays.delete(relay);
    closeQuietly(relay.conn);
  }
}

/**
 * The whole lines of a chunk, joined with the tail kept from earlier reads, as a copy the caller
 * may keep; what follows the last newline becomes the new tail.
 */
function wholeLines(relay: Relay, chunk: Uint8Array): Uint8Array | undefined {
  const last = chunk.lastIndexOf(NEWLINE);
  if (last === -1) {
    relay.tail = relay.tail ? concat(relay.tail, chunk) : chunk.slice();
    return undefined;
  }
  const head = chunk.subarray(0, last + 1);
  const lines = relay.tail ? concat(relay.tail, head) : head.slice();
  relay.tail = last + 1 < chunk.length ? chunk.slice(last + 1) : undefined;
  return lines;
}

/** Queues the same bytes for every connection but the sender; one too slow to keep up is closed. */
function copyToOthers(bytes: Uint8Array, from: Relay, relays: Set<Relay>): void {
  for (const relay of relays) {
    if (relay !== from && !relay.outbox.push(bytes)) closeQuietly(relay.conn);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

// ==== Command line ====

const USAGE = `Raw forwarding ceiling: copies each line to every other connection.

USAGE:
  deno run --allow-net bench/raw_forward.ts [PORT]

ARGUMENTS:
  PORT   TCP port on ${RAW_HOST}; 0 picks a free one   (default: 0)`;

/** Runs the forwarder until SIGINT or SIGTERM; resolves to the exit code (2 for a usage error). */
export async function main(args: string[]): Promise<number> {
  const text = args[0] ?? "0";
  const port = Number(text);
  if (args.length > 1 || !Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`raw_forward: PORT must be a whole number from 0 to 65535, not "${text}"`);
    console.error(USAGE);
    return 2;
  }
  const forwarder = startRawForwarder({ port });
  console.log(`listening on ${forwarder.addr.port}`);
  await untilSignal();
  await forwarder.close();
  return 0;
}

/** Waits for Ctrl+C (SIGINT) or SIGTERM. */
function untilSignal(): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, resolve);
  return promise;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
