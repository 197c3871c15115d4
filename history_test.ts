/**
 * Tests for what the server keeps: {@linkcode ChatStore} (schema, transactions, lookups), the
 * rule that a message is acknowledged only once committed, history on joining and `/history`
 * paging, and the deduplication of a message sent twice under one `cid`.
 *
 * Run with `deno test --sanitize-ops --sanitize-resources --allow-net --allow-read --allow-write
 * --allow-run --allow-env --allow-sys history_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { ChatClient } from "./client.ts";
import { decodeServerFrame, type MessageFrame, type ServerFrame } from "./protocol.ts";
import { ChatCore, ChatStore, type Outgoing, type Peer, StoreError } from "./server.ts";
import { connect, type FrameOf, framesUntil, RawClient, until, withServer } from "./test_util.ts";

const decoder = new TextDecoder();

/** A peer that keeps the frames it is sent, decoded. */
class ListPeer implements Peer {
  readonly address = "192.0.2.7";
  readonly frames: ServerFrame[] = [];
  send(out: Outgoing): void {
    const decoded = decodeServerFrame(decoder.decode(out.json).trimEnd());
    assert.ok(decoded.ok);
    this.frames.push(decoded.frame);
  }
  end(): void {}
}

/** A temporary folder for database files, removed after `fn`. */
async function withTempDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "chat-history-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Reads a history page: its header, then its messages. */
async function historyPage(
  client: ChatClient | RawClient,
): Promise<{ header: FrameOf<"history">; messages: MessageFrame[] }> {
  const header = await until(client, "history");
  const messages: MessageFrame[] = [];
  while (messages.length < header.count) messages.push(await until(client, "message"));
  return { header, messages };
}

// ==== ChatStore ====

Deno.test("ChatStore creates the schema in a new file and records its version", async () => {
  await withTempDir((dir) => {
    const store = ChatStore.open(`${dir}/chat.db`);
    store.close();
    const db = new DatabaseSync(`${dir}/chat.db`);
    try {
      const { user_version } = db.prepare("PRAGMA user_version").get() as { user_version: number };
      assert.equal(user_version, 1);
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()
        .map((row) => (row as { name: string }).name).sort();
      assert.deepEqual(tables, ["messages", "sessions"]);
      const mode = db.prepare("PRAGMA journal_mode").get() as { journal_mode: string };
      assert.equal(mode.journal_mode, "wal");
    } finally {
      db.close();
    }
  });
});

Deno.test("ChatStore keeps messages across reopening and continues their ids", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/chat.db`;
    const first = ChatStore.open(path);
    const done: boolean[] = [];
    for (const id of [1, 2, 3]) {
      const frame: MessageFrame = {
        type: "message",
        id,
        ts: id,
        from: "ann",
        text: `m${id}`,
        room: "#dev",
      };
      first.addMessage(frame, { sender: "ann" }, (ok) => done.push(ok));
    }
    assert.deepEqual(done, [], "nothing is done before the commit");
    first.commit();
    assert.deepEqual(done, [true, true, true]);
    first.close();
    const again = ChatStore.open(path);
    try {
      assert.equal(again.lastId(), 3);
      assert.deepEqual(again.history("#DEV", 3, 10).map((m) => m.text), ["m1", "m2"]);
    } finally {
      again.close();
    }
  });
});

Deno.test("ChatStore refuses a database written by a newer server", async () => {
  await withTempDir((dir) => {
    const db = new DatabaseSync(`${dir}/new.db`);
    db.exec("PRAGMA user_version = 99");
    db.close();
    assert.throws(() => ChatStore.open(`${dir}/new.db`), StoreError);
  });
});

Deno.test("ChatStore refuses a file that is not a database, saying so", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/notes.txt`, "x".repeat(4096));
    assert.throws(() => ChatStore.open(`${dir}/notes.txt`), /not a chat database/);
  });
});

Deno.test("ChatStore refuses a database another server holds", async () => {
  await withTempDir((dir) => {
    const first = ChatStore.open(`${dir}/chat.db`);
    try {
      assert.throws(() => ChatStore.open(`${dir}/chat.db`), /another server is using it/);
    } finally {
      first.close();
    }
  });
});

// ==== Acknowledged once committed ====

Deno.test("ChatCore delivers a stored message only once its transaction is committed", async () => {
  const store = ChatStore.open(":memory:");
  try {
    const core = new ChatCore({ store });
    const ann = new ListPeer();
    const bob = new ListPeer();
    const joined = core.join(ann, { type: "hello", name: "ann" });
    core.join(bob, { type: "hello", name: "bob" });
    assert.ok(joined.ok);
    const before = [ann.frames.length, bob.frames.length];
    core.receive(joined.member, { type: "say", text: "one", ref: "r1" });
    core.receive(joined.member, { type: "say", text: "two", ref: "r2" });
    assert.deepEqual([ann.frames.length, bob.frames.length], before, "nothing before the commit");
    // The commit runs once the event loop has polled again: a timer set now fires after it.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const texts = (peer: ListPeer) =>
      peer.frames.filter((f): f is MessageFrame => f.type === "message").map((f) => f.text);
    assert.deepEqual(texts(ann), ["one", "two"]);
    assert.deepEqual(texts(bob), ["one", "two"]);
    assert.deepEqual(store.history("#lobby", Number.MAX_SAFE_INTEGER, 10).map((m) => m.text), [
      "one",
      "two",
    ]);
    core.close();
  } finally {
    store.close();
  }
});

Deno.test("ChatCore commits at once when a transaction gathers 16 KiB of text", () => {
  const store = ChatStore.open(":memory:");
  try {
    const core = new ChatCore({ store });
    const ann = new ListPeer();
    const joined = core.join(ann, { type: "hello", name: "ann" });
    assert.ok(joined.ok);
    const messages = () => ann.frames.filter((f) => f.type === "message").length;
    for (let i = 0; i < 8; i++) {
      core.receive(joined.member, { type: "say", text: "x".repeat(2000) });
    }
    assert.equal(messages(), 0, "16,000 characters wait for the end of the turn");
    core.receive(joined.member, { type: "say", text: "x".repeat(400) });
    assert.equal(messages(), 9, "16,400 go out at once, all nine");
    core.close();
  } finally {
    store.close();
  }
});

// ==== History ====

Deno.test("joining a room shows its last messages, marked as history, oldest first", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    let bob: ChatClient | undefined;
    try {
      ann.send({ type: "join", room: "#dev" });
      await until(ann, "room");
      for (let i = 1; i <= 5; i++) await ann.say(`m${i}`, { room: "#dev" });
      bob = await connect(server, "bob");
      bob.send({ type: "join", room: "#dev" });
      await until(bob, "room");
      const { header, messages } = await historyPage(bob);
      assert.deepEqual(header, { type: "history", room: "#dev", count: 3, more: true });
      assert.deepEqual(messages.map((m) => [m.text, m.history, m.room]), [
        ["m3", true, "#dev"],
        ["m4", true, "#dev"],
        ["m5", true, "#dev"],
      ]);
    } finally {
      await bob?.close();
      await ann.close();
    }
  }, { historyLimit: 3, rate: 0 });
});

Deno.test("the lobby's history follows the welcome; a room never spoken in shows none", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    let bob: ChatClient | undefined;
    try {
      await ann.say("before bob");
      bob = await connect(server, "bob");
      const { header, messages } = await historyPage(bob);
      assert.deepEqual(header, { type: "history", room: "#lobby", count: 1, more: false });
      assert.equal(messages[0]!.text, "before bob");
      bob.send({ type: "join", room: "#quiet" });
      await until(bob, "room");
      bob.send({ type: "ping" });
      const before = await framesUntil(bob, (f) => f.type === "pong");
      assert.deepEqual(before.map((f) => f.type), ["pong"], "no history frame for an empty room");
    } finally {
      await bob?.close();
      await ann.close();
    }
  });
});

Deno.test("history requests page back until there is nothing more", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      const sent: number[] = [];
      for (let i = 1; i <= 7; i++) sent.push((await ann.say(`m${i}`)).id);
      ann.send({ type: "history", limit: 3 });
      const first = await historyPage(ann);
      assert.deepEqual(first.messages.map((m) => m.text), ["m5", "m6", "m7"]);
      assert.equal(first.header.more, true);
      ann.send({ type: "history", room: "#lobby", limit: 3, before: first.messages[0]!.id });
      const second = await historyPage(ann);
      assert.deepEqual(second.messages.map((m) => m.text), ["m2", "m3", "m4"]);
      ann.send({ type: "history", limit: 3, before: second.messages[0]!.id });
      const third = await historyPage(ann);
      assert.deepEqual(third.messages.map((m) => m.text), ["m1"]);
      assert.equal(third.header.more, false);
      ann.send({ type: "history", limit: 3, before: third.messages[0]!.id });
      assert.deepEqual((await historyPage(ann)).header, {
        type: "history",
        room: "#lobby",
        count: 0,
        more: false,
      });
    } finally {
      await ann.close();
    }
  }, { historyLimit: 0, rate: 0 });
});

Deno.test("history of a room one is not in, or with a bad limit, is refused", async () => {
  await withServer(async (server) => {
    const raw = await RawClient.open(server);
    try {
      await raw.write({ type: "hello", name: "ann" });
      await until(raw, "welcome");
      await raw.write({ type: "history", room: "#elsewhere" });
      assert.equal((await until(raw, "error")).code, "not_in_room");
      await raw.write({ type: "history", limit: 0 });
      assert.equal((await until(raw, "error")).code, "bad_frame");
      await raw.write({ type: "history", limit: 10_000 });
      assert.equal((await until(raw, "error")).code, "bad_frame");
    } finally {
      raw.close();
    }
  });
});

Deno.test("a page of history never exceeds the replay budget, and says there is more", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      const text = "x".repeat(1900);
      for (let i = 0; i < 40; i++) await ann.say(text);
      ann.send({ type: "history", limit: 200 });
      const { header, messages } = await historyPage(ann);
      // maxQueueBytes / 4 = 16 KiB of frames: about 8 messages of 1.9 KB.
      assert.ok(header.count > 0 && header.count < 40, `count ${header.count}`);
      assert.equal(header.more, true);
      assert.equal(messages.length, header.count);
    } finally {
      await ann.close();
    }
  }, { maxQueueBytes: 64 * 1024, rate: 0, historyLimit: 0 });
});

// ==== Deduplication ====

Deno.test("a say repeated with the same cid is stored once; only its sender hears again", async () => {
  await withServer(async (server) => {
    const raw = await RawClient.open(server);
    const bob = await connect(server, "bob");
    try {
      await raw.write({ type: "hello", name: "ann" });
      await until(raw, "welcome");
      await raw.write({ type: "say", text: "once", ref: "a", cid: "x.1" });
      const first = await until(raw, "message", (m) => m.ref === "a");
      await raw.write({ type: "say", text: "once", ref: "b", cid: "x.1" });
      const again = await until(raw, "message", (m) => m.ref === "b");
      assert.equal(again.id, first.id, "the stored copy, with the new ref");
      await raw.write({ type: "msg", to: "bob", text: "psst", ref: "c", cid: "x.2" });
      const tell = await until(raw, "private", (m) => m.ref === "c");
      await raw.write({ type: "msg", to: "bob", text: "psst", ref: "d", cid: "x.2" });
      assert.equal((await until(raw, "private", (m) => m.ref === "d")).id, tell.id);
      await bob.say("after");
      const seen: ServerFrame[] = [];
      for await (const event of bob) {
        if (event.type === "message" || event.type === "private") seen.push(event);
        if (event.type === "message" && event.text === "after") break;
      }
      assert.deepEqual(
        seen.map((f) => f.type === "message" || f.type === "private" ? f.text : ""),
        [
          "once",
          "psst",
          "after",
        ],
      );
      const stored = server.core.member("ann") && (await historyOf(server.addr.port));
      assert.deepEqual(stored, ["once", "after"]);
    } finally {
      raw.close();
      await bob.close();
    }
  });
});

/** The texts of the lobby's history, as a newcomer sees them. */
async function historyOf(port: number): Promise<string[]> {
  const raw = await RawClient.open(port);
  try {
    await raw.write({ type: "hello", name: "reader" });
    await until(raw, "welcome");
    return (await historyPage(raw)).messages.map((m) => m.text);
  } finally {
    raw.close();
  }
}
