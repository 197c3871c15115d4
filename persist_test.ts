/**
 * Tests that messages and sessions outlive the server process: the real server runs as a
 * subprocess on a database file, is killed (`SIGKILL`) or stopped (`SIGTERM`), and starts again on
 * the same file. What was acknowledged must still be there, exactly once; clients that reconnect
 * on their own must get their sessions back.
 *
 * Run with `deno test --sanitize-ops --sanitize-resources --allow-net --allow-read --allow-write
 * --allow-run --allow-env --allow-sys persist_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ChatClient, type ChatClientOptions, ChatError } from "./client.ts";
import {
  type HelloFrame,
  type HistoryInfoFrame,
  LOBBY,
  type MessageFrame,
  type PrivateFrame,
  type ServerFrame,
} from "./protocol.ts";
import { HISTORY_LIMIT } from "./chat/hub.ts";
import {
  type FrameOf,
  framesUntil,
  freePort,
  RawClient,
  reap,
  type ServerProcess,
  startServerProcess,
  stopServerProcess,
  until,
  within,
  withTempDir,
} from "./test_util.ts";

// ==== Helpers ====

/** Where the test servers listen. */
const HOST = "127.0.0.1";
/** Messages per `history` request when reading a room's whole history. */
const HISTORY_PAGE_LIMIT = 100;

/** Connects a client to a server process. */
function connectTo(
  server: ServerProcess,
  name: string,
  options: Partial<ChatClientOptions> = {},
): Promise<ChatClient> {
  return ChatClient.connect({ ...options, hostname: HOST, port: server.port, name });
}

/** One page of history: the `history` frame and the messages it announced. */
interface HistoryPage {
  info: HistoryInfoFrame;
  messages: MessageFrame[];
}

/** Reads the next page of history a client receives. */
async function readHistoryPage(client: ChatClient): Promise<HistoryPage> {
  const info = await until(client, "history");
  const messages: MessageFrame[] = [];
  while (messages.length < info.count) {
    messages.push(await until(client, "message", (frame) => frame.history === true));
  }
  return { info, messages };
}

/** Reads a room's whole history, a page at a time from the newest back; oldest first. */
async function readWholeHistory(client: ChatClient, room: string): Promise<MessageFrame[]> {
  const all: MessageFrame[] = [];
  let before: number | undefined;
  while (true) {
    const sent = client.send({
      type: "history",
      room,
      limit: HISTORY_PAGE_LIMIT,
      ...(before === undefined ? {} : { before }),
    });
    assert.ok(sent, "the reader is not connected");
    const page = await readHistoryPage(client);
    assert.equal(page.info.room, room);
    all.unshift(...page.messages);
    if (!page.info.more) return all;
    assert.ok(page.messages.length > 0, "a page with no messages says there are more");
    before = page.messages[0]!.id;
  }
}

/**
 * Connects without the client library, says `hello` (with a resume token) and returns every frame
 * the server sends in answer; a ping right behind the hello marks the end of them.
 */
async function helloAndCollect(server: ServerProcess, hello: HelloFrame): Promise<ServerFrame[]> {
  const raw = await RawClient.open(server.port);
  try {
    await raw.write(hello);
    await raw.write({ type: "ping" });
    const frames = await framesUntil(raw, (frame) => frame.type === "pong");
    return frames.slice(0, -1) as ServerFrame[];
  } finally {
    raw.close();
  }
}

/** What must survive of a room message: who said what, where, under which id. */
function essence(frame: MessageFrame): { id: number; from: string; room: string; text: string } {
  return { id: frame.id, from: frame.from, room: frame.room ?? LOBBY, text: frame.text };
}

/** What must survive of a private message. */
function privateEssence(frame: PrivateFrame): Pick<PrivateFrame, "id" | "from" | "to" | "text"> {
  return { id: frame.id, from: frame.from, to: frame.to, text: frame.text };
}

function byId<T extends { id: number }>(frames: Iterable<T>): T[] {
  return [...frames].sort((a, b) => a.id - b.id);
}

/** Asserts that no two frames share an id, and no two share a text. */
function assertNoneTwice(frames: readonly { id: number; text: string }[], what: string): void {
  const ids = frames.map((f) => f.id);
  assert.equal(new Set(ids).size, ids.length, `${what}: an id appears twice: ${ids}`);
  const texts = frames.map((f) => f.text);
  assert.equal(new Set(texts).size, texts.length, `${what}: a message appears twice`);
}

/** Asserts that `stored` holds exactly the acknowledged messages: none missing, none twice. */
function assertExactly(stored: MessageFrame[], acknowledged: Iterable<MessageFrame>, what: string) {
  assertNoneTwice(stored, what);
  assert.deepEqual(byId(stored).map(essence), byId(acknowledged).map(essence), what);
}

// ==== Messages survive a crash ====

Deno.test("every acknowledged message survives kill -9 of the server, none twice", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/chat.db`;
    const clients: ChatClient[] = [];
    let first: ServerProcess | undefined;
    let second: ServerProcess | undefined;
    try {
      first = await startServerProcess(db, freePort(), ["--rate", "0"]);
      const ann = await connectTo(first, "ann");
      clients.push(ann);
      const bob = await connectTo(first, "bob");
      clients.push(bob);

      const acknowledged = new Map<number, MessageFrame>();
      const privates: PrivateFrame[] = [];
      for (let i = 0; i < 250; i++) {
        const speaker = i % 3 === 0 ? bob : ann;
        const ack = await within(
          speaker.say(`message ${i} from ${speaker.name}`),
          `the acknowledgement of message ${i}`,
        );
        assert.ok(!acknowledged.has(ack.id), `id ${ack.id} was given twice`);
        acknowledged.set(ack.id, ack);
        if (i === 40) privates.push(await within(ann.tell("bob", "psst, bob"), "ann's private"));
        if (i === 170) privates.push(await within(bob.tell("ann", "psst, ann"), "bob's private"));
      }
      const token = ann.welcome.resume;
      assert.ok(token, "ann's welcome has no resume token");

      const killed = await stopServerProcess(first, "SIGKILL");
      assert.equal(killed.status.signal, "SIGKILL");
      await within(Promise.all([ann.closed, bob.closed]), "the clients to notice the crash");

      second = await startServerProcess(db, freePort());
      const reader = await connectTo(second, "reader");
      clients.push(reader);
      // Joining shows the newest messages, as it would have before the crash.
      const onJoining = await within(readHistoryPage(reader), "the history shown on joining");
      assert.deepEqual(
        onJoining.messages.map(essence),
        byId(acknowledged.values()).slice(-HISTORY_LIMIT).map(essence),
      );
      const history = await within(readWholeHistory(reader, LOBBY), "the lobby's whole history");
      assertExactly(history, acknowledged.values(), "the lobby's history after the crash");

      // Resuming ann's session from the start replays every room message and both privates.
      const replay = await within(
        helloAndCollect(second, { type: "hello", name: "ann", resume: token, last: 0 }),
        "ann's session to resume",
      );
      const welcome = replay[0];
      assert.ok(welcome?.type === "welcome", `the first answer is ${JSON.stringify(welcome)}`);
      assert.equal(welcome.name, "ann");
      assert.equal(welcome.resumed, true);
      assert.deepEqual(replay.filter((f) => f.type === "notice"), []);
      assertExactly(
        replay.filter((f) => f.type === "message"),
        acknowledged.values(),
        "the room messages replayed to ann",
      );
      assert.deepEqual(
        byId(replay.filter((f) => f.type === "private")).map(privateEssence),
        byId(privates).map(privateEssence),
      );

      await reader.close();
      const stopped = await stopServerProcess(second, "SIGTERM");
      assert.equal(stopped.status.code, 0);
      assert.equal(stopped.stderr, "");
    } finally {
      for (const client of clients) await client.close();
      await reap(first);
      await reap(second);
    }
  });
});

Deno.test("kill -9 in the middle of a burst keeps every acknowledged message, none twice", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/chat.db`;
    const clients: ChatClient[] = [];
    let first: ServerProcess | undefined;
    let second: ServerProcess | undefined;
    try {
      first = await startServerProcess(db, freePort(), ["--rate", "0"]);
      const ann = await connectTo(first, "ann");
      clients.push(ann);
      const bob = await connectTo(first, "bob");
      clients.push(bob);

      // Fire every message at once, and kill the server as soon as a few are acknowledged.
      const burst = 800;
      const killAfter = 50;
      const padding = "x".repeat(400);
      const sent = new Map<string, string[]>([["ann", []], ["bob", []]]);
      const acknowledged = new Map<number, MessageFrame>();
      const enough = Promise.withResolvers<void>();
      const outcomes: Promise<void>[] = [];
      for (let i = 0; i < burst; i++) {
        const speaker = i % 2 === 0 ? ann : bob;
        const text = `burst ${i} from ${speaker.name} ${padding}`;
        sent.get(speaker.name)!.push(text);
        outcomes.push(
          speaker.say(text).then(
            (ack) => {
              assert.ok(!acknowledged.has(ack.id), `id ${ack.id} was acknowledged twice`);
              acknowledged.set(ack.id, ack);
              if (acknowledged.size === killAfter) enough.resolve();
            },
            (error) => {
              assert.ok(error instanceof ChatError, String(error));
              assert.equal(error.code, "disconnected");
            },
          ),
        );
      }
      await within(enough.promise, `${killAfter} acknowledgements`);
      const killed = await stopServerProcess(first, "SIGKILL");
      assert.equal(killed.status.signal, "SIGKILL");
      await within(Promise.all(outcomes), "every message to be acknowledged or given up");
      assert.ok(
        acknowledged.size < burst,
        "every message was acknowledged before the kill: the test proved nothing",
      );

      second = await startServerProcess(db, freePort());
      const reader = await connectTo(second, "reader");
      clients.push(reader);
      await within(readHistoryPage(reader), "the history shown on joining");
      const history = await within(readWholeHistory(reader, LOBBY), "the lobby's whole history");
      assertNoneTwice(history, "the lobby's history after the crash");
      const stored = new Map(history.map((m) => [m.id, m]));
      for (const ack of acknowledged.values()) {
        const kept = stored.get(ack.id);
        assert.ok(kept, `the acknowledged message ${ack.id} is missing`);
        assert.deepEqual(essence(kept), essence(ack));
      }
      // Each sender's messages were stored in order, so what survived is a prefix of each's.
      for (const [name, texts] of sent) {
        const kept = history.filter((m) => m.from === name).map((m) => m.text);
        assert.deepEqual(kept, texts.slice(0, kept.length), `${name}'s stored messages`);
      }

      await reader.close();
      const stopped = await stopServerProcess(second, "SIGTERM");
      assert.equal(stopped.status.code, 0);
      assert.equal(stopped.stderr, "");
    } finally {
      for (const client of clients) await client.close();
      await reap(first);
      await reap(second);
    }
  });
});

// ==== Sessions survive a restart ====

for (const signal of ["SIGTERM", "SIGKILL"] as const) {
  Deno.test(`a client reconnects by itself after the server restarts (${signal}) and resumes its session`, async () => {
    await withTempDir(async (dir) => {
      const db = `${dir}/chat.db`;
      const port = freePort();
      const clients: ChatClient[] = [];
      let first: ServerProcess | undefined;
      let second: ServerProcess | undefined;
      try {
        first = await startServerProcess(db, port);
        const reconnecting = { reconnect: true, retryMinMs: 50, retryMaxMs: 200 };
        const ann = await connectTo(first, "ann", reconnecting);
        clients.push(ann);
        const bob = await connectTo(first, "bob", reconnecting);
        clients.push(bob);
        ann.send({ type: "join", room: "#dev" });
        await within(until(ann, "room", (f) => f.room === "#dev"), "ann to be in #dev");
        const hello = await within(bob.say("hello before the restart"), "bob's first message");
        await within(until(ann, "message", (f) => f.id === hello.id), "ann to see it");

        const exit = await stopServerProcess(first, signal);
        if (signal === "SIGTERM") assert.equal(exit.status.code, 0);
        else assert.equal(exit.status.signal, "SIGKILL");
        await within(until(ann, "reconnecting"), "ann's client to notice");
        await within(until(bob, "reconnecting"), "bob's client to notice");
        assert.equal(ann.connected, false);
        // Said while the server is down: kept, and sent once the client is back.
        const whileDown = ann.say("said while the server was down", { room: LOBBY });
        assert.equal(ann.unsent, 1);

        second = await startServerProcess(db, port);
        const annBack = await within(until(ann, "reconnected"), "ann's client to reconnect");
        assert.equal(annBack.resumed, true);
        assert.equal(annBack.welcome.name, "ann");
        assert.equal(annBack.welcome.room, "#dev");
        const rooms: FrameOf<"room">[] = [];
        while (rooms.at(-1)?.room !== "#dev") {
          rooms.push(await within(until(ann, "room"), "ann's rooms after resuming"));
        }
        assert.deepEqual(rooms.map((r) => r.room), [LOBBY, "#dev"]);
        assert.ok(rooms.every((r) => r.users.includes("ann")), JSON.stringify(rooms));
        const bobBack = await within(until(bob, "reconnected"), "bob's client to reconnect");
        assert.equal(bobBack.resumed, true);
        assert.equal(bobBack.welcome.name, "bob");

        const queued = await within(whileDown, "the acknowledgement of ann's queued message");
        assert.equal(queued.from, "ann");
        assert.equal(queued.room, LOBBY);
        assert.ok(queued.id > hello.id, `id ${queued.id} after ${hello.id}`);
        assert.equal(ann.unsent, 0);
        assert.equal(ann.name, "ann");
        assert.equal(bob.name, "bob");
        // Bob sees it once: everything up to a later message from ann is counted.
        const after = await within(ann.say("after", { room: LOBBY }), "ann's next message");
        const seen: MessageFrame[] = [];
        await within(
          until(bob, "message", (frame) => {
            if (frame.text === queued.text) seen.push(frame);
            return frame.id === after.id;
          }),
          "bob to see ann's messages",
        );
        assert.deepEqual(seen.map(essence), [essence(queued)]);
        const reply = await within(bob.say("welcome back"), "bob's message after the restart");
        await within(until(ann, "message", (f) => f.id === reply.id), "ann to see bob's reply");

        for (const client of clients) await client.close();
        const stopped = await stopServerProcess(second, "SIGTERM");
        assert.equal(stopped.status.code, 0);
        assert.equal(stopped.stderr, "");
      } finally {
        for (const client of clients) await client.close();
        await reap(first);
        await reap(second);
      }
    });
  });
}

Deno.test("messages cut off by kill -9 are sent again after reconnecting and kept exactly once", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/chat.db`;
    const port = freePort();
    const clients: ChatClient[] = [];
    let first: ServerProcess | undefined;
    let second: ServerProcess | undefined;
    try {
      first = await startServerProcess(db, port, ["--rate", "0"]);
      const reconnecting = { reconnect: true, retryMinMs: 50, retryMaxMs: 200 };
      const ann = await connectTo(first, "ann", reconnecting);
      clients.push(ann);
      const bob = await connectTo(first, "bob", reconnecting);
      clients.push(bob);

      const burst = 800;
      const killAfter = 50;
      const padding = "x".repeat(400);
      const acknowledged = new Map<number, MessageFrame>();
      const enough = Promise.withResolvers<void>();
      const outcomes: Promise<void>[] = [];
      for (let i = 0; i < burst; i++) {
        const speaker = i % 2 === 0 ? ann : bob;
        outcomes.push(
          speaker.say(`burst ${i} from ${speaker.name} ${padding}`).then((ack) => {
            assert.ok(!acknowledged.has(ack.id), `id ${ack.id} was acknowledged twice`);
            acknowledged.set(ack.id, ack);
            if (acknowledged.size === killAfter) enough.resolve();
          }),
        );
      }
      await within(enough.promise, `${killAfter} acknowledgements`);
      await stopServerProcess(first, "SIGKILL");
      const unacknowledged = burst - acknowledged.size;
      assert.ok(unacknowledged > 0, "every message was acknowledged before the kill");

      second = await startServerProcess(db, port, ["--rate", "0"]);
      await within(Promise.all(outcomes), `the other ${unacknowledged} acknowledgements`);
      assert.equal(acknowledged.size, burst);
      const fence = await within(ann.say("fence"), "ann's last message");

      const reader = await connectTo(second, "reader");
      clients.push(reader);
      await within(readHistoryPage(reader), "the history shown on joining");
      const history = await within(readWholeHistory(reader, LOBBY), "the lobby's whole history");
      assertExactly(
        history.filter((m) => m.id !== fence.id),
        acknowledged.values(),
        "the lobby's history",
      );
      // Each client received every message once: live, or replayed when it resumed.
      for (const client of [ann, bob]) {
        const seen: MessageFrame[] = [];
        await within(
          until(client, "message", (frame) => {
            if (!frame.history && frame.id !== fence.id) seen.push(frame);
            return frame.id === fence.id;
          }),
          `${client.name} to see every message`,
        );
        assertExactly(seen, acknowledged.values(), `the messages ${client.name} received`);
      }

      for (const client of clients) await client.close();
      const stopped = await stopServerProcess(second, "SIGTERM");
      assert.equal(stopped.status.code, 0);
      assert.equal(stopped.stderr, "");
    } finally {
      for (const client of clients) await client.close();
      await reap(first);
      await reap(second);
    }
  });
});
