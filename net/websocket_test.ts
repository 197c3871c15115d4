/**
 * The web listener and the WebSocket transport against a real server: the page's headers, the
 * framing (one JSON frame per message), the same hello and limits as TCP, Origin checks, and a
 * socket that stops reading being dropped while others chat on.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type ClientFrame, decodeServerFrame, encodeFrame, type ServerFrame } from "../protocol.ts";
import type { ChatServer } from "../server.ts";
import { connect, until, within, withServer } from "../test_util.ts";
import {
  HIGH_WATER_BYTES,
  textFrames,
  upgradeRefusal,
  WEBSOCKET_PATH,
  WebSocketTransport,
} from "./websocket.ts";

const encoder = new TextEncoder();

/** Runs `fn` with a server that serves the page on a free port. */
function withWebServer(fn: (server: ChatServer, base: string) => Promise<void>): Promise<void> {
  return withServer((server) => fn(server, `127.0.0.1:${server.webAddr!.port}`), {
    db: false,
    web: { port: 0 },
  });
}

/** A WebSocket client that collects frames, one per message. */
class PageSocket {
  readonly socket: WebSocket;
  readonly frames: ServerFrame[] = [];
  readonly raw: string[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;
  #waiters: (() => void)[] = [];

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.socket.onopen = () => resolve();
      this.socket.onerror = () => reject(new Error(`cannot open ${url}`));
    });
    this.closed = new Promise((resolve) => this.socket.onclose = resolve);
    this.socket.onmessage = (event) => {
      this.raw.push(String(event.data));
      const decoded = decodeServerFrame(String(event.data));
      if (decoded.ok) this.frames.push(decoded.value);
      for (const wake of this.#waiters.splice(0)) wake();
    };
  }

  send(frame: ClientFrame): void {
    this.socket.send(new TextDecoder().decode(encodeFrame(frame)).trimEnd());
  }

  /** Resolves with the first frame (from the start) that matches. */
  async until(match: (frame: ServerFrame) => boolean, what: string): Promise<ServerFrame> {
    return await within(
      (async () => {
        while (true) {
          const found = this.frames.find(match);
          if (found) return found;
          await new Promise<void>((resolve) => this.#waiters.push(resolve));
        }
      })(),
      what,
    );
  }

  async close(): Promise<void> {
    this.socket.close();
    await this.closed;
  }
}

Deno.test("the page is served with a same-origin content policy, and nothing else is", () =>
  withWebServer(async (_server, base) => {
    for (
      const [path, type] of [["/", /text\/html/], ["/app.js", /javascript/], ["/style.css", /css/]]
    ) {
      const response = await fetch(`http://${base}${path}`);
      assert.equal(response.status, 200, String(path));
      assert.match(response.headers.get("content-type") ?? "", type as RegExp);
      assert.match(response.headers.get("content-security-policy") ?? "", /default-src 'self'/);
      assert.equal(response.headers.get("x-content-type-options"), "nosniff");
      await response.body?.cancel();
    }
    const icon = await fetch(`http://${base}/favicon.ico`);
    assert.equal(icon.status, 204);
    await icon.body?.cancel();
    const missing = await fetch(`http://${base}/../server.ts`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const post = await fetch(`http://${base}/`, { method: "POST", body: "x" });
    assert.equal(post.status, 404);
    await post.body?.cancel();
    // /ws without an upgrade says what it is.
    const plain = await fetch(`http://${base}${WEBSOCKET_PATH}`);
    assert.equal(plain.status, 403);
    assert.match(await plain.text(), /WebSocket/);
  }));

Deno.test("a WebSocket chats with TCP clients: one JSON frame per message, same hello and welcome", () =>
  withWebServer(async (server, base) => {
    const bob = await connect(server, "bob");
    const page = new PageSocket(`ws://${base}${WEBSOCKET_PATH}`);
    try {
      await page.opened;
      page.send({ type: "hello", name: "ann" });
      const welcome = await page.until((f) => f.type === "welcome", "the welcome");
      assert.equal(welcome.type === "welcome" && welcome.name, "ann");
      await until(bob, "joined", (f) => f.name === "ann");
      page.send({ type: "say", text: "from the browser", ref: "r1" });
      assert.equal((await until(bob, "message", (f) => f.from === "ann")).text, "from the browser");
      await bob.say("from the terminal");
      await page.until((f) => f.type === "message" && f.text === "from the terminal", "bob's");
      // Every message is exactly one frame, with no newline.
      assert.ok(page.raw.every((text) => !text.includes("\n") && decodeServerFrame(text).ok));
    } finally {
      await page.close();
      await bob.close();
    }
  }));

Deno.test("a WebSocket never gets the plain-text face: silence is not a person to ask for a name", () =>
  withServer(async (server) => {
    const page = new PageSocket(`ws://127.0.0.1:${server.webAddr!.port}${WEBSOCKET_PATH}`);
    try {
      await page.opened;
      // The text face would ask for a name after the prompt delay; the hello deadline ends it.
      const closed = await within(page.closed, "the hello deadline");
      assert.ok(page.raw.every((text) => text.startsWith("{")), page.raw.join("\n"));
      const last = page.frames.at(-1);
      assert.equal(last?.type === "error" && last.code, "timeout");
      assert.ok(closed.code >= 1000);
    } finally {
      await page.close();
    }
  }, { db: false, web: { port: 0 }, promptDelayMs: 20, helloTimeoutMs: 300 }));

Deno.test("a WebSocket's frames are limited like TCP's: a bad frame gets bad_frame, a huge one too_large", () =>
  withServer(async (server) => {
    const page = new PageSocket(`ws://127.0.0.1:${server.webAddr!.port}${WEBSOCKET_PATH}`);
    try {
      await page.opened;
      page.socket.send('{"type":"hello"}');
      await page.until((f) => f.type === "error" && f.code === "bad_frame", "bad_frame");
      page.socket.send(`{"type":"hello","name":"${"a".repeat(70_000)}"}`);
      await page.until((f) => f.type === "error" && f.code === "too_large", "too_large");
      await within(page.closed, "the close after too_large");
    } finally {
      await page.close();
    }
  }, { db: false, web: { port: 0 } }));

Deno.test("an upgrade from a page of another origin is refused; the page's own and listed ones pass", () => {
  const request = (origin?: string) => ({
    scheme: "http:",
    upgrade: "websocket",
    host: "192.0.2.7:5080",
    origin,
  });
  assert.equal(upgradeRefusal(request("http://192.0.2.7:5080"), []), undefined);
  assert.equal(upgradeRefusal(request(), []), undefined, "a program sends no Origin");
  assert.match(upgradeRefusal(request("http://evil.example"), [])!, /evil\.example.*--web-origin/);
  assert.match(upgradeRefusal(request("http://192.0.2.7:5081"), [])!, /may not/);
  assert.equal(
    upgradeRefusal(request("https://chat.example.org"), ["https://chat.example.org"]),
    undefined,
  );
});

Deno.test("a real upgrade with a foreign Origin gets 403 and never reaches the chat", () =>
  withWebServer(async (server, base) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.webAddr!.port });
    try {
      await conn.write(encoder.encode(
        `GET ${WEBSOCKET_PATH} HTTP/1.1\r\nHost: ${base}\r\nUpgrade: websocket\r\n` +
          "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://evil.example\r\n\r\n",
      ));
      const buffer = new Uint8Array(1024);
      const n = await within(conn.read(buffer), "the answer");
      assert.match(new TextDecoder().decode(buffer.subarray(0, n ?? 0)), /^HTTP\/1\.1 403/);
      assert.equal([...server.connections()].length, 0);
    } finally {
      conn.close();
    }
  }));

Deno.test("a WebSocket that stops reading is dropped as too slow while the others chat on", () => {
  const log: string[] = [];
  return withServer(async (server) => {
    const ann = await connect(server, "ann");
    const bob = await connect(server, "bob");
    // A raw socket: upgrade, say hello, then never read again.
    const conn = await rawWebSocket(server.webAddr!.port, "sleepy");
    try {
      await until(ann, "joined", (f) => f.name === "sleepy");
      // Each message reaches sleepy too, until its buffers and queue are full.
      const text = "x".repeat(1900);
      const connected = () => [...server.connections()].some((c) => c.member?.name === "sleepy");
      for (let round = 0; connected(); round++) {
        await Promise.all(Array.from({ length: 100 }, (_, i) => bob.say(`${round}.${i} ${text}`)));
        assert.ok(round < 100, "sleepy was never dropped");
      }
      assert.ok(log.some((line) => /sleepy.*too slow/.test(line)), log.join("\n"));
      // The others chat on.
      await bob.say("still here");
      assert.equal((await until(ann, "message", (f) => f.text === "still here")).from, "bob");
      assert.ok(HIGH_WATER_BYTES < 1024 * 1024);
    } finally {
      conn.close();
      await ann.close();
      await bob.close();
    }
  }, {
    db: false,
    web: { port: 0 },
    rate: 0,
    maxQueueBytes: 64 * 1024,
    log: (line) => log.push(line),
  });
});

Deno.test("a WebSocket that floods pings it never reads the answers to is closed, not fed", () =>
  withServer(async (server) => {
    const watcher = await connect(server, "watcher");
    const conn = await rawWebSocket(server.webAddr!.port, "pinger");
    try {
      await until(watcher, "joined", (f) => f.name === "pinger");
      const joined = () => [...server.connections()].some((c) => c.member?.name === "pinger");
      // 200 pings of 125 bytes at once, and never a read: the server closes rather than queue
      // 200 pongs (without a bound, millions of them grew it by gigabytes).
      const ping = maskedTextFrame("p".repeat(125), 0x9);
      const burst = new Uint8Array(ping.length * 200);
      for (let i = 0; i < 200; i++) burst.set(ping, i * ping.length);
      await conn.write(burst);
      // Cut at once: the gateway sees the connection end (others hear of it only after the
      // presence debounce).
      await within(
        (async () => {
          while (joined()) await new Promise((resolve) => setTimeout(resolve, 10));
        })(),
        "the pinger to be cut off",
      );
    } finally {
      conn.close();
      await watcher.close();
    }
  }, { db: false, web: { port: 0 } }));

/** A raw TCP connection upgraded to a WebSocket on `/ws`, which has said hello as `name`. */
async function rawWebSocket(port: number, name: string): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(encoder.encode(
    `GET ${WEBSOCKET_PATH} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  ));
  await conn.write(maskedTextFrame(`{"type":"hello","name":"${name}"}`));
  return conn;
}

/** A client's text frame (masked, as RFC 6455 requires of clients), for payloads under 64 KiB. */
function maskedTextFrame(text: string, opcode = 0x1): Uint8Array {
  const payload = encoder.encode(text);
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const header = payload.length < 126
    ? [0x80 | opcode, 0x80 | payload.length]
    : [0x80 | opcode, 0x80 | 126, payload.length >> 8, payload.length & 0xff];
  const frame = new Uint8Array(header.length + 4 + payload.length);
  frame.set(header);
  frame.set(mask, header.length);
  payload.forEach((byte, i) => frame[header.length + 4 + i] = byte ^ mask[i % 4]!);
  return frame;
}

/** Enough of a `ws` socket for the transport: messages in, sends and closes recorded. */
class FakeSocket {
  readyState = 1;
  bufferedAmount = 0;
  sent: string[] = [];
  closedWith: number | undefined;
  #listeners = new Map<string, ((...args: never[]) => void)[]>();
  on(event: string, listener: (...args: never[]) => void): void {
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), listener]);
  }
  #emit(event: string, ...args: unknown[]): void {
    for (const listener of this.#listeners.get(event) ?? []) {
      (listener as (...args: unknown[]) => void)(...args);
    }
  }
  send(data: Uint8Array, options: { binary: boolean }): void {
    assert.equal(options.binary, false);
    this.sent.push(new TextDecoder().decode(data));
  }
  ping(): void {}
  terminate(): void {
    this.close();
  }
  close(code?: number): void {
    this.closedWith = code;
    this.readyState = 3;
    this.#emit("close");
  }
  receive(data: string | Uint8Array | Uint8Array[]): void {
    const binary = data instanceof Uint8Array;
    this.#emit("message", typeof data === "string" ? encoder.encode(data) : data, binary);
  }
}

Deno.test("the transport reads every waiting message at once, each as one line", async () => {
  const socket = new FakeSocket();
  const transport = new WebSocketTransport(
    socket as unknown as ConstructorParameters<typeof WebSocketTransport>[0],
    "192.0.2.7",
  );
  socket.receive('{"type":"say","text":"one"}');
  socket.receive('{"type":"say",\n"text":"two"}');
  socket.receive('{"type":"say","text":"three"}');
  const buffer = new Uint8Array(4096);
  const n = await transport.read(buffer);
  // One read for all three (one read per message would spend the small-read allowance).
  assert.equal(
    new TextDecoder().decode(buffer.subarray(0, n!)),
    '{"type":"say","text":"one"}\n{"type":"say", "text":"two"}\n{"type":"say","text":"three"}\n',
  );
  // A fragmented message is one line, even with a character split between its fragments.
  const text = encoder.encode('{"type":"say","text":"é"}');
  const split = text.indexOf(0xc3) + 1;
  socket.receive([text.subarray(0, split), text.subarray(split)]);
  const whole = await transport.read(buffer);
  assert.equal(new TextDecoder().decode(buffer.subarray(0, whole!)), '{"type":"say","text":"é"}\n');
  // A buffer smaller than a message takes it in parts.
  socket.receive('{"type":"ping"}');
  const small = new Uint8Array(5);
  assert.equal(await transport.read(small), 5);
  assert.equal(await transport.read(buffer), 11);
  // Each line written is one message; a binary message closes the socket (1003).
  await transport.write(new TextEncoder().encode('{"type":"pong"}\n{"type":"pong"}\n'));
  assert.deepEqual(socket.sent, ['{"type":"pong"}', '{"type":"pong"}']);
  socket.receive(new Uint8Array([1, 2, 3]));
  assert.equal(socket.closedWith, 1003);
  assert.equal(await transport.read(buffer), null);
});

Deno.test("textFrames() writes each line as one unmasked text frame, with the length in 7, 16 or 64 bits", () => {
  for (const length of [1, 125, 126, 65535, 65536, 70_000]) {
    const payload = "a".repeat(length);
    const frames = textFrames(encoder.encode(`${payload}\n\n{"type":"pong"}`));
    // Read the frames back as RFC 6455 section 5.2 lays them out.
    const read: string[] = [];
    for (let at = 0; at < frames.length;) {
      assert.equal(frames[at], 0x81, "FIN and the text opcode");
      let size = frames[at + 1]!;
      assert.equal(size & 0x80, 0, "a server's frame is not masked");
      at += 2;
      if (size === 126) {
        size = (frames[at]! << 8) | frames[at + 1]!;
        at += 2;
      } else if (size === 127) {
        size = Number(new DataView(frames.buffer, frames.byteOffset + at, 8).getBigUint64(0));
        at += 8;
      }
      read.push(new TextDecoder().decode(frames.subarray(at, at + size)));
      at += size;
    }
    assert.deepEqual(read, [payload, '{"type":"pong"}'], `length ${length}`);
  }
});
