#!/usr/bin/env -S deno run --allow-net
/**
 * The two sides of the benchmark's hostile scenario, each run as a process of its own so that
 * neither's CPU use distorts the other's timing: `--role bystanders` (people chatting at a fixed
 * rate, each from a loopback address of their own) and `--role attackers` (every attack of
 * `bench/attacks.ts` at once, at full speed, each from a few addresses of its own). Each prints
 * one JSON result on standard output: a {@linkcode BystanderResult} or an
 * {@linkcode AttackerResult}.
 *
 * ```sh
 * deno run --allow-net bench/hostile.ts --role bystanders --port 5050 --clients 50 --seconds 10
 * deno run --allow-net bench/hostile.ts --role attackers --port 5050 --seconds 15
 * ```
 *
 * Bystander `i` is named `bystander<i>` and connects from `127.1.x.y` (loopback group
 * {@linkcode BYSTANDER_GROUP}, index `i`). Each says `--rate` messages a second, the bystanders
 * taking turns evenly; a message's text is `~<sender>.<seq>.<send time in µs>.` padded to
 * {@linkcode MESSAGE_BYTES}. Latency is measured where it matters to people: from the moment a
 * message is said until each of the other bystanders has it (one sample per copy), not until
 * the sender's acknowledgement (measured too, as `ackLatencyMs`).
 *
 * With `--sync`, bystanders write `phase ready` (everyone joined) and `phase end` (every copy
 * arrived, or the drain gave up) to standard error and wait for a line on standard input after
 * each; attackers write `phase attacking` once every attack is under way, and stop at the next
 * line on standard input. A harness samples the server between those markers.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ChatClient, disconnectText } from "../net/chat_client.ts";
import { errorText } from "../net/conn.ts";
import { writeAll } from "../net/outbox.ts";
import { encodeFrame, MAX_NAME_LENGTH, type MessageFrame, type ServerFrame } from "../protocol.ts";
import { type AttackName, type AttackReport, ATTACKS, emptyReport, runAttack } from "./attacks.ts";
import { encodePayload, type Latency, percentiles } from "./load.ts";
import { dialFrom, loopbackAddress } from "./loopback.ts";

// ==== Constants ====

/** Where the server listens: loopback, reached from every `127.x.y.z` address. */
export const HOSTILE_HOST = "127.0.0.1";
/** The loopback group bystanders connect from; attackers use the groups after it. */
export const BYSTANDER_GROUP = 1;
/** Bytes of each bystander message's text: a line of chat. */
export const MESSAGE_BYTES = 64;
/** How long, after the last message is said, copies and acknowledgements are waited for. */
export const DRAIN_MS = 5000;
/** How long nothing may arrive before the server counts as quiet after everyone joined. */
const QUIET_MS = 200;
/** The longest wait for the server to fall quiet after everyone joined. */
const SETTLE_MAX_MS = 3000;
/** The longest wait for every attack to begin its second round before `phase attacking`. */
const WARMUP_MAX_MS = 3000;
/** How long connecting all the bystanders may take. */
const CONNECT_TIMEOUT_MS = 15_000;

/**
 * How many loopback addresses each attack comes from: a few each, enough for the attack to do
 * what it means to under the server's per-address limits (20 logins a minute, 20 people and 4
 * pending connections at once per address). `drip` keeps 60 connections open, so it needs 3
 * addresses at least; `logins` and `squat` get 4 to show the limits hold per address.
 */
export const ATTACK_ADDRESSES: Readonly<Record<AttackName, number>> = {
  marks: 2,
  drip: 4,
  logins: 4,
  flap: 1,
  requests: 2,
  alternate: 2,
  blank: 2,
  squat: 4,
};

/** Every attack, in the order of {@linkcode ATTACKS}. */
export const ATTACK_NAMES = Object.keys(ATTACKS) as AttackName[];

/** The pattern of a bystander message's head: sender, sequence number, send time in µs. */
const PAYLOAD_REGEXP = /^~(\d+)\.(\d+)\.(\d+)\./;

const encoder = new TextEncoder();

// ==== Small helpers ====

/** Waits `ms` milliseconds (at once for 0 or less). */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Resolves once `promise` does or `ms` milliseconds have passed, to whether it did. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(resolve, ms, false));
  try {
    return await Promise.race([promise.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Microseconds on the process's `performance.now()` clock, as a whole number. */
function nowUs(): number {
  return Math.floor(performance.now() * 1000);
}

/** Rounds to three decimals (microseconds, for milliseconds). */
function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Bystander `index`'s name. */
export function bystanderName(index: number): string {
  return `bystander${index}`;
}

/** The loopback group attack `name` comes from: its place in {@linkcode ATTACKS}, after 1. */
export function attackGroup(name: AttackName): number {
  return BYSTANDER_GROUP + 1 + ATTACK_NAMES.indexOf(name);
}

/** The loopback addresses attack `name` comes from (see {@linkcode ATTACK_ADDRESSES}). */
export function attackAddresses(name: AttackName): string[] {
  const group = attackGroup(name);
  return Array.from({ length: ATTACK_ADDRESSES[name] }, (_, i) => loopbackAddress(group, i));
}

// ==== Bystanders ====

/** Options for {@linkcode runBystanders}: the CLI flags of the same names. */
export interface BystanderOptions {
  /** The server's port on {@linkcode HOSTILE_HOST}. */
  port: number;
  /**
   * How many bystanders chat.
   * @default {50}
   */
  clients: number;
  /**
   * Messages a second each bystander says (the server allows 5 a second after a burst of 10).
   * @default {1}
   */
  rate: number;
  /**
   * How long the bystanders chat, in seconds: each says `round(seconds * rate)` messages.
   * @default {10}
   */
  seconds: number;
  /**
   * Seconds after which the run stops, finished or not.
   * @default {120}
   */
  timeout: number;
  /** Called at `ready` (everyone joined) and `end` (every copy in); the run waits for it. */
  onPhase?: (phase: "ready" | "end") => Promise<void>;
}

/** What the bystanders measured; printed as JSON. */
export interface BystanderResult {
  clients: number;
  /** Messages a second each bystander said. */
  rate: number;
  /** Messages each bystander was to say. */
  messages: number;
  /** Messages said, by all of them. */
  sent: number;
  /** Copies that should arrive: every message at every other bystander. */
  expected: number;
  /** Distinct copies that arrived at another bystander in time (before `phase end`). */
  received: number;
  lost: number;
  duplicates: number;
  /** Copies that arrived before an earlier message of the same sender. */
  outOfOrder: number;
  /** Messages the server acknowledged to their sender. */
  acked: number;
  /** Messages the server refused (an error frame for the message), or lost with the client. */
  refused: number;
  /** Why the first refused message was refused. */
  firstRefusal?: string;
  /** Bystanders the server disconnected while the run went on. */
  disconnects: number;
  /** Who was disconnected first, and why. */
  firstDisconnect?: string;
  /**
   * Frames other than bystander copies and acknowledgements that reached bystanders between
   * `ready` and `end`, all bystanders together: the attackers' messages and presence, mostly.
   */
  otherFrames: number;
  /** Their size as the server sends them (one JSON line each), in bytes, all together. */
  otherBytes: number;
  /**
   * {@linkcode BystanderResult.otherFrames} by kind: the frame's type, and for messages who
   * sent them, with the number off the name (`message from blank` for `blank12`'s).
   */
  otherTypes: Record<string, number>;
  /** From the first connect until every bystander was welcomed, in milliseconds. */
  joinMs: number;
  /** From the first message said until the last copy arrived, in milliseconds. */
  sendMs: number;
  /** From a message said until it arrived at another bystander, one sample per copy. */
  latencyMs: Latency;
  /** From a message said until the server's acknowledgement reached its sender. */
  ackLatencyMs: Latency;
  /** Why the run stopped before it finished (`timeout`, or a failure to connect). */
  stopped?: string;
}

/** The counts of a bystander run, kept as copies arrive. */
class Tally {
  readonly clients: number;
  /** Messages each bystander says. */
  readonly messages: number;
  /** Messages a second each bystander says. */
  readonly rate: number;
  readonly expected: number;
  readonly latencies: number[] = [];
  readonly ackLatencies: number[] = [];
  /** Whether copies and other frames are being counted (from `ready` until `end`). */
  counting = false;
  sent = 0;
  received = 0;
  duplicates = 0;
  outOfOrder = 0;
  acked = 0;
  refused = 0;
  firstRefusal: string | undefined;
  disconnects = 0;
  firstDisconnect: string | undefined;
  otherFrames = 0;
  otherBytes = 0;
  readonly otherTypes: Record<string, number> = {};
  firstSendAt = 0;
  lastCopyAt = 0;
  /** One byte per (receiver, sender, message): whether that copy arrived. */
  readonly #seen: Uint8Array;
  /** The next message each receiver expects from each sender. */
  readonly #next: Uint32Array;
  readonly #complete = Promise.withResolvers<void>();

  constructor(clients: number, messages: number, rate: number) {
    this.clients = clients;
    this.messages = messages;
    this.rate = rate;
    this.expected = clients * (clients - 1) * messages;
    this.#seen = new Uint8Array(clients * clients * messages);
    this.#next = new Uint32Array(clients * clients);
    if (this.expected === 0) this.#complete.resolve();
  }

  /** Resolves once every expected copy has arrived. */
  get complete(): Promise<void> {
    return this.#complete.promise;
  }

  /** Counts a frame that reached `receiver`: a copy of a bystander message, or anything else. */
  onFrame(receiver: number, frame: ServerFrame): void {
    if (!this.counting) return;
    const copy = frame.type === "message" && !frame.history &&
      parseCopy(frame, this.clients, this.messages);
    if (!copy) {
      const kind = frame.type === "message" || frame.type === "private"
        ? `${frame.type} from ${frame.from.replace(/\d+$/, "")}`
        : frame.type;
      this.otherFrames++;
      this.otherBytes += encodeFrame(frame).length;
      this.otherTypes[kind] = (this.otherTypes[kind] ?? 0) + 1;
      return;
    }
    if (copy.sender === receiver) return; // the acknowledgement: timed by the sender
    const now = performance.now();
    const slot = (receiver * this.clients + copy.sender) * this.messages + copy.seq;
    if (this.#seen[slot] === 1) {
      this.duplicates++;
      return;
    }
    this.#seen[slot] = 1;
    const pair = receiver * this.clients + copy.sender;
    if (copy.seq < this.#next[pair]!) this.outOfOrder++;
    this.#next[pair] = Math.max(this.#next[pair]!, copy.seq + 1);
    this.latencies.push(now - copy.sentUs / 1000);
    this.lastCopyAt = now;
    if (++this.received === this.expected) this.#complete.resolve();
  }

  /** Counts a message refused or lost before its acknowledgement. */
  onRefused(sender: number, error: unknown): void {
    this.refused++;
    this.firstRefusal ??= `${bystanderName(sender)}: ${errorText(error)}`;
  }

  /** Counts a bystander the server disconnected. */
  onDisconnect(index: number, why: string): void {
    this.disconnects++;
    this.firstDisconnect ??= `${bystanderName(index)}: ${why}`;
  }
}

/** The sender, number and send time of a bystander's copy, or `undefined` for anything else. */
function parseCopy(
  frame: MessageFrame,
  clients: number,
  messages: number,
): { sender: number; seq: number; sentUs: number } | undefined {
  const match = PAYLOAD_REGEXP.exec(frame.text);
  if (!match) return undefined;
  const [sender, seq, sentUs] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (sender >= clients || seq >= messages || frame.from !== bystanderName(sender)) {
    return undefined;
  }
  return { sender, seq, sentUs };
}

/** Connects every bystander from its own address; closes them all and throws if any fails. */
async function connectBystanders(port: number, clients: number): Promise<ChatClient[]> {
  const settled = await Promise.allSettled(
    Array.from({ length: clients }, (_, i) =>
      ChatClient.connect({
        hostname: HOSTILE_HOST,
        port,
        name: bystanderName(i),
        timeoutMs: CONNECT_TIMEOUT_MS,
        dial: dialFrom(loopbackAddress(BYSTANDER_GROUP, i)),
      })),
  );
  const connected = settled.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
  const failed = settled.findIndex((s) => s.status === "rejected");
  if (failed === -1) return connected;
  await Promise.all(connected.map((client) => client.close()));
  const reason = (settled[failed] as PromiseRejectedResult).reason;
  throw new Error(`Cannot connect ${bystanderName(failed)}: ${errorText(reason)}`);
}

/** Reads every event of one bystander until it is closed, counting what arrives. */
async function listen(
  client: ChatClient,
  index: number,
  tally: Tally,
  activity: { at: number },
): Promise<void> {
  for await (const event of client) {
    activity.at = performance.now();
    if (event.type === "reconnecting" || event.type === "reconnected") continue;
    tally.onFrame(index, event);
  }
}

/** Waits until no bystander has received anything for {@linkcode QUIET_MS} (or the cap). */
async function settle(activity: { at: number }): Promise<void> {
  const deadline = performance.now() + SETTLE_MAX_MS;
  activity.at = Math.max(activity.at, performance.now());
  while (performance.now() < deadline) {
    const quietFor = performance.now() - activity.at;
    if (quietFor >= QUIET_MS) return;
    await sleep(QUIET_MS - quietFor + 1);
  }
}

/**
 * Has bystander `index` say its messages on schedule: message `seq` at `start + (seq + index /
 * clients) / rate` seconds, so that the bystanders take turns evenly. Returns once the last is
 * said; the acknowledgements are pushed to `acks`.
 */
async function speak(
  client: ChatClient,
  index: number,
  start: number,
  tally: Tally,
  acks: Promise<void>[],
): Promise<void> {
  const periodMs = 1000 / tally.rate;
  const offsetMs = index * periodMs / tally.clients;
  for (let seq = 0; seq < tally.messages && client.connected; seq++) {
    await sleep(start + offsetMs + seq * periodMs - performance.now());
    const sentUs = nowUs();
    tally.sent++;
    acks.push(
      client.say(encodePayload(index, seq, sentUs, MESSAGE_BYTES)).then(
        () => {
          tally.acked++;
          tally.ackLatencies.push(performance.now() - sentUs / 1000);
        },
        (error) => tally.onRefused(index, error),
      ),
    );
  }
}

/**
 * Connects the bystanders, has them chat for `seconds` at `rate` each, waits for every copy
 * (at most {@linkcode DRAIN_MS} after the last message), and resolves to what it measured. Never
 * rejects for what the server does: failures are counted, and a failure to connect stops the run.
 */
export async function runBystanders(options: BystanderOptions): Promise<BystanderResult> {
  const messages = Math.max(1, Math.round(options.seconds * options.rate));
  const tally = new Tally(options.clients, messages, options.rate);
  const started = performance.now();
  let clients: ChatClient[];
  try {
    clients = await connectBystanders(options.port, options.clients);
  } catch (error) {
    return bystanderResult(tally, options, { joinMs: 0, stopped: errorText(error) });
  }
  const joinMs = performance.now() - started;
  let closing = false;
  clients.forEach((client, i) =>
    client.closed.then((info) => {
      if (!closing) tally.onDisconnect(i, disconnectText(info));
    })
  );
  const activity = { at: performance.now() };
  const listeners = clients.map((client, i) => listen(client, i, tally, activity));
  let stopped: string | undefined;
  try {
    await settle(activity);
    await options.onPhase?.("ready");
    const finished = chat(clients, tally);
    if (!await within(finished, options.timeout * 1000)) stopped = "timeout";
    tally.counting = false;
    if (stopped === undefined) await options.onPhase?.("end");
  } finally {
    closing = true;
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(listeners);
  }
  return bystanderResult(tally, options, { joinMs, ...(stopped ? { stopped } : {}) });
}

/** The chatting phase: everyone says their messages, then copies and acks are waited for. */
async function chat(clients: ChatClient[], tally: Tally): Promise<void> {
  tally.counting = true;
  const acks: Promise<void>[] = [];
  const start = performance.now();
  tally.firstSendAt = start;
  await Promise.all(clients.map((client, i) => speak(client, i, start, tally, acks)));
  await within(Promise.all([tally.complete, Promise.all(acks)]), DRAIN_MS);
}

function bystanderResult(
  tally: Tally,
  options: BystanderOptions,
  extra: { joinMs: number; stopped?: string },
): BystanderResult {
  const sendMs = tally.lastCopyAt > 0 ? tally.lastCopyAt - tally.firstSendAt : 0;
  return {
    clients: options.clients,
    rate: options.rate,
    messages: tally.messages,
    sent: tally.sent,
    expected: tally.expected,
    received: tally.received,
    lost: tally.expected - tally.received,
    duplicates: tally.duplicates,
    outOfOrder: tally.outOfOrder,
    acked: tally.acked,
    refused: tally.refused,
    ...(tally.firstRefusal === undefined ? {} : { firstRefusal: tally.firstRefusal }),
    disconnects: tally.disconnects,
    ...(tally.firstDisconnect === undefined ? {} : { firstDisconnect: tally.firstDisconnect }),
    otherFrames: tally.otherFrames,
    otherBytes: tally.otherBytes,
    otherTypes: tally.otherTypes,
    joinMs: round3(extra.joinMs),
    sendMs: round3(sendMs),
    latencyMs: percentiles(Float32Array.from(tally.latencies)),
    ackLatencyMs: percentiles(Float32Array.from(tally.ackLatencies)),
    ...(extra.stopped === undefined ? {} : { stopped: extra.stopped }),
  };
}

// ==== Attackers ====

/** Options for {@linkcode runAttackers}. */
export interface AttackerOptions {
  /** The server's port on {@linkcode HOSTILE_HOST}. */
  port: number;
  /**
   * How long the attacks run without `onAttacking`, in seconds.
   * @default {10}
   */
  seconds: number;
  /**
   * Seconds after which the attacks stop whatever `onAttacking` does.
   * @default {120}
   */
  timeout: number;
  /**
   * The attacks to run.
   * @default {every attack in ATTACKS}
   */
  attacks?: readonly AttackName[];
  /**
   * Called once every attack is under way (has begun its second round, or after 3 s); the
   * attacks stop when it resolves. Without it, they stop after `seconds`.
   */
  onAttacking?: () => Promise<void>;
}

/** One attack's part in a run. */
export interface AttackRun {
  name: AttackName;
  /** How many loopback addresses it came from, and their group (`127.<group>.0.x`). */
  addresses: number;
  group: number;
  /** What it did, over all its restarts. */
  report: AttackReport;
  /**
   * How many times the attack threw and was started again. `runAttack` is not meant to throw
   * for what the server does, but a socket closed under a pending write can reject with an error
   * it does not know as a disconnect (`write ECANCELED`); the attack then starts over.
   */
  restarts: number;
  /** The first error it threw. */
  firstError?: string;
}

/** What the attackers did; printed as JSON. */
export interface AttackerResult {
  /** How long the attacks ran, in milliseconds. */
  attackMs: number;
  /** Attacks that had not begun a second round when `phase attacking` was written. */
  slowToStart: AttackName[];
  attacks: AttackRun[];
}

/** Adds `part` to `total`, counts and error codes alike. */
function addReport(total: AttackReport, part: AttackReport): void {
  total.rounds += part.rounds;
  total.connections += part.connections;
  total.failedConnects += part.failedConnects;
  total.bytesSent += part.bytesSent;
  total.bytesReceived += part.bytesReceived;
  total.lines += part.lines;
  total.welcomes += part.welcomes;
  for (const [code, count] of Object.entries(part.errors)) {
    total.errors[code] = (total.errors[code] ?? 0) + count;
  }
}

/**
 * Runs attack `name` until `signal` aborts, starting it again whenever it throws (see
 * {@linkcode AttackRun.restarts}). `onRound` is called after each of its rounds.
 */
async function keepAttacking(
  name: AttackName,
  signal: AbortSignal,
  port: number,
  onRound: () => void,
): Promise<AttackRun> {
  const run: AttackRun = {
    name,
    addresses: ATTACK_ADDRESSES[name],
    group: attackGroup(name),
    report: emptyReport(),
    restarts: 0,
  };
  const target = { hostname: HOSTILE_HOST, port };
  let n = 0;
  while (!signal.aborted) {
    // The report of a run that throws is lost with it, but for the copy each round hands out.
    let latest: AttackReport | undefined;
    // A new tag each time: the names of a run that threw may still be held.
    const tag = n === 0 ? name : `${name}r${n}_`;
    n++;
    try {
      latest = await runAttack(name, {
        target,
        addresses: attackAddresses(name),
        signal,
        tag,
        onRound: (report) => {
          latest = report;
          onRound();
        },
      });
      break;
    } catch (error) {
      run.restarts++;
      run.firstError ??= errorText(error);
    } finally {
      if (latest) addReport(run.report, latest);
    }
  }
  return run;
}

/**
 * Runs every attack in {@linkcode ATTACKS} (or those of `options.attacks`) at once, each from its
 * own addresses, until
 * `onAttacking` resolves (or `seconds` pass), and resolves to their reports.
 */
export async function runAttackers(options: AttackerOptions): Promise<AttackerResult> {
  const stop = new AbortController();
  const timeout = setTimeout(() => stop.abort(), options.timeout * 1000);
  const names = options.attacks ?? ATTACK_NAMES;
  const waiting = new Set(names);
  const underWay = Promise.withResolvers<void>();
  const started = performance.now();
  const runs = names.map((name) =>
    keepAttacking(name, stop.signal, options.port, () => {
      if (waiting.delete(name) && waiting.size === 0) underWay.resolve();
    })
  );
  try {
    await within(underWay.promise, WARMUP_MAX_MS);
    const slowToStart = [...waiting];
    await within(options.onAttacking?.() ?? sleep(options.seconds * 1000), options.timeout * 1000);
    stop.abort();
    return {
      attackMs: round3(performance.now() - started),
      slowToStart,
      attacks: await Promise.all(runs),
    };
  } finally {
    clearTimeout(timeout);
    stop.abort();
  }
}

// ==== Command line ====

const USAGE = `One side of the benchmark's hostile scenario: prints one JSON result.

USAGE:
  deno run --allow-net bench/hostile.ts --role bystanders --port PORT [OPTIONS]
  deno run --allow-net bench/hostile.ts --role attackers --port PORT [OPTIONS]

OPTIONS:
      --role ROLE       bystanders (chat at a fixed rate, measure latency) or
                        attackers (every attack at once, at full speed)   (required)
      --port PORT       Port of the chat server on ${HOSTILE_HOST}          (required)
      --clients N       Bystanders, each from its own address            (default: 50)
      --rate MSG/S      Messages a second each bystander says            (default: 1)
      --seconds S       How long bystanders chat; how long attackers attack
                        without --sync                                    (default: 10)
      --timeout S       Stop after this long, finished or not            (default: 120)
      --attacks LIST    Attackers: only these attacks, comma-separated   (default: all:
                        ${ATTACK_NAMES.join(",")})
      --sync            Bystanders: write "phase ready" and "phase end" to standard
                        error and wait for a line on standard input after each.
                        Attackers: write "phase attacking" once under way, and stop
                        at a line on standard input
  -h, --help            Show this help`;

/** The command line, parsed: a role and its options (without the callbacks). */
export type HostileArgs =
  | { role: "bystanders"; sync: boolean; options: BystanderOptions }
  | { role: "attackers"; sync: boolean; options: AttackerOptions };

/** Reads a positive number flag; throws a `RangeError` naming the flag. */
function positive(values: Record<string, unknown>, flag: string, fallback: number): number {
  const text = values[flag];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (typeof text !== "string" || !/^\d+(\.\d+)?$/.test(text) || !(value > 0)) {
    throw new RangeError(`--${flag} must be a number above 0, not "${text}"`);
  }
  return value;
}

/** Reads a whole-number flag of at least `min`. */
function whole(values: Record<string, unknown>, flag: string, fallback: number, min = 1): number {
  const value = positive(values, flag, fallback);
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`--${flag} must be a whole number of at least ${min}, not "${value}"`);
  }
  return value;
}

/**
 * Parses the command line; `undefined` for `--help`.
 * @throws {RangeError} or a `parseArgs` error for a bad flag.
 */
export function parseHostileArgs(args: string[]): HostileArgs | undefined {
  const text = { type: "string" } as const;
  const { values } = parseArgs({
    args,
    options: {
      role: text,
      port: text,
      clients: text,
      rate: text,
      seconds: text,
      timeout: text,
      attacks: text,
      sync: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return undefined;
  if (values.port === undefined) throw new RangeError("--port is required");
  const port = whole(values, "port", 0);
  const seconds = positive(values, "seconds", 10);
  const timeout = whole(values, "timeout", 120);
  if (values.role === "attackers") {
    const attacks = values.attacks === undefined ? ATTACK_NAMES : parseAttacks(values.attacks);
    return { role: "attackers", sync: values.sync, options: { port, seconds, timeout, attacks } };
  }
  if (values.role !== "bystanders") {
    throw new RangeError(`--role must be bystanders or attackers, not "${values.role ?? ""}"`);
  }
  const clients = whole(values, "clients", 50, 2);
  if (bystanderName(clients - 1).length > MAX_NAME_LENGTH) {
    throw new RangeError(`--clients ${clients} is more than names can number`);
  }
  const rate = positive(values, "rate", 1);
  return {
    role: "bystanders",
    sync: values.sync,
    options: { port, clients, rate, seconds, timeout },
  };
}

/** Reads `--attacks`: names from {@linkcode ATTACKS}, comma-separated. */
function parseAttacks(text: string): AttackName[] {
  const names = text.split(",").map((name) => name.trim()).filter((name) => name !== "");
  const unknown = names.find((name) => !(ATTACK_NAMES as string[]).includes(name));
  if (unknown !== undefined || names.length === 0) {
    throw new RangeError(`--attacks takes names from ${ATTACK_NAMES.join(", ")}, not "${text}"`);
  }
  return names as AttackName[];
}

/** Writes a phase marker to standard error and waits for a line on standard input. */
async function syncPhase(phase: string): Promise<void> {
  await writeAll(Deno.stderr, encoder.encode(`phase ${phase}\n`));
  const buffer = new Uint8Array(64);
  while (true) {
    const n = await Deno.stdin.read(buffer);
    if (n === null || buffer.subarray(0, n).includes(0x0a)) return;
  }
}

/** Runs the command line; resolves to the exit code (2 for a usage error). */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseHostileArgs(args);
    if (parsed === undefined) {
      console.log(USAGE);
      return 0;
    }
  } catch (error) {
    console.error(`hostile: ${errorText(error)}\n${USAGE}`);
    return 2;
  }
  const result = parsed.role === "bystanders"
    ? await runBystanders(parsed.sync ? { ...parsed.options, onPhase: syncPhase } : parsed.options)
    : await runAttackers(
      parsed.sync
        ? { ...parsed.options, onAttacking: () => syncPhase("attacking") }
        : parsed.options,
    );
  console.log(JSON.stringify(result));
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
