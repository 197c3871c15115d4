/**
 * The browser's way in: an HTTP listener that serves the chat page and upgrades `GET /ws` to a
 * WebSocket, and the WebSocket as a {@linkcode Transport}, so a browser is just another client
 * of the same gateway: same hello, identity, resume, limits and error codes.
 *
 * Framing: each WebSocket text message is one JSON frame, with no newline. The transport hands
 * the gateway each message as one line (a newline inside a message, which JSON never needs, is
 * read as a space), and sends each line the gateway writes as one message. A browser never gets
 * the plain-text face.
 *
 * Why `node:http` and `npm:ws` rather than `Deno.serve` and `Deno.upgradeWebSocket`: Deno's
 * server-side `send()` makes one system call and one TCP packet per message (measured: about 11
 * µs of server CPU per delivered copy, 14x TCP's), and has no way to send several at once. `ws`
 * does the handshake, reading, pings and closing on a `node:http` socket, and the transport
 * writes the frames of one outbox flush to that socket in one write, as TCP does
 * ({@linkcode textFrames}; 1.8x TCP's CPU per copy, see the README's benchmark).
 *
 * Backpressure: a peer that stops reading makes `bufferedAmount` grow, not a write wait; a write
 * waits while more than {@linkcode HIGH_WATER_BYTES} are buffered, so the connection's outbox
 * fills and the gateway drops it as too slow, as for TCP. Liveness: every
 * {@linkcode PING_INTERVAL_MS} the listener pings each socket and ends those that did not answer
 * the last ping; browsers answer pings without running any script, so a throttled background
 * tab stays connected.
 *
 * Safety: an upgrade from a page of another origin is refused (a page elsewhere must not chat
 * as whoever opens it); every response has `Content-Security-Policy: default-src 'self'`.
 *
 * @module
 */

import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import type { Transport } from "./conn.ts";
import { AcceptQueue, listenNode, type StoppingListener } from "./node_socket.ts";

// `ws` ships no types, and `@types/ws` brings `@types/node`, which retypes `node:assert` for the
// whole project: these are the few parts used here.
/** A message as `ws` delivers it. */
type RawData = Uint8Array | ArrayBuffer | Uint8Array[];
/** One WebSocket of `ws`'s server. */
interface Ws {
  readonly readyState: number;
  readonly bufferedAmount: number;
  on(event: "message", listener: (data: RawData, isBinary: boolean) => void): void;
  on(event: "pong" | "close" | "error", listener: () => void): void;
  on(event: "ping", listener: (data: Uint8Array) => void): void;
  send(data: Uint8Array, options: { binary: boolean }): void;
  ping(): void;
  pong(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
}
/** `ws`'s server, used without a server of its own (`noServer`). */
interface WsServer {
  handleUpgrade(
    request: http.IncomingMessage,
    socket: Duplex,
    head: Uint8Array,
    done: (ws: Ws) => void,
  ): void;
  close(): void;
}
/**
 * Loads `ws` when a web listener starts: it reads two environment variables as it loads
 * (`WS_NO_BUFFER_UTIL`, `WS_NO_UTF_8_VALIDATE`, which the server task may read), so a server
 * without the page needs no such permission.
 */
async function loadWs(): Promise<new (options: Record<string, unknown>) => WsServer> {
  const module = await import("ws");
  return (module as unknown as {
    WebSocketServer: new (options: Record<string, unknown>) => WsServer;
  }).WebSocketServer;
}
/** `readyState` of an open WebSocket. */
const OPEN = 1;

/** Where the browser opens its WebSocket. */
export const WEBSOCKET_PATH = "/ws";

/** A write waits while more than this many bytes wait to reach the peer. */
export const HIGH_WATER_BYTES = 256 * 1024;
/** How often a waiting write looks at `bufferedAmount` again, in milliseconds. */
const DRAIN_CHECK_MS = 10;
/**
 * The most bytes of received messages a transport holds before the gateway reads them; a peer
 * past it is sending faster than any rate limit allows and is cut off.
 */
const MAX_UNREAD_BYTES = 1024 * 1024;
/**
 * The largest message `ws` takes in, in bytes: past the frame limit (64 KiB), so the gateway
 * can say `too_large`, but bounded, so a huge message is never held whole.
 */
const MAX_MESSAGE_BYTES = 256 * 1024;
/** The most upgraded sockets waiting for the gateway to take them. */
const MAX_WAITING_SOCKETS = 256;
/** How often each socket is pinged; one that did not answer the last ping is ended. */
export const PING_INTERVAL_MS = 30_000;
/** The most pings a peer may send a second (browsers send none; a keep-alive needs one). */
const MAX_PINGS_PER_SECOND = 10;
/** How long a closing handshake may take before the socket is cut, in milliseconds. */
const CLOSE_WAIT_MS = 2_000;

/** The page's files, by path, with their content types. */
export type WebAssets = Record<string, { body: string; type: string }>;

/** The headers every response carries. */
const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NEWLINE = 0x0a;

/** The socket under a `ws` WebSocket. */
interface RawSocket {
  write(bytes: Uint8Array): boolean;
}

/**
 * The WebSocket text frames (RFC 6455 section 5.2: FIN, opcode 1, unmasked as a server's are) of
 * each line of `bytes`, in one buffer: a server's frame of a payload is the same for every
 * recipient, so a flush costs one copy and one write however many frames it holds.
 */
export function textFrames(bytes: Uint8Array): Uint8Array {
  const lines: [number, number][] = [];
  let size = 0;
  let start = 0;
  while (start < bytes.length) {
    const newline = bytes.indexOf(NEWLINE, start);
    const end = newline === -1 ? bytes.length : newline;
    if (end > start) {
      lines.push([start, end]);
      const length = end - start;
      size += (length < 126 ? 2 : length < 65536 ? 4 : 10) + length;
    }
    start = end + 1;
  }
  const frames = new Uint8Array(size);
  let at = 0;
  for (const [from, to] of lines) {
    const length = to - from;
    frames[at++] = 0x81;
    if (length < 126) {
      frames[at++] = length;
    } else if (length < 65536) {
      frames.set([126, length >> 8, length & 0xff], at);
      at += 3;
    } else {
      frames[at++] = 127;
      new DataView(frames.buffer).setBigUint64(at, BigInt(length));
      at += 8;
    }
    frames.set(bytes.subarray(from, to), at);
    at += length;
  }
  return frames;
}

/**
 * A message's bytes as one line: its parts (a fragmented message) in one buffer, a line break
 * inside it (which JSON never needs) read as a space, and `\n` after it. Byte by byte, so a
 * character split between two fragments stays whole.
 */
function lineOf(data: RawData): Uint8Array {
  const parts = Array.isArray(data) ? data : [new Uint8Array(data)];
  const line = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0) + 1);
  let at = 0;
  for (const part of parts) {
    line.set(part, at);
    at += part.length;
  }
  for (let i = 0; i < at; i++) if (line[i] === 0x0a || line[i] === 0x0d) line[i] = 0x20;
  line[at] = NEWLINE;
  return line;
}

/**
 * One browser's WebSocket as a transport. Its reads end (`null`) once the socket closes.
 */
export class WebSocketTransport implements Transport {
  readonly kind = "websocket";
  /** Only programs (pages) speak over it: never the plain-text face. */
  readonly jsonOnly = true;
  readonly remoteAddress: string;
  /** Whether the peer answered the last ping (see {@linkcode listenWeb}). */
  alive = true;
  #socket: Ws;
  #unread: Uint8Array[] = [];
  #unreadBytes = 0;
  #closed = false;
  #wake: (() => void) | undefined;
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  #drained: (() => void) | undefined;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #pings = 0;
  #pingWindow = 0;

  constructor(socket: Ws, remoteAddress: string) {
    this.#socket = socket;
    this.remoteAddress = remoteAddress;
    socket.on("message", (data: RawData, isBinary: boolean) => this.#received(data, isBinary));
    socket.on("pong", () => this.alive = true);
    socket.on("ping", (data) => this.#pinged(data));
    socket.on("close", () => this.#ended());
    socket.on("error", () => this.#ended());
  }

  /** One message in: a line, or a reason to close. */
  #received(data: RawData, isBinary: boolean): void {
    if (this.#closed) return;
    if (isBinary) {
      this.#socket.close(1003, "text messages only: one JSON frame each");
      return;
    }
    const bytes = lineOf(data);
    if (this.#unreadBytes + bytes.length > MAX_UNREAD_BYTES) {
      this.#socket.terminate(); // sending faster than any allowance: cut at once
      return;
    }
    this.#unread.push(bytes);
    this.#unreadBytes += bytes.length;
    this.#wake?.();
  }

  /**
   * A ping from the peer: answered while the peer reads and pings at a sane pace. Pongs the
   * peer does not read would pile up on the server, so past {@linkcode MAX_PINGS_PER_SECOND}
   * or while it is behind, the socket is cut.
   */
  #pinged(data: Uint8Array): void {
    const now = performance.now();
    if (now - this.#pingWindow >= 1000) {
      this.#pingWindow = now;
      this.#pings = 0;
    }
    if (++this.#pings > MAX_PINGS_PER_SECOND || this.#socket.bufferedAmount > HIGH_WATER_BYTES) {
      // Cut at once: a closing handshake would wait for a peer that does not read.
      this.#socket.terminate();
      return;
    }
    this.#socket.pong(data);
  }

  #ended(): void {
    this.#closed = true;
    clearTimeout(this.#closeTimer);
    this.#wake?.();
    this.#drained?.();
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#unread.length === 0) {
      if (this.#closed) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
    // Every message that fits: one read per message would count each as a "small read" and
    // hold a page to the small-read allowance, far below the frame rate.
    let n = 0;
    while (this.#unread.length > 0 && n < buffer.length) {
      const first = this.#unread[0]!;
      const taken = Math.min(first.length, buffer.length - n);
      buffer.set(first.subarray(0, taken), n);
      n += taken;
      if (taken === first.length) this.#unread.shift();
      else this.#unread[0] = first.subarray(taken);
    }
    this.#unreadBytes -= n;
    return n;
  }

  /**
   * Sends each whole line of `bytes` as one message (the outbox writes whole frames), all in
   * one write, then waits while the peer is behind.
   * @throws {Deno.errors.BrokenPipe} once the socket is closed.
   */
  async write(bytes: Uint8Array): Promise<number> {
    const socket = this.#socket;
    if (this.#closed || socket.readyState !== OPEN) {
      throw new Deno.errors.BrokenPipe("the WebSocket is closed");
    }
    // All the frames of this flush in one write to the socket under `ws` (whose own send()
    // costs a write, or a header and a copy, per message); `ws` sends only pings and the close
    // frame, each whole and in order, so nothing interleaves.
    const raw = (socket as unknown as { _socket?: RawSocket })._socket;
    if (raw) {
      raw.write(textFrames(bytes));
    } else {
      for (const line of decoder.decode(bytes).split("\n")) {
        if (line !== "") socket.send(encoder.encode(line), { binary: false });
      }
    }
    while (!this.#closed && socket.bufferedAmount > HIGH_WATER_BYTES) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
        this.#drainTimer = setTimeout(resolve, DRAIN_CHECK_MS);
      });
      clearTimeout(this.#drainTimer);
      this.#drained = undefined;
    }
    return bytes.length;
  }

  /** Pings the peer; one that did not answer the previous ping is cut off. */
  ping(): void {
    if (this.#closed) return;
    if (!this.alive) {
      this.#socket.terminate();
      return;
    }
    this.alive = false;
    this.#socket.ping();
  }

  /** Starts the closing handshake; a peer that does not finish it in time is cut off. */
  close(): void {
    if (!this.#closed) {
      this.#closed = true;
      this.#socket.close(1000);
      this.#closeTimer = setTimeout(() => this.#socket.terminate(), CLOSE_WAIT_MS);
    }
    this.#wake?.();
    this.#drained?.();
  }
}

/** Options for {@linkcode listenWeb}. */
export interface WebOptions {
  hostname: string;
  /** The HTTP port; 0 for any free one. */
  port: number;
  /** With these, HTTPS instead of HTTP (the chat's own TLS key and certificate). */
  tls?: { certPem: string; keyPem: string } | undefined;
  /** The page's files by path (`/`, `/app.js`, ...). */
  assets: WebAssets;
  /**
   * Origins (`https://chat.example.org`) whose pages may open the WebSocket besides the page's
   * own; the page's own origin is always allowed.
   * @default {[]}
   */
  origins?: readonly string[];
}

/** The web listener: a listener of WebSockets over its HTTP server (see `StoppingListener`). */
export type WebListener = StoppingListener;

/**
 * Serves the page and accepts WebSockets on `GET /ws` from the page's own origin (or
 * `origins`), or from programs that send no `Origin`. Resolves once it listens.
 * @throws the listening errors (`EADDRINUSE`, `EADDRNOTAVAIL`, a key it cannot use).
 */
export async function listenWeb(options: WebOptions): Promise<WebListener> {
  const queue = new AcceptQueue(MAX_WAITING_SOCKETS);
  const live = new Set<WebSocketTransport>();
  const scheme = options.tls ? "https:" : "http:";
  const WebSocketServer = await loadWs();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_MESSAGE_BYTES,
    // Pings are answered by the transport, within bounds (see #pinged).
    autoPong: false,
    perMessageDeflate: false,
  });
  const serve = (request: http.IncomingMessage, response: http.ServerResponse) => {
    const { status, headers, body } = answer(request, options.assets);
    response.writeHead(status, { ...SECURITY_HEADERS, ...headers });
    response.end(request.method === "HEAD" ? undefined : body);
  };
  const server = options.tls
    ? https.createServer({ cert: options.tls.certPem, key: options.tls.keyPem }, serve)
    : http.createServer(serve);
  server.on("upgrade", (request: http.IncomingMessage, socket: Duplex, head: Uint8Array) => {
    const url = new URL(request.url ?? "/", `${scheme}//${request.headers.host ?? "localhost"}`);
    const refusal = url.pathname !== WEBSOCKET_PATH
      ? "Not found: the chat's WebSocket is at /ws"
      : upgradeRefusal({
        scheme,
        host: request.headers.host,
        upgrade: request.headers.upgrade,
        origin: request.headers.origin,
      }, options.origins ?? []) ??
        (queue.open ? undefined : "busy: try again");
    if (refusal) {
      const status = refusal.startsWith("busy") ? "503 Service Unavailable" : "403 Forbidden";
      socket.end(
        `HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
          `Connection: close\r\n\r\n${refusal}\n`,
      );
      return;
    }
    const remoteAddress = (request.socket.remoteAddress ?? "unknown").replace(/^::ffff:/, "");
    wss.handleUpgrade(request, socket, head, (ws) => {
      const transport = new WebSocketTransport(ws, remoteAddress);
      live.add(transport);
      ws.on("close", () => live.delete(transport));
      if (!queue.offer(transport)) transport.close();
    });
  });
  const { addr, finished } = await listenNode(server, options.hostname, options.port);
  const pinger = setInterval(() => {
    for (const transport of live) transport.ping();
  }, PING_INTERVAL_MS);
  let closed = false;
  return {
    kind: options.tls ? "https" : "http",
    addr,
    finished,
    accept: () => queue.accept(),
    close(): void {
      if (closed) return;
      closed = true;
      clearInterval(pinger);
      queue.close();
      server.close();
      server.closeAllConnections();
      wss.close();
    },
  };
}

/** The answer to a plain HTTP request: a file of the page, "no content" for the icon, or 404. */
function answer(
  request: http.IncomingMessage,
  assets: WebAssets,
): { status: number; headers: Record<string, string>; body?: string } {
  const path = new URL(request.url ?? "/", "http://localhost").pathname;
  // Browsers ask for an icon; "no content" keeps their console free of a 404.
  if (path === "/favicon.ico") return { status: 204, headers: {} };
  const asset = request.method === "GET" || request.method === "HEAD" ? assets[path] : undefined;
  if (asset) {
    return {
      status: 200,
      headers: { "content-type": asset.type, "cache-control": "no-cache" },
      body: asset.body,
    };
  }
  const text = path === WEBSOCKET_PATH
    ? "This is the chat's WebSocket: connect with a WebSocket client\n"
    : "Not found: the chat is at /\n";
  return {
    status: path === WEBSOCKET_PATH ? 403 : 404,
    headers: { "content-type": "text/plain; charset=utf-8" },
    body: text,
  };
}

/** What an upgrade request says about where it comes from. */
export interface UpgradeRequest {
  /** `http:` or `https:`: how the page was served. */
  scheme: string;
  host: string | undefined;
  upgrade: string | undefined;
  origin: string | undefined;
}

/**
 * Why an upgrade is refused: not a WebSocket request, or from a page of another origin. A
 * request with no `Origin` comes from a program, not a page, and cannot carry a visitor's
 * cookies or trust, so it is let in.
 */
export function upgradeRefusal(
  request: UpgradeRequest,
  origins: readonly string[],
): string | undefined {
  if (request.upgrade?.toLowerCase() !== "websocket") {
    return "This is the chat's WebSocket: connect with a WebSocket client";
  }
  const { origin } = request;
  if (origin === undefined) return undefined;
  const own = `${request.scheme}//${request.host ?? ""}`;
  if (origin === own || origins.includes(origin)) return undefined;
  return `Pages from ${origin} may not use this chat (see --web-origin)`;
}
