import assert from "node:assert/strict";
import { ChatClient } from "./client.ts";
import {
  type ClientFrame,
  decodeServerFrame,
  encodeFrame,
  readLines,
  type ServerFrame,
} from "./protocol.ts";
import { ChatCore, type ChatServer, type Member, type Peer, startServer } from "./server.ts";

// ==== Helpers ====

/** A peer for the chat core that keeps what it is sent. */
class FakePeer implements Peer {
  readonly address = "192.0.2.1";
  readonly sent: Uint8Array[] = [];
  send(bytes: Uint8Array): void {
    this.sent.push(bytes);
  }
  frames(): ServerFrame[] {
    return this.sent.map((bytes) => {
      const decoded = decodeServerFrame(new TextDecoder().decode(bytes).trimEnd());
      assert.ok(decoded.ok, "the core sent an invalid frame");
      return decoded.frame;
    });
  }
  last(): ServerFrame | undefined {
    return this.frames().at(-1);
  }
}

function joinCore(core: ChatCore, name: string): { peer: FakePeer; member: Member } {
  const peer = new FakePeer();
  const result = core.join(peer, { type: "hello", name });
  assert.ok(result.ok, `join ${name}`);
  return { peer, member: result.member };
}

type FrameOf<T extends ServerFrame["type"]> = Extract<ServerFrame, { type: T }>;

/** Reads frames until one of the given type (matching `match`) arrives; fails if the stream ends. */
async function until<T extends ServerFrame["type"]>(
  source: { next(): Promise<ServerFrame | undefined> },
  type: T,
  match: (frame: FrameOf<T>) => boolean = () => true,
): Promise<FrameOf<T>> {
  while (true) {
    const frame = await source.next();
    if (frame === undefined) throw new Error(`Connection ended while waiting for ${type}`);
    if (frame.type === type && match(frame as FrameOf<T>)) return frame as FrameOf<T>;
  }
}

/** A client on a bare socket, for sending what a real client never would. */
class RawClient {
  #conn: Deno.TcpConn;
  #lines: AsyncGenerator<string>;
  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    this.#lines = readLines(conn);
  }
  static async open(server: ChatServer): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }));
  }
  async write(data: string | Uint8Array | ClientFrame): Promise<void> {
    const bytes = typeof data === "string"
      ? new TextEncoder().encode(data)
      : data instanceof Uint8Array
      ? data
      : encodeFrame(data);
    let offset = 0;
    while (offset < bytes.length) offset += await this.#conn.write(bytes.subarray(offset));
  }
  /** The next frame, or `undefined` once the server has closed the connection. */
  async next(): Promise<ServerFrame | undefined> {
    try {
      const { value, done } = await this.#lines.next();
      if (done) return undefined;
      const decoded = decodeServerFrame(value);
      assert.ok(decoded.ok, `server sent an invalid frame: ${value}`);
      return decoded.frame;
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) return undefined;
      throw error;
    }
  }
  /** Resolves once the server has closed the connection, skipping frames until then. */
  async closedByServer(): Promise<void> {
    while (await this.next() !== undefined);
  }
  close(): void {
    try {
      this.#conn.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
  }
}

async function withServer(
  fn: (server: ChatServer) => Promise<void>,
  options: Parameters<typeof startServer>[0] = {},
): Promise<void> {
  const server = startServer({ hostname: "127.0.0.1", port: 0, ...options });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

function connect(server: ChatServer, name: string): Promise<ChatClient> {
  return ChatClient.connect({ hostname: "127.0.0.1", port: server.addr.port, name });
}

/** Proves two clients can still talk: `from` says something and `to` receives it. */
async function assertChatWorks(from: ChatClient, to: ChatClient, text: string): Promise<void> {
  const sent = await from.say(text);
  const seen = await until(to, "message", (m) => m.text === text);
  assert.equal(seen.id, sent.id);
}

// ==== Chat core (no sockets) ====

Deno.test("ChatCore welcomes a member and tells the others it joined", () => {
  const core = new ChatCore({ serverName: "test", now: () => 1000 });
  const ann = joinCore(core, "ann");
  const bob = joinCore(core, "bob");
  assert.deepEqual(bob.peer.frames(), [{
    type: "welcome",
    name: "bob",
    users: ["ann", "bob"],
    count: 2,
    server: { name: "test", version: bob.peer.frames()[0]!.type === "welcome" ? "0.1.0" : "" },
  }]);
  assert.deepEqual(ann.peer.last(), { type: "joined", name: "bob", ts: 1000 });
  assert.equal(core.size, 2);
});

Deno.test("ChatCore refuses a taken name in any case and a name breaking the rules", () => {
  const core = new ChatCore();
  joinCore(core, "Ann");
  const peer = new FakePeer();
  const taken = core.join(peer, { type: "hello", name: "aNN" });
  assert.ok(!taken.ok && taken.error.code === "name_taken");
  const lookalike = core.join(peer, { type: "hello", name: "Ａｎｎ" });
  assert.ok(!lookalike.ok && lookalike.error.code === "name_taken");
  for (const name of ["", "a b", "x".repeat(25), "server", "<script>"]) {
    const result = core.join(peer, { type: "hello", name });
    assert.ok(!result.ok && result.error.code === "bad_name", name);
  }
  assert.equal(peer.sent.length, 0);
  assert.equal(core.size, 1);
});

Deno.test("ChatCore encodes a message once and sends the same bytes to everyone", () => {
  let now = 5;
  const core = new ChatCore({ now: () => now++ });
  const ann = joinCore(core, "ann");
  const bob = joinCore(core, "bob");
  const cy = joinCore(core, "cy");
  const sentBefore = [ann, bob, cy].map((m) => m.peer.sent.length);
  assert.equal(
    core.receive(ann.member, { type: "say", text: "hi\u0007 all", ref: "r1" }),
    undefined,
  );
  const copies = [ann, bob, cy].map((m, i) => m.peer.sent.slice(sentBefore[i]));
  for (const sent of copies) assert.equal(sent.length, 1);
  assert.ok(copies.every(([bytes]) => bytes === copies[0]![0]), "one encoding for all");
  assert.deepEqual(bob.peer.last(), {
    type: "message",
    id: 1,
    ts: 8,
    from: "ann",
    text: "hi all",
    ref: "r1",
  });
});

Deno.test("ChatCore refuses empty or over-long text, echoing the ref, and sends nothing", () => {
  const core = new ChatCore();
  const ann = joinCore(core, "ann");
  const bob = joinCore(core, "bob");
  const before = bob.peer.sent.length;
  for (const text of ["", "   ", "\u0000\u0001", "x".repeat(2001)]) {
    const error = core.receive(ann.member, { type: "say", text, ref: "r9" });
    assert.equal(error?.code, "bad_text");
    assert.equal(error?.ref, "r9");
  }
  const badRef = core.receive(ann.member, { type: "say", text: "hi", ref: "has space" });
  assert.equal(badRef?.code, "bad_frame");
  assert.equal(bob.peer.sent.length, before);
});

Deno.test("ChatCore answers who, ping, and a second hello", () => {
  const core = new ChatCore();
  const ann = joinCore(core, "ann");
  joinCore(core, "bob");
  core.receive(ann.member, { type: "who" });
  assert.deepEqual(ann.peer.last(), { type: "users", users: ["ann", "bob"], count: 2 });
  core.receive(ann.member, { type: "ping" });
  assert.deepEqual(ann.peer.last(), { type: "pong" });
  assert.equal(core.receive(ann.member, { type: "hello", name: "x" })?.code, "bad_frame");
});

Deno.test("ChatCore announces a leave once, with its reason, and frees the name", () => {
  const core = new ChatCore({ now: () => 7 });
  const ann = joinCore(core, "ann");
  const bob = joinCore(core, "bob");
  core.leave(bob.member, "quit");
  core.leave(bob.member, "quit");
  assert.deepEqual(ann.peer.frames().filter((f) => f.type === "left"), [
    { type: "left", name: "bob", ts: 7, reason: "quit" },
  ]);
  joinCore(core, "BOB");
  core.quiet();
  core.leave(ann.member, "server shutting down");
  assert.equal(ann.peer.frames().filter((f) => f.type === "left").length, 1);
});

Deno.test("ChatCore lists at most 500 names but counts everyone", () => {
  const core = new ChatCore();
  for (let i = 0; i < 501; i++) joinCore(core, `user${i}`);
  const { peer } = joinCore(core, "last");
  const welcome = peer.frames()[0];
  assert.ok(welcome?.type === "welcome");
  assert.equal(welcome.users.length, 500);
  assert.equal(welcome.count, 502);
});

// ==== Server over real sockets ====

Deno.test("three clients chat and all see every message in the same order with server ids", async () => {
  await withServer(async (server) => {
    const clients = await Promise.all(["ann", "bob", "cy"].map((n) => connect(server, n)));
    try {
      // Everyone waits until everyone is present, so nobody misses a message.
      const [ann, bob] = clients as [ChatClient, ChatClient, ChatClient];
      await until(ann, "joined", (f) => f.name === "cy");
      await until(bob, "joined", (f) => f.name === "cy");
      const perSender = 20;
      const sends = clients.flatMap((client) =>
        Array.from({ length: perSender }, (_, i) => client.say(`${client.name} ${i}`))
      );
      const acks = await Promise.all(sends);
      const received = await Promise.all(clients.map(async (client) => {
        const messages = [];
        while (messages.length < perSender * clients.length) {
          messages.push(await until(client, "message"));
        }
        return messages;
      }));
      const ids = received.map((messages) => messages.map((m) => m.id));
      assert.deepEqual(ids[1], ids[0]);
      assert.deepEqual(ids[2], ids[0]);
      assert.deepEqual(ids[0], [...ids[0]!].sort((a, b) => a - b), "ids rise");
      assert.equal(new Set(ids[0]).size, perSender * clients.length);
      for (const client of clients) {
        const own = received[0]!.filter((m) => m.from === client.name).map((m) => m.text);
        assert.deepEqual(own, Array.from({ length: perSender }, (_, i) => `${client.name} ${i}`));
      }
      assert.deepEqual(new Set(acks.map((m) => m.id)), new Set(ids[0]));
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});

Deno.test("a duplicate name is refused with name_taken and the connection may try another", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    const raw = await RawClient.open(server);
    try {
      await raw.write({ type: "hello", name: "ANN" });
      assert.equal((await raw.next())?.type === "error" && "name_taken", "name_taken");
      await raw.write({ type: "hello", name: "ann2" });
      assert.equal((await raw.next())?.type, "welcome");
    } finally {
      raw.close();
      await ann.close();
    }
  });
});

Deno.test("hostile input gets its specified answer while two others chat undisturbed", async () => {
  const log: string[] = [];
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    const bob = await connect(server, "bob");
    const raw = await RawClient.open(server);
    try {
      await raw.write('{"type":"say","text":"hi"}\n');
      assert.equal((await until(raw, "error")).code, "hello_first");
      await raw.write({ type: "hello", name: "mallory" });
      assert.equal((await raw.next())?.type, "welcome");
      const cases: [string, string | Uint8Array][] = [
        ["garbage bytes", new Uint8Array([0x00, 0xff, 0xfe, 0x80, 0x41, 0x0a])],
        ["invalid JSON", '{"type":"say",\n'],
        ["a frame of the wrong shape", '{"type":"say","text":5}\n'],
        ["an unknown type", '{"type":"teleport"}\n'],
      ];
      for (const [what, input] of cases) {
        await raw.write(input);
        assert.equal((await until(raw, "error")).code, "bad_frame", what);
        await assertChatWorks(ann, bob, `still fine after ${what}`);
      }
      // Four mistakes in a row are forgiven: the connection still works.
      await raw.write({ type: "ping" });
      assert.equal((await until(raw, "pong")).type, "pong");
      await raw.write(`{"type":"say","text":"${"x".repeat(100 * 1024)}"}\n`);
      const tooLarge = await until(raw, "error");
      assert.equal(tooLarge.code, "too_large");
      await raw.closedByServer();
      const left = await until(ann, "left", (f) => f.name === "mallory");
      assert.equal(left.reason, "sent too much");
      await assertChatWorks(bob, ann, "still fine after a 100 KiB line");
    } finally {
      raw.close();
      await ann.close();
      await bob.close();
    }
  }, { log: (line) => log.push(line) });
  assert.ok(log.some((line) => line.includes("too_large")), "the operator sees why");
});

Deno.test("five bad frames in a row close the connection with too_many_errors", async () => {
  await withServer(async (server) => {
    const raw = await RawClient.open(server);
    try {
      await raw.write("nope\n".repeat(5));
      const codes = [];
      let frame;
      while ((frame = await raw.next()) !== undefined) {
        if (frame.type === "error") codes.push(frame.code);
      }
      assert.deepEqual(codes, [...Array(5).fill("bad_frame"), "too_many_errors"]);
    } finally {
      raw.close();
    }
  });
});

Deno.test("a client that never reads is cut off and never slows the others", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    const bob = await connect(server, "bob");
    const sloth = await RawClient.open(server);
    try {
      await sloth.write({ type: "hello", name: "sloth" });
      await until(ann, "joined", (f) => f.name === "sloth");
      // From here on the sloth reads nothing. Its outbox (64 KiB) and the kernel's socket
      // buffers fill up; then the server must drop it, while bob gets every message.
      const text = "x".repeat(1900);
      let received = 0;
      let dropped: string | undefined;
      const watching = (async () => {
        for await (const frame of bob) {
          if (frame.type === "message" && frame.text === "done") return;
          if (frame.type === "message") received++;
          if (frame.type === "left" && frame.name === "sloth") dropped = frame.reason;
        }
      })();
      const draining = (async () => {
        for await (const _ of ann);
      })();
      let sent = 0;
      while (dropped === undefined) {
        assert.ok(sent < 50_000, "the slow client was never dropped");
        await Promise.all(Array.from({ length: 100 }, () => ann.say(text)));
        sent += 100;
      }
      await ann.say("done");
      await watching;
      assert.equal(dropped, "too slow");
      assert.equal(received, sent, "bob got every message");
      await ann.close();
      await draining;
    } finally {
      sloth.close();
      await ann.close();
      await bob.close();
    }
  }, { maxQueueBytes: 64 * 1024 });
});

Deno.test("a connection that sends no hello is closed after the timeout", async () => {
  const log: string[] = [];
  await withServer(async (server) => {
    const raw = await RawClient.open(server);
    try {
      const frame = await raw.next();
      assert.deepEqual(frame?.type === "error" && frame.code, "timeout");
      await raw.closedByServer();
    } finally {
      raw.close();
    }
  }, { helloTimeoutMs: 50, log: (line) => log.push(line) });
  assert.ok(log.some((line) => line.includes("no hello")));
});

Deno.test("shutting down tells every client and closes every connection", async () => {
  const server = startServer({ hostname: "127.0.0.1", port: 0 });
  const ann = await connect(server, "ann");
  const waiting = await RawClient.open(server);
  try {
    await server.close("Back in five minutes");
    const info = await ann.closed;
    assert.equal(info.by, "server");
    assert.equal(info.error?.code, "shutting_down");
    assert.equal(info.error?.message, "Back in five minutes");
    const notice = await waiting.next();
    assert.equal(notice?.type === "error" && notice.code, "shutting_down");
    await waiting.closedByServer();
    await assert.rejects(connect(server, "late"), { code: "unreachable" });
  } finally {
    waiting.close();
    await ann.close();
  }
});

Deno.test("a bye ends the membership with reason quit", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    const raw = await RawClient.open(server);
    try {
      await raw.write({ type: "hello", name: "bob" });
      await until(ann, "joined", (f) => f.name === "bob");
      await raw.write({ type: "bye" });
      await raw.closedByServer();
      assert.equal((await until(ann, "left")).reason, "quit");
    } finally {
      raw.close();
      await ann.close();
    }
  });
});
