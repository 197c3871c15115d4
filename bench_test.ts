/**
 * Smoke tests for the benchmark (`bench/`): the load generator, run as a subprocess with tiny
 * numbers against a chat server in this process and against the raw forwarder as a subprocess,
 * must count every copy exactly once, in order and intact. No timing is asserted.
 *
 * Run with `deno test --sanitize-ops --sanitize-resources --allow-net --allow-read --allow-write
 * --allow-run --allow-env --allow-sys bench_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { LoadResult } from "./bench/load.ts";
import { encodePayload, percentiles } from "./bench/load.ts";
import { formatTable, sampleProcess } from "./bench/run.ts";
import type { ServerOptions } from "./server.ts";
import { within, withServer } from "./test_util.ts";

// ==== Helpers ====

const LOAD_SCRIPT = new URL("./bench/load.ts", import.meta.url).pathname;
const RAW_SCRIPT = new URL("./bench/raw_forward.ts", import.meta.url).pathname;
/** The server limits the benchmark turns off, so that the load is never throttled. */
const UNLIMITED: ServerOptions = {
  rate: 0,
  maxClients: 0,
  maxClientsPerAddress: 0,
  historyLimit: 0,
  db: false,
};

/** Runs `bench/load.ts` against a port and returns its exit code, output and parsed result. */
async function runLoad(
  port: number,
  args: string[],
): Promise<{ code: number; stderr: string; result: LoadResult }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", LOAD_SCRIPT, "--port", String(port), "--timeout", "20", ...args],
    stdin: "null",
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  return {
    code: output.code,
    stderr,
    result: JSON.parse(new TextDecoder().decode(output.stdout)) as LoadResult,
  };
}

/** Asserts that every expected copy arrived once, in order, intact, with nothing refused. */
function assertComplete(result: LoadResult, expected: number): void {
  const counts = {
    expected: result.expected,
    received: result.received,
    lost: result.lost,
    duplicates: result.duplicates,
    outOfOrder: result.outOfOrder,
    corrupted: result.corrupted,
    errors: result.errors,
    failures: result.failures,
    stopped: result.stopped,
  };
  assert.deepEqual(counts, {
    expected,
    received: expected,
    lost: 0,
    duplicates: 0,
    outOfOrder: 0,
    corrupted: 0,
    errors: 0,
    failures: 0,
    stopped: undefined,
  }, `first error: ${result.firstError}; first corrupted: ${result.firstCorrupted}`);
  assert.equal(result.joined, result.clients);
}

/** Starts `bench/raw_forward.ts` as a subprocess on a free port, runs `fn`, then kills it. */
async function withRawForwarder(fn: (port: number) => Promise<void>): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", RAW_SCRIPT, "0"],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let text = "";
    let match: RegExpMatchArray | null = null;
    while (!(match = text.match(/^listening on (\d+)$/m))) {
      const { value, done } = await within(lines.read(), "the raw forwarder to listen");
      if (done) throw new Error(`The raw forwarder exited: ${text}`);
      text += value;
    }
    await fn(Number(match[1]));
  } finally {
    child.kill("SIGTERM");
    await lines.cancel();
    await child.status;
  }
}

// ==== Load generator against the chat server ====

Deno.test("load.ts counts every copy through the chat server in window mode", async () => {
  await withServer(async (server) => {
    const { result } = await runLoad(server.addr.port, [
      ...["--clients", "10", "--senders", "2", "--messages", "20"],
    ]);
    assertComplete(result, 10 * 2 * 20);
    assert.equal(result.mode, "chat");
  }, UNLIMITED);
});

Deno.test("load.ts counts every copy through the chat server at a fixed rate", async () => {
  await withServer(async (server) => {
    const { result } = await runLoad(server.addr.port, [
      ...["--clients", "8", "--senders", "2", "--messages", "10", "--rate", "400", "--size", "300"],
    ]);
    assertComplete(result, 8 * 2 * 10);
  }, UNLIMITED);
});

Deno.test("load.ts --idle sends one message to every joined client", async () => {
  await withServer(async (server) => {
    const { result } = await runLoad(server.addr.port, ["--idle", "30"]);
    assertComplete(result, 30);
    assert.equal(result.senders, 1);
  }, UNLIMITED);
});

// ==== Load generator against the raw forwarder ====

Deno.test("load.ts counts every copy through the raw forwarder in window mode", async () => {
  await withRawForwarder(async (port) => {
    const { result } = await runLoad(port, [
      ...["--mode", "raw", "--clients", "10", "--senders", "2", "--messages", "20"],
    ]);
    // The forwarder copies to every other connection: a sender does not get its own messages.
    assertComplete(result, (10 - 1) * 2 * 20);
  });
});

Deno.test("load.ts counts every copy through the raw forwarder at a fixed rate", async () => {
  await withRawForwarder(async (port) => {
    const { result } = await runLoad(port, [
      ...["--mode", "raw", "--clients", "6", "--senders", "3", "--messages", "10", "--rate", "400"],
    ]);
    assertComplete(result, (6 - 1) * 3 * 10);
  });
});

// ==== Pieces ====

Deno.test("load.ts refuses a bad flag with exit code 2", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", LOAD_SCRIPT, "--port", "5050", "--mode", "udp"],
    stdin: "null",
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  }).output();
  assert.equal(output.code, 2);
  assert.match(new TextDecoder().decode(output.stderr), /--mode must be chat or raw/);
});

Deno.test("encodePayload() pads to the size with a pattern and keeps a long head whole", () => {
  assert.equal(encodePayload(3, 17, 123456, 24), "~3.17.123456.nopqrstuvwx");
  assert.equal(encodePayload(3, 17, 123456, 24).length, 24);
  assert.equal(encodePayload(3, 17, 123456, 4), "~3.17.123456.");
});

Deno.test("percentiles() takes nearest ranks", () => {
  const samples = Float32Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.deepEqual(percentiles(samples), { p50: 50, p90: 90, p99: 99, max: 100 });
  assert.deepEqual(percentiles(new Float32Array()), { p50: 0, p90: 0, p99: 0, max: 0 });
});

Deno.test("sampleProcess() reads the CPU time and memory of a process from /proc", async () => {
  const sample = await sampleProcess(Deno.pid);
  assert.ok(sample.cpuSeconds > 0, `cpu ${sample.cpuSeconds}`);
  assert.ok(sample.rssKiB > 1024 && sample.peakRssKiB >= sample.rssKiB, JSON.stringify(sample));
});

Deno.test("formatTable() aligns the columns", () => {
  assert.equal(
    formatTable(["a", "bb"], [["ccc", "d"]]),
    "a   | bb\n----|---\nccc | d",
  );
});
