/**
 * Tests for pacing and liveness: the token bucket, the heartbeat rule, the reconnection backoff.
 *
 * @module
 */

import assert from "node:assert/strict";
import { heartbeat, TokenBucket } from "./pace.ts";

// ==== TokenBucket ====

Deno.test("TokenBucket allows a burst, then one token per 1/rate seconds", () => {
  let now = 0;
  const bucket = new TokenBucket({ rate: 5, burst: 3, now: () => now });
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [
    true,
    true,
    true,
    false,
  ]);
  assert.equal(bucket.wait(), 200);
  now = 199;
  assert.equal(bucket.take(), false);
  now = 200;
  assert.equal(bucket.wait(), 0);
  assert.equal(bucket.take(), true);
  assert.equal(bucket.take(), false);
});

Deno.test("TokenBucket saves up no more than its burst after a quiet spell", () => {
  let now = 0;
  const bucket = new TokenBucket({ rate: 10, burst: 2, now: () => now });
  now = 60_000;
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take()], [true, true, false]);
});

Deno.test("TokenBucket with rate 0 never refuses and never waits", () => {
  const bucket = new TokenBucket({ rate: 0, burst: 1, now: () => 0 });
  for (let i = 0; i < 1000; i++) assert.equal(bucket.take(), true);
  assert.equal(bucket.wait(), 0);
});

Deno.test("heartbeat() pings once after the interval and gives up after twice it", () => {
  assert.equal(heartbeat(29_999, 30_000, false), "fine");
  assert.equal(heartbeat(30_000, 30_000, false), "ping");
  assert.equal(heartbeat(45_000, 30_000, true), "fine", "already pinged: wait for the answer");
  assert.equal(heartbeat(60_000, 30_000, true), "give_up");
  assert.equal(heartbeat(60_000, 30_000, false), "give_up");
});

Deno.test("TokenBucket takes a cost of several tokens, and at most a full bucket", () => {
  let now = 0;
  const bucket = new TokenBucket({ rate: 5, burst: 10, now: () => now });
  assert.ok(bucket.take(5));
  assert.ok(bucket.take(5));
  assert.equal(bucket.take(5), false, "nothing left");
  assert.equal(bucket.wait(5), 1000, "five tokens come back in a second");
  now = 1000;
  assert.ok(bucket.take(5));
  // A cost over the burst costs the whole burst: it is never refused for ever.
  now = 10_000;
  assert.ok(bucket.full);
  assert.ok(bucket.take(50));
  assert.equal(bucket.full, false);
});
