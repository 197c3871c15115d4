/**
 * Tests for the gateway's accept loop: failing accepts (running out of file descriptors) back off
 * instead of spinning and flooding the log, and closing never waits for a backoff to end.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Hub } from "../chat/hub.ts";
import { within } from "../test_util.ts";
import type { Transport, TransportListener } from "./conn.ts";
import { ACCEPT_RETRY_MAX_MS, acceptRetryMs, Gateway, type GatewayOptions } from "./listener.ts";

/** A listener whose `accept` fails `failures` times, then reports itself closed. */
class FailingListener implements TransportListener {
  readonly kind = "fake";
  readonly addr = { hostname: "127.0.0.1", port: 1 };
  readonly attempts: number[] = [];
  #failures: number;
  #closed = Promise.withResolvers<undefined>();
  #waiting: { count: number; resolve: () => void } | undefined;

  constructor(failures: number) {
    this.#failures = failures;
  }

  /** Resolves once `accept` has been called `count` times. */
  attempted(count: number): Promise<void> {
    if (this.attempts.length >= count) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiting = { count, resolve };
    return promise;
  }

  accept(): Promise<Transport | undefined> {
    this.attempts.push(performance.now());
    if (this.#waiting && this.attempts.length >= this.#waiting.count) this.#waiting.resolve();
    if (this.attempts.length <= this.#failures) {
      return Promise.reject(new Error("Too many open files (os error 24)"));
    }
    return this.#closed.promise;
  }

  close(): void {
    this.#closed.resolve(undefined);
  }
}

function gatewayOptions(log: string[]): GatewayOptions {
  return {
    helloTimeoutMs: 10_000,
    promptDelayMs: 1000,
    nameTimeoutMs: 10_000,
    maxQueueBytes: 1 << 20,
    maxFrameBytes: 1 << 16,
    heartbeatMs: 30_000,
    rate: 0,
    burst: 1,
    serverName: "test",
    log: (line) => log.push(line),
    face: undefined,
    bans: { find: () => undefined },
    maxClients: 0,
    maxClientsPerAddress: 0,
  };
}

Deno.test("acceptRetryMs() starts at a few milliseconds and doubles up to a second", () => {
  assert.deepEqual([1, 2, 3, 4, 5].map(acceptRetryMs), [5, 10, 20, 40, 80]);
  assert.equal(acceptRetryMs(8), 640);
  assert.equal(acceptRetryMs(9), ACCEPT_RETRY_MAX_MS);
  assert.equal(acceptRetryMs(1000), ACCEPT_RETRY_MAX_MS);
});

Deno.test("failing accepts back off, doubling the wait, with one log line each", async () => {
  const log: string[] = [];
  const hub = new Hub();
  const gateway = new Gateway(hub, gatewayOptions(log));
  const listener = new FailingListener(5);
  gateway.serve(listener);
  try {
    // The sixth attempt is the one that finds the listener open again.
    await within(listener.attempted(6), "six accept attempts");
    const gaps = listener.attempts.slice(1).map((at, i) => at - listener.attempts[i]!);
    gaps.forEach((gap, i) => {
      // Timers never fire early; allow a millisecond of clock rounding.
      assert.ok(gap >= acceptRetryMs(i + 1) - 1, `gap ${i + 1}: ${gap} ms`);
    });
    assert.deepEqual(
      log,
      [5, 10, 20, 40, 80].map((ms) =>
        `! accept failed: Too many open files; trying again in ${ms} ms`
      ),
    );
  } finally {
    await gateway.close("done");
    hub.close();
  }
});

Deno.test("closing the gateway during an accept backoff does not wait for it", async () => {
  const log: string[] = [];
  const hub = new Hub();
  const gateway = new Gateway(hub, gatewayOptions(log));
  const listener = new FailingListener(Infinity);
  gateway.serve(listener);
  try {
    // Nine failures in a row: the wait is now a full second.
    await within(listener.attempted(9), "nine accept attempts");
  } finally {
    const started = performance.now();
    await within(gateway.close("done"), "the gateway to close", ACCEPT_RETRY_MAX_MS / 2);
    assert.ok(performance.now() - started < ACCEPT_RETRY_MAX_MS, "closing cut the wait short");
    hub.close();
  }
});
