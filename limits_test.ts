/**
 * Tests for the server's defences and liveness: heartbeats (both sides), the per-connection rate
 * limit and flood disconnection, the connection caps, and the client's pacing that keeps it
 * within the rate the server announces.
 *
 * Run with `deno test --sanitize-ops --sanitize-resources --allow-net --allow-read --allow-write
 * --allow-run --allow-env --allow-sys limits_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ChatClient, type ChatError } from "./client.ts";
import { FLOOD_STRIKES } from "./net/connection.ts";
import {
  connect,
  expectError,
  framesUntil,
  RawClient,
  until,
  within,
  withServer,
} from "./test_util.ts";

// ==== Heartbeats ====

Deno.test("a silent client is pinged, then dropped with timeout; others see it leave", async () => {
  await withServer(async (server) => {
    const bob = await connect(server, "bob");
    const raw = await RawClient.open(server);
    try {
      await raw.write({ type: "hello", name: "mute" });
      await until(raw, "welcome");
      await until(raw, "ping");
      // It never answers.
      const error = await expectError(raw, "timeout");
      assert.match(error.message, /No answer to a ping/);
      await raw.closedByServer();
      const left = await until(bob, "left", (f) => f.name === "mute");
      assert.equal(left.reason, "no answer");
    } finally {
      raw.close();
      await bob.close();
    }
  }, { heartbeatMs: 100, graceMs: 0 });
});

Deno.test("a client that answers pings stays connected through many heartbeats", async () => {
  await withServer(async (server) => {
    const raw = await RawClient.open(server);
    try {
      await raw.write({ type: "hello", name: "alive" });
      await until(raw, "welcome");
      for (let i = 0; i < 4; i++) {
        await until(raw, "ping");
        await raw.write({ type: "pong" });
      }
      assert.ok(server.hub.member("alive"), "still present");
    } finally {
      raw.close();
    }
  }, { heartbeatMs: 50, graceMs: 0 });
});

Deno.test("ChatClient answers the server's pings by itself", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      for (let i = 0; i < 3; i++) await until(ann, "ping");
      assert.equal(ann.connected, true);
      await ann.say("still here");
    } finally {
      await ann.close();
    }
  }, { heartbeatMs: 50 });
});

Deno.test("ChatClient pings a silent server and gives the connection up when it stays silent", async () => {
  // A server that accepts and welcomes, then never says another word.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = (async () => {
    const conn = await listener.accept();
    const welcome = {
      type: "welcome",
      name: "ann",
      users: ["ann"],
      server: { name: "mute", version: "0" },
    };
    await conn.write(new TextEncoder().encode(JSON.stringify(welcome) + "\n"));
    const lines: string[] = [];
    const buffer = new Uint8Array(1024);
    let n: number | null;
    while ((n = await conn.read(buffer)) !== null) {
      lines.push(...new TextDecoder().decode(buffer.subarray(0, n)).split("\n"));
    }
    conn.close();
    return lines.filter((l) => l);
  })();
  const ann = await ChatClient.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
    name: "ann",
    heartbeatMs: 50,
  });
  const info = await within(ann.closed, "the client to give up");
  assert.equal(info.by, "server");
  const received = await accepted;
  listener.close();
  assert.ok(received.some((l) => JSON.parse(l).type === "ping"), received.join("\n"));
});

// ==== Rate limit ====

Deno.test("a flooding client is limited, then disconnected, while others keep chatting", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    const bob = await connect(server, "bob");
    const flood = await RawClient.open(server);
    try {
      await flood.write({ type: "hello", name: "flood" });
      await until(flood, "welcome");
      const lines = Array.from(
        { length: 200 },
        (_, i) => JSON.stringify({ type: "say", text: `spam ${i}`, ref: `s${i}` }) + "\n",
      );
      await flood.write(lines.join(""));
      const limited = await expectError(flood, "rate_limited");
      assert.match(limited.ref ?? "", /^s\d+$/);
      const refusals = await framesUntil(flood, (f) => f.type === "error" && f.code === "flooding");
      const limitedCount = refusals.filter((f) => f.type === "error" && f.code === "rate_limited");
      assert.equal(limitedCount.length, FLOOD_STRIKES - 2, "refused, then disconnected");
      await flood.closedByServer();
      const left = await until(ann, "left", (f) => f.name === "flood");
      assert.equal(left.reason, "flooding");
      const sent = await ann.say("business as usual");
      assert.equal(
        (await until(bob, "message", (m) => m.text === "business as usual")).id,
        sent.id,
      );
    } finally {
      flood.close();
      await ann.close();
      await bob.close();
    }
  }, { graceMs: 0 });
});

Deno.test("a burst within the limit passes, and the limit refills with time", async () => {
  await withServer(async (server) => {
    const raw = await RawClient.open(server);
    try {
      await raw.write({ type: "hello", name: "ann" });
      await until(raw, "welcome");
      const burst = Array.from(
        { length: 4 },
        (_, i) => JSON.stringify({ type: "say", text: `b${i}`, ref: `b${i}` }) + "\n",
      );
      await raw.write(burst.join(""));
      for (let i = 0; i < 4; i++) await until(raw, "message", (m) => m.ref === `b${i}`);
      await raw.write({ type: "say", text: "one too many", ref: "x" });
      assert.equal((await expectError(raw, "rate_limited")).ref, "x");
      // One token's worth of time later (50 ms at 20 a second), a message goes through again.
      await new Promise((resolve) => setTimeout(resolve, 1000 / 20));
      await raw.write({ type: "say", text: "later", ref: "l" });
      const frames = await framesUntil(raw, (f) => f.type === "message" || f.type === "error");
      assert.equal(frames.at(-1)?.type, "message", "a message goes through once refilled");
    } finally {
      raw.close();
    }
  }, { rate: 20, burst: 4 });
});

Deno.test("ChatClient paces itself to the announced rate, so nothing is refused", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      assert.deepEqual(ann.welcome.limits, { rate: 40, burst: 4 });
      const acks = await Promise.all(Array.from({ length: 30 }, (_, i) => ann.say(`m${i}`)));
      assert.deepEqual(acks.map((a) => a.text), Array.from({ length: 30 }, (_, i) => `m${i}`));
    } finally {
      await ann.close();
    }
  }, { rate: 40, burst: 4 });
});

// ==== Connection caps ====

Deno.test("the per-address cap refuses one person too many with server_full", async () => {
  await withServer(async (server) => {
    const first = await RawClient.open(server);
    const second = await RawClient.open(server);
    const third = await RawClient.open(server);
    try {
      await first.write({ type: "hello", name: "ann" });
      await until(first, "welcome");
      await second.write({ type: "hello", name: "bob" });
      await until(second, "welcome");
      await third.write({ type: "hello", name: "cy" });
      const refusal = await expectError(third, "server_full");
      assert.match(refusal.message, /Too many connections from your address \(2\)/);
      await third.closedByServer();
      first.close();
      // Once one closes, there is room again.
      let welcomed = false;
      for (let tries = 0; !welcomed && tries < 100; tries++) {
        const next = await RawClient.open(server);
        await next.write({ type: "hello", name: "cy" });
        const frame = await next.next();
        welcomed = frame?.type === "welcome";
        next.close();
      }
      assert.ok(welcomed, "a new connection is taken once another has closed");
    } finally {
      first.close();
      second.close();
      third.close();
    }
  }, { maxClientsPerAddress: 2 });
});

Deno.test("the total cap refuses a person when the server is full", async () => {
  await withServer(async (server) => {
    const first = await RawClient.open(server);
    const second = await RawClient.open(server);
    try {
      await first.write({ type: "hello", name: "ann" });
      await until(first, "welcome");
      await second.write({ type: "hello", name: "bob" });
      const refusal = await expectError(second, "server_full");
      assert.match(refusal.message, /The server is full \(1 connections\)/);
      await second.closedByServer();
    } finally {
      first.close();
      second.close();
    }
  }, { maxClients: 1 });
});

Deno.test("ChatClient.connect() reports a full server with server_full", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      await assert.rejects(connect(server, "bob"), { code: "server_full" });
    } finally {
      await ann.close();
    }
  }, { maxClients: 1 });
});

// ==== Connections without a hello, logins, and what everything costs ====

Deno.test("when too many connections wait without a hello, the oldest is closed for a newcomer", async () => {
  await withServer(async (server) => {
    const first = await RawClient.open(server);
    const second = await RawClient.open(server, "127.0.0.2");
    const third = await RawClient.open(server, "127.0.0.3");
    try {
      const evicted = await expectError(first, "timeout");
      assert.match(evicted.message, /others are waiting/);
      await first.closedByServer();
      await third.write({ type: "hello", name: "ann" });
      assert.equal((await third.next())?.type, "welcome");
    } finally {
      first.close();
      second.close();
      third.close();
    }
  }, { maxPending: 2, promptDelayMs: 60_000 });
});

Deno.test("one address may keep only so many connections without a hello", async () => {
  await withServer(async (server) => {
    const first = await RawClient.open(server);
    const second = await RawClient.open(server);
    try {
      const refusal = await expectError(second, "server_full");
      assert.match(refusal.message, /still to say hello \(1\)/);
      await first.write({ type: "hello", name: "ann" });
      assert.equal((await first.next())?.type, "welcome");
    } finally {
      first.close();
      second.close();
    }
  }, { maxPendingPerAddress: 1, promptDelayMs: 60_000 });
});

Deno.test("each connection spends one of its address's logins; past them it is refused", async () => {
  await withServer(async (server) => {
    const clients: ChatClient[] = [];
    try {
      for (const name of ["ann", "bob"]) clients.push(await connect(server, name));
      await assert.rejects(connect(server, "cy"), (error: ChatError) => {
        assert.equal(error.code, "rate_limited");
        assert.match(error.message, /Too many connections from your address: try again in \d+ s/);
        return true;
      });
      // Another address has its own allowance.
      const raw = await RawClient.open(server, "127.0.0.2");
      await raw.write({ type: "hello", name: "cy" });
      assert.equal((await raw.next())?.type, "welcome");
      raw.close();
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  }, { loginsPerAddress: 2 });
});

Deno.test("good frames between bad ones do not start the count of bad frames again", async () => {
  await withServer(async (server) => {
    const raw = await RawClient.open(server);
    try {
      await raw.write({ type: "hello", name: "ann" });
      await until(raw, "welcome");
      await raw.write('{"nope\n{"type":"ping"}\n'.repeat(6));
      const frames = await framesUntil(raw, (f) => f.type === "error" && f.code !== "bad_frame");
      assert.equal(frames.filter((f) => f.type === "error" && f.code === "bad_frame").length, 6);
      assert.deepEqual(frames.at(-1), {
        type: "error",
        code: "too_many_errors",
        message: "Too many bad frames: closing",
      });
      await raw.closedByServer();
    } finally {
      raw.close();
    }
  }, { rate: 0 });
});

Deno.test("bytes that never make a line do not keep a connection alive", async () => {
  await withServer(async (server) => {
    const raw = await RawClient.open(server);
    try {
      await raw.write({ type: "hello", name: "ann" });
      await until(raw, "welcome");
      // A byte every 10 ms, never a newline: the server hears nothing and gives up.
      let closed = false;
      const closing = raw.closedByServer().then(() => closed = true);
      for (let i = 0; i < 500 && !closed; i++) {
        await raw.write("x").catch(() => {});
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await closing;
      assert.ok(closed, "dropped for silence");
    } finally {
      raw.close();
    }
  }, { heartbeatMs: 50 });
});

Deno.test("blank lines spend the sending allowance like frames", async () => {
  await withServer(async (server) => {
    const raw = await RawClient.open(server);
    try {
      await raw.write({ type: "hello", name: "ann" });
      await until(raw, "welcome");
      await raw.write("\n".repeat(100));
      const frames = await framesUntil(raw, (f) => f.type === "error" && f.code === "flooding");
      assert.ok(frames.some((f) => f.type === "error" && f.code === "rate_limited"));
      await raw.closedByServer();
    } finally {
      raw.close();
    }
  });
});

Deno.test("ChatClient paces requests by what they cost, so a run of them is never refused", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      for (let i = 0; i < 4; i++) ann.send({ type: "history" });
      for (let i = 0; i < 3; i++) ann.send({ type: "rooms" });
      ann.send({ type: "ping" });
      const frames = await framesUntil(ann, (f) => f.type === "pong");
      assert.deepEqual(frames.filter((f) => f.type === "error"), []);
      assert.equal(frames.filter((f) => f.type === "room_list").length, 3);
    } finally {
      await ann.close();
    }
  }, { rate: 20, burst: 10 });
});

Deno.test("hellos tried over and over, or blank lines before one, spend an allowance too", async () => {
  await withServer(async (server) => {
    const raw = await RawClient.open(server);
    try {
      await raw.write(`${JSON.stringify({ type: "hello", name: "no good" })}\n\n`.repeat(60));
      const frames = await framesUntil(raw, (f) => f.type === "error" && f.code === "flooding");
      const codes = new Set(frames.map((f) => f.type === "error" && f.code));
      assert.deepEqual([...codes].sort(), ["bad_name", "flooding", "rate_limited"]);
      await raw.closedByServer();
    } finally {
      raw.close();
    }
  });
});
