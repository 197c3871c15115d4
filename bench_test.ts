/**
 * Smoke tests for the benchmark (`bench/`): the load generator, run as a subprocess with tiny
 * numbers against a chat server in this process and against the raw forwarder as a subprocess,
 * must count every copy exactly once, in order and intact, over plain TCP, over TLS and over
 * WebSocket; the runner's rows start real server processes, plain, TLS-only and with the web
 * listener. The hostile scenario runs briefly
 * against real server processes: every bystander message must reach every other bystander, quiet
 * and under every attack, and every attack must get going. No timing is asserted.
 *
 * Run with `deno test --sanitize-ops --sanitize-resources --allow-net --allow-read --allow-write
 * --allow-run --allow-env --allow-sys bench_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { LoadResult } from "./bench/load.ts";
import { encodePayload, percentiles } from "./bench/load.ts";
import {
  formatTable,
  hostileReport,
  runHostileScenario,
  runScenario,
  sampleProcess,
  type Scenario,
  scenarios,
  selectScenarios,
  writeBenchCertificate,
} from "./bench/run.ts";
import { ATTACK_NAMES } from "./bench/hostile.ts";
import type { ServerOptions } from "./server.ts";
import { testCertificate, within, withServer, withTls } from "./test_util.ts";

// ==== Helpers ====

const LOAD_SCRIPT = new URL("./bench/load.ts", import.meta.url).pathname;
const RAW_SCRIPT = new URL("./bench/raw_forward.ts", import.meta.url).pathname;
const HOSTILE_SCRIPT = new URL("./bench/hostile.ts", import.meta.url).pathname;
const SERVER_SCRIPT = new URL("./server.ts", import.meta.url).pathname;
/** The server limits the benchmark turns off, so that the load is never throttled. */
const UNLIMITED: ServerOptions = {
  rate: 0,
  maxClients: 0,
  maxClientsPerAddress: 0,
  maxPending: 0,
  maxPendingPerAddress: 0,
  loginsPerAddress: 0,
  logins: 0,
  historyLimit: 0,
  db: false,
};

/**
 * Runs `bench/load.ts` against a port and returns its exit code, output and parsed result;
 * `readable` is a file it may read (the certificate for `--ca`).
 */
async function runLoad(
  port: number,
  args: string[],
  readable?: string,
): Promise<{ code: number; stderr: string; result: LoadResult }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "--allow-net", ...(readable ? [`--allow-read=${readable}`] : []), LOAD_SCRIPT],
      ...["--port", String(port), "--timeout", "20", ...args],
    ],
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

Deno.test("load.ts --tls counts every copy through the chat server's TLS port", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-bench-test-" });
  try {
    const ca = `${dir}/cert.pem`;
    await Deno.writeTextFile(ca, (await testCertificate()).certPem);
    await withServer(async (server) => {
      assert.ok(server.tlsAddr, "the server listens for TLS");
      const { result } = await runLoad(server.tlsAddr.port, [
        ...["--clients", "10", "--senders", "2", "--messages", "20", "--tls", "--ca", ca],
      ], ca);
      assertComplete(result, 10 * 2 * 20);
      assert.equal(result.tls, true);
    }, await withTls(UNLIMITED));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("load.ts --ws counts every copy through the chat server's WebSocket", async () => {
  await withServer(async (server) => {
    assert.ok(server.webAddr, "the server serves the web page and its WebSocket");
    for (const rate of ["0", "400"]) {
      const { result } = await runLoad(server.webAddr.port, [
        ...["--clients", "10", "--senders", "2", "--messages", "20", "--rate", rate, "--ws"],
      ]);
      assertComplete(result, 10 * 2 * 20);
      assert.equal(result.ws, true);
      assert.equal(result.tls, false);
    }
  }, { ...UNLIMITED, web: { port: 0 } });
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

// ==== The runner's rows ====

Deno.test("scenarios() runs fan-out 50 over TLS and WebSocket, the rate row over TLS", () => {
  for (const quick of [true, false]) {
    const rows = scenarios(quick).map((s) => `${s.name} (${s.target})`);
    const extra = {
      "fan-out 50": ["chat+tls", "chat+ws", "chat+db"],
      "rate 200/s": ["chat+tls", "chat+db"],
    };
    for (const [name, targets] of Object.entries(extra)) {
      const at = rows.indexOf(`${name} (chat)`);
      assert.ok(at > 0, `${name} has a chat row`);
      assert.deepEqual(
        rows.slice(at - 1, at + 1 + targets.length),
        ["raw", "chat", ...targets].map((target) => `${name} (${target})`),
      );
    }
    assert.equal(rows.filter((row) => row.endsWith("(chat+tls)")).length, 2);
    assert.deepEqual(rows.filter((row) => row.endsWith("(chat+ws)")), ["fan-out 50 (chat+ws)"]);
    const messages = (target: string) =>
      scenarios(quick).find((s) => s.id === "fan-out" && s.target === target)!.load
        .join(" ").match(/--messages (\d+)/)![1];
    // The same load as TCP: the rows compare per copy, and now also in count.
    assert.equal(messages("chat+ws"), messages("chat"));
    for (const name of ["fan-out 500", "join", "idle"]) {
      assert.ok(!rows.some((row) => row.startsWith(name) && row.includes("+")), name);
    }
  }
});

Deno.test("selectScenarios() keeps the chat row a TLS or WebSocket row is compared with", () => {
  const list = scenarios(true);
  const picked = (only: string) =>
    selectScenarios(list, only).map((s) => `${s.name} (${s.target})`);
  assert.deepEqual(picked("ws"), ["fan-out 50 (chat)", "fan-out 50 (chat+ws)"]);
  assert.deepEqual(picked("tls"), [
    "fan-out 50 (chat)",
    "fan-out 50 (chat+tls)",
    "rate 200/s (chat)",
    "rate 200/s (chat+tls)",
  ]);
  assert.deepEqual(picked("fan-out 500"), ["fan-out 500 (raw)", "fan-out 500 (chat)"]);
  assert.equal(picked("").length, list.length);
});

Deno.test("runScenario() measures plain, TLS-only and WebSocket server processes alike", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-bench-test-" });
  try {
    const options = {
      server: SERVER_SCRIPT,
      dbPath: `${dir}/bench.db`,
      tls: await writeBenchCertificate(dir),
    };
    for (const target of ["chat", "chat+tls", "chat+ws"] as const) {
      const scenario: Scenario = {
        id: "fan-out",
        name: "fan-out tiny",
        target,
        load: ["--clients", "6", "--senders", "2", "--messages", "15", "--timeout", "20"],
      };
      const row = await runScenario(scenario, options);
      assert.equal(row.problem, undefined, `${target}: ${row.problem}`);
      assert.ok(row.result, target);
      assertComplete(row.result, 6 * 2 * 15);
      assert.equal(row.result.tls, target === "chat+tls");
      assert.equal(row.result.ws, target === "chat+ws");
      assert.ok(row.ready && row.end, `${target}: sampled around the sending phase`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ==== The hostile scenario ====

Deno.test("the hostile scenario delivers every bystander message, quiet and under every attack", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-bench-test-" });
  try {
    const seconds = 2;
    const { quiet, hostile } = await runHostileScenario({
      server: SERVER_SCRIPT,
      dbPath: `${dir}/hostile.db`,
      seconds,
    });
    for (const row of [quiet, hostile]) {
      assert.equal(row.problem, undefined, `${row.kind}: ${row.problem}`);
      const b = row.bystanders;
      assert.ok(b, `${row.kind}: the bystanders' result`);
      // 50 bystanders, one message a second each, every copy at the 49 others.
      const copies = 50 * 49 * seconds;
      assert.deepEqual({
        sent: b.sent,
        acked: b.acked,
        expected: b.expected,
        received: b.received,
        lost: b.lost,
        duplicates: b.duplicates,
        outOfOrder: b.outOfOrder,
        refused: b.refused,
        disconnects: b.disconnects,
        stopped: b.stopped,
      }, {
        sent: 50 * seconds,
        acked: 50 * seconds,
        expected: copies,
        received: copies,
        lost: 0,
        duplicates: 0,
        outOfOrder: 0,
        refused: 0,
        disconnects: 0,
        stopped: undefined,
      }, `${row.kind}: ${b.firstRefusal ?? ""} ${b.firstDisconnect ?? ""}`);
    }
    assert.equal(quiet.attackers, undefined, "no attacks in the quiet run");
    const attacks = hostile.attackers?.attacks ?? [];
    assert.deepEqual(attacks.map((a) => a.name), ATTACK_NAMES, "every attack ran");
    for (const attack of attacks) {
      assert.ok(attack.report.rounds > 0, `${attack.name}: ${JSON.stringify(attack.report)}`);
    }
    const report = hostileReport(quiet, hostile).join("\n");
    for (const name of ATTACK_NAMES) assert.match(report, new RegExp(`^${name} `, "m"));
    assert.match(report, /^hostile +\| 4,900\/4,900 /m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostile.ts refuses a bad flag with exit code 2", async () => {
  for (const args of [["--role", "spectators"], ["--role", "attackers", "--attacks", "nope"]]) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", HOSTILE_SCRIPT, "--port", "5050", ...args],
      stdin: "null",
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    }).output();
    assert.equal(output.code, 2, args.join(" "));
    assert.match(new TextDecoder().decode(output.stderr), /^hostile: --(role|attacks) /);
  }
});

// ==== Pieces ====

Deno.test("load.ts refuses a bad flag with exit code 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--mode", "udp"], /--mode must be chat or raw/],
    [["--tls"], /--tls and --ca FILE go together/],
    [["--ca", "cert.pem"], /--tls and --ca FILE go together/],
    [["--mode", "raw", "--tls", "--ca", "cert.pem"], /raw forwarder does not speak TLS/],
    [["--mode", "raw", "--ws"], /raw forwarder does not speak WebSocket/],
    [["--ws", "--tls", "--ca", "cert.pem"], /Use --tls or --ws, not both/],
  ];
  for (const [args, message] of cases) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", LOAD_SCRIPT, "--port", "5050", ...args],
      stdin: "null",
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    }).output();
    assert.equal(output.code, 2, args.join(" "));
    assert.match(new TextDecoder().decode(output.stderr), message);
  }
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
