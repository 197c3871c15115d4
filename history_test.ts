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

import type { ChatClient } from "./client.ts";

import { type MessageFrame, type ServerFrame } from "./protocol.ts";
import { connect, type FrameOf, framesUntil, RawClient, until, withServer } from "./test_util.ts";

/** Reads a history page: its header, then its messages. */
async function historyPage(
  client: ChatClient | RawClient,
): Promise<{ header: FrameOf<"history">; messages: MessageFrame[] }> {
  const header = await until(client, "history");
  const messages: MessageFrame[] = [];
  while (messages.length < header.count) messages.push(await until(client, "message"));
  return { header, messages };
}

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
  }, { rate: 0 }); // three pages at once are over the default allowance (a page costs 5)
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
      const stored = server.hub.member("ann") && (await historyOf(server.addr.port));
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
