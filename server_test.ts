/**
 * Tests for the chat server over real sockets: the network layer, rooms, private messages and
 * names against a real in-process server on 127.0.0.1; and `server.ts` run as a subprocess,
 * with its console reading standard input.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ChatClient } from "./client.ts";
import { type ClientFrame, type MessageFrame, VERSION } from "./protocol.ts";
import { bannerLines, startServer } from "./server.ts";
import { generateIdentity } from "./net/identity.ts";
import {
  assertChatWorks,
  connect,
  expectError,
  framesBeforePong,
  framesUntil,
  freePort,
  joinRoom,
  RawClient,
  StreamText,
  taskFlags,
  until,
  withChat,
  within,
  withServer,
} from "./test_util.ts";

// ==== Helpers ====

const encoder = new TextEncoder();

const decoder = new TextDecoder();

/** `server.ts`, for running it as a subprocess. */
const SERVER_PATH = new URL("./server.ts", import.meta.url).pathname;

let nextRef = 1;

/**
 * Sends a `say` (to `room` when given) and resolves with the server's copy of the message,
 * matched by its `ref`, so it works after a rename too. Fails if the server refuses it.
 */
async function sayIn(
  client: ChatClient,
  room: string | undefined,
  text: string,
  options: { action?: boolean } = {},
): Promise<MessageFrame> {
  const ref = `t${nextRef++}`;
  client.send({ type: "say", text, ref, ...(room === undefined ? {} : { room }), ...options });
  while (true) {
    const frame = await within(client.next(), `the server's copy of "${text}"`);
    if (frame === undefined) throw new Error(`Connection ended before "${text}" was sent`);
    if (frame.type === "error" && frame.ref === ref) {
      throw new Error(`"${text}" was refused: ${frame.code}: ${frame.message}`);
    }
    if (frame.type === "message" && frame.ref === ref) return frame;
  }
}

/** Leaves a room and waits for the server's confirmation (the leaver's own `left`). */
async function leaveRoom(client: ChatClient, room: string): Promise<void> {
  client.send({ type: "leave", room });
  await until(client, "left", (f) => f.name === client.name && f.room === room);
}

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
      const acks = await within(Promise.all(sends), "every acknowledgement");
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
      // Five mistakes are forgiven: the connection still works.
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

Deno.test("an error repeats at most 40 characters of a long field, never a long line", async () => {
  await withServer(async (server) => {
    const raw = await RawClient.open(server);
    try {
      await raw.write({ type: "hello", name: "n".repeat(100) });
      const badName = await expectError(raw, "bad_name");
      assert.equal(
        badName.message,
        `Invalid name "${"n".repeat(40)}...": use 1-24 letters, digits, _ or -`,
      );
      // Far too long is refused before anything else is done with it, and not repeated at all.
      await raw.write({ type: "hello", name: "n".repeat(65_000) });
      assert.equal(
        (await expectError(raw, "bad_name")).message,
        "Invalid name: longer than 24 characters; use 1-24 letters, digits, _ or -",
      );
      await raw.write({ type: "hello", name: "ann" });
      await until(raw, "welcome");
      const long = "#" + "b".repeat(65_000);
      const frames: ClientFrame[] = [
        { type: "say", text: "hi", room: long },
        { type: "leave", room: long },
        { type: "topic", room: long },
        { type: "history", room: long },
        { type: "msg", to: long, text: "hi" },
        { type: "whois", name: long },
        { type: "who", room: long },
        { type: "join", room: long },
      ];
      for (const frame of frames) {
        await raw.write(frame);
        const error = await until(raw, "error");
        assert.ok(error.message.length < 150, `${frame.type}: ${error.message.length}`);
        assert.doesNotMatch(error.message, /b{41}/, `${frame.type}: ${error.message}`);
      }
    } finally {
      raw.close();
    }
  }, { rate: 0 }); // eight requests at once, some costing more than one, are over the default rate
});

Deno.test("refused requests are mistakes, not bad frames: any number of them closes nothing", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      for (let i = 0; i < 12; i++) {
        ann.send({ type: "whois", name: `nobody${i}` });
        assert.equal((await until(ann, "error")).code, "no_such_user");
        ann.send({ type: "nick", name: "server" });
        assert.equal((await until(ann, "error")).code, "bad_name");
      }
      assert.ok(ann.connected);
      assert.equal((await ann.say("still here")).text, "still here");
    } finally {
      await ann.close();
    }
  }, { rate: 0 });
});

Deno.test("a sixth bad frame at once closes the connection with too_many_errors", async () => {
  await withServer(async (server) => {
    const raw = await RawClient.open(server);
    try {
      // A first line that is not JSON would make this a plain-text client: look like JSON.
      await raw.write("{nope\n".repeat(6));
      const codes = [];
      let frame;
      while ((frame = await within(raw.next(), "a frame")) !== undefined) {
        if (frame.type === "error") codes.push(frame.code);
      }
      assert.deepEqual(codes, [...Array(6).fill("bad_frame"), "too_many_errors"]);
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
        await within(Promise.all(Array.from({ length: 100 }, () => ann.say(text))), "100 acks");
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
  }, { maxQueueBytes: 64 * 1024, graceMs: 0, rate: 0 });
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
    const info = await within(ann.closed, "ann to be disconnected");
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

Deno.test("a bye with a message tells the others it quit with that message", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }) => {
    bob.send({ type: "bye", message: "gotta go" });
    assert.equal((await within(bob.closed, "bob to be disconnected")).by, "server");
    const left = await until(ann, "left", (f) => f.name === "bob");
    assert.equal(left.reason, "quit: gotta go");
    assert.equal(left.room, "#lobby");
  });
});

// ==== Rooms ====

Deno.test("join creates a room, answers with a room frame and tells the room's members", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }) => {
    assert.deepEqual(await joinRoom(ann, "#a"), {
      type: "room",
      room: "#a",
      topic: "",
      users: ["ann"],
      ids: [ann.welcome.id],
      count: 1,
    });
    assert.deepEqual(await joinRoom(bob, "#A"), {
      type: "room",
      room: "#a",
      topic: "",
      users: ["ann", "bob"],
      ids: [ann.welcome.id, bob.welcome.id],
      count: 2,
    });
    const joined = await until(ann, "joined", (f) => f.room === "#a");
    assert.equal(joined.name, "bob");
    assert.equal(joined.id, bob.welcome.id);
    assert.equal(typeof joined.ts, "number");
  });
});

Deno.test("joining a room one is already in makes it current without a joined notice", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }) => {
    await joinRoom(ann, "#a");
    assert.equal((await sayIn(ann, undefined, "to the current room")).room, "#a");
    const again = await joinRoom(ann, "#lobby");
    assert.equal(again.room, "#lobby");
    assert.deepEqual(again.users, ["ann", "bob"]);
    assert.equal((await sayIn(ann, undefined, "back in the lobby")).room, "#lobby");
    const bobSaw = await framesBeforePong(bob);
    assert.ok(!bobSaw.some((f) => f.type === "joined" && f.name === "ann"), "no joined notice");
  });
});

Deno.test("join with a bad room name is refused with bad_room", async () => {
  await withChat(["ann"], async ({ ann }) => {
    for (const room of ["#", "#two words", `#${"x".repeat(33)}`, "#no!"]) {
      ann.send({ type: "join", room });
      await expectError(ann, "bad_room");
    }
    ann.send({ type: "rooms" });
    assert.deepEqual((await until(ann, "room_list")).rooms, [
      { room: "#lobby", count: 1, topic: "" },
    ]);
  });
});

Deno.test("a message in a room reaches only that room's members", async () => {
  await withChat(["ann", "bob", "cy"], async ({ ann, bob, cy }) => {
    await joinRoom(ann, "#a");
    await joinRoom(bob, "#b");
    await joinRoom(cy, "#a");
    await joinRoom(cy, "#b");
    assert.equal((await sayIn(ann, "#a", "only for a")).room, "#a");
    await sayIn(ann, "#lobby", "for everyone");
    // Bob gets the later lobby message; nothing from #a may come before it.
    const bobSaw = await framesUntil(bob, (f) => f.type === "message" && f.text === "for everyone");
    assert.deepEqual(bobSaw.filter((f) => f.type === "message" && f.room !== "#lobby"), []);
    // Cy, in both rooms, sees both.
    const inA = await until(cy, "message", (m) => m.text === "only for a");
    assert.equal(inA.room, "#a");
    await sayIn(bob, "#b", "only for b");
    const inB = await until(cy, "message", (m) => m.text === "only for b");
    assert.equal(inB.room, "#b");
    assert.ok(!(await framesBeforePong(ann)).some((f) => f.type === "message"));
  });
});

Deno.test("saying something in a room one is not in is refused with not_in_room", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }) => {
    await joinRoom(ann, "#a");
    bob.send({ type: "say", room: "#a", text: "let me in", ref: "x1" });
    const refused = await expectError(bob, "not_in_room");
    assert.equal(refused.ref, "x1");
    bob.send({ type: "say", room: "#nowhere", text: "hello?", ref: "x2" });
    assert.equal((await expectError(bob, "not_in_room")).ref, "x2");
    assert.ok(!(await framesBeforePong(ann)).some((f) => f.type === "message"));
  });
});

Deno.test("leaving a room tells its members and the leaver, with reason left", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }) => {
    await joinRoom(ann, "#x");
    await joinRoom(bob, "#x");
    bob.send({ type: "leave", room: "#x" });
    for (const client of [ann, bob]) {
      const left = await until(client, "left");
      assert.deepEqual({ ...left, ts: 0 }, {
        type: "left",
        name: "bob",
        id: bob.welcome.id,
        ts: 0,
        reason: "left",
        room: "#x",
      });
    }
    await sayIn(bob, "#lobby", "still here");
    bob.send({ type: "say", room: "#x", text: "gone", ref: "g1" });
    await expectError(bob, "not_in_room");
  });
});

Deno.test("leaving one's last room is refused with not_allowed", async () => {
  await withChat(["ann"], async ({ ann }) => {
    ann.send({ type: "leave" });
    await expectError(ann, "not_allowed");
    await joinRoom(ann, "#x");
    await leaveRoom(ann, "#lobby");
    ann.send({ type: "leave", room: "#x" });
    await expectError(ann, "not_allowed");
    assert.equal((await sayIn(ann, undefined, "still in #x")).room, "#x");
  });
});

Deno.test("an empty room disappears from the room list but the lobby stays", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }) => {
    await joinRoom(ann, "#x");
    await joinRoom(ann, "#y");
    await joinRoom(bob, "#y");
    await leaveRoom(ann, "#x");
    await leaveRoom(ann, "#lobby");
    await leaveRoom(bob, "#lobby");
    ann.send({ type: "rooms" });
    assert.deepEqual((await until(ann, "room_list")).rooms, [
      { room: "#lobby", count: 0, topic: "" },
      { room: "#y", count: 2, topic: "" },
    ]);
  });
});

Deno.test("rooms lists every room, sorted, with its count and topic", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }) => {
    await joinRoom(ann, "#zeta");
    await joinRoom(ann, "#alpha");
    await joinRoom(bob, "#alpha");
    ann.send({ type: "topic", room: "#alpha", topic: "release plans" });
    await until(ann, "topic");
    bob.send({ type: "rooms" });
    assert.deepEqual((await until(bob, "room_list")).rooms, [
      { room: "#alpha", count: 2, topic: "release plans" },
      { room: "#lobby", count: 2, topic: "" },
      { room: "#zeta", count: 1, topic: "" },
    ]);
  });
});

Deno.test("setting a topic tells the room who set it, and asking answers with it", async () => {
  await withChat(["ann", "bob", "cy"], async ({ ann, bob, cy }) => {
    await joinRoom(ann, "#a");
    await joinRoom(bob, "#a");
    ann.send({ type: "topic", room: "#a", topic: "  release plans  " });
    for (const client of [ann, bob]) {
      const topic = await until(client, "topic");
      assert.equal(typeof topic.ts, "number");
      assert.deepEqual({ ...topic, ts: 0 }, {
        type: "topic",
        room: "#a",
        topic: "release plans",
        by: "ann",
        ts: 0,
      });
    }
    bob.send({ type: "topic", room: "#a" });
    assert.deepEqual(await until(bob, "topic"), {
      type: "topic",
      room: "#a",
      topic: "release plans",
    });
    assert.ok(!(await framesBeforePong(cy)).some((f) => f.type === "topic"), "cy is not in #a");
  });
});

Deno.test("the topic of a room one is not in is refused with not_in_room", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }) => {
    await joinRoom(ann, "#a");
    bob.send({ type: "topic", room: "#a", topic: "hijacked" });
    await expectError(bob, "not_in_room");
    bob.send({ type: "topic", room: "#a" });
    await expectError(bob, "not_in_room");
    ann.send({ type: "topic", room: "#a" });
    assert.equal((await until(ann, "topic")).topic, "");
  });
});

Deno.test("who with a room lists that room, without one everyone", async () => {
  await withChat(["ann", "bob", "cy"], async ({ ann, bob, cy }) => {
    await joinRoom(bob, "#x");
    ann.send({ type: "who", room: "#x" });
    assert.deepEqual(await until(ann, "users"), {
      type: "users",
      users: ["bob"],
      ids: [bob.welcome.id],
      count: 1,
      room: "#x",
    });
    ann.send({ type: "who" });
    assert.deepEqual(await until(ann, "users"), {
      type: "users",
      users: ["ann", "bob", "cy"],
      ids: [ann.welcome.id, bob.welcome.id, cy.welcome.id],
      count: 3,
    });
  });
});

// ==== Private messages, emotes, away ====

Deno.test("a private message reaches its recipient and its sender, nobody else", async () => {
  await withChat(["ann", "bob", "cy"], async ({ ann, bob, cy }) => {
    ann.send({ type: "msg", to: "BOB", text: "psst", ref: "p1" });
    const got = await until(bob, "private");
    const echo = await until(ann, "private");
    assert.deepEqual(echo, got);
    assert.equal(typeof got.id, "number");
    assert.deepEqual({ ...got, id: 0, ts: 0 }, {
      type: "private",
      id: 0,
      ts: 0,
      from: "ann",
      fromId: ann.welcome.id,
      to: "bob",
      toId: bob.welcome.id,
      text: "psst",
      ref: "p1",
    });
    const cySaw = await framesBeforePong(cy);
    assert.ok(!cySaw.some((f) => f.type === "private" || f.type === "message"));
  });
});

Deno.test("a private message to somebody absent is refused with no_such_user", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }) => {
    ann.send({ type: "msg", to: "nobody", text: "hello?", ref: "p2" });
    assert.equal((await expectError(ann, "no_such_user")).ref, "p2");
    await bob.close();
    await until(ann, "left", (f) => f.name === "bob");
    ann.send({ type: "msg", to: "bob", text: "are you gone?" });
    await expectError(ann, "no_such_user");
  });
});

Deno.test("writing privately to somebody away also tells the sender the away message", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }) => {
    bob.send({ type: "away", message: "at lunch" });
    assert.equal((await until(bob, "notice")).text, "You are away: at lunch");
    ann.send({ type: "msg", to: "bob", text: "are you there?" });
    await until(ann, "private");
    const notice = await until(ann, "notice");
    assert.match(notice.text, /at lunch/);
    assert.equal((await until(bob, "private")).text, "are you there?");

    bob.send({ type: "back" });
    assert.equal((await until(bob, "notice")).text, "You are back");
    ann.send({ type: "msg", to: "bob", text: "welcome back" });
    await until(ann, "private", (f) => f.text === "welcome back");
    assert.ok(!(await framesBeforePong(ann)).some((f) => f.type === "notice"), "no away notice");
  });
});

Deno.test("an emote arrives as a message with action true", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }) => {
    const sent = await sayIn(ann, undefined, "waves", { action: true });
    assert.equal(sent.action, true);
    const seen = await until(bob, "message", (m) => m.text === "waves");
    assert.equal(seen.action, true);
    assert.equal(seen.from, "ann");
    await sayIn(ann, undefined, "plain words");
    const plain = await until(bob, "message", (m) => m.text === "plain words");
    assert.equal(plain.action, undefined);
  });
});

// ==== Names ====

Deno.test("a rename reaches everyone sharing a room once, and nobody else", async () => {
  await withChat(["ann", "bob", "cy", "dan"], async ({ ann, bob, cy, dan }) => {
    // Bob shares two rooms with ann, cy one, dan none.
    await joinRoom(ann, "#x");
    await joinRoom(bob, "#x");
    await joinRoom(dan, "#far");
    await leaveRoom(dan, "#lobby");
    ann.send({ type: "nick", name: "anna" });
    for (const client of [ann, bob, cy]) {
      const frames = [
        ...await framesUntil(client, (f) => f.type === "renamed"),
        ...await framesBeforePong(client),
      ];
      const renamed = frames.filter((f) => f.type === "renamed");
      assert.equal(renamed.length, 1, `${client.welcome.name} hears it once`);
      assert.deepEqual({ ...renamed[0]!, ts: 0 }, {
        type: "renamed",
        from: "ann",
        to: "anna",
        id: ann.welcome.id,
        ts: 0,
      });
    }
    assert.ok(!(await framesBeforePong(dan)).some((f) => f.type === "renamed"));
  });
});

Deno.test("after a rename messages come from the new name and the old name is free", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }, server) => {
    ann.send({ type: "nick", name: "anna" });
    await until(ann, "renamed");
    await sayIn(ann, undefined, "new name, same me");
    const seen = await until(bob, "message", (m) => m.text === "new name, same me");
    assert.equal(seen.from, "anna");
    bob.send({ type: "whois", name: "ann" });
    await expectError(bob, "no_such_user");
    const newcomer = await connect(server, "ann");
    await newcomer.close();
  });
});

Deno.test("renaming to a taken name (in any case) or a bad one is refused", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }) => {
    ann.send({ type: "nick", name: "BOB" });
    await expectError(ann, "name_taken");
    for (const name of ["two words", "server", "x".repeat(25)]) {
      ann.send({ type: "nick", name });
      await expectError(ann, "bad_name");
    }
    assert.ok(!(await framesBeforePong(bob)).some((f) => f.type === "renamed"));
    assert.equal((await sayIn(ann, undefined, "still ann")).from, "ann");
  });
});

Deno.test("ChatClient.say() still resolves after the client renamed itself", async () => {
  await withChat(["ann"], async ({ ann }) => {
    ann.send({ type: "nick", name: "anna" });
    await until(ann, "renamed");
    let resolved = false;
    const said = ann.say("acknowledged?");
    said.then(() => resolved = true, () => {});
    // The client settles say() before it queues the frame, so it is settled by now.
    await until(ann, "message", (m) => m.text === "acknowledged?");
    assert.ok(resolved, "say() never resolved: the client matched its old name");
    assert.equal((await said).from, "anna");
  });
});

Deno.test("whois tells rooms, idle time, arrival, away message, client and id; the host name only to oneself and operators", async () => {
  await withServer(async (server) => {
    const start = Date.now();
    const info = { app: "test-app 1.0", os: "linux", host: "box" };
    const ann = await connect(server, "ann", info);
    const bob = await connect(server, "bob");
    try {
      await joinRoom(ann, "#x");
      ann.send({ type: "away", message: "brb" });
      await until(ann, "notice");
      bob.send({ type: "whois", name: "ANN" });
      const whois = await until(bob, "whois");
      assert.equal(whois.name, "ann");
      assert.deepEqual(whois.rooms, ["#lobby", "#x"]);
      assert.ok(Number.isInteger(whois.idle) && whois.idle >= 0, `idle ${whois.idle}`);
      assert.ok(whois.since >= start && whois.since <= Date.now(), `since ${whois.since}`);
      assert.equal(whois.away, "brb");
      assert.equal(whois.id, ann.welcome.id);
      assert.equal(whois.fingerprint, undefined, "ann has no key");
      assert.deepEqual(whois.client, { app: info.app, os: info.os }, "no host for bob");
      ann.send({ type: "whois", name: "ann" });
      assert.deepEqual((await until(ann, "whois")).client, info, "ann sees her own");
      bob.send({ type: "whois", name: "ghost" });
      await expectError(bob, "no_such_user");
    } finally {
      await ann.close();
      await bob.close();
    }
  });
});

// ==== Operator commands ====

// ==== Command line ====

/** A server process with its console on, reading commands from a pipe, as the test drives it. */
interface ConsoleServer {
  port: number;
  child: Deno.ChildProcess;
  stdout: StreamText;
  /** Writes a line of console input. */
  type(line: string): Promise<void>;
  /** Ends the console's input, as Ctrl+D does. */
  endInput(): Promise<void>;
}

/**
 * Runs `server.ts` with `--console on` and piped input, runs `fn`, then makes sure the process has
 * ended; resolves to how it ended and everything it printed.
 */
async function withConsoleServer(
  fn: (server: ConsoleServer) => Promise<void>,
): Promise<{ status: Deno.CommandStatus; stdout: string; stderr: string }> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-sys=hostname,networkInterfaces",
      SERVER_PATH,
      ...["--db", ":memory:", "--host", "127.0.0.1", "--port", String(port), "--console", "on"],
      "--no-web",
    ],
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new StreamText(child.stdout);
  const stderr = new StreamText(child.stderr);
  const stdin = child.stdin.getWriter();
  try {
    await stdout.waitFor("listening on");
    await fn({
      port,
      child,
      stdout,
      type: (line) => stdin.write(encoder.encode(`${line}\n`)),
      endInput: () => stdin.close(),
    });
    const status = await within(child.status, "the server to exit");
    return { status, stdout: await stdout.done, stderr: await stderr.done };
  } finally {
    await stdin.close().catch(() => {});
    try {
      child.kill();
    } catch {
      // It has exited already.
    }
    await child.status;
    await stdout.done;
    await stderr.done;
  }
}

Deno.test("the operator console reads commands from standard input", async () => {
  let bob: ChatClient | undefined;
  try {
    const ended = await withConsoleServer(async ({ port, stdout, type }) => {
      bob = await ChatClient.connect({ hostname: "127.0.0.1", port, name: "bob" });
      // A command without its slash goes nowhere; /announce speaks to everyone.
      await type("who");
      await stdout.waitFor("Not sent: did you mean /who?");
      await type("/announce hello everyone");
      assert.equal((await until(bob, "announce")).text, "hello everyone");
      await type("/kick bob");
      assert.equal((await within(bob.closed, "bob to be disconnected")).error?.code, "kicked");
      await stdout.waitFor("Kicked bob");
      await type("/shutdown");
    });
    assert.equal(ended.status.code, 0, `stdout:\n${ended.stdout}\nstderr:\n${ended.stderr}`);
    assert.match(ended.stdout, /stopped/);
    assert.equal(ended.stderr, "");
  } finally {
    await bob?.close();
  }
});

for (const signal of ["SIGINT", "SIGHUP"] as const) {
  Deno.test(`the end of console input leaves the server running; ${signal} then stops it in order`, async () => {
    let bob: ChatClient | undefined;
    try {
      const ended = await withConsoleServer(async ({ port, child, stdout, endInput }) => {
        await endInput(); // Ctrl+D
        await stdout.waitFor("Console closed");
        // Log lines after the console closed do not hurt: a join logs one.
        bob = await ChatClient.connect({ hostname: "127.0.0.1", port, name: "bob" });
        await stdout.waitFor("+ bob joined");
        assert.equal((await bob.say("still up")).text, "still up");
        child.kill(signal);
        assert.equal((await within(bob.closed, "bob to be told")).error?.code, "shutting_down");
      });
      assert.equal(ended.status.code, 0, `stdout:\n${ended.stdout}\nstderr:\n${ended.stderr}`);
      assert.match(ended.stdout, new RegExp(`${signal}: shutting down`));
      assert.equal(ended.stderr, "");
    } finally {
      await bob?.close();
    }
  });
}

// ==== Command line ====

/** Runs `server.ts` with arguments that make it stop at once, and collects its output. */
async function runServerCli(args: string[]): Promise<{ code: number; stderr: string }> {
  const output = await within(
    new Deno.Command(Deno.execPath(), {
      args: ["run", ...await taskFlags("server"), SERVER_PATH, ...args],
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdin: "null",
    }).output(),
    "the server to exit",
  );
  return { code: output.code, stderr: decoder.decode(output.stderr) };
}

const BAD_LIMITS: [string[], RegExp][] = [
  [["--rate=-1"], /--rate must be a number from 0 to 1000000, not "-1"/],
  [["--history", "-1"], /--history must be a whole number from 0 to 200, not "-1"/],
  [["--burst", "0"], /--burst must be a whole number from 1 to/],
  [["--history", "500"], /--history must be a whole number from 0 to 200/],
  [["--grace", "soon"], /--grace must be a number/],
  [["--max-per-ip", "2.5"], /--max-per-ip must be a whole number/],
  [["--db", ""], /--db needs a file name/],
  [["--web-port", "99999"], /Invalid --web-port "99999"/],
  [["--web-port", "5050"], /The ports must differ/],
  [["--no-web", "--web-port", "6000"], /--no-web, not both/],
  [["--no-tls", "--https-port", "6000"], /--https-port needs TLS/],
  [["--web-origin", "evil.example"], /--web-origin needs an origin like https:/],
  [["--web-origin", "https://a.example/path"], /--web-origin needs an origin/],
];

for (const [args, message] of BAD_LIMITS) {
  Deno.test(`server.ts ${args.join(" ")} is a usage error: exit 2, one line`, async () => {
    const { code, stderr } = await runServerCli(args);
    assert.equal(code, 2);
    assert.match(stderr, message);
    assert.equal(stderr.trim().split("\n").length, 2, stderr); // the error, then "Run with --help"
  });
}

Deno.test("server.ts says which port is taken and which flag moves it: exit 1, one line", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const { code, stderr } = await runServerCli([
      ...["--host", "127.0.0.1", "--port", String(freePort()), "--no-tls", "--db", "none"],
      ...["--console", "off"],
      ...["--web-port", String(taken.addr.port)],
    ]);
    assert.equal(code, 1);
    assert.match(stderr, new RegExp(`:${taken.addr.port}: the port is in use .*try --web-port`));
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
  } finally {
    taken.close();
  }
});

Deno.test("server.ts refuses a database another server holds: exit 1, one line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-cli-" });
  const holder = startServer({ hostname: "127.0.0.1", port: 0, db: `${dir}/chat.db` });
  try {
    const { code, stderr } = await runServerCli([
      "--host",
      "127.0.0.1",
      "--port",
      String(freePort()),
      "--db",
      `${dir}/chat.db`,
    ]);
    assert.equal(code, 1);
    assert.equal(
      stderr,
      `server: Cannot open ${dir}/chat.db: another server is using it (stop it, or use another --db)\n`,
    );
  } finally {
    await holder.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the banner of a server on ::1 tells how to reach it there, not at localhost", () => {
  const none = () => [];
  assert.ok(
    bannerLines({ plain: { hostname: "::1", port: 5052 }, invites: none }).includes(
      "On this computer: deno task client --plain [::1]:5052",
    ),
  );
  assert.ok(
    bannerLines({ plain: { hostname: "127.0.0.1", port: 5050 }, invites: none }).includes(
      "On this computer: deno task client --plain localhost",
    ),
  );
});

Deno.test("the banner of a server without TLS tells clients to connect --plain", () => {
  const lines = bannerLines({
    plain: { hostname: "0.0.0.0", port: 6000 },
    invites: () => [],
    lan: ["192.0.2.7"],
  });
  assert.ok(lines.includes("  deno task client --plain 192.0.2.7:6000"), lines.join("\n"));
});

Deno.test("the banner gives the key's fingerprint and an invite for each address", () => {
  const lines = bannerLines({
    plain: { hostname: "0.0.0.0", port: 5050 },
    tls: { hostname: "0.0.0.0", port: 5051, fingerprint: "SHA256:abc" },
    invites: (hosts) => hosts.map((host) => `chat://${host}:5051/?fp=abc`),
    lan: ["192.0.2.7"],
  });
  assert.deepEqual(lines, [
    `Chat server ${VERSION} listening on 0.0.0.0:5050 (plain: nc, telnet) and 0.0.0.0:5051 (TLS)`,
    "The server's key: SHA256:abc",
    "People on other computers join with its invite (paste it into the client):",
    "  deno task client 'chat://192.0.2.7:5051/?fp=abc'",
    "  or, unencrypted: nc 192.0.2.7 5050",
    "On this computer: deno task client 'chat://localhost:5051/?fp=abc'",
  ]);
});

// ==== Room moderation ====

Deno.test("a room's owner, by key, makes it invite-only, invites and removes people", async () => {
  await withServer(async (server) => {
    const { identity } = await generateIdentity();
    const ann = await ChatClient.connect({
      hostname: "127.0.0.1",
      port: server.addr.port,
      name: "ann",
      identity,
    });
    const bob = await connect(server, "bob");
    try {
      await joinRoom(ann, "#dev");
      ann.send({ type: "room_set", room: "#dev", inviteOnly: true });
      await until(ann, "notice", (n) => /made it invite-only/.test(n.text));
      bob.send({ type: "join", room: "#dev" });
      assert.match((await until(bob, "error")).message, /#dev is invite-only/);
      ann.send({ type: "invite", room: "#dev", name: "bob" });
      await until(bob, "notice", (n) => n.text === "ann invites you to #dev: /join #dev");
      await joinRoom(bob, "#dev");
      ann.send({ type: "remove", room: "#dev", name: "bob", reason: "testing" });
      const left = await until(bob, "left", (f) => f.name === "bob");
      assert.deepEqual([left.room, left.reason], ["#dev", "removed by ann: testing"]);
      ann.send({ type: "room_info", room: "#dev" });
      const info = await until(ann, "room_info");
      assert.deepEqual([info.owner, info.inviteOnly], ["ann", true]);
    } finally {
      await ann.close();
      await bob.close();
    }
  });
});
