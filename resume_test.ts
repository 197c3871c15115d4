/**
 * Tests for sessions that survive network trouble: a client whose connection is cut (through a
 * TCP proxy the test controls) reconnects by itself, keeps its name and rooms, receives exactly
 * the messages it missed, and delivers exactly once what it said meanwhile. Also the server's
 * side: the grace period, the ghost connection, and resuming after the grace period.
 *
 * Run with `deno test --sanitize-ops --sanitize-resources --allow-net --allow-read --allow-write
 * --allow-run --allow-env --allow-sys resume_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type ChatClient, ChatClient as Client, type ChatEvent } from "./client.ts";
import { backoff } from "./net/pace.ts";
import { runOperatorCommand } from "./ui/console.ts";
import type { MessageFrame, PrivateFrame } from "./protocol.ts";
import type { ChatServer } from "./server.ts";
import {
  connect,
  expectError,
  framesUntil,
  RawClient,
  until,
  within,
  withServer,
} from "./test_util.ts";

// ==== A proxy that can cut connections ====

/**
 * A TCP proxy in front of the server, standing in for the network: it can cut every connection
 * through it, refuse new ones for a while, and stop passing the server's bytes to the client.
 */
class Proxy {
  readonly port: number;
  #listener: Deno.TcpListener;
  #target: number;
  #pairs = new Set<{ client: Deno.TcpConn; server: Deno.TcpConn; done: Promise<void> }>();
  #accepting: Promise<void>;
  #blocked = false;
  /** While set, bytes from the server are swallowed: acknowledgements get lost. */
  muted = false;

  constructor(target: number) {
    this.#target = target;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = this.#listener.addr.port;
    this.#accepting = this.#accept();
  }

  /** While blocked, new connections are closed as soon as they are accepted. */
  block(on: boolean): void {
    this.#blocked = on;
  }

  /** Closes every connection through the proxy, as a network failure would. */
  async cut(): Promise<void> {
    const pairs = [...this.#pairs];
    for (const pair of pairs) closeQuietly(pair.client, pair.server);
    await Promise.all(pairs.map((p) => p.done));
  }

  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    await this.cut();
  }

  async #accept(): Promise<void> {
    while (true) {
      let client: Deno.TcpConn;
      try {
        client = await this.#listener.accept();
      } catch {
        return;
      }
      if (this.#blocked) {
        closeQuietly(client);
        continue;
      }
      const server = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
      const pair = {
        client,
        server,
        done: Promise.resolve(),
      };
      pair.done = Promise.all([
        this.#pipe(client, server, () => false),
        this.#pipe(server, client, () => this.muted),
      ]).then(() => {
        this.#pairs.delete(pair);
      });
      this.#pairs.add(pair);
    }
  }

  async #pipe(from: Deno.TcpConn, to: Deno.TcpConn, swallow: () => boolean): Promise<void> {
    const buffer = new Uint8Array(16 * 1024);
    try {
      let n: number | null;
      while ((n = await from.read(buffer)) !== null) {
        if (swallow()) continue;
        let offset = 0;
        while (offset < n) offset += await to.write(buffer.subarray(offset, n));
      }
    } catch {
      // One side went away: the pair is over.
    } finally {
      closeQuietly(from, to);
    }
  }
}

function closeQuietly(...conns: Deno.Conn[]): void {
  for (const conn of conns) {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** Connects through the proxy with reconnection on and quick retries. */
function connectVia(proxy: Proxy, name: string): Promise<ChatClient> {
  return Client.connect({
    hostname: "127.0.0.1",
    port: proxy.port,
    name,
    reconnect: true,
    retryMinMs: 10,
    retryMaxMs: 50,
  });
}

/** Runs `fn` with a server and a proxy in front of it, and closes both. */
async function withProxy(
  fn: (server: ChatServer, proxy: Proxy) => Promise<void>,
  options: Parameters<typeof withServer>[1] = {},
): Promise<void> {
  await withServer(async (server) => {
    const proxy = new Proxy(server.addr.port);
    try {
      await fn(server, proxy);
    } finally {
      await proxy.close();
    }
  }, options);
}

type Said = MessageFrame | PrivateFrame;

function isSaid(event: ChatEvent): event is Said {
  return (event.type === "message" && !event.history) || event.type === "private";
}

/** Reads events until `done` says the messages so far are enough; returns every event read. */
async function eventsUntil(
  client: ChatClient,
  what: string,
  done: (said: Said[]) => boolean,
): Promise<ChatEvent[]> {
  const events: ChatEvent[] = [];
  const said: Said[] = [];
  while (!done(said)) {
    const event = await within(client.next(), what);
    if (event === undefined) throw new Error(`${what}: the client finished`);
    events.push(event);
    if (isSaid(event)) said.push(event);
  }
  return events;
}

// ==== Reconnecting and resuming ====

Deno.test("a cut connection comes back by itself with its name, rooms and exactly what it missed", async () => {
  await withProxy(async (server, proxy) => {
    const ann = await connectVia(proxy, "ann");
    const bob = await connect(server, "bob");
    try {
      ann.send({ type: "join", room: "#dev" });
      await until(ann, "room");
      bob.send({ type: "join", room: "#dev" });
      await until(bob, "room");
      const before = await ann.say("before the cut", { room: "#dev" });

      proxy.block(true);
      await proxy.cut();
      const lost = await until(ann, "reconnecting");
      assert.equal(lost.attempt, 1);
      assert.equal(ann.connected, false);
      const away = await until(bob, "presence", (p) => p.name === "ann");
      assert.equal(away.away, "connection lost");
      assert.ok(
        runOperatorCommand(server, "/who").lines.includes(
          "  ann from 127.0.0.1: connection lost, held for a while",
        ),
        "the operator sees the held name",
      );
      await assert.rejects(connect(server, "ANN"), {
        code: "name_taken",
        message: /"ann" is held for \d+ s more for someone whose connection dropped/,
      });

      // While ann is away: bob talks in both rooms and privately; ann types two messages.
      const missed = [
        await bob.say("in dev 1", { room: "#dev" }),
        await bob.say("in the lobby", { room: "#lobby" }),
        await bob.tell("ann", "psst"),
        await bob.say("in dev 2", { room: "#dev" }),
      ];
      const typed = [
        ann.say("typed offline", { room: "#dev" }),
        ann.tell("bob", "offline psst"),
      ] as const;
      assert.equal(ann.unsent, 2);
      proxy.block(false);

      const back = await until(ann, "reconnected");
      assert.equal(back.resumed, true);
      assert.equal(ann.name, "ann");
      const [said, told] = await within(
        Promise.all(typed),
        "the offline messages to be acknowledged",
      );
      const events = await eventsUntil(ann, "ann's missed messages", (s) => s.length >= 6);
      const seen = events.filter(isSaid);
      assert.deepEqual(
        seen.filter((m) => m.from === "bob").map((m) => [m.id, m.text]),
        missed.map((m) => [m.id, m.text]),
        "every missed message, once, in order",
      );
      assert.ok(seen.every((m) => m.id > before.id), "nothing from before the cut again");
      const rooms = events.filter((e) => e.type === "room").map((e) => e.type === "room" && e.room);
      assert.deepEqual(rooms, ["#lobby", "#dev"], "both rooms back, #dev current");
      assert.equal(ann.unsent, 0);

      // Bob saw ann come back, never leave or join, and got her offline messages once.
      await bob.say("the end");
      const bobEvents = await eventsUntil(
        bob,
        "bob's view",
        (s) => s.some((m) => m.text === "the end"),
      );
      const fromAnn = bobEvents.filter(isSaid).filter((m) => m.from === "ann");
      assert.deepEqual(fromAnn.map((m) => [m.id, m.text]), [
        [said.id, "typed offline"],
        [told.id, "offline psst"],
      ]);
      assert.ok(bobEvents.some((e) => e.type === "presence" && e.name === "ann" && !e.away));
      assert.ok(
        !bobEvents.some((e) => (e.type === "left" || e.type === "joined") && e.name === "ann"),
        "no leave or join for a brief drop",
      );
    } finally {
      await ann.close();
      await bob.close();
    }
  });
});

Deno.test("a message whose acknowledgement was lost is resent and shows exactly once", async () => {
  await withProxy(async (server, proxy) => {
    const ann = await connectVia(proxy, "ann");
    const bob = await connect(server, "bob");
    try {
      proxy.muted = true; // the server's answers to ann get lost from here
      const saying = ann.say("did it go?");
      const seenByBob = await until(bob, "message", (m) => m.text === "did it go?");
      await proxy.cut();
      proxy.muted = false;
      await until(ann, "reconnected");
      const ack = await within(saying, "the acknowledgement after resending");
      assert.equal(ack.id, seenByBob.id, "the stored message, not a second one");
      await bob.say("after");
      const events = await eventsUntil(ann, "ann's view", (s) => s.some((m) => m.text === "after"));
      assert.deepEqual(events.filter(isSaid).map((m) => m.text), ["did it go?", "after"]);
      const bobEvents = await eventsUntil(
        bob,
        "bob's view",
        (s) => s.some((m) => m.text === "after"),
      );
      assert.ok(!bobEvents.filter(isSaid).some((m) => m.text === "did it go?"), "not twice");
    } finally {
      await ann.close();
      await bob.close();
    }
  });
});

Deno.test("a resumed session closes the old connection that still looked alive", async () => {
  await withServer(async (server) => {
    const old = await RawClient.open(server);
    const fresh = await RawClient.open(server);
    try {
      await old.write({ type: "hello", name: "ann" });
      const welcome = await until(old, "welcome");
      assert.ok(welcome.resume);
      await fresh.write({ type: "hello", name: "whatever", resume: welcome.resume });
      const again = await until(fresh, "welcome");
      assert.equal(again.name, "ann");
      assert.equal(again.resumed, true);
      await expectError(old, "replaced");
      await old.closedByServer();
      assert.equal(server.hub.member("ann")?.link.state, "live");
      await fresh.write({ type: "say", text: "still me", ref: "r" });
      assert.equal((await until(fresh, "message", (m) => m.ref === "r")).from, "ann");
    } finally {
      old.close();
      fresh.close();
    }
  });
});

Deno.test("after the grace period a dropped member leaves, and its token still brings it back", async () => {
  await withServer(async (server) => {
    const bob = await connect(server, "bob");
    const raw = await RawClient.open(server);
    let back: RawClient | undefined;
    try {
      await raw.write({ type: "hello", name: "ann" });
      const welcome = await until(raw, "welcome");
      await raw.write({ type: "join", room: "#dev" });
      await until(raw, "room");
      raw.close();
      assert.equal((await until(bob, "presence", (p) => p.name === "ann")).away, "connection lost");
      const left = await until(bob, "left", (f) => f.name === "ann");
      assert.equal(left.reason, "connection lost");
      const psst = await bob.say("while ann was gone");
      back = await RawClient.open(server);
      await back.write({ type: "hello", name: "ann", resume: welcome.resume!, last: psst.id - 1 });
      const again = await until(back, "welcome");
      assert.equal(again.resumed, true);
      const frames = await framesUntil(back, (f) => f.type === "message");
      assert.deepEqual(
        frames.filter((f) => f.type === "room").map((f) => f.type === "room" && f.room),
        ["#lobby", "#dev"],
      );
      const missed = frames.at(-1)!;
      assert.ok(missed.type === "message" && missed.id === psst.id);
      assert.equal((await until(bob, "joined", (f) => f.name === "ann")).room, "#lobby");
    } finally {
      raw.close();
      back?.close();
      await bob.close();
    }
  }, { graceMs: 30, presenceDelayMs: 0 });
});

Deno.test("a hello with an unknown token is an ordinary arrival", async () => {
  await withServer(async (server) => {
    const raw = await RawClient.open(server);
    try {
      await raw.write({ type: "hello", name: "ann", resume: "no-such-token", last: 5 });
      const welcome = await until(raw, "welcome");
      assert.equal(welcome.resumed, undefined);
      assert.notEqual(welcome.resume, "no-such-token");
    } finally {
      raw.close();
    }
  });
});

Deno.test("a refused command long before a drop does not stop the client reconnecting", async () => {
  await withProxy(async (_server, proxy) => {
    const ann = await connectVia(proxy, "ann");
    try {
      ann.send({ type: "whois", name: "nobody" });
      assert.equal((await until(ann, "error")).code, "no_such_user");
      ann.send({ type: "nick", name: "server" });
      assert.equal((await until(ann, "error")).code, "bad_name");
      await proxy.cut();
      await until(ann, "reconnecting");
      await until(ann, "reconnected");
      const said = await ann.say("still here");
      assert.equal(said.text, "still here");
    } finally {
      await ann.close();
    }
  });
});

Deno.test("a client gives up reconnecting when its name is taken meanwhile", async () => {
  await withProxy(async (server, proxy) => {
    const ann = await connectVia(proxy, "ann");
    let thief: ChatClient | undefined;
    try {
      proxy.block(true);
      await proxy.cut();
      await until(ann, "reconnecting");
      // The server lets ann go at once (no grace) and forgets the session: a new ann arrives.
      await within(
        (async () => {
          while (server.hub.member("ann")) await until(ann, "reconnecting");
        })(),
        "the server to let ann go",
      );
      thief = await connect(server, "ann");
      proxy.block(false);
      const info = await within(ann.closed, "ann's client to give up");
      assert.equal(info.error?.code, "name_taken");
    } finally {
      await ann.close();
      await thief?.close();
    }
  }, { graceMs: 0, resumeWindowMs: 0 });
});

Deno.test("messages said while offline are kept up to a bound; beyond it they are refused", async () => {
  await withProxy(async (_server, proxy) => {
    const ann = await Client.connect({
      hostname: "127.0.0.1",
      port: proxy.port,
      name: "ann",
      reconnect: true,
      retryMinMs: 10,
      retryMaxMs: 50,
      maxUnsent: 3,
    });
    try {
      proxy.block(true);
      await proxy.cut();
      await until(ann, "reconnecting");
      const kept = [ann.say("1"), ann.say("2"), ann.say("3")];
      await assert.rejects(ann.say("4"), { code: "disconnected", message: /already wait/ });
      proxy.block(false);
      const acks = await within(Promise.all(kept), "the kept messages");
      assert.deepEqual(acks.map((a) => a.text), ["1", "2", "3"]);
    } finally {
      await ann.close();
    }
  });
});

Deno.test("closing a reconnecting client stops it at once and fails what waits", async () => {
  await withProxy(async (_server, proxy) => {
    const ann = await connectVia(proxy, "ann");
    proxy.block(true);
    await proxy.cut();
    await until(ann, "reconnecting");
    const waiting = ann.say("never sent");
    await ann.close();
    await assert.rejects(waiting, { code: "disconnected" });
    assert.equal((await ann.closed).by, "client");
  });
});

Deno.test("backoff doubles from the first wait up to the longest, with jitter", () => {
  for (let attempt = 1; attempt <= 12; attempt++) {
    const full = Math.min(30_000, 500 * 2 ** (attempt - 1));
    for (let i = 0; i < 50; i++) {
      const wait = backoff(attempt, 500, 30_000);
      assert.ok(wait >= full / 2 && wait <= full, `attempt ${attempt}: ${wait}`);
    }
  }
});
