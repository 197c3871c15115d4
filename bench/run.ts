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
 * The first fan-out and the fixed-rate row run over TLS as well (`chat+tls`), right after the
 * plain `chat` row: the server listens on its TLS port only (`--no-plain`), with a certificate
 * for 127.0.0.1 this script makes once per run (`--cert`, `--key`), and the load generator
 * connects with `Deno.connectTls` trusting it (`--tls --ca`). Its handshakes are done before
 * `phase ready`, so the CPU per copy is measured the same way, on the server process, over the
 * sending phase alone. The plain rows run the server with `--no-tls --no-web`.
 *
 * The first fan-out runs over WebSocket too (`chat+ws`), after the TLS row: the server runs with
 * `--no-tls` and its web listener on a free `--web-port`, and the load generator connects every
 * client to `ws://127.0.0.1:<web port>/ws` with Deno's `WebSocket` client (`--ws`), one frame per
 * message. Its CPU per copy is held against the plain row's the same way.
 *
 * Last comes the hostile scenario (`--only hostile` runs it alone): the chat server with its
 * default limits and a database file, 50 bystanders chatting at one message a second each from
 * addresses of their own (`bench/hostile.ts --role bystanders`), once alone and once while every
 * attack of `bench/attacks.ts` runs at full speed from a process of its own (`--role
 * attackers`). It prints the bystanders' delivery latency in both runs, the server's CPU over
 * the chatting and its peak RSS against its RSS once listening, and checks the issue's targets.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { makeCertificate } from "../net/certs.ts";
import type { LoadResult } from "./load.ts";
import {
  ATTACK_NAMES,
  type AttackerResult,
  type AttackRun,
  BYSTANDER_GROUP,
  type BystanderResult,
} from "./hostile.ts";

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
  ...["--max-pending", "0", "--max-pending-per-ip", "0", "--logins-per-ip", "0", "--logins", "0"],
  ...["--heartbeat", "3600", "--hello-timeout", "60", "--history", "0"],
];
/** How long after its own timeout a load generator that has not exited is killed. */
const LOAD_GRACE_MS = 30_000;
const LISTENING_REGEXP = /listening on (?:\S+:)?(\d+)/;

const encoder = new TextEncoder();

// ==== Scenarios ====

/**
 * What a scenario runs against: the raw forwarder, the chat server without a database, over TLS
 * or over WebSocket (and without a database), or keeping its database in a file.
 */
export type Target = "raw" | "chat" | "chat+tls" | "chat+ws" | "chat+db";

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
 * The targets a scenario runs against after `raw` and `chat`: the first fan-out over TLS, over
 * WebSocket and with a database, the latency row over TLS and with a database.
 */
const EXTRA_TARGETS: Partial<Record<ScenarioId, readonly Target[]>> = {
  "fan-out": ["chat+tls", "chat+ws", "chat+db"],
  rate: ["chat+tls", "chat+db"],
};

/** The targets that are the chat server over another transport, compared with plain `chat`. */
const TRANSPORT_TARGETS: readonly Target[] = ["chat+tls", "chat+ws"];

/**
 * Every row to run, in order: each scenario against the raw ceiling, then the chat server (with
 * no database), and the first fan-out and the fixed-rate latency row once more over TLS, the
 * first fan-out over WebSocket, and both once more with the server keeping its database on disk.
 */
export function scenarios(quick: boolean): Scenario[] {
  return scenarioLoads(quick).flatMap((s) => {
    const load = [...s.load, "--timeout", LOAD_TIMEOUT_SECONDS];
    const targets: Target[] = ["raw", "chat", ...EXTRA_TARGETS[s.id] ?? []];
    return targets.map((target) => ({
      ...s,
      load,
      target,
    }));
  });
}

/**
 * The rows of `list` whose `scenario (target)` contains `only`, in order, with the plain `chat`
 * row of every TLS or WebSocket row picked: that row is what it is compared with.
 */
export function selectScenarios(list: readonly Scenario[], only: string): Scenario[] {
  const picked = list.filter((s) => `${s.name} (${s.target})`.includes(only));
  const partners = picked.filter((s) => TRANSPORT_TARGETS.includes(s.target))
    .map((s) => list.find((p) => p.id === s.id && p.target === "chat"));
  return list.filter((s) => picked.includes(s) || partners.includes(s));
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
  /** The chat server's web port (HTTP page and WebSocket endpoint), unless `--no-web`. */
  webPort: number | undefined;
  /** Resolves once its output is fully read (after it exits). */
  drained: Promise<void>;
  /** Its last lines of output, to tell why it exited. */
  last: () => string;
  /** Whether it exited by itself. */
  exited: () => boolean;
}

/** The certificate and key files a `chat+tls` target runs with, and the load trusts. */
export interface TlsFiles {
  /** The certificate, PEM; made for `localhost`, 127.0.0.1 and ::1. */
  cert: string;
  /** Its private key, PEM. */
  key: string;
}

/**
 * Makes a certificate for `localhost`, 127.0.0.1 and ::1 and writes it and its key into `dir`
 * (`bench-cert.pem`, `bench-key.pem`, the key readable by this user only).
 */
export async function writeBenchCertificate(dir: string): Promise<TlsFiles> {
  const certificate = await makeCertificate({ dns: ["localhost"], ips: ["127.0.0.1", "::1"] });
  const files = { cert: `${dir}/bench-cert.pem`, key: `${dir}/bench-key.pem` };
  await Deno.writeTextFile(files.cert, certificate.certPem);
  await Deno.writeTextFile(files.key, certificate.keyPem, { mode: 0o600 });
  return files;
}

/**
 * The chat server's transport flags for a scenario's target: TLS alone, plain alone, or plain
 * with the web listener (whose WebSocket endpoint the `chat+ws` load uses).
 */
function transportFlags(target: Target, options: RunOptions): string[] {
  if (target === "chat+ws") return ["--no-tls"];
  if (target !== "chat+tls") return ["--no-tls", "--no-web"];
  if (options.tls === undefined) {
    throw new TypeError("A chat+tls row needs RunOptions.tls: see writeBenchCertificate()");
  }
  return ["--no-plain", "--cert", options.tls.cert, "--key", options.tls.key, "--no-web"];
}

/** Four different ports that were free a moment ago. */
function freePorts(): [number, number, number, number] {
  const listeners = [0, 1, 2, 3].map(() => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
  const [a, b, c, d] = listeners.map((listener) => (listener.addr as Deno.NetAddr).port);
  for (const listener of listeners) listener.close();
  return [a!, b!, c!, d!];
}

/** Waits until something accepts connections on a loopback port; `false` once `gaveUp()`. */
async function waitForPort(port: number, gaveUp: () => boolean): Promise<boolean> {
  while (!gaveUp()) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return true;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  return false;
}

/**
 * Starts the raw forwarder or the chat server (with `flags`, by default those that turn its
 * limits off) and waits until it listens. Unless `flags` has `--no-tls`, the server gets a free
 * `--tls-port` too, unless it has `--no-web`, a free `--web-port`, and with both, a free
 * `--https-port`: their defaults (the plain port + 1, 5080, the web port + 1) may be held by a
 * connection of an earlier row (in TIME_WAIT after the 10,000 clients) or by another program.
 * The port returned is the first of the server's banner: the plain one, or the TLS one with
 * `--no-plain` (`chat+tls`); the web port is returned once it accepts connections.
 */
async function startTarget(
  target: Target,
  options: RunOptions,
  flags: readonly string[] = SERVER_FLAGS,
): Promise<RunningTarget> {
  for (let attempt = 1;; attempt++) {
    const [port, tlsPort, freeWebPort, httpsPort] = freePorts();
    const tls = !flags.includes("--no-tls");
    const webPort = target === "raw" || flags.includes("--no-web") ? undefined : freeWebPort;
    const args = target === "raw" ? ["run", "--allow-net", `${BENCH_DIR}raw_forward.ts`, "0"] : [
      ...["run", "--allow-net", "--allow-read", "--allow-write"],
      ...["--allow-sys=hostname,networkInterfaces"],
      ...["--allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE", options.server],
      ...["--host", "127.0.0.1", "--port", String(port), ...flags],
      ...(tls ? ["--tls-port", String(tlsPort)] : []),
      ...(webPort === undefined ? [] : ["--web-port", String(webPort)]),
      ...(tls && webPort !== undefined ? ["--https-port", String(httpsPort)] : []),
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
    let exited = false;
    child.status.then(() => exited = true);
    const timer = setTimeout(() => child.kill("SIGKILL"), START_TIMEOUT_MS);
    const match = await stdout.find(LISTENING_REGEXP);
    const webReady = match !== undefined &&
      (webPort === undefined || await waitForPort(webPort, () => exited));
    clearTimeout(timer);
    if (match && webReady) {
      return {
        child,
        port: Number(match[1]),
        webPort,
        drained: Promise.all([stdout.drain(), stderrDone]).then(() => {}),
        last: () => [...stdout.last.slice(-3), ...stderr.last.slice(-5)].join(" / "),
        exited: () => exited,
      };
    }
    await Promise.all([child.status, stdout.drain(), stderrDone]);
    const why = [...stdout.last, ...stderr.last].join("\n") +
      (match ? `\n(its web port ${webPort} never accepted a connection)` : "");
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
  /** The certificate and key for `chat+tls` rows (see {@linkcode writeBenchCertificate}). */
  tls?: TlsFiles | undefined;
}

/** Runs one scenario: a fresh target, the load against it, samples around the sending phase. */
export async function runScenario(scenario: Scenario, options: RunOptions): Promise<Row> {
  const started = performance.now();
  await removeDatabase(options.dbPath);
  const flags = scenario.target === "raw"
    ? []
    : [...SERVER_FLAGS, ...transportFlags(scenario.target, options)];
  const target = await startTarget(scenario.target, options, flags);
  try {
    const baseline = await sampleProcess(target.child.pid);
    const row = await driveLoad(scenario, target, baseline, options);
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
  options: RunOptions,
): Promise<Omit<Row, "wallMs">> {
  const mode = scenario.target === "raw" ? "raw" : "chat";
  const ca = scenario.target === "chat+tls" ? options.tls?.cert : undefined;
  const ws = scenario.target === "chat+ws";
  if (ws && target.webPort === undefined) {
    throw new TypeError("A chat+ws target needs its web port");
  }
  const port = ws ? target.webPort! : target.port;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "--allow-net", ...(ca ? [`--allow-read=${ca}`] : []), `${BENCH_DIR}load.ts`],
      ...["--port", String(port), "--mode", mode, "--sync", ...scenario.load],
      ...(ca ? ["--tls", "--ca", ca] : []),
      ...(ws ? ["--ws"] : []),
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
    const none = raw ? "n/a (did not finish)" : "n/a (no raw row in this run)";
    lines.push(`${label} ${parts.length > 0 ? parts.join(", ") : none}`);
  }
  return lines;
}

/** A transport the chat server is measured over besides plain TCP, and its target. */
interface TransportCheck {
  target: Target;
  /** What the report calls it. */
  name: string;
  /** What the target line holds it against. */
  versus: string;
  /** The most CPU per copy it may cost, as a multiple of plain TCP's. */
  cpuRatio: number;
}

/** TLS and WebSocket, each held to at most twice plain TCP's CPU per copy. */
const TRANSPORT_CHECKS: readonly TransportCheck[] = [
  { target: "chat+tls", name: "TLS", versus: "plain", cpuRatio: 2 },
  { target: "chat+ws", name: "WebSocket", versus: "TCP", cpuRatio: 2 },
];

/** The pairs of rows to hold a transport against plain with: each scenario run over it. */
function transportPairs(rows: Row[], target: Target): { plain: Row | undefined; other: Row }[] {
  return rows.filter((r) => r.scenario.target === target)
    .map((other) => ({ plain: find(rows, other.scenario.id, "chat"), other }));
}

/** A transport against plain for each scenario run both ways: CPU per copy, throughput, latency. */
function transportLines(rows: Row[], target: Target): string[] {
  return transportPairs(rows, target).map(({ plain, other }) => {
    const label = other.scenario.name.padEnd(12);
    const p = sentResult(plain), t = sentResult(other);
    if (!p || !t || !plain) return `${label} n/a (did not finish, or no chat row to compare with)`;
    const [f, g] = [figures(other), figures(plain)];
    return `${label} CPU/copy ${fixed(f.cpuPerCopyUs, 3)} vs ${fixed(g.cpuPerCopyUs, 3)} µs (${
      fixed((f.cpuPerCopyUs ?? NaN) / (g.cpuPerCopyUs ?? NaN), 2)
    }×), throughput ${fixed(f.perSecond / g.perSecond, 2)}×, p50 ${msCell(t.latencyMs.p50)} vs ${
      msCell(p.latencyMs.p50)
    } ms, p99 ${msCell(t.latencyMs.p99)} vs ${msCell(p.latencyMs.p99)} ms, join ${
      fixed(t.joinMs / p.joinMs, 1)
    }×`;
  });
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

  for (const { target, name, versus, cpuRatio } of TRANSPORT_CHECKS) {
    for (const { plain, other } of transportPairs(rows, target)) {
      const cpu = figures(other).cpuPerCopyUs, cpuPlain = plain && figures(plain).cpuPerCopyUs;
      const ratio = cpu === undefined || cpuPlain === undefined ? undefined : cpu / cpuPlain;
      check(
        ratio === undefined ? undefined : ratio <= cpuRatio,
        `${other.scenario.name}: server CPU per copy over ${name} ≤ ${cpuRatio}× ${versus}: ${
          fixed(cpu, 3)
        } µs vs ${fixed(cpuPlain, 3)} µs (${fixed(ratio, 2)}×)`,
      );
    }
  }

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

/** The machine, Deno and server the tables are for; `flags` adds the scenarios' server flags. */
async function machineLines(server: string, flags: boolean): Promise<string[]> {
  const cpuinfo = await readProc("/proc/cpuinfo").catch(() => "");
  const model = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown CPU";
  const load = (await readProc("/proc/loadavg").catch(() => "")).split(" ").slice(0, 3);
  const cores = navigator.hardwareConcurrency;
  return [
    `date: ${new Date().toISOString()}`,
    `machine: Linux ${Deno.osRelease()}, ${cores} cores (${model}), load ${load.join(" ")}`,
    `deno: ${Deno.version.deno} (V8 ${Deno.version.v8})`,
    `server: ${server} + protocol.ts (sha256 ${await sourceHash(server)}…)`,
    ...(flags
      ? [
        `server flags: ${SERVER_FLAGS.join(" ")} --no-tls --no-web --db none (chat) or a ` +
        `temporary file (chat+db); chat+tls: --no-plain --tls-port <free> --cert/--key <made ` +
        `for this run> --no-web --db none instead of --no-tls; chat+ws: --no-tls ` +
        `--web-port <free> --db none`,
      ]
      : []),
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
  for (const { target, name } of TRANSPORT_CHECKS) {
    const lines = transportLines(rows, target);
    if (lines.length === 0) continue;
    console.log(`\n${target} against chat (${name} against plain TCP):`);
    for (const line of lines) console.log(`  ${line}`);
  }
  console.log("\ntargets:");
  for (const line of targetLines(rows)) console.log(`  ${line}`);
  console.log(`\n${NOTES}`);
}

function rowDone(row: Row): void {
  const { name, target } = row.scenario;
  const problem = row.problem ? `: ${row.problem}` : "";
  console.error(`  ${name} (${target}): ${(row.wallMs / 1000).toFixed(1)} s${problem}`);
}

// ==== The hostile scenario ====

/** The chat server's flags in the hostile scenario: its default limits, all of them on. */
const HOSTILE_SERVER_FLAGS = ["--console", "off"];
/** Both sides of the hostile scenario: bystanders and attackers. */
const HOSTILE_SCRIPT = `${BENCH_DIR}hostile.ts`;
/** Bystanders in the hostile scenario. */
const HOSTILE_CLIENTS = 50;
/** Messages a second each bystander says. */
const HOSTILE_RATE = 1;
/** The target: the bystanders' p99 under attack at most this many times the quiet run's. */
const HOSTILE_P99_RATIO = 2;
/** The target: the server's RSS grows by less than this under attack, in MiB. */
const HOSTILE_GROWTH_MIB = 100;
/** How long past its chatting a side of the scenario may take before it is stopped, in s. */
const HOSTILE_GRACE_SECONDS = 60;

/** A run of the hostile scenario: the bystanders alone, or under every attack at once. */
export type HostileKind = "quiet" | "hostile";

/** Options for {@linkcode runHostile}. */
export interface HostileOptions extends RunOptions {
  /** How long the bystanders chat, in seconds. */
  seconds: number;
  /**
   * How many bystanders chat.
   * @default {50}
   */
  clients?: number;
  /**
   * Messages a second each bystander says.
   * @default {1}
   */
  rate?: number;
}

/** The server and both sides of the scenario, sampled at the same moment. */
export interface HostileSamples {
  server: ProcessSample;
  bystanders: ProcessSample;
  /** Only in a hostile run. */
  attackers?: ProcessSample;
}

/** What one run of the hostile scenario measured. */
export interface HostileRow {
  kind: HostileKind;
  bystanders: BystanderResult | undefined;
  /** Only in a hostile run. */
  attackers: AttackerResult | undefined;
  /** What went wrong, if anything did. */
  problem?: string;
  /** The server once it listened, before anyone connected. */
  baseline: ProcessSample;
  /** When the bystanders started chatting (with the attacks under way), and at `phase end`. */
  go?: HostileSamples;
  end?: HostileSamples;
  /** The server once both sides finished. */
  final: ProcessSample;
  wallMs: number;
}

/**
 * A child process that marks its phases with `phase <name>` lines on standard error and waits
 * for a line on standard input after each; it prints its result as JSON on standard output.
 */
class PhasedChild {
  readonly child: Deno.ChildProcess;
  readonly #stderr: LineReader;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #output: Promise<string>;
  readonly #killer: ReturnType<typeof setTimeout>;
  #done: Promise<{ text: string; problem?: string }> | undefined;

  /**
   * Runs `deno` with `args`; kills it if it still runs after `timeoutMs`. With `lowPriority`, at
   * the lowest CPU priority (`nice -n 19`, which execs it: the pid is deno's).
   */
  constructor(args: string[], timeoutMs: number, options: { lowPriority?: boolean } = {}) {
    const [program, programArgs] = options.lowPriority
      ? ["nice", ["-n", "19", Deno.execPath(), ...args]]
      : [Deno.execPath(), args];
    this.child = new Deno.Command(program, {
      args: programArgs,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    }).spawn();
    this.#output = new Response(this.child.stdout).text();
    this.#stderr = new LineReader(this.child.stderr);
    this.#writer = this.child.stdin.getWriter();
    this.#killer = setTimeout(() => this.kill(), timeoutMs);
  }

  /** The name of its next phase; `undefined` if it ended first. */
  async phase(): Promise<string | undefined> {
    return (await this.#stderr.find(/^phase (\w+)$/))?.[1];
  }

  /** Lets it go on past the phase it waits at. */
  async go(): Promise<void> {
    await this.#writer.write(encoder.encode("go\n")).catch(() => {}); // unless it has died
  }

  /** Closes its input, waits for it to exit; resolves to its output, or why there is none. */
  finish(): Promise<{ text: string; problem?: string }> {
    this.#done ??= (async () => {
      await this.#writer.close().catch(() => {});
      const [status, text] = await Promise.all([this.child.status, this.#output]);
      await this.#stderr.drain();
      clearTimeout(this.#killer);
      return status.success
        ? { text }
        : { text, problem: `exited ${status.code}: ${this.#stderr.last.join(" ")}` };
    })();
    return this.#done;
  }

  /** Kills it (if it still runs) and waits for it to end. */
  async stop(): Promise<void> {
    this.kill();
    await this.finish();
  }

  kill(): void {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // it has exited already
    }
  }
}

/** The arguments that run one side of the scenario against `port`. */
function hostileArgs(
  role: "bystanders" | "attackers",
  port: number,
  options: HostileOptions,
): string[] {
  const timeout = String(Math.ceil(options.seconds) + HOSTILE_GRACE_SECONDS);
  return [
    ...["run", "--allow-net", HOSTILE_SCRIPT, "--role", role, "--port", String(port)],
    ...["--timeout", timeout, "--sync"],
    ...(role === "attackers" ? [] : [
      ...["--clients", String(options.clients ?? HOSTILE_CLIENTS)],
      ...["--rate", String(options.rate ?? HOSTILE_RATE), "--seconds", String(options.seconds)],
    ]),
  ];
}

/** How long a side of the scenario may run before it is killed, in milliseconds. */
function hostileKillMs(options: HostileOptions): number {
  return (options.seconds + 2 * HOSTILE_GRACE_SECONDS) * 1000;
}

/**
 * Runs the hostile scenario once against a fresh server with its default limits and a fresh
 * database file: the bystanders connect, then (in a `hostile` run) every attack starts, then the
 * bystanders chat for `seconds` while the server is sampled. Never throws for what the server or
 * the scenario's processes do: it tells in `problem`.
 */
export async function runHostile(kind: HostileKind, options: HostileOptions): Promise<HostileRow> {
  const started = performance.now();
  await removeDatabase(options.dbPath);
  const server = await startTarget("chat+db", options, HOSTILE_SERVER_FLAGS);
  const children: PhasedChild[] = [];
  try {
    const baseline = await sampleProcess(server.child.pid);
    const row = await driveHostile(kind, server, options, children, baseline);
    const problems = [row.problem, server.exited() ? `the server exited: ${server.last()}` : ""]
      .filter((p) => p);
    return {
      ...row,
      ...(problems.length > 0 ? { problem: problems.join("; ") } : {}),
      wallMs: performance.now() - started,
    };
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    await stopTarget(server);
  }
}

/** Runs both sides of one run, sampling at their phases; the row without its wall time. */
async function driveHostile(
  kind: HostileKind,
  server: RunningTarget,
  options: HostileOptions,
  children: PhasedChild[],
  baseline: ProcessSample,
): Promise<Omit<HostileRow, "wallMs">> {
  const problems: string[] = [];
  const bystanders = new PhasedChild(
    hostileArgs("bystanders", server.port, options),
    hostileKillMs(options),
  );
  children.push(bystanders);
  let attackers: PhasedChild | undefined;
  const sample = async (): Promise<HostileSamples> => ({
    server: await sampleProcess(server.child.pid),
    bystanders: await sampleProcess(bystanders.child.pid),
    ...(attackers ? { attackers: await sampleProcess(attackers.child.pid) } : {}),
  });
  const row: Omit<HostileRow, "wallMs"> = {
    kind,
    bystanders: undefined,
    attackers: undefined,
    baseline,
    final: baseline,
  };
  let ready = await bystanders.phase() === "ready";
  if (!ready) problems.push("the bystanders never all joined");
  if (ready && kind === "hostile") {
    // On a network the attackers are other computers: here they run at the lowest priority,
    // so that on a machine of two cores their own CPU does not pass for the server's slowness.
    attackers = new PhasedChild(
      hostileArgs("attackers", server.port, options),
      hostileKillMs(options),
      { lowPriority: true },
    );
    children.push(attackers);
    ready = await attackers.phase() === "attacking";
    if (!ready) problems.push("the attacks never got under way");
  }
  const sampleOrTell = (moment: string) =>
    sample().catch((error) => {
      problems.push(
        `cannot sample at ${moment}: ${error instanceof Error ? error.message : error}`,
      );
      return undefined;
    });
  const go = ready ? await sampleOrTell("the start") : undefined;
  if (go) {
    row.go = go;
    await bystanders.go();
    const ended = await bystanders.phase() === "end";
    if (!ended) problems.push("the bystanders did not finish");
    const end = ended ? await sampleOrTell("the end") : undefined;
    if (end) row.end = end;
  }
  if (attackers) {
    await attackers.go();
    row.attackers = parseResult<AttackerResult>(await attackers.finish(), "attackers", problems);
  }
  await bystanders.go();
  row.bystanders = parseResult<BystanderResult>(await bystanders.finish(), "bystanders", problems);
  if (row.bystanders?.stopped) problems.push(`the bystanders stopped: ${row.bystanders.stopped}`);
  row.final = await sampleProcess(server.child.pid).catch(() => baseline);
  return problems.length > 0 ? { ...row, problem: problems.join("; ") } : row;
}

/** A side's JSON result, or `undefined` with the reason added to `problems`. */
function parseResult<T>(
  output: { text: string; problem?: string },
  side: string,
  problems: string[],
): T | undefined {
  if (output.problem) {
    problems.push(`the ${side} ${output.problem}`);
    return undefined;
  }
  try {
    return JSON.parse(output.text) as T;
  } catch {
    problems.push(`the ${side} printed no result: ${output.text.slice(0, 160)}`);
    return undefined;
  }
}

/** The figures a hostile run is printed with; `undefined` where they could not be measured. */
export interface HostileFigures {
  /** Delivery latency to the other bystanders, in milliseconds. */
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  maxMs: number | undefined;
  /** Until the sender's acknowledgement, in milliseconds. */
  ackP99Ms: number | undefined;
  /** CPU over the chatting phase, as % of one core. */
  serverCpuPercent: number | undefined;
  bystanderCpuPercent: number | undefined;
  attackerCpuPercent: number | undefined;
  /** Server VmRSS once it listened, in MiB. */
  rssStartMiB: number;
  /** Server VmHWM at the end, in MiB. */
  peakRssMiB: number;
  /** Peak minus start, in MiB. */
  growthMiB: number;
}

/** Works the samples and results of a hostile run into its figures. */
export function hostileFigures(row: HostileRow): HostileFigures {
  const b = row.bystanders && row.bystanders.received > 0 ? row.bystanders : undefined;
  const { go, end } = row;
  const seconds = go && end ? (end.server.at - go.server.at) / 1000 : 0;
  const percent = (from?: ProcessSample, to?: ProcessSample) =>
    from && to && seconds >= MIN_CPU_PHASE_SECONDS
      ? 100 * (to.cpuSeconds - from.cpuSeconds) / seconds
      : undefined;
  const peakKiB = Math.max(row.final.peakRssKiB, end?.server.peakRssKiB ?? 0);
  return {
    p50Ms: b?.latencyMs.p50,
    p99Ms: b?.latencyMs.p99,
    maxMs: b?.latencyMs.max,
    ackP99Ms: b && b.acked > 0 ? b.ackLatencyMs.p99 : undefined,
    serverCpuPercent: percent(go?.server, end?.server),
    bystanderCpuPercent: percent(go?.bystanders, end?.bystanders),
    attackerCpuPercent: percent(go?.attackers, end?.attackers),
    rssStartMiB: row.baseline.rssKiB / 1024,
    peakRssMiB: peakKiB / 1024,
    growthMiB: (peakKiB - row.baseline.rssKiB) / 1024,
  };
}

const HOSTILE_COLUMNS = [
  "run",
  "delivered",
  "lost",
  "p50 ms",
  "p99 ms",
  "max ms",
  "ack p99 ms",
  "other frames",
  "refused",
  "dropped",
  "srv CPU",
  "bys CPU",
  "atk CPU",
  "RSS start",
  "peak RSS",
  "growth",
];

/** A percentage, whole, or `n/a`. */
function percentCell(value: number | undefined): string {
  return value === undefined ? "n/a" : `${fixed(value, 0)}%`;
}

/** MiB to one decimal. */
function mibCell(value: number): string {
  return `${fixed(value, 1)} MiB`;
}

/** Milliseconds to two decimals under 10, whole above. */
function msCell(value: number | undefined): string {
  return value === undefined ? "n/a" : fixed(value, value < 10 ? 2 : 0);
}

/** The cells of one hostile run's row. */
function hostileCells(row: HostileRow): string[] {
  const b = row.bystanders;
  const f = hostileFigures(row);
  return [
    row.kind,
    b ? `${thousands(b.received)}/${thousands(b.expected)}` : "n/a",
    b ? thousands(b.lost) : "n/a",
    msCell(f.p50Ms),
    msCell(f.p99Ms),
    msCell(f.maxMs),
    msCell(f.ackP99Ms),
    b ? thousands(b.otherFrames) : "n/a",
    b ? thousands(b.refused) : "n/a",
    b ? thousands(b.disconnects) : "n/a",
    percentCell(f.serverCpuPercent),
    percentCell(f.bystanderCpuPercent),
    percentCell(f.attackerCpuPercent),
    mibCell(f.rssStartMiB),
    mibCell(f.peakRssMiB),
    `${f.growthMiB >= 0 ? "+" : ""}${mibCell(f.growthMiB)}`,
  ];
}

const ATTACK_COLUMNS = [
  "attack",
  "addresses",
  "rounds",
  "connections",
  "welcomes",
  "sent",
  "received",
  "errors (most frequent)",
];

/** Bytes as KiB or MiB, whichever reads better. */
function bytesCell(bytes: number): string {
  return bytes < 1024 * 1024 ? `${fixed(bytes / 1024, 0)} KiB` : `${fixed(bytes / 1048576, 1)} MiB`;
}

/** The cells of one attack's row. */
function attackCells(run: AttackRun): string[] {
  const r = run.report;
  const errors = Object.entries(r.errors).sort((a, b) => b[1] - a[1]).slice(0, 4)
    .map(([code, count]) => `${code} ${thousands(count)}`).join(", ");
  const restarts = run.restarts > 0 ? ` (restarted ${run.restarts}×: ${run.firstError})` : "";
  return [
    run.name,
    `${run.addresses} (127.${run.group}.0.x)`,
    thousands(r.rounds),
    r.failedConnects > 0
      ? `${thousands(r.connections)} (${thousands(r.failedConnects)} failed)`
      : thousands(r.connections),
    thousands(r.welcomes),
    bytesCell(r.bytesSent),
    bytesCell(r.bytesReceived),
    (errors || "none") + restarts,
  ];
}

/** The issue's targets for the hostile scenario, each with what was measured. */
function hostileTargetLines(
  quiet: HostileRow | undefined,
  hostile: HostileRow | undefined,
): string[] {
  const lines: string[] = [];
  const check = (ok: boolean | undefined, text: string) =>
    lines.push(`${ok === undefined ? "n/a " : ok ? "MET " : "MISS"}  ${text}`);
  const q = quiet && hostileFigures(quiet), h = hostile && hostileFigures(hostile);
  const ratio = q?.p99Ms && h?.p99Ms !== undefined ? h.p99Ms / q.p99Ms : undefined;
  check(
    ratio === undefined ? undefined : ratio <= HOSTILE_P99_RATIO,
    `bystanders' p99 under attack ≤ ${HOSTILE_P99_RATIO}× the quiet run: ${
      msCell(h?.p99Ms)
    } ms vs ${msCell(q?.p99Ms)} ms (${fixed(ratio, 2)}×; p50 ${msCell(h?.p50Ms)} vs ${
      msCell(q?.p50Ms)
    } ms)`,
  );
  check(
    h === undefined || hostile?.end === undefined ? undefined : h.growthMiB < HOSTILE_GROWTH_MIB,
    `server RSS growth under attack < ${HOSTILE_GROWTH_MIB} MiB: ${
      h
        ? `${fixed(h.growthMiB, 1)} MiB (${fixed(h.rssStartMiB, 1)} MiB once listening, peak ${
          fixed(h.peakRssMiB, 1)
        } MiB; quiet run peak ${q ? fixed(q.peakRssMiB, 1) : "n/a"} MiB)`
        : "n/a"
    }`,
  );
  const complete = (row: HostileRow | undefined) => {
    const b = row?.bystanders;
    return b === undefined ? undefined : b.lost === 0 && b.duplicates === 0 &&
      b.outOfOrder === 0 && b.refused === 0 && b.disconnects === 0 && b.sent > 0;
  };
  const counts = (row: HostileRow | undefined) => {
    const b = row?.bystanders;
    return b
      ? `${thousands(b.received)}/${
        thousands(b.expected)
      } copies, ${b.refused} refused, ${b.disconnects} dropped` +
        (b.firstDisconnect ? ` (first: ${b.firstDisconnect})` : "") +
        (b.firstRefusal ? ` (first refusal: ${b.firstRefusal})` : "")
      : "n/a";
  };
  const both = [complete(quiet), complete(hostile)];
  check(
    both.includes(undefined) ? undefined : both.every((ok) => ok),
    `every bystander message reached every other bystander, nobody dropped: quiet ${
      counts(quiet)
    }; hostile ${counts(hostile)}`,
  );
  return lines;
}

/** The hostile scenario's report: its table, the attacks, problems, targets and notes. */
export function hostileReport(
  quiet: HostileRow | undefined,
  hostile: HostileRow | undefined,
): string[] {
  const rows = [quiet, hostile].filter((row) => row !== undefined);
  const b = rows.find((row) => row.bystanders)?.bystanders;
  const lines = [
    "",
    `hostile: ${b?.clients ?? HOSTILE_CLIENTS} bystanders (127.${BYSTANDER_GROUP}.0.x), ${
      b?.rate ?? HOSTILE_RATE
    } message/s each for ${
      b ? fixed(b.messages / b.rate, 0) : "n/a"
    } s; the same against a fresh server twice: quiet, ` +
    `then under every attack at once`,
    `server flags: ${HOSTILE_SERVER_FLAGS.join(" ")} --tls-port <free> --web-port <free> ` +
    "--https-port <free> --db <temporary file> " +
    "(default limits)",
    "",
    formatTable(HOSTILE_COLUMNS, rows.map(hostileCells)),
  ];
  const attacks = hostile?.attackers;
  if (attacks) {
    const slow = attacks.slowToStart.length > 0
      ? `; slow to start: ${attacks.slowToStart.join(", ")}`
      : "";
    lines.push(
      "",
      `attacks, all at once for ${fixed(attacks.attackMs / 1000, 1)} s${slow}:`,
      formatTable(ATTACK_COLUMNS, attacks.attacks.map(attackCells)),
    );
  }
  const others = rows.filter((row) => (row.bystanders?.otherFrames ?? 0) > 0);
  if (others.length > 0) lines.push("", "other frames that reached the bystanders, by type:");
  for (const row of others) {
    const b = row.bystanders!;
    const types = Object.entries(b.otherTypes).sort((x, y) => y[1] - x[1]);
    lines.push(
      `  ${row.kind}: ${bytesCell(b.otherBytes)} in all; ` +
        types.map(([type, n]) => `${type} ${thousands(n)}`).join(", "),
    );
  }
  const problems = rows.filter((row) => row.problem);
  if (problems.length > 0) {
    lines.push("", "problems:", ...problems.map((row) => `  ${row.kind}: ${row.problem}`));
  }
  lines.push("", "targets (hostile):");
  lines.push(...hostileTargetLines(quiet, hostile).map((line) => `  ${line}`));
  lines.push("", HOSTILE_NOTES);
  return lines;
}

const HOSTILE_NOTES = `notes (hostile):
  latency: from a bystander saying a message until each other bystander has it (one sample per
    copy; "ack p99" is until the sender's own acknowledgement). other frames: what else reached
    the bystanders while they chatted (attackers' messages, presence, notices), all together.
  refused: messages the server refused or lost; dropped: bystanders the server disconnected.
  CPU: utime+stime over the chatting phase, as % of one core, for the server, the bystanders'
    process and the attackers' process; all three share this machine's cores, so the attackers'
    own CPU use slows the others too. RSS start: server VmRSS once listening, before anyone
    connected; peak RSS: VmHWM at the end; growth: peak minus start.
  attacks (bench/attacks.ts): each from its own addresses, all at once, from just before the
    bystanders start chatting (once each has begun its second round) until they finish, so the
    window holds each attack's first burst (20 logins per address) as well as its steady state:
    ${ATTACK_NAMES.join(", ")}.`;

/** Runs the quiet and then the hostile run, reporting each as it finishes. */
export async function runHostileScenario(
  options: HostileOptions,
  onRow: (row: HostileRow) => void = () => {},
): Promise<{ quiet: HostileRow; hostile: HostileRow }> {
  const quiet = await runHostile("quiet", options);
  onRow(quiet);
  const hostile = await runHostile("hostile", options);
  onRow(hostile);
  return { quiet, hostile };
}

/** Reports a finished hostile run on standard error, as {@linkcode rowDone} does a row. */
function hostileRowDone(row: HostileRow): void {
  const problem = row.problem ? `: ${row.problem}` : "";
  console.error(`  hostile (${row.kind}): ${(row.wallMs / 1000).toFixed(1)} s${problem}`);
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
    messages per sender allows; latency there is mostly queueing.
  chat+tls: every client on the server's TLS port (Deno.connectTls, ECDSA P-256 certificate);
    the handshakes fall in "join ms", before "phase ready", so srv µs/copy is the record layer's
    cost on top of the same work as the chat row's.
  chat+ws: every client on the server's web port, ws://127.0.0.1:<port>/ws (Deno's WebSocket
    client), each frame one text message; the upgrades fall in "join ms", so srv µs/copy is the
    WebSocket transport's cost on top of the same work as the chat row's.`;

const USAGE = `Runs the chat benchmark and prints a table.

USAGE:
  deno task bench [--quick] [--only TEXT] [--server PATH]

OPTIONS:
      --quick         Smaller scenarios, for a run of about a minute
      --only TEXT     Only the rows whose "scenario (target)" contains TEXT, and the
                      chat row each TLS or WebSocket row is compared with
                      ("fan-out 50", "tls", "ws", "hostile" for only the hostile
                      scenario)
      --server PATH   The chat server script      (default: server.ts)
  -h, --help          Show this help`;

/** How long the bystanders chat in each run of the hostile scenario, in seconds. */
function hostileSeconds(quick: boolean): number {
  return quick ? 3 : 10;
}

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
  const only = values.only ?? "";
  const list = selectScenarios(scenarios(values.quick), only);
  const hostile = "hostile".includes(only);
  const dir = await Deno.makeTempDir({ prefix: "chat-bench-" });
  const started = performance.now();
  try {
    const hash = await sourceHash(values.server);
    console.log((await machineLines(values.server, list.length > 0)).join("\n"));
    const tls = list.some((s) => s.target === "chat+tls")
      ? await writeBenchCertificate(dir)
      : undefined;
    const options = { server: values.server, dbPath: `${dir}/bench.db`, tls };
    if (list.length > 0) printReport(await runAll(list, options, rowDone));
    if (hostile) {
      const seconds = hostileSeconds(values.quick);
      const runs = await runHostileScenario({ ...options, seconds }, hostileRowDone);
      console.log(hostileReport(runs.quiet, runs.hostile).join("\n"));
    }
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
