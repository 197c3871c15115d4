/**
 * Helpers shared by the test files, each defined once: byte and line helpers, a deadline for
 * waits, free ports and temporary folders, a real server on a free loopback port with clients
 * connected to it, a raw socket client for what a real client never sends, and a reader of a
 * subprocess's output.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { ChatStore } from "./chat/store.ts";
import { makeCertificate, type ServerCertificate } from "./net/certs.ts";
import { ChatClient, type ChatEvent } from "./net/chat_client.ts";
import { closeQuietly, type Transport } from "./net/conn.ts";
import { connectFrom } from "./bench/loopback.ts";
import { LineSplitter, readLines } from "./net/lines.ts";
import { joinChunks, writeAll } from "./net/outbox.ts";
import {
  type ClientFrame,
  type ClientInfo,
  decodeServerFrame,
  encodeFrame,
  type ErrorCode,
  type ErrorFrame,
  type MessageFrame,
  type ServerFrame,
} from "./protocol.ts";
import { type ChatServer, type ServerOptions, startServer } from "./server.ts";

const encoder = new TextEncoder();

// ==== Bytes and lines ====

/** Text as UTF-8 bytes. */
export function bytesOf(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Feeds chunks to a fresh splitter and returns the lines it produced. */
export function splitLines(chunks: readonly Uint8Array[], maxLineBytes?: number): string[] {
  const splitter = new LineSplitter(maxLineBytes === undefined ? {} : { maxLineBytes });
  const lines: string[] = [];
  for (const chunk of chunks) splitter.push(chunk, (line) => lines.push(line));
  return lines;
}

/** Cuts bytes at the given positions (taken modulo the length); empty chunks are kept. */
export function splitAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  return chunks;
}

/** The longest any single wait in the tests may take, in milliseconds: a guard, not a sleep. */
export const WAIT_MS = 10_000;

/** Resolves like `promise`, or rejects once `ms` have passed without an answer. */
export async function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A loopback port nobody listens on right now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** Runs `fn` with a fresh temporary folder, removed afterwards whatever happens. */
export async function withTempDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "chat-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A database file whose inserts into `messages` fail with `reason`, as a full disk would. */
export async function withRefusingDatabase(
  reason: string,
  fn: (path: string) => Promise<void> | void,
): Promise<void> {
  await withTempDir(async (dir) => {
    const path = `${dir}/chat.db`;
    ChatStore.open(path).close();
    const db = new DatabaseSync(path);
    db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON messages
             BEGIN SELECT RAISE(ABORT, '${reason}'); END`);
    db.close();
    await fn(path);
  });
}

let denoDirFound: Promise<string> | undefined;

/**
 * Deno's cache folder, for subprocesses given a `HOME` of their own: without it they would fill
 * a new cache there, and download the npm packages again.
 */
export function denoDir(): Promise<string> {
  denoDirFound ??= new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stderr: "null" })
    .output().then((output) => {
      const info: unknown = JSON.parse(new TextDecoder().decode(output.stdout));
      assert.ok(typeof info === "object" && info !== null && "denoDir" in info);
      return String(info.denoDir);
    });
  return denoDirFound;
}

/** The permission flags of a `deno run` task in `deno.json`. */
export async function taskFlags(task: string): Promise<string[]> {
  const config: unknown = JSON.parse(
    await Deno.readTextFile(new URL("./deno.json", import.meta.url)),
  );
  assert.ok(typeof config === "object" && config !== null && "tasks" in config);
  const tasks = config.tasks;
  assert.ok(typeof tasks === "object" && tasks !== null);
  const command: unknown = (tasks as Record<string, unknown>)[task];
  assert.equal(typeof command, "string", `deno.json has no "${task}" task`);
  return String(command).split(/\s+/).filter((word) => /^--(allow|deny)-/.test(word));
}

let certificate: Promise<ServerCertificate> | undefined;

/** A server certificate for `localhost`, 127.0.0.1 and ::1, made once per test process. */
export function testCertificate(): Promise<ServerCertificate> {
  certificate ??= makeCertificate({ dns: ["localhost"], ips: ["127.0.0.1", "::1"] });
  return certificate;
}

/** `options` plus a TLS listener on a free port with {@linkcode testCertificate}. */
export async function withTls(options: ServerOptions = {}): Promise<ServerOptions> {
  return { ...options, tls: { port: 0, certificate: await testCertificate() } };
}

/** Starts a server on a free loopback port, runs `fn`, and always closes the server. */
export async function withServer(
  fn: (server: ChatServer) => Promise<void>,
  options: ServerOptions = {},
): Promise<void> {
  const server = startServer({ hostname: "127.0.0.1", port: 0, ...options });
  try {
    await server.listening;
    await fn(server);
  } finally {
    await server.close();
  }
}

/** Connects a client to a test server under `name`. */
export function connect(server: ChatServer, name: string, info?: ClientInfo): Promise<ChatClient> {
  return ChatClient.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
    name,
    ...(info ? { info } : {}),
  });
}

/**
 * Runs `fn` with a server and one connected client per name (connected in that order, so each
 * sees the later ones join), and closes them all afterwards.
 */
export async function withChat<const N extends string>(
  names: readonly N[],
  fn: (clients: Record<N, ChatClient>, server: ChatServer) => Promise<void>,
  options: ServerOptions = {},
): Promise<void> {
  await withServer(async (server) => {
    const connected: ChatClient[] = [];
    try {
      const clients = {} as Record<N, ChatClient>;
      for (const name of names) {
        const client = await connect(server, name);
        connected.push(client);
        clients[name] = client;
      }
      await fn(clients, server);
    } finally {
      await Promise.all(connected.map((c) => c.close()));
    }
  }, options);
}

/** Proves two clients can still talk: `from` says something and `to` receives it. */
export async function assertChatWorks(
  from: ChatClient,
  to: ChatClient,
  text: string,
): Promise<void> {
  const sent = await from.say(text);
  const seen = await until(to, "message", (m) => m.text === text);
  assert.equal(seen.id, sent.id);
}

/** The frame (or event) of one type. */
export type FrameOf<T extends ChatEvent["type"]> = Extract<ChatEvent, { type: T }>;

/** Anything frames can be read from: a {@linkcode ChatClient} or a {@linkcode RawClient}. */
export interface FrameSource {
  next(): Promise<ChatEvent | undefined>;
}

/** Reads frames until one of the given type (matching `match`) arrives; fails if the stream ends. */
export async function until<T extends ChatEvent["type"]>(
  source: FrameSource,
  type: T,
  match: (frame: FrameOf<T>) => boolean = () => true,
): Promise<FrameOf<T>> {
  while (true) {
    const frame = await within(source.next(), `a ${type} frame`);
    if (frame === undefined) throw new Error(`Connection ended while waiting for ${type}`);
    if (frame.type === type && match(frame as FrameOf<T>)) return frame as FrameOf<T>;
  }
}

/** Reads frames until one matches; returns all of them, the match last. */
export async function framesUntil(
  source: FrameSource,
  match: (frame: ChatEvent) => boolean,
): Promise<ChatEvent[]> {
  const frames: ChatEvent[] = [];
  while (true) {
    const frame = await within(source.next(), "a frame");
    if (frame === undefined) throw new Error("Connection ended while waiting for a frame");
    frames.push(frame);
    if (match(frame)) return frames;
  }
}

/** Reads frames, skipping others, until one matches; fails if the connection ends first. */
export function waitForFrame<F extends ChatEvent>(
  client: ChatClient,
  what: string,
  match: (frame: ChatEvent) => frame is F,
): Promise<F> {
  return within(
    (async () => {
      while (true) {
        const frame = await client.next();
        if (frame === undefined) throw new Error(`Connection ended before ${what}`);
        if (match(frame)) return frame;
      }
    })(),
    what,
  );
}

export function isMessageFrom(from: string): (frame: ChatEvent) => frame is MessageFrame {
  return (frame): frame is MessageFrame => frame.type === "message" && frame.from === from;
}

/**
 * Everything the server queued for a client before now: sends a ping and returns the frames
 * that arrive before its pong. The server handles frames in order, so anything it would have
 * sent by the time it reads the ping is in the list.
 */
export async function framesBeforePong(client: ChatClient): Promise<ChatEvent[]> {
  client.send({ type: "ping" });
  return (await framesUntil(client, (f) => f.type === "pong")).slice(0, -1);
}

/** Joins a room and waits for the server's `room` answer. */
export async function joinRoom(client: ChatClient, room: string): Promise<FrameOf<"room">> {
  client.send({ type: "join", room });
  return await until(client, "room");
}

/** Waits for the next error frame and checks its code. */
export async function expectError(source: FrameSource, code: ErrorCode): Promise<ErrorFrame> {
  const error = await until(source, "error");
  assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
  return error;
}

/**
 * A client on a bare socket, for sending what a real client never would: frames one by one, raw
 * bytes, or typed text as a person on `nc` or `telnet` would (reading lines of text back).
 */
export class RawClient {
  #conn: Deno.TcpConn | Transport;
  #lines: AsyncGenerator<string>;
  private constructor(conn: Deno.TcpConn | Transport) {
    this.#conn = conn;
    this.#lines = readLines(conn);
  }
  /**
   * Connects to a test server (or to any port on 127.0.0.1), from 127.0.0.1 or from the loopback
   * address `from` (see `bench/loopback.ts`).
   */
  static async open(server: ChatServer | number, from?: string): Promise<RawClient> {
    const port = typeof server === "number" ? server : server.addr.port;
    if (from === undefined) {
      return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
    }
    const dialed = await connectFrom(from, { hostname: "127.0.0.1", port });
    if (!dialed.ok) throw new Error(dialed.error);
    return new RawClient(dialed.value);
  }
  /** Writes a frame, a string, bytes, or (as one chunk) text mixed with byte values. */
  async write(...parts: (string | number[] | Uint8Array | ClientFrame)[]): Promise<void> {
    const chunks = parts.map((part) =>
      typeof part === "string"
        ? encoder.encode(part)
        : part instanceof Uint8Array
        ? part
        : Array.isArray(part)
        ? new Uint8Array(part)
        : encodeFrame(part)
    );
    await writeAll(this.#conn, joinChunks(chunks));
  }
  /** The next line, or `undefined` once the server has closed the connection. */
  async nextLine(): Promise<string | undefined> {
    try {
      const { value, done } = await this.#lines.next();
      return done ? undefined : value;
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) return undefined;
      throw error;
    }
  }
  /** The next frame, or `undefined` once the server has closed the connection. */
  async next(): Promise<ServerFrame | undefined> {
    const line = await this.nextLine();
    if (line === undefined) return undefined;
    const decoded = decodeServerFrame(line);
    assert.ok(decoded.ok, `server sent an invalid frame: ${line}`);
    return decoded.value;
  }
  /** Reads lines of text until one matches; returns all of them, the match last. */
  async linesUntil(match: (line: string) => boolean): Promise<string[]> {
    const lines: string[] = [];
    while (true) {
      const line = await within(this.nextLine(), `a line; so far: ${lines}`);
      if (line === undefined) {
        throw new Error(`Connection ended; lines so far:\n${lines.join("\n")}`);
      }
      lines.push(line);
      if (match(line)) return lines;
    }
  }
  /** Resolves once the server has closed the connection, skipping frames until then. */
  async closedByServer(): Promise<void> {
    while (await within(this.next(), "the server to close the connection") !== undefined);
  }
  close(): void {
    closeQuietly(this.#conn);
  }
}

/**
 * Reads a text stream as it arrives: `waitFor` resolves once a marker has been seen, and `done`
 * resolves with the whole text once the stream ends.
 */
export class StreamText {
  text = "";
  readonly done: Promise<string>;
  #ended = false;
  #waiters = new Set<{ marker: string; resolve: () => void; reject: (error: Error) => void }>();
  #gate: PromiseWithResolvers<void> | undefined;
  #reader: ReadableStreamDefaultReader<string> | undefined;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = this.#pump(stream);
  }

  /** Stops reading: what the process writes next backs up in the pipe, as for a paused reader. */
  pause(): void {
    this.#gate ??= Promise.withResolvers<void>();
  }

  /** Reads again after {@linkcode pause}. */
  resume(): void {
    this.#gate?.resolve();
    this.#gate = undefined;
  }

  /** Stops reading for good and closes the pipe, so the process's next write fails (EPIPE). */
  async cancel(): Promise<void> {
    const reader = this.#reader;
    this.resume();
    await reader?.cancel();
    await this.done.catch(() => {});
  }

  /** Resolves once the text so far contains `marker`; rejects if the stream ends first. */
  waitFor(marker: string): Promise<void> {
    if (this.text.includes(marker)) return Promise.resolve();
    if (this.#ended) return Promise.reject(this.#missing(marker));
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiters.add({ marker, resolve, reject });
    return promise;
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<string> {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    this.#reader = reader;
    try {
      while (true) {
        await this.#gate?.promise;
        const { value, done } = await reader.read();
        if (done) break;
        this.text += value;
        for (const waiter of this.#waiters) {
          if (!this.text.includes(waiter.marker)) continue;
          this.#waiters.delete(waiter);
          waiter.resolve();
        }
      }
    } finally {
      reader.releaseLock();
      this.#ended = true;
      for (const waiter of this.#waiters) waiter.reject(this.#missing(waiter.marker));
      this.#waiters.clear();
    }
    return this.text;
  }

  #missing(marker: string): Error {
    return new Error(`Output ended without ${JSON.stringify(marker)}:\n${this.text}`);
  }
}

// ==== Server processes ====

/** The project directory, where `server.ts` is. */
const PROJECT_DIR = new URL(".", import.meta.url).pathname;
/** Where the test server processes listen. */
const PROCESS_HOST = "127.0.0.1";
/** Exactly the permissions of the `server` task in `deno.json`. */
const SERVER_FLAGS = await taskFlags("server");
/** What the server prints when its port is still taken. */
const PORT_IN_USE = "the port is in use";
/** How many times starting a server on a port that is briefly still taken is tried. */
const MAX_STARTS = 20;
/** A server running as a subprocess, with its output being read. */
export interface ServerProcess {
  port: number;
  child: Deno.ChildProcess;
  stdout: StreamText;
  stderr: StreamText;
}

/** How a server process ended, and everything it printed. */
export interface ServerExit {
  status: Deno.CommandStatus;
  stdout: string;
  stderr: string;
}

/**
 * Runs `server.ts` on `port` with the database `db` (`none` for none) and resolves once it
 * listens; `options.env` adds to its environment (`TZ`...). It listens for TLS only when
 * `extraArgs` give `--tls-port` (a free port the test chose), else with `--no-tls`, and serves
 * the web page only when they give `--web-port`, else with `--no-web`. A port that is still taken (by the
 * server just stopped) is tried again, up to {@linkcode MAX_STARTS} times.
 */
export async function startServerProcess(
  db: string,
  port: number,
  extraArgs: string[] = [],
  options: { env?: Record<string, string> } = {},
): Promise<ServerProcess> {
  for (let attempt = 1;; attempt++) {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...SERVER_FLAGS,
        "server.ts",
        ...["--host", PROCESS_HOST, "--port", String(port), "--db", db, "--console", "off"],
        ...(extraArgs.includes("--tls-port") ? [] : ["--no-tls"]),
        ...(extraArgs.includes("--web-port") ? [] : ["--no-web"]),
        ...extraArgs,
      ],
      cwd: PROJECT_DIR,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { ...options.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    }).spawn();
    const server = {
      port,
      child,
      stdout: new StreamText(child.stdout),
      stderr: new StreamText(child.stderr),
    };
    let listening: boolean;
    try {
      listening = await within(
        server.stdout.waitFor("listening on").then(() => true, () => false),
        `the server to listen on port ${port}`,
      );
    } catch (error) {
      await reap(server);
      throw error;
    }
    if (listening) {
      assert.match(server.stdout.text, new RegExp(`listening on 127\\.0\\.0\\.1:${port}\\b`));
      return server;
    }
    await reap(server);
    const output = server.stdout.text + server.stderr.text;
    if (!output.includes(PORT_IN_USE) || attempt >= MAX_STARTS) {
      throw new Error(`The server did not start:\n${output}`);
    }
  }
}

/** Sends `signal` to a server process and waits until it has exited and its output has ended. */
export async function stopServerProcess(
  server: ServerProcess,
  signal: Deno.Signal,
): Promise<ServerExit> {
  server.child.kill(signal);
  const status = await within(server.child.status, `the server to exit after ${signal}`);
  const stdout = await within(server.stdout.done, "the server's output to end");
  const stderr = await within(server.stderr.done, "the server's errors to end");
  return { status, stdout, stderr };
}

/** Kills a server process if it still runs, and waits for it and its output to end. */
export async function reap(server: ServerProcess | undefined): Promise<void> {
  if (server === undefined) return;
  try {
    server.child.kill("SIGKILL");
  } catch {
    // It has already exited.
  }
  await server.child.status;
  await server.stdout.done.catch(() => {});
  await server.stderr.done.catch(() => {});
}
