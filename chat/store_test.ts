/**
 * Tests for the SQLite store: its schema and migrations, what survives reopening, and the files
 * it refuses.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { MessageFrame } from "../protocol.ts";
import { withRefusingDatabase, withTempDir } from "../test_util.ts";
import { ChatStore, MAX_STORED_TOPICS, type StoredSession, StoreError } from "./store.ts";

// ==== ChatStore ====

Deno.test("ChatStore creates the schema in a new file and records its version", async () => {
  await withTempDir((dir) => {
    const store = ChatStore.open(`${dir}/chat.db`);
    store.close();
    const db = new DatabaseSync(`${dir}/chat.db`);
    try {
      const { user_version } = db.prepare("PRAGMA user_version").get() as { user_version: number };
      assert.equal(user_version, 3);
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()
        .map((row) => (row as { name: string }).name).sort();
      assert.deepEqual(tables, [
        "bans",
        "messages",
        "names",
        "operators",
        "room_rules",
        "sessions",
        "settings",
        "topics",
      ]);
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

Deno.test("ChatStore.addMessage() says why the database refused a message", async () => {
  await withRefusingDatabase("database or disk is full", (path) => {
    const store = ChatStore.open(path);
    try {
      const frame: MessageFrame = { type: "message", id: 1, ts: 1, from: "ann", text: "hi" };
      const result = store.addMessage(frame, { sender: "ann" }, () => {});
      assert.deepEqual(result, { kind: "failed", cause: "database or disk is full" });
    } finally {
      store.close();
    }
  });
});

// ==== Bounds ====

/** A keyless session, for the store. */
function session(n: number, since: number): Omit<StoredSession, "leftAt"> {
  return {
    tokenHash: `h${n}`,
    person: `s:p${n}`,
    publicKey: null,
    fingerprint: null,
    name: `p${n}`,
    rooms: ["#lobby"],
    since,
  };
}

Deno.test("ChatStore.pruneSessions() deletes expired sessions and the oldest beyond what is kept", () => {
  const store = ChatStore.open(":memory:");
  try {
    for (let n = 0; n < 10; n++) {
      store.saveSession(session(n, n));
      if (n < 8) store.sessionLeft(`h${n}`, n * 100);
    }
    // Let go before 200: h0 and h1. Of the let-go rest (h2-h7), the newest 4 stay.
    assert.equal(store.pruneSessions(200, 4), 2 + 2);
    assert.equal(store.sessionCount(), 4 + 2);
    assert.equal(store.session("h3"), undefined);
    assert.ok(store.session("h4") && store.session("h9"));
  } finally {
    store.close();
  }
});

Deno.test("ChatStore.presentSessions() gives the newest present sessions; the rest count as let go", () => {
  const store = ChatStore.open(":memory:");
  try {
    for (let n = 0; n < 10; n++) store.saveSession(session(n, 1000 + n));
    const present = store.presentSessions(0, 3, 5000);
    assert.deepEqual(present.map((s) => s.tokenHash).sort(), ["h7", "h8", "h9"]);
    assert.equal(store.session("h0")?.leftAt, 5000, "still resumable, no longer held");
  } finally {
    store.close();
  }
});

Deno.test("ChatStore.missed() reads no more than the byte budget from each room", () => {
  const store = ChatStore.open(":memory:");
  try {
    for (let id = 1; id <= 300; id++) {
      const frame: MessageFrame = {
        type: "message",
        id,
        ts: id,
        from: "ann",
        text: "x".repeat(1000),
        room: "#lobby",
      };
      store.addMessage(frame, { sender: "s:ann" }, () => {});
    }
    store.commit();
    const { frames, total } = store.missed(["#lobby"], "s:bob", 0, { limit: 500, bytes: 10_000 });
    // About 10 KB of 1 KB messages, the newest, oldest first.
    assert.ok(frames.length >= 9 && frames.length <= 11, `${frames.length} read`);
    assert.equal(frames.at(-1)?.id, 300);
    assert.equal(total, frames.length);
  } finally {
    store.close();
  }
});

Deno.test("ChatStore.pruneMessages() keeps the newest messages only", () => {
  const store = ChatStore.open(":memory:");
  try {
    for (let id = 1; id <= 50; id++) {
      const frame: MessageFrame = { type: "message", id, ts: id, from: "ann", text: `m${id}` };
      store.addMessage(frame, { sender: "s:ann" }, () => {});
    }
    store.commit();
    assert.equal(store.pruneMessages(20), 30);
    assert.equal(store.pruneMessages(20), 0);
    assert.deepEqual(store.history("#lobby", 1000, 100).map((m) => m.id)[0], 31);
  } finally {
    store.close();
  }
});

Deno.test("ChatStore hands over at most MAX_STORED_TOPICS topics, forgetting those set longest ago", () => {
  const store = ChatStore.open(":memory:");
  try {
    for (let n = 0; n <= MAX_STORED_TOPICS; n++) {
      store.saveTopic({ room: `#r${n}`, topic: "t", by: "ann" }, n);
    }
    store.commit();
    const rooms = store.topics().map((t) => t.room);
    assert.equal(rooms.length, MAX_STORED_TOPICS);
    assert.ok(!rooms.includes("#r0"));
  } finally {
    store.close();
  }
});
