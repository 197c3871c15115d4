#!/usr/bin/env -S deno run --allow-net --allow-read --allow-write --allow-run --allow-env --allow-sys
/**
 * Runs every benchmark scenario and prints a table: `deno task bench` (add `--quick` for a
 * smaller, faster run).
 *
 * Each scenario starts a fresh target process (the chat server, `server.ts`, or the raw
 * forwarding ceiling, `bench/raw_forward.ts`) and a load generator process (`bench/load.ts`) on
 * loopback. The load generator connects and confirms every client joined, writes `phase ready`,
 * and waits; this script then samples the target's CPU time (utime + stime from
 * `/proc/<pid>/stat`, at 100 ticks a second) and memory (`VmRSS`, `VmHWM` from
 * `/proc/<pid>/status`) and lets it go on. It samples again at `phase end`, written once the last
 * copy arrived. CPU figures are therefore the deltas over the sending phase only: connecting,
 * joining and tearing down are not in them. The same is done for the load generator, to show
 * whether it, rather than the target, was the bottleneck.
 *
 * Every chat scenario runs right after the same scenario against the raw forwarder, so the
 * results can be read as ratios to a ceiling measured on the same machine at the same time.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { LoadResult } from "./load.ts";

// ==== Constants ====

const BENCH_DIR = new URL(".", import.meta.url).pathname;
const PROJECT_DIR = new URL("..", import.meta.url).pathname;
/** Clock ticks a second in `/proc/<pid>/stat` (`getconf CLK_TCK` on Linux). */
const CLOCK_TICKS = 100;
/** The shortest sending phase whose CPU time is reported (ticks are 10 ms). */
const MIN_CPU_PHASE_SECONDS = 0.5;
/** How long a target may take to start listening. */
const START_TIMEOUT_MS = 15_000;
/** Times a chat server is started again when the free port found was taken meanwhile. */
const MAX_STARTS = 5;
/** The flags the chat server runs with: every limit that would throttle the load is off. */
const SERVER_FLAGS = [
  ...["--console", "off", "--rate", "0", "--max-clients", "0", "--max-per-ip", "0"],
  ...["--heartbeat", "3600", "--hello-timeout", "60", "--history", "0"],
];
/** How long after its own timeout a load generator that has not exited is killed. */
const LOAD_GRACE_MS = 30_000;
const LISTENING_REGEXP = /listening on (?:\S+:)?(\d+)/;

const encoder = new TextEncoder();

// ==== Scenarios ====

/** What a scenario runs against. */
export type Target = "raw" | "chat" | "chat+db";

/** The scenarios, by what they measure; each has a raw row and a chat row. */
export type ScenarioId = "fan-out" | "fan-out-500" | "rate" | "join" | "idle";

/** One row of the table: a load against a target. */
export interface Scenario {
  id: ScenarioId;
  /** What the table shows, e.g. `fan-out 500`. */
  name: string;
  target: Target;
  /** Flags for `bench/load.ts` (without `--port`, `--mode`, `--sync`). */
  load: string[];
}

/** How long one load may run, in seconds: each scenario stays well under a minute. */
const LOAD_TIMEOUT_SECONDS = "50";

/** The load of each scenario, full size or `--quick`. */
function scenarioLoads(quick: boolean): Omit<Scenario, "target">[] {
  const fanOut = ["--senders", "5", "--size", "100", "--window", "32"];
  const idle = quick ? 2000 : 10_000, joining = quick ? 1000 : 5000;
  return [
    {
      id: "fan-out",
      name: "fan-out 50",
      load: ["--clients", "50", ...fanOut, "--messages", quick ? "2000" : "10000"],
    },
    {
      id: "fan-out-500",
      name: "fan-out 500",
      load: ["--clients", "500", ...fanOut, "--messages", quick ? "200" : "1000"],
    },
    {
      id: "rate",
      name: "rate 200/s",
      load: [
        ...["--clients", "200", "--senders", "4", "--size", "100", "--rate", "200"],
        ...["--messages", quick ? "100" : "250"],
      ],
    },
    { id: "join", name: `join ${joining / 1000}k`, load: ["--idle", String(joining)] },
    { id: "idle", name: `idle ${idle / 1000}k`, load: ["--idle", String(idle)] },
  ];
}

/**
 * Every row to run, in order: each scenario against the raw ceiling, then the chat server (with
 * no database), and the first fan-out and the fixed-rate latency row once more with the server
 * keeping its database on disk.
 */
export function scenarios(quick: boolean): Scenario[] {
  return scenarioLoads(quick).flatMap((s) => {
    const load = [...s.load, "--timeout", LOAD_TIMEOUT_SECONDS];
    return [
      { ...s, load, target: "raw" as const },
      { ...s, load, target: "chat" as const },
      ...(s.id === "fan-out" || s.id === "rate"
        ? [{ ...s, load, target: "chat+db" as const }]
        : []),
    ];
  });
}

// ==== Processes ====

/** CPU time and memory of a process, from `/proc`. */
export interface ProcessSample {
  /** When sampled, on `performance.now()`. */
  at: number;
  /** User + system CPU time of all its threads, in seconds. */
  cpuSeconds: number;
  rssKiB: number;
  peakRssKiB: number;
}

/**
 * Reads files of `/proc` with `cat`: Deno asks for `--allow-all` to read `/proc` itself, and
 * `--allow-run` is the smaller grant.
 */
async function readProc(...paths: string[]): Promise<string> {
  const { success, stdout } = await new Deno.Command("cat", { args: paths, stderr: "null" })
    .output();
  if (!success) throw new Error(`Cannot read ${paths.join(", ")}`);
  return new TextDecoder().decode(stdout);
}

/** Reads a process's CPU time and memory from `/proc`; Linux only. */
export async function sampleProcess(pid: number): Promise<ProcessSample> {
  const text = await readProc(`/proc/${pid}/stat`, `/proc/${pid}/status`);
  const at = performance.now();
  const stat = text.slice(0, text.indexOf("\n"));
  const status = text.slice(stat.length + 1);
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  const kib = (key: string) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"))?.[1]);
  return {
    at,
    cpuSeconds: ticks / CLOCK_TICKS,
    rssKiB: kib("VmRSS"),
    peakRssKiB: kib("VmHWM"),
  };
}

/** Reads a process's output line by line, keeping the last few lines for error messages. */
class LineReader {
  readonly last: string[] = [];
  #lines: AsyncIterator<string>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#lines = splitLines(stream.pipeThrough(new TextDecoderStream()));
  }

  /** The next line, or `undefined` at the end of the stream. */
  async next(): Promise<string | undefined> {
    const { value, done } = await this.#lines.next();
    if (done) return undefined;
    this.last.push(value);
    if (this.last.length > 20) this.last.shift();
    return value;
  }

  /** Reads lines until one matches; `undefined` if the stream ended first. */
  async find(pattern: RegExp): Promise<RegExpMatchArray | undefined> {
    for (let line = await this.next(); line !== undefined; line = await this.next()) {
      const match = line.match(pattern);
      if (match) return match;
    }
    return undefined;
  }

  /** Reads (and drops) everything until the stream ends. */
  async drain(): Promise<void> {
    while (await this.next() !== undefined);
  }
}

async function* splitLines(stream: ReadableStream<string>): AsyncGenerator<string> {
  let tail = "";
  for await (const text of stream) {
    const lines = (tail + text).split("\n");
    tail = lines.pop()!;
    yield* lines;
  }
  if (tail !== "") yield tail;
}

/** A started target: its process, port, and the draining of its output. */
interface RunningTarget {
  child: Deno.ChildProcess;
  port: number;
  /** Resolves once its output is fully read (after it exits). */
  drained: Promise<void>;
  /** Its last lines of output, to tell why it exited. */
  last: () => string;
  /** Whether it exited by itself. */
  exited: () => boolean;
}

/** A port that was free a moment ago. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Starts the raw forwarder or the chat server and waits until it listens. */
async function startTarget(target: Target, options: RunOptions): Promise<RunningTarget> {
  for (let attempt = 1;; attempt++) {
    const args = target === "raw" ? ["run", "--allow-net", `${BENCH_DIR}raw_forward.ts`, "0"] : [
      ...["run", "--allow-net", "--allow-read", "--allow-write"],
      ...["--allow-sys=hostname,networkInterfaces", options.server],
      ...["--host", "127.0.0.1", "--port", String(freePort()), ...SERVER_FLAGS],
      ...["--db", target === "chat+db" ? options.dbPath : "none"],
    ];
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: PROJECT_DIR,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    }).spawn();
    const stdout = new LineReader(child.stdout);
    const stderr = new LineReader(child.stderr);
    const stderrDone = stderr.drain();
    const timer = setTimeout(() => child.kill("SIGKILL"), START_TIMEOUT_MS);
    const match = await stdout.find(LISTENING_REGEXP);
    clearTimeout(timer);
    if (match) {
      let exited = false;
      child.status.then(() => exited = true);
      return {
        child,
        port: Number(match[1]),
        drained: Promise.all([stdout.drain(), stderrDone]).then(() => {}),
        last: () => [...stdout.last.slice(-3), ...stderr.last.slice(-5)].join(" / "),
        exited: () => exited,
      };
    }
    await Promise.all([child.status, stdout.drain(), stderrDone]);
    const why = [...stdout.last, ...stderr.last].join("\n");
    if (attempt < MAX_STARTS && why.includes("in use")) continue;
    throw new Error(`Cannot start the ${target} target: ${why}`);
  }
}

async function stopTarget(target: RunningTarget): Promise<void> {
  try {
    target.child.kill("SIGKILL");
  } catch {
    // it has exited already
  }
  await target.child.status;
  await target.drained;
}

// ==== One scenario ====

/** What one row measured: the load's result and the samples around its sending phase. */
export interface Row {
  scenario: Scenario;
  result: LoadResult | undefined;
  /** Why the row has no result, or what went wrong. */
  problem?: string;
  /** Target before any client connected. */
  baseline: ProcessSample;
  /** Target and load generator at `phase ready` and `phase end`. */
  ready?: { target: ProcessSample; load: ProcessSample };
  end?: { target: ProcessSample; load: ProcessSample };
  /** Target when the load generator finished (or stopped). */
  final: ProcessSample;
  wallMs: number;
}

/** Options for {@linkcode runScenario} and {@linkcode runAll}. */
export interface RunOptions {
  /** The chat server script. */
  server: string;
  /** The database file for `chat+db` rows. */
  dbPath: string;
}

/** Runs one scenario: a fresh target, the load against it, samples around the sending phase. */
export async function runScenario(scenario: Scenario, options: RunOptions): Promise<Row> {
  const started = performance.now();
  await removeDatabase(options.dbPath);
  const target = await startTarget(scenario.target, options);
  try {
    const baseline = await sampleProcess(target.child.pid);
    const row = await driveLoad(scenario, target, baseline);
    const problem = target.exited() ? `the target exited: ${target.last()}` : row.problem;
    return { ...row, ...(problem ? { problem } : {}), wallMs: performance.now() - started };
  } finally {
    await stopTarget(target);
  }
}

/** Runs the load generator, sampling at its phase markers; returns the row without its wall time. */
async function driveLoad(
  scenario: Scenario,
  target: RunningTarget,
  baseline: ProcessSample,
): Promise<Omit<Row, "wallMs">> {
  const mode = scenario.target === "raw" ? "raw" : "chat";
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "--allow-net", `${BENCH_DIR}load.ts`],
      ...["--port", String(target.port), "--mode", mode, "--sync", ...scenario.load],
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  }).spawn();
  const output = new Response(child.stdout).text();
  const seconds = Number(scenario.load[scenario.load.indexOf("--timeout") + 1] ?? 60);
  const killer = setTimeout(() => child.kill("SIGKILL"), seconds * 1000 + LOAD_GRACE_MS);
  const writer = child.stdin.getWriter();
  const stderr = new LineReader(child.stderr);
  const samples: Pick<Row, "ready" | "end"> = {};
  const sampleBoth = async () => ({
    target: await sampleProcess(target.child.pid),
    load: await sampleProcess(child.pid),
  });
  for (let line = await stderr.next(); line !== undefined; line = await stderr.next()) {
    if (line === "phase ready" || line === "phase end") {
      samples[line === "phase ready" ? "ready" : "end"] = await sampleBoth();
      await writer.write(encoder.encode("go\n")).catch(() => {}); // unless it has died
    }
  }
  await writer.close().catch(() => {});
  const [status, text] = await Promise.all([child.status, output]);
  clearTimeout(killer);
  const final = await sampleProcess(target.child.pid).catch(() => baseline);
  const row = { scenario, baseline, final, ...samples };
  if (!status.success) {
    return {
      ...row,
      result: undefined,
      problem: `load exited ${status.code}: ${stderr.last.join(" ")}`,
    };
  }
  const result = JSON.parse(text) as LoadResult;
  return { ...row, result, ...(result.stopped ? { problem: describeStop(result) } : {}) };
}

function describeStop(result: LoadResult): string {
  return `stopped (${result.stopped}) after ${result.joined}/${result.clients} joined` +
    (result.firstError ? `; first error: ${result.firstError.slice(0, 160)}` : "");
}

async function removeDatabase(path: string): Promise<void> {
  for (const suffix of ["", "-wal", "-shm"]) {
    await Deno.remove(path + suffix).catch(() => {});
  }
}

// ==== Figures ====

/** The figures a row is printed with; `undefined` where they could not be measured. */
export interface Figures {
  deliveries: number;
  perSecond: number;
  /** Server (target) CPU µs per delivered copy over the sending phase. */
  cpuPerCopyUs: number | undefined;
  /** Target and load generator CPU over the sending phase, as % of one core. */
  targetCpuPercent: number | undefined;
  loadCpuPercent: number | undefined;
  peakRssMiB: number;
  /** Target RSS growth from before connecting to everyone joined, per connection. */
  rssPerConnKiB: number | undefined;
}

/** Works the samples of a row into its figures. */
export function figures(row: Row): Figures {
  const result = row.result;
  const deliveries = result?.received ?? 0;
  const { ready, end } = row;
  const phaseSeconds = ready && end ? (end.target.at - ready.target.at) / 1000 : 0;
  // CPU time comes in ticks: a phase much shorter than a few hundred of them says little.
  const timed = ready && end && phaseSeconds >= MIN_CPU_PHASE_SECONDS ? { ready, end } : undefined;
  const targetCpu = timed && timed.end.target.cpuSeconds - timed.ready.target.cpuSeconds;
  const loadCpu = timed && timed.end.load.cpuSeconds - timed.ready.load.cpuSeconds;
  const percent = (cpu: number | undefined) =>
    cpu === undefined || phaseSeconds === 0 ? undefined : 100 * cpu / phaseSeconds;
  return {
    deliveries,
    perSecond: result?.deliveriesPerSecond ?? 0,
    cpuPerCopyUs: targetCpu === undefined || deliveries === 0
      ? undefined
      : targetCpu * 1e6 / deliveries,
    targetCpuPercent: percent(targetCpu),
    loadCpuPercent: percent(loadCpu),
    peakRssMiB: Math.max(row.final.peakRssKiB, end?.target.peakRssKiB ?? 0) / 1024,
    rssPerConnKiB: ready && result
      ? (ready.target.rssKiB - row.baseline.rssKiB) / result.clients
      : undefined,
  };
}

// ==== Printing ====

const COLUMNS = [
  "scenario",
  "target",
  "clients",
  "senders×msgs",
  "deliveries",
  "loss",
  "dup",
  "bad",
  "deliveries/s",
  "p50/p90/p99/max ms",
  "join ms",
  "srv µs/copy",
  "srv CPU",
  "gen CPU",
  "peak RSS",
  "RSS/conn",
];

function fixed(value: number | undefined, digits: number): string {
  return value === undefined || !Number.isFinite(value) ? "n/a" : value.toFixed(digits);
}

function thousands(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

function signed(value: number): string {
  return `${value >= 0 ? "+" : ""}${value.toFixed(2)}`;
}

/** The load's result if its sending phase ran, so that its counts mean something. */
function sentResult(row: Row | undefined): LoadResult | undefined {
  return row?.result && row.result.sent > 0 ? row.result : undefined;
}

/** The result if every client joined, so that its join time means something. */
function joinedResult(row: Row | undefined): LoadResult | undefined {
  return row?.result && row.result.joined === row.result.clients ? row.result : undefined;
}

/** The cells of one table row; `n/a` for what the row did not get to measure. */
function cells(row: Row): string[] {
  const r = sentResult(row);
  const f = figures(row);
  const latency = r
    ? [r.latencyMs.p50, r.latencyMs.p90, r.latencyMs.p99, r.latencyMs.max]
      .map((v) => v.toFixed(v < 10 ? 2 : 0)).join("/")
    : "n/a";
  const count = (value: number | undefined) => value === undefined ? "n/a" : thousands(value);
  return [
    row.scenario.name,
    row.scenario.target,
    count(row.result?.clients),
    row.result ? `${row.result.senders}×${row.result.messages}` : "n/a",
    r ? `${thousands(r.received)}/${thousands(r.expected)}` : "not sent",
    count(r?.lost),
    count(r?.duplicates),
    count(r && r.corrupted + r.outOfOrder),
    r ? thousands(f.perSecond) : "n/a",
    latency,
    count(joinedResult(row)?.joinMs),
    fixed(f.cpuPerCopyUs, 3),
    f.targetCpuPercent === undefined ? "n/a" : `${fixed(f.targetCpuPercent, 0)}%`,
    f.loadCpuPercent === undefined ? "n/a" : `${fixed(f.loadCpuPercent, 0)}%`,
    `${fixed(f.peakRssMiB, 0)} MiB`,
    f.rssPerConnKiB === undefined ? "n/a" : `${fixed(f.rssPerConnKiB, 1)} KiB`,
  ];
}

/** Lays rows of cells out as an aligned, pipe-separated table. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(" | ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(line)].join("\n");
}

function find(rows: Row[], id: ScenarioId, target: Target): Row | undefined {
  return rows.find((r) => r.scenario.id === id && r.scenario.target === target);
}

/** Chat against raw for each scenario: how far from the ceiling. */
function ratioLines(rows: Row[]): string[] {
  const lines: string[] = [];
  for (const row of rows.filter((r) => r.scenario.target !== "raw")) {
    const raw = find(rows, row.scenario.id, "raw");
    const parts: string[] = [];
    const chat = sentResult(row), ceiling = sentResult(raw);
    if (chat && ceiling && raw) {
      const [f, g] = [figures(row), figures(raw)];
      parts.push(
        `throughput ${fixed(f.perSecond / g.perSecond, 2)}× raw`,
        `CPU/copy ${fixed((f.cpuPerCopyUs ?? NaN) / (g.cpuPerCopyUs ?? NaN), 2)}× raw`,
        `p99 ${signed(chat.latencyMs.p99 - ceiling.latencyMs.p99)} ms vs raw`,
      );
    }
    const joined = joinedResult(row), rawJoined = joinedResult(raw);
    if (joined && rawJoined) parts.push(`join ${fixed(joined.joinMs / rawJoined.joinMs, 1)}× raw`);
    const label = `${row.scenario.name} (${row.scenario.target})`.padEnd(24);
    lines.push(`${label} ${parts.length > 0 ? parts.join(", ") : "n/a (did not finish)"}`);
  }
  return lines;
}

/** The issue's targets, each with what was measured and whether it was met. */
function targetLines(rows: Row[]): string[] {
  const lines: string[] = [];
  const check = (ok: boolean | undefined, text: string) =>
    lines.push(`${ok === undefined ? "n/a " : ok ? "MET " : "MISS"}  ${text}`);

  const fan = find(rows, "fan-out-500", "chat"), fanRaw = find(rows, "fan-out-500", "raw");
  const cpu = fan && figures(fan).cpuPerCopyUs;
  const rawCpu = fixed(fanRaw && figures(fanRaw).cpuPerCopyUs, 3);
  check(
    cpu === undefined ? undefined : cpu <= 0.15,
    `server CPU per copy at ${fan?.result?.clients ?? 500} clients ≤ 0.15 µs: ${
      fixed(cpu, 3)
    } µs (raw ${rawCpu} µs)`,
  );

  const chatRows = rows.filter((r) => r.scenario.target !== "raw");
  const sent = chatRows.map(sentResult).filter((r) => r !== undefined);
  const faults = sent.reduce((n, r) => n + r.lost + r.duplicates + r.corrupted + r.outOfOrder, 0);
  const unsent = chatRows.length - sent.length;
  check(
    faults === 0 && unsent === 0,
    `no loss, duplicates or bad copies in chat rows: ${faults} faults` +
      (unsent > 0 ? `; ${unsent} row(s) never got to send` : ""),
  );

  const rate = sentResult(find(rows, "rate", "chat"));
  const rateRaw = sentResult(find(rows, "rate", "raw"));
  const gap = rate && rateRaw ? rate.latencyMs.p99 - rateRaw.latencyMs.p99 : undefined;
  check(
    gap === undefined ? undefined : gap <= 1,
    `fixed-rate p99 within 1 ms of raw: ${fixed(rate?.latencyMs.p99, 2)} ms vs ${
      fixed(rateRaw?.latencyMs.p99, 2)
    } ms (${gap === undefined ? "n/a" : signed(gap)})`,
  );

  const idle = find(rows, "idle", "chat");
  const held = idle?.result?.joined;
  const fullSize = (row: Row | undefined, clients: number) =>
    (row?.result?.clients ?? 0) >= clients ? true : undefined;
  check(
    held === undefined || !fullSize(idle, 10_000)
      ? undefined
      : held >= 10_000 && sentResult(idle) !== undefined,
    `10,000 concurrent clients held: ${held ?? "n/a"} of ${idle?.result?.clients ?? "n/a"} joined` +
      (idle?.problem ? ` (${idle.problem})` : ""),
  );
  const perConn = idle && figures(idle).rssPerConnKiB;
  check(
    perConn === undefined ? undefined : perConn <= 12,
    `server RSS per idle connection ≤ 12 KiB: ${fixed(perConn, 1)} KiB` +
      (perConn === undefined ? " (not everyone joined in time)" : ""),
  );

  const join = find(rows, "join", "chat");
  const joined = joinedResult(join);
  check(
    join?.result === undefined || !fullSize(join, 5000)
      ? undefined
      : joined !== undefined && joined.joinMs <= 1000,
    `${join?.result?.clients ?? 5000} clients connect and join ≤ 1 s: ${
      joined ? `${thousands(joined.joinMs)} ms` : `${join?.result?.joined ?? "n/a"} joined in time`
    }`,
  );

  const offRow = find(rows, "fan-out", "chat"), onRow = find(rows, "fan-out", "chat+db");
  const off = sentResult(offRow), on = sentResult(onRow);
  const cost = off && on ? 1 - on.deliveriesPerSecond / off.deliveriesPerSecond : undefined;
  const cpuOn = onRow && figures(onRow).cpuPerCopyUs,
    cpuOff = offRow && figures(offRow).cpuPerCopyUs;
  check(
    cost === undefined ? undefined : cost <= 0.1,
    `persistence costs ≤ 10% of fan-out throughput: ${fixed((cost ?? NaN) * 100, 1)}% (${
      thousands(on?.deliveriesPerSecond ?? 0)
    } with, ${thousands(off?.deliveriesPerSecond ?? 0)} without, deliveries/s; CPU per copy ${
      signed(100 * ((cpuOn ?? NaN) / (cpuOff ?? NaN) - 1))
    }%)`,
  );
  return lines;
}

/**
 * A short SHA-256 of the server script and the `protocol.ts` beside it, to tell which version of
 * the server a table is for (the working tree may differ from any commit).
 */
async function sourceHash(server: string): Promise<string> {
  const protocol = new URL("protocol.ts", `file://${server}`).pathname;
  const texts = await Promise.all([server, protocol].map((path) => Deno.readFile(path)));
  const joined = new Uint8Array(texts.reduce((n, t) => n + t.length, 0));
  texts.reduce((offset, t) => (joined.set(t, offset), offset + t.length), 0);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
  return Array.from(digest.slice(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function machineLines(server: string): Promise<string[]> {
  const cpuinfo = await readProc("/proc/cpuinfo").catch(() => "");
  const model = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown CPU";
  const load = (await readProc("/proc/loadavg").catch(() => "")).split(" ").slice(0, 3);
  const cores = navigator.hardwareConcurrency;
  return [
    `date: ${new Date().toISOString()}`,
    `machine: Linux ${Deno.osRelease()}, ${cores} cores (${model}), load ${load.join(" ")}`,
    `deno: ${Deno.version.deno} (V8 ${Deno.version.v8})`,
    `server: ${server} + protocol.ts (sha256 ${await sourceHash(server)}…)`,
    `server flags: ${SERVER_FLAGS.join(" ")} --db none (chat) or a temporary file (chat+db)`,
  ];
}

/** Prints the table, the problems, the ratios to the ceiling, the targets and the notes. */
function printReport(rows: Row[]): void {
  console.log();
  console.log(formatTable(COLUMNS, rows.map(cells)));
  const problems = rows.filter((r) => r.problem);
  if (problems.length > 0) {
    console.log("\nproblems:");
    for (const r of problems) {
      console.log(`  ${r.scenario.name} (${r.scenario.target}): ${r.problem}`);
    }
  }
  console.log("\nchat against the raw ceiling:");
  for (const line of ratioLines(rows)) console.log(`  ${line}`);
  console.log("\ntargets:");
  for (const line of targetLines(rows)) console.log(`  ${line}`);
  console.log(`\n${NOTES}`);
}

function rowDone(row: Row): void {
  const { name, target } = row.scenario;
  const problem = row.problem ? `: ${row.problem}` : "";
  console.error(`  ${name} (${target}): ${(row.wallMs / 1000).toFixed(1)} s${problem}`);
}

// ==== Running everything ====

/** Runs the given scenarios one after another, reporting each row as it finishes. */
export async function runAll(
  list: Scenario[],
  options: RunOptions,
  onRow: (row: Row) => void = () => {},
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const scenario of list) {
    const row = await runScenario(scenario, options);
    rows.push(row);
    onRow(row);
  }
  return rows;
}

const NOTES = `notes:
  srv/gen CPU: the target's and the load generator's CPU time (utime+stime, ${CLOCK_TICKS} Hz ticks)
    from "phase ready" (everyone joined, server quiet) to "phase end" (last copy in), as % of one
    core; srv µs/copy is the target's CPU time in that phase over the copies delivered (n/a
    for phases under ${MIN_CPU_PHASE_SECONDS} s, such as a single broadcast).
  RSS/conn: target VmRSS at "phase ready" minus VmRSS before the first connection, per client;
    peak RSS: VmHWM. join ms: first connect until every client confirmed joined (chat: welcome;
    raw: a relayed probe). bad: corrupted + out-of-order copies. A raw sender gets no copy of its
    own messages, so raw rows expect fewer deliveries. Fan-out rows send as fast as a window of 32
    messages per sender allows; latency there is mostly queueing.`;

const USAGE = `Runs the chat benchmark and prints a table.

USAGE:
  deno task bench [--quick] [--only TEXT] [--server PATH]

OPTIONS:
      --quick         Smaller scenarios, for a run of about a minute
      --only TEXT     Only the scenarios whose name contains TEXT
      --server PATH   The chat server script      (default: server.ts)
  -h, --help          Show this help`;

/** Runs the benchmark's command line; resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        quick: { type: "boolean", default: false },
        only: { type: "string" },
        server: { type: "string", default: `${PROJECT_DIR}server.ts` },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (error) {
    console.error(`bench: ${error instanceof Error ? error.message : error}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const list = scenarios(values.quick).filter((s) => s.name.includes(values.only ?? ""));
  const dir = await Deno.makeTempDir({ prefix: "chat-bench-" });
  const started = performance.now();
  try {
    const hash = await sourceHash(values.server);
    console.log((await machineLines(values.server)).join("\n"));
    const rows = await runAll(list, { server: values.server, dbPath: `${dir}/bench.db` }, rowDone);
    printReport(rows);
    if (await sourceHash(values.server) !== hash) {
      console.log("WARNING: the server's source changed during the run: rows may mix versions");
    }
    console.log(`total time: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return 0;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
