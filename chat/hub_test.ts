/**
 * Tests for the hub with no sockets: fake peers record what it sends, so what the chat does can
 * be checked frame by frame, including when stored messages are delivered.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  decodeServerFrame,
  type ErrorFrame,
  type MessageFrame,
  type ServerFrame,
  VERSION,
} from "../protocol.ts";
import { JSON_ENCODER, type Member, type Outgoing, type Peer } from "./directory.ts";
import { Hub } from "./hub.ts";
import { ChatStore } from "./store.ts";
import { withRefusingDatabase } from "../test_util.ts";

// ==== Helpers ====

const decoder = new TextDecoder();

/** A peer for the chat hub that keeps what it is sent and how it was ended. */
class FakePeer implements Peer {
  readonly address = "192.0.2.1";
  readonly sent: Outgoing[] = [];
  ended: { error: ErrorFrame; reason: string } | undefined;
  send(out: Outgoing): void {
    this.sent.push(out);
  }
  end(error: ErrorFrame, reason: string): void {
    this.ended = { error, reason };
  }
  frames(): ServerFrame[] {
    return this.sent.map((out) => {
      const decoded = decodeServerFrame(decoder.decode(out.bytes(JSON_ENCODER)).trimEnd());
      assert.ok(decoded.ok, "the hub sent an invalid frame");
      return decoded.value;
    });
  }
  last(): ServerFrame | undefined {
    return this.frames().at(-1);
  }
}

function joinHub(hub: Hub, name: string): { peer: FakePeer; member: Member } {
  const peer = new FakePeer();
  const result = hub.join(peer, { type: "hello", name });
  assert.ok(result.ok, `join ${name}`);
  return { peer, member: result.value };
}

// ==== Chat hub (no sockets) ====

Deno.test("Hub welcomes a member to the lobby and tells the others it joined", () => {
  const hub = new Hub({ serverName: "test", now: () => 1000 });
  const ann = joinHub(hub, "ann");
  const bob = joinHub(hub, "bob");
  const [welcome, ...rest] = bob.peer.frames();
  assert.ok(welcome?.type === "welcome" && /^[\w-]{22}$/.test(welcome.resume ?? ""), "a token");
  assert.deepEqual({ ...welcome, resume: "token" }, {
    type: "welcome",
    name: "bob",
    users: ["ann", "bob"],
    count: 2,
    server: { name: "test", version: VERSION },
    room: "#lobby",
    resume: "token",
    last: 0,
  });
  assert.deepEqual(rest, []);
  assert.deepEqual(ann.peer.last(), { type: "joined", name: "bob", ts: 1000, room: "#lobby" });
  assert.equal(hub.size, 2);
});

Deno.test("Hub sends the message of the day in the welcome", () => {
  const hub = new Hub({ motd: "Be kind" });
  const ann = joinHub(hub, "ann");
  const welcome = ann.peer.last();
  assert.ok(welcome?.type === "welcome");
  assert.equal(welcome.motd, "Be kind");
});

Deno.test("Hub refuses a taken name in any case and a name breaking the rules", () => {
  const hub = new Hub();
  joinHub(hub, "Ann");
  const peer = new FakePeer();
  const taken = hub.join(peer, { type: "hello", name: "aNN" });
  assert.ok(!taken.ok && taken.error.code === "name_taken");
  const lookalike = hub.join(peer, { type: "hello", name: "Ａｎｎ" });
  assert.ok(!lookalike.ok && lookalike.error.code === "name_taken");
  for (const name of ["", "a b", "x".repeat(25), "server", "<script>"]) {
    const result = hub.join(peer, { type: "hello", name });
    assert.ok(!result.ok && result.error.code === "bad_name", name);
  }
  assert.equal(peer.sent.length, 0);
  assert.equal(hub.size, 1);
});

Deno.test("Hub encodes a message once and sends the same Outgoing to everyone", () => {
  let now = 5;
  const hub = new Hub({ now: () => now++ });
  const ann = joinHub(hub, "ann");
  const bob = joinHub(hub, "bob");
  const cy = joinHub(hub, "cy");
  const sentBefore = [ann, bob, cy].map((m) => m.peer.sent.length);
  assert.equal(
    hub.receive(ann.member, { type: "say", text: "hi\u0007 all", ref: "r1" }),
    undefined,
  );
  const copies = [ann, bob, cy].map((m, i) => m.peer.sent.slice(sentBefore[i]));
  for (const sent of copies) assert.equal(sent.length, 1);
  const out = copies[0]![0]!;
  assert.ok(copies.every(([each]) => each === out), "one Outgoing for all");
  assert.equal(
    out.bytes(JSON_ENCODER),
    out.bytes(JSON_ENCODER),
    "the JSON is encoded once and kept",
  );
  assert.deepEqual(bob.peer.last(), {
    type: "message",
    id: 1,
    ts: 8,
    from: "ann",
    text: "hi all",
    room: "#lobby",
    ref: "r1",
  });
});

Deno.test("Hub refuses empty or over-long text, echoing the ref, and sends nothing", () => {
  const hub = new Hub();
  const ann = joinHub(hub, "ann");
  const bob = joinHub(hub, "bob");
  const before = bob.peer.sent.length;
  for (const text of ["", "   ", "\u0000\u0001", "x".repeat(2001)]) {
    const error = hub.receive(ann.member, { type: "say", text, ref: "r9" });
    assert.equal(error?.code, "bad_text");
    assert.equal(error?.ref, "r9");
  }
  const badRef = hub.receive(ann.member, { type: "say", text: "hi", ref: "has space" });
  assert.equal(badRef?.code, "bad_frame");
  assert.equal(bob.peer.sent.length, before);
});

Deno.test("Hub answers who, ping, and a second hello", () => {
  const hub = new Hub();
  const ann = joinHub(hub, "ann");
  joinHub(hub, "bob");
  hub.receive(ann.member, { type: "who" });
  assert.deepEqual(ann.peer.last(), { type: "users", users: ["ann", "bob"], count: 2 });
  hub.receive(ann.member, { type: "ping" });
  assert.deepEqual(ann.peer.last(), { type: "pong" });
  assert.equal(hub.receive(ann.member, { type: "hello", name: "x" })?.code, "bad_frame");
});

Deno.test("Hub announces a removal once per room, with its reason, and frees the name", () => {
  const hub = new Hub({ now: () => 7 });
  const ann = joinHub(hub, "ann");
  const bob = joinHub(hub, "bob");
  hub.remove(bob.member, "quit");
  hub.remove(bob.member, "quit");
  assert.deepEqual(ann.peer.frames().filter((f) => f.type === "left"), [
    { type: "left", name: "bob", ts: 7, reason: "quit", room: "#lobby" },
  ]);
  joinHub(hub, "BOB");
  hub.quiet();
  hub.remove(ann.member, "server shutting down");
  assert.equal(ann.peer.frames().filter((f) => f.type === "left").length, 1);
  assert.equal(ann.peer.ended, undefined, "removing is not ending the connection");
});

Deno.test("Hub announces arrivals and leaves only in rooms up to the announce limit", () => {
  const hub = new Hub({ announceLimit: 2 });
  const ann = joinHub(hub, "ann");
  joinHub(hub, "bob");
  assert.equal(ann.peer.last()?.type, "joined", "a room of two hears of its second member");
  const before = ann.peer.sent.length;
  const cy = joinHub(hub, "cy");
  hub.receive(cy.member, { type: "join", room: "#dev" });
  hub.receive(cy.member, { type: "leave", room: "#lobby" });
  hub.remove(cy.member, "quit");
  assert.equal(ann.peer.sent.length, before, "a room of three hears nothing of cy");
  assert.deepEqual(
    cy.peer.frames().filter((f) => f.type === "left").map((f) => f.type === "left" && f.room),
    ["#lobby"],
    "a leaver still gets its own confirmation",
  );
});

Deno.test("Hub lists 50 names on arrival and 500 for who, but counts everyone", () => {
  const hub = new Hub();
  for (let i = 0; i < 501; i++) joinHub(hub, `user${i}`);
  const { peer, member } = joinHub(hub, "last");
  const welcome = peer.frames()[0];
  assert.ok(welcome?.type === "welcome");
  assert.equal(welcome.users.length, 50);
  assert.equal(welcome.count, 502);
  hub.receive(member, { type: "who" });
  const users = peer.last();
  assert.ok(users?.type === "users");
  assert.equal(users.users.length, 500);
  assert.equal(users.count, 502);
});

// ==== Acknowledged once committed ====

Deno.test("Hub delivers a stored message only once its transaction is committed", async () => {
  const store = ChatStore.open(":memory:");
  try {
    const hub = new Hub({ store });
    const ann = new FakePeer();
    const bob = new FakePeer();
    const joined = hub.join(ann, { type: "hello", name: "ann" });
    hub.join(bob, { type: "hello", name: "bob" });
    assert.ok(joined.ok);
    const before = [ann.frames().length, bob.frames().length];
    hub.receive(joined.value, { type: "say", text: "one", ref: "r1" });
    hub.receive(joined.value, { type: "say", text: "two", ref: "r2" });
    assert.deepEqual(
      [ann.frames().length, bob.frames().length],
      before,
      "nothing before the commit",
    );
    // The commit runs once the event loop has polled again: a timer set now fires after it.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const texts = (peer: FakePeer) =>
      peer.frames().filter((f): f is MessageFrame => f.type === "message").map((f) => f.text);
    assert.deepEqual(texts(ann), ["one", "two"]);
    assert.deepEqual(texts(bob), ["one", "two"]);
    assert.deepEqual(store.history("#lobby", Number.MAX_SAFE_INTEGER, 10).map((m) => m.text), [
      "one",
      "two",
    ]);
    hub.close();
  } finally {
    store.close();
  }
});

Deno.test("Hub commits at once when a transaction gathers 16 KiB of text", () => {
  const store = ChatStore.open(":memory:");
  try {
    const hub = new Hub({ store });
    const ann = new FakePeer();
    const joined = hub.join(ann, { type: "hello", name: "ann" });
    assert.ok(joined.ok);
    const messages = () => ann.frames().filter((f) => f.type === "message").length;
    for (let i = 0; i < 8; i++) {
      hub.receive(joined.value, { type: "say", text: "x".repeat(2000) });
    }
    assert.equal(messages(), 0, "16,000 characters wait for the end of the turn");
    hub.receive(joined.value, { type: "say", text: "x".repeat(400) });
    assert.equal(messages(), 9, "16,400 go out at once, all nine");
    hub.close();
  } finally {
    store.close();
  }
});

Deno.test("Hub refuses a message the store cannot take with storage_failed and logs why", async () => {
  await withRefusingDatabase("database or disk is full", (path) => {
    const store = ChatStore.open(path);
    const log: string[] = [];
    const hub = new Hub({ store, log: (line) => log.push(line) });
    try {
      const ann = joinHub(hub, "ann");
      const bob = joinHub(hub, "bob");
      hub.receive(ann.member, { type: "say", text: "hello", ref: "r1" });
      const refusal = ann.peer.last();
      assert.equal(refusal?.type, "error");
      assert.equal(refusal?.type === "error" && refusal.code, "storage_failed");
      assert.equal(refusal?.type === "error" && refusal.ref, "r1");
      assert.ok(!bob.peer.frames().some((f) => f.type === "message"), "nobody got it");
      assert.ok(
        log.some((line) =>
          line === "! could not store a message from ann: database or disk is full"
        ),
        log.join("\n"),
      );
    } finally {
      hub.close();
      store.close();
    }
  });
});
