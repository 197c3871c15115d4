/**
 * Tests for the outgoing side of a connection: the bounded outbox and the write loops.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type ByteWriter, joinChunks, Outbox, writeAll, writeLinesSync } from "./outbox.ts";
import { encodeFrame } from "../protocol.ts";
import { bytesOf } from "../test_util.ts";

/**
 * A writer that records each call, accepts at most `maxPerCall` bytes per call, and can be held so
 * that writes stay pending until released.
 */
class FakeWriter implements ByteWriter {
  calls: Uint8Array[] = [];
  #maxPerCall: number;
  #gate: PromiseWithResolvers<void> | undefined;

  constructor(maxPerCall = Infinity) {
    this.#maxPerCall = maxPerCall;
  }

  get written(): Uint8Array {
    return joinChunks(this.calls);
  }

  hold(): void {
    this.#gate = Promise.withResolvers();
  }

  release(): void {
    this.#gate?.resolve();
    this.#gate = undefined;
  }

  async write(bytes: Uint8Array): Promise<number> {
    const n = Math.min(bytes.length, this.#maxPerCall);
    this.calls.push(bytes.slice(0, n));
    if (this.#gate) await this.#gate.promise;
    return n;
  }
}

// ==== Outgoing queue ====

Deno.test("Outbox writes everything in order through partial writes", async () => {
  const writer = new FakeWriter(3);
  const outbox = new Outbox(writer);
  const frames = ["one", "two é", "three 😀"].map((text) => encodeFrame({ type: "say", text }));
  for (const frame of frames.slice(0, 2)) assert.ok(outbox.push(frame));
  await Promise.resolve();
  assert.ok(outbox.push(frames[2]!));
  await outbox.drained();
  assert.deepStrictEqual(writer.written, joinChunks(frames));
  assert.ok(writer.calls.every((c) => c.length <= 3));
  assert.equal(outbox.queuedBytes, 0);
});

Deno.test("Outbox writes what one turn queues in one write, and what queues meanwhile in the next", async () => {
  const writer = new FakeWriter();
  writer.hold();
  const outbox = new Outbox(writer);
  const [a, b, c, d] = ["a", "b", "c", "d"].map((text) => encodeFrame({ type: "say", text }));
  assert.ok(outbox.push(a!) && outbox.push(b!));
  assert.equal(writer.calls.length, 0, "nothing is written before the turn ends");
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(writer.calls.length, 1);
  assert.ok(outbox.push(c!) && outbox.push(d!));
  writer.release();
  await outbox.drained();
  assert.deepStrictEqual(writer.calls, [joinChunks([a!, b!]), joinChunks([c!, d!])]);
  assert.equal(outbox.queuedBytes, 0);
});

Deno.test("Outbox.push() refuses, queuing nothing, past maxBytes", async () => {
  const writer = new FakeWriter();
  writer.hold();
  const outbox = new Outbox(writer, { maxBytes: 10 });
  assert.equal(outbox.push(new Uint8Array(11)), false);
  assert.equal(outbox.queuedBytes, 0);
  assert.equal(outbox.push(new Uint8Array(6).fill(1)), true);
  assert.equal(outbox.push(new Uint8Array(5).fill(2)), false);
  assert.equal(outbox.queuedBytes, 6);
  assert.equal(outbox.push(new Uint8Array(4).fill(3)), true);
  assert.equal(outbox.queuedBytes, 10);
  assert.equal(outbox.push(new Uint8Array(1).fill(4)), false);
  writer.release();
  await outbox.drained();
  assert.equal(outbox.queuedBytes, 0);
  assert.deepStrictEqual(writer.written, Uint8Array.of(1, 1, 1, 1, 1, 1, 3, 3, 3, 3));
  assert.equal(outbox.push(new Uint8Array(10)), true);
  await outbox.drained();
  assert.equal(outbox.queuedBytes, 0);
});

Deno.test("Outbox reports a failed write once and refuses later pushes", async () => {
  const failure = new Error("Connection reset");
  let calls = 0;
  const errors: unknown[] = [];
  const writer: ByteWriter = {
    write(bytes: Uint8Array): Promise<number> {
      calls++;
      // The first call takes a few bytes; the next one fails with frames still queued.
      return calls === 1 ? Promise.resolve(Math.min(bytes.length, 4)) : Promise.reject(failure);
    },
  };
  const outbox = new Outbox(writer, { onError: (error) => errors.push(error) });
  assert.ok(outbox.push(encodeFrame({ type: "ping" })));
  assert.ok(outbox.push(encodeFrame({ type: "pong" })));
  await outbox.drained();
  assert.deepStrictEqual(errors, [failure]);
  assert.equal(outbox.queuedBytes, 0);
  assert.equal(outbox.push(encodeFrame({ type: "ping" })), false);
  await outbox.drained();
  assert.equal(outbox.queuedBytes, 0);
  assert.equal(errors.length, 1);
  assert.equal(calls, 2);
});

Deno.test("writeAll() loops until a partial writer has taken every byte", async () => {
  const writer = new FakeWriter(1);
  const bytes = bytesOf("héllo 😀");
  await writeAll(writer, bytes);
  assert.deepStrictEqual(writer.written, bytes);
  assert.equal(writer.calls.length, bytes.length);
  await writeAll(writer, new Uint8Array(0));
  assert.equal(writer.calls.length, bytes.length);
});

Deno.test("writeLinesSync() ends every line with a newline and loops through partial writes", () => {
  const taken: Uint8Array[] = [];
  const writer = {
    writeSync(bytes: Uint8Array): number {
      const n = Math.min(2, bytes.length);
      taken.push(bytes.slice(0, n));
      return n;
    },
  };
  writeLinesSync(writer, ["é1", "b"]);
  assert.equal(new TextDecoder().decode(joinChunks(taken)), "é1\nb\n");
});
