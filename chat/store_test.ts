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
import { ChatStore, StoreError } from "./store.ts";

// ==== ChatStore ====

Deno.test("ChatStore creates the schema in a new file and records its version", async () => {
  await withTempDir((dir) => {
    const store = ChatStore.open(`${dir}/chat.db`);
    store.close();
    const db = new DatabaseSync(`${dir}/chat.db`);
    try {
      const { user_version } = db.prepare("PRAGMA user_version").get() as { user_version: number };
      assert.equal(user_version, 2);
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()
        .map((row) => (row as { name: string }).name).sort();
      assert.deepEqual(tables, [
        "bans",
        "messages",
        "names",
        "operators",
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
