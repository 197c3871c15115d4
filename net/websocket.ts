/**
 * The browser's way in: an HTTP listener (`Deno.serve`) that serves the chat page and upgrades
 * `GET /ws` to a WebSocket, and the WebSocket as a {@linkcode Transport}, so a browser is just
 * another client of the same gateway: same hello, identity, resume, limits and error codes.
 *
 * Framing: each WebSocket text message is one JSON frame, with no newline. The transport hands
 * the gateway each message as one line (a newline inside a message, which JSON never needs, is
 * read as a space), and sends each line the gateway writes as one message. A browser never gets
 * the plain-text face.
 *
 * Backpressure: a peer that stops reading makes `bufferedAmount` grow, not a write wait; a write
 * waits while more than {@linkcode HIGH_WATER_BYTES} are buffered, so the connection's outbox
 * fills and the gateway drops it as too slow, as for TCP. Liveness: the upgrade pings and
 * closes a silent socket (`idleTimeout`); browsers answer pings without running any script, so
 * a throttled background tab stays connected.
 *
 * Safety: an upgrade from a page of another origin is refused (a page elsewhere must not chat
 * as whoever opens it); every response has `Content-Security-Policy: default-src 'self'`.
 *
 * @module
 */

import { closeQuietly, type Transport, type TransportListener } from "./conn.ts";
import { displayAddress } from "./tcp.ts";

/** Where the browser opens its WebSocket. */
export const WEBSOCKET_PATH = "/ws";

/** A write waits while more than this many bytes wait to reach the peer. */
export const HIGH_WATER_BYTES = 256 * 1024;
/** How often a waiting write looks at `bufferedAmount` again, in milliseconds. */
const DRAIN_CHECK_MS = 10;
/**
 * The most bytes of received messages a transport holds before the gateway reads them; a peer
 * past it is sending faster than any rate limit allows and is closed (1008, policy).
 */
const MAX_UNREAD_BYTES = 1024 * 1024;
/** The most upgraded sockets waiting for the gateway to take them. */
const MAX_WAITING_SOCKETS = 256;
/** Seconds of silence before the upgrade pings, and then before it closes the socket. */
const IDLE_TIMEOUT_S = 30;

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

/**
 * One browser's WebSocket as a transport. Its reads end (`null`) once the socket closes.
 */
export class WebSocketTransport implements Transport {
  readonly kind = "websocket";
  /** Only programs (pages) speak over it: never the plain-text face. */
  readonly jsonOnly = true;
  readonly remoteAddress: string;
  #socket: WebSocket;
  #unread: Uint8Array[] = [];
  #unreadBytes = 0;
  #closed = false;
  #wake: (() => void) | undefined;
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  #drained: (() => void) | undefined;

  constructor(socket: WebSocket, remoteAddress: string) {
    this.#socket = socket;
    this.remoteAddress = remoteAddress;
    socket.addEventListener("message", (event) => this.#received(event.data));
    socket.addEventListener("close", () => this.#ended());
    socket.addEventListener("error", () => this.#ended());
  }

  /** One message in: a line, or a reason to close. */
  #received(data: unknown): void {
    if (this.#closed) return;
    if (typeof data !== "string") {
      this.#socket.close(1003, "text messages only: one JSON frame each");
      return;
    }
    const bytes = encoder.encode(`${data.replace(/[\r\n]/g, " ")}\n`);
    if (this.#unreadBytes + bytes.length > MAX_UNREAD_BYTES) {
      this.#socket.close(1008, "sending too fast");
      return;
    }
    this.#unread.push(bytes);
    this.#unreadBytes += bytes.length;
    this.#wake?.();
  }

  #ended(): void {
    this.#closed = true;
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
   * Sends each whole line of `bytes` as one message (the outbox writes whole frames), then
   * waits while the peer is behind.
   * @throws {Deno.errors.BrokenPipe} once the socket is closed.
   */
  async write(bytes: Uint8Array): Promise<number> {
    if (this.#closed || this.#socket.readyState !== WebSocket.OPEN) {
      throw new Deno.errors.BrokenPipe("the WebSocket is closed");
    }
    for (const line of decoder.decode(bytes).split("\n")) {
      if (line !== "") this.#socket.send(line);
    }
    while (!this.#closed && this.#socket.bufferedAmount > HIGH_WATER_BYTES) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
        this.#drainTimer = setTimeout(resolve, DRAIN_CHECK_MS);
      });
      clearTimeout(this.#drainTimer);
      this.#drained = undefined;
    }
    return bytes.length;
  }

  close(): void {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.#socket.close(1000);
      } catch {
        // Not open yet or already closing.
      }
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

/** The web listener: a {@linkcode TransportListener} of WebSockets, and its HTTP server. */
export interface WebListener extends TransportListener {
  /** Resolves once the HTTP server has stopped, after {@linkcode TransportListener.close}. */
  readonly finished: Promise<void>;
}

/**
 * Serves the page and accepts WebSockets on `GET /ws` from the page's own origin (or
 * `origins`), or from programs that send no `Origin`.
 * @throws the errors of `Deno.serve` (`AddrInUse`, `AddrNotAvailable`, a key it cannot use).
 */
export function listenWeb(options: WebOptions): WebListener {
  const waiting: WebSocketTransport[] = [];
  let wakeAccept: (() => void) | undefined;
  let closed = false;
  const handler = (request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response => {
    const url = new URL(request.url);
    if (url.pathname === WEBSOCKET_PATH) {
      const refusal = upgradeRefusal(request, options.origins ?? []) ??
        (waiting.length >= MAX_WAITING_SOCKETS ? "busy: try again" : undefined);
      if (refusal) return textResponse(refusal === "busy: try again" ? 503 : 403, refusal);
      // Read before the upgrade: the request is gone afterwards.
      const remoteAddress = displayAddress(info.remoteAddr);
      const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout: IDLE_TIMEOUT_S });
      const transport = new WebSocketTransport(socket, remoteAddress);
      socket.addEventListener("open", () => {
        if (closed) return transport.close();
        waiting.push(transport);
        wakeAccept?.();
      }, { once: true });
      return response;
    }
    // Browsers ask for an icon; "no content" keeps their console free of a 404.
    if (url.pathname === "/favicon.ico") {
      return new Response(null, { status: 204, headers: SECURITY_HEADERS });
    }
    const asset = request.method === "GET" || request.method === "HEAD"
      ? options.assets[url.pathname]
      : undefined;
    if (!asset) return textResponse(404, "Not found: the chat is at /");
    return new Response(request.method === "HEAD" ? null : asset.body, {
      headers: { ...SECURITY_HEADERS, "content-type": asset.type, "cache-control": "no-cache" },
    });
  };
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    ...(options.tls ? { cert: options.tls.certPem, key: options.tls.keyPem } : {}),
    onListen: () => {},
    onError: () => textResponse(500, "The chat server could not answer that"),
  }, handler);
  return {
    kind: options.tls ? "https" : "http",
    addr: { hostname: server.addr.hostname, port: server.addr.port },
    finished: server.finished,
    async accept(): Promise<Transport | undefined> {
      while (waiting.length === 0) {
        if (closed) return undefined;
        await new Promise<void>((resolve) => wakeAccept = resolve);
        wakeAccept = undefined;
      }
      return waiting.shift();
    },
    close(): void {
      if (closed) return;
      closed = true;
      for (const transport of waiting.splice(0)) closeQuietly(transport);
      wakeAccept?.();
      server.shutdown().catch(() => {});
    },
  };
}

/**
 * Why an upgrade is refused: not a WebSocket request, or from a page of another origin. A
 * request with no `Origin` comes from a program, not a page, and cannot carry a visitor's
 * cookies or trust, so it is let in.
 */
export function upgradeRefusal(request: Request, origins: readonly string[]): string | undefined {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return "This is the chat's WebSocket: connect with a WebSocket client";
  }
  const origin = request.headers.get("origin");
  if (origin === null) return undefined;
  const own = `${new URL(request.url).protocol}//${request.headers.get("host") ?? ""}`;
  if (origin === own || origins.includes(origin)) return undefined;
  return `Pages from ${origin} may not use this chat (see --web-origin)`;
}

function textResponse(status: number, text: string): Response {
  return new Response(`${text}\n`, {
    status,
    headers: { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8" },
  });
}
