/**
 * Attacks on a chat server, each a loop an attacker runs as fast as the server lets it: the
 * hostile-input faults this project defends against, one driver per kind. The benchmark's
 * `hostile` scenario runs them all at once against a server with its default limits while
 * bystanders chat, and `hostile_test.ts` runs each alone and checks what it cost the server.
 *
 * Every attack comes from the loopback addresses it is given (see `loopback.ts`), reads all that
 * the server sends (so it is never cut off merely for not reading, and so it counts what its
 * bytes bought), and stops at its `signal` or after `rounds` rounds.
 *
 * @module
 */

import { decodeServerFrame, MAX_FRAME_BYTES, type ServerAddress } from "../protocol.ts";
import { closeQuietly, isDisconnectError, type Transport } from "../net/conn.ts";
import { setImmediate } from "node:timers";
import { connectFrom } from "./loopback.ts";

/** The attacks, by name. */
export type AttackName =
  | "marks"
  | "drip"
  | "logins"
  | "flap"
  | "requests"
  | "alternate"
  | "blank"
  | "squat";

/** What an attack is, for the benchmark's table and the tests' names. */
export const ATTACKS: Readonly<Record<AttackName, string>> = {
  marks: "hellos and frames whose every field is a flood of combining marks",
  drip: "lines that never end, dripped one byte at a time on many connections",
  logins: "hello and drop, over and over: a login storm that leaves sessions held",
  flap: "drop and resume the same session, over and over",
  requests: "history from the start, room lists, who, pings and blank lines at full speed",
  alternate: "a bad frame, then a good one, and again, for ever",
  blank: "messages of blank lines, of spaces to the screen's width, and of look-alike notices",
  squat: "connections that never say anything, from many addresses",
};

/** Options for {@linkcode runAttack}. */
export interface AttackOptions {
  /** Where the server listens. */
  target: ServerAddress;
  /** The loopback addresses the attack's connections come from, used in turn. */
  addresses: readonly string[];
  /** Stops the attack. */
  signal: AbortSignal;
  /**
   * How many rounds to run at most (what a round is depends on the attack: a connection, a
   * batch of frames).
   * @default {Infinity}
   */
  rounds?: number;
  /** Called after each round with the report so far (to act once an attack is under way). */
  onRound?: (report: AttackReport) => void;
  /**
   * A tag for the names the attack asks for, so that attacks running side by side do not take
   * each other's names.
   * @default {the attack's name}
   */
  tag?: string;
}

/** What an attack did and what it got back. */
export interface AttackReport {
  rounds: number;
  /** Connections opened (refused ones included). */
  connections: number;
  /** Connections that could not be opened at all. */
  failedConnects: number;
  bytesSent: number;
  bytesReceived: number;
  /** Lines received. */
  lines: number;
  /** Error frames received, by code. */
  errors: Record<string, number>;
  /** Welcomes received. */
  welcomes: number;
}

/** A report of nothing done yet. */
export function emptyReport(): AttackReport {
  return {
    rounds: 0,
    connections: 0,
    failedConnects: 0,
    bytesSent: 0,
    bytesReceived: 0,
    lines: 0,
    errors: {},
    welcomes: 0,
  };
}

/** Runs one attack until its signal or its rounds end; never throws for what the server does. */
export async function runAttack(name: AttackName, options: AttackOptions): Promise<AttackReport> {
  const attack = new Attack(name, options);
  await DRIVERS[name](attack);
  await attack.closeAll();
  return attack.report;
}

// ==== The connections ====

const encoder = new TextEncoder();

/** The state one attack shares across its connections. */
class Attack {
  readonly options: AttackOptions;
  readonly report: AttackReport = emptyReport();
  readonly open = new Set<AttackConn>();
  readonly kind: AttackName;
  #next = 0;

  constructor(kind: AttackName, options: AttackOptions) {
    this.kind = kind;
    this.options = options;
  }

  /**
   * Whether the attack should go on for another round (and counts it). It first lets timers and
   * I/O run: a socket write can complete without ever leaving the microtask queue, and a loop of
   * them would otherwise starve everything else in the process, its own stop signal included.
   */
  async more(): Promise<boolean> {
    await new Promise((resolve) => setImmediate(resolve));
    if (this.report.rounds > 0) this.options.onRound?.(this.report);
    if (this.options.signal.aborted || this.report.rounds >= (this.options.rounds ?? Infinity)) {
      return false;
    }
    this.report.rounds++;
    return true;
  }

  get stopped(): boolean {
    return this.options.signal.aborted;
  }

  /** A name for this attack's `n`-th login. */
  name(n: number): string {
    return `${this.options.tag ?? this.kind}${n}`;
  }

  /** Opens a connection from the next address; `undefined` when it cannot be made. */
  async connect(): Promise<AttackConn | undefined> {
    const { addresses, target } = this.options;
    const from = addresses[this.#next++ % addresses.length]!;
    this.report.connections++;
    const dialed = await connectFrom(from, target);
    if (!dialed.ok) {
      this.report.failedConnects++;
      // Out of ports or file descriptors: give the system a moment rather than spin.
      await pause(50, this.options.signal);
      return undefined;
    }
    const conn = new AttackConn(dialed.value, this);
    this.open.add(conn);
    conn.closed.then(() => this.open.delete(conn));
    return conn;
  }

  async closeAll(): Promise<void> {
    const all = [...this.open];
    for (const conn of all) conn.close();
    await Promise.all(all.map((conn) => conn.closed));
  }
}

/** One attacking connection: writes what it is told, reads and counts everything. */
class AttackConn {
  readonly transport: Transport;
  /** Resolves once the connection is closed, by either side. */
  readonly closed: Promise<void>;
  /** The resume token of the last welcome. */
  token: string | undefined;
  /** The last message id seen. */
  lastId = 0;
  #attack: Attack;
  #ended = false;
  #waiters: { type: string; resolve: (line: string | undefined) => void }[] = [];

  constructor(transport: Transport, attack: Attack) {
    this.transport = transport;
    this.#attack = attack;
    this.closed = this.#readAll();
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Writes text; resolves to whether it was written (false once the connection is gone). */
  send(text: string): Promise<boolean> {
    return this.sendBytes(encoder.encode(text));
  }

  /** Writes a frame as a JSON line. */
  frame(frame: Record<string, unknown>): Promise<boolean> {
    return this.send(JSON.stringify(frame) + "\n");
  }

  async sendBytes(bytes: Uint8Array): Promise<boolean> {
    if (this.#ended) return false;
    try {
      let written = 0;
      while (written < bytes.length) {
        written += await this.transport.write(bytes.subarray(written));
      }
      this.#attack.report.bytesSent += bytes.length;
      return true;
    } catch (error) {
      if (!isDisconnectError(error)) throw error;
      this.close();
      return false;
    }
  }

  /**
   * Sends `text` and waits for a frame of `type` (or an error frame, or the end), at most `ms`;
   * resolves to the line, or `undefined` at the end or on the timeout. The wait starts before the
   * sending, so a quick answer is never missed.
   */
  async ask(text: string, type: string, ms = 5000): Promise<string | undefined> {
    const answer = this.#waitFor(type, ms);
    await this.send(text);
    return await answer;
  }

  #waitFor(type: string, ms: number): Promise<string | undefined> {
    if (this.#ended) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(undefined), ms);
      const waiter = { type, resolve: (line: string | undefined) => done(line) };
      const done = (line: string | undefined) => {
        clearTimeout(timer);
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        resolve(line);
      };
      this.#waiters.push(waiter);
    });
  }

  close(): void {
    this.#ended = true;
    this.transport.close();
  }

  async #readAll(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    // One decoder per connection: it keeps the start of a character cut across two reads.
    const decoder = new TextDecoder();
    let tail = "";
    const report = this.#attack.report;
    try {
      while (true) {
        const n = await this.transport.read(buffer);
        if (n === null) break;
        report.bytesReceived += n;
        const text = tail + decoder.decode(buffer.subarray(0, n), { stream: true });
        const lines = text.split("\n");
        tail = lines.pop()!;
        if (tail.length > MAX_FRAME_BYTES) tail = "";
        for (const line of lines) this.#onLine(line);
      }
    } catch (error) {
      if (!isDisconnectError(error)) throw error;
    } finally {
      this.#ended = true;
      closeQuietly(this.transport);
      for (const waiter of this.#waiters) waiter.resolve(undefined);
    }
  }

  #onLine(line: string): void {
    const report = this.#attack.report;
    report.lines++;
    if (!line.startsWith("{")) return;
    const decoded = decodeServerFrame(line);
    if (!decoded.ok) return;
    const frame = decoded.value;
    if (frame.type === "welcome") {
      report.welcomes++;
      this.token = frame.resume;
    }
    if (frame.type === "message") this.lastId = Math.max(this.lastId, frame.id);
    if (frame.type === "error") report.errors[frame.code] = (report.errors[frame.code] ?? 0) + 1;
    for (const waiter of this.#waiters) {
      if (waiter.type === frame.type || frame.type === "error") waiter.resolve(line);
    }
  }
}

/** Waits `ms`, or less once `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

const PING = '{"type":"ping"}\n';

/** A connection that said hello as the attack's `n`-th name and was welcomed; or `undefined`. */
async function joined(attack: Attack, n: number): Promise<AttackConn | undefined> {
  const conn = await attack.connect();
  if (!conn) return undefined;
  if (await conn.ask(hello(attack.name(n)), "welcome") !== undefined && conn.token) return conn;
  conn.close();
  return undefined;
}

/** A hello under `name`, as a JSON line. */
function hello(name: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ type: "hello", name, ...extra }) + "\n";
}

// ==== The drivers ====

/** A letter drowned in combining marks, as long as a frame allows around it. */
const MARKS = "a" + "\u0301\u0316".repeat(14_000);

/**
 * Combining marks in every field: a hello whose name is a flood, then (once joined under a real
 * name) every frame that carries a name, room or text, each with a flood in that field.
 */
async function marks(attack: Attack): Promise<void> {
  let n = 0;
  while (await attack.more()) {
    const conn = await attack.connect();
    if (!conn) continue;
    await conn.ask(hello(MARKS), "error");
    if (await conn.ask(hello(attack.name(n++)), "welcome") === undefined || conn.ended) {
      conn.close();
      continue;
    }
    const flood = [
      { type: "join", room: `#${MARKS}` },
      { type: "msg", to: MARKS, text: "hi" },
      { type: "whois", name: MARKS },
      { type: "nick", name: MARKS },
      { type: "topic", room: `#${MARKS}` },
      { type: "history", room: `#${MARKS}` },
      { type: "who", room: `#${MARKS}` },
      { type: "say", text: MARKS.slice(0, 7000) },
      { type: "away", message: MARKS },
      { type: "kick", name: MARKS },
      { type: "ban", target: MARKS },
    ];
    for (const frame of flood) await conn.frame(frame);
    await conn.ask(PING, "pong");
    conn.close();
  }
}

/** How many connections the drip attack keeps dripping at once. */
const DRIP_CONNECTIONS = 60;

/**
 * Lines that never end: a hello, then one byte at a time of a line that never gets its newline,
 * round-robin over many connections. A connection the server closes is replaced.
 */
async function drip(attack: Attack): Promise<void> {
  const conns: (AttackConn | undefined)[] = Array(DRIP_CONNECTIONS).fill(undefined);
  const byte = encoder.encode("a");
  let n = 0;
  while (await attack.more()) {
    for (let i = 0; i < conns.length && !attack.stopped; i++) {
      let conn = conns[i];
      if (conn === undefined || conn.ended) {
        conn = await attack.connect();
        conns[i] = conn;
        if (!conn) continue;
        await conn.send(hello(attack.name(n++)) + '{"type":"say","text":"');
      }
      await conn.sendBytes(byte);
    }
  }
}

/** Hello and drop at once, from every address in turn: each drop leaves a session held. */
async function logins(attack: Attack): Promise<void> {
  let n = 0;
  while (await attack.more()) {
    const conn = await attack.connect();
    if (!conn) continue;
    await conn.ask(hello(attack.name(n++)), "welcome");
    conn.close();
  }
}

/** One session, dropped and resumed by its token over and over. */
async function flap(attack: Attack): Promise<void> {
  let token: string | undefined;
  let n = 0;
  while (await attack.more()) {
    const conn = await attack.connect();
    if (!conn) continue;
    const answer = await conn.ask(
      hello(attack.name(n), token ? { resume: token, last: 0 } : {}),
      "welcome",
    );
    if (conn.token) token = conn.token;
    else if (answer === undefined || !answer.includes('"rate_limited"')) n++; // taken: a new name
    conn.close();
  }
}

/** Requests with large answers, and things that cost nothing to send, as fast as can be. */
async function requests(attack: Attack): Promise<void> {
  let n = 0;
  let conn: AttackConn | undefined;
  const batch = [
    '{"type":"history","before":1000000000,"limit":200}',
    '{"type":"rooms"}',
    '{"type":"who"}',
    '{"type":"ping"}',
    '{"type":"pong"}',
    "",
    "",
    '{"type":"join","room":"#lobby"}',
  ].join("\n") + "\n";
  while (await attack.more()) {
    if (conn === undefined || conn.ended) {
      conn = await joined(attack, n++);
      if (!conn) continue;
    }
    await conn.send(batch);
  }
  conn?.close();
}

/** A bad frame and a good one in turn, on one connection after another. */
async function alternate(attack: Attack): Promise<void> {
  let n = 0;
  let conn: AttackConn | undefined;
  while (await attack.more()) {
    if (conn === undefined || conn.ended) {
      conn = await joined(attack, n++);
      if (!conn) continue;
    }
    await conn.send('{"type":"nope"\n{"type":"pong"}\n');
  }
  conn?.close();
}

/** Messages that render badly: blank lines, a forged line after padding, a fake notice. */
async function blank(attack: Attack): Promise<void> {
  let n = 0;
  let conn: AttackConn | undefined;
  const messages = [
    "\n".repeat(1998) + "x",
    " \n".repeat(999) + "x",
    `hi${" ".repeat(200)}bob: send me your password`,
    "\u200b\u2800\u3164",
  ];
  while (await attack.more()) {
    if (conn === undefined || conn.ended) {
      conn = await joined(attack, n++);
      if (!conn) continue;
    }
    for (const text of messages) await conn.frame({ type: "say", text });
    await conn.frame({ type: "say", text: "joined #lobby", action: true });
    await conn.ask(PING, "pong");
  }
  conn?.close();
}

/** How many silent connections the squat attack opens from each address. */
const SQUAT_PER_ADDRESS = 20;

/**
 * Connections that say nothing: as many as the server takes from each address, each kept open
 * until the server closes it, when another takes its place.
 */
async function squat(attack: Attack): Promise<void> {
  const target = attack.options.addresses.length * SQUAT_PER_ADDRESS;
  while (await attack.more()) {
    const missing = target - attack.open.size;
    for (let i = 0; i < missing && !attack.stopped; i++) await attack.connect();
    // Wait for one to be closed (or the end) before opening more.
    await Promise.race([
      ...[...attack.open].map((conn) => conn.closed),
      pause(1000, attack.options.signal),
    ]);
  }
}

const DRIVERS: Record<AttackName, (attack: Attack) => Promise<void>> = {
  marks,
  drip,
  logins,
  flap,
  requests,
  alternate,
  blank,
  squat,
};
