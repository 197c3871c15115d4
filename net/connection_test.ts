/**
 * Tests for a connection against a real server: the key handshake (a hello with a key gets a
 * challenge, a good proof joins under the key, and a forged, replayed or unasked-for proof is
 * refused without trusting anything about the key), and the lines a person pastes on `nc`, which
 * wait for the sending allowance instead of being refused, within a bound.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { MessageFrame } from "../protocol.ts";
import { connect, expectError, RawClient, until, withServer } from "../test_util.ts";
import { ChatClient } from "./chat_client.ts";
import { generateIdentity, keyFacts, signProof } from "./identity.ts";

Deno.test("a hello with a key is challenged, and a good proof joins under that key", async () => {
  await withServer(async (server) => {
    const { identity } = await generateIdentity();
    const raw = await RawClient.open(server);
    try {
      await raw.write({ type: "hello", name: "ann", key: identity.publicKey });
      const challenge = await until(raw, "challenge");
      assert.match(challenge.nonce, /^[\w-]{43}$/);
      await raw.write({ type: "proof", signature: await signProof(identity, challenge.nonce) });
      const welcome = await until(raw, "welcome");
      const facts = await keyFacts(identity.publicKey);
      assert.equal(welcome.name, "ann");
      assert.equal(welcome.fingerprint, facts.fingerprint);
      assert.equal(welcome.id, facts.personId);
      assert.equal(server.hub.member("ann")?.person.key?.fingerprint, facts.fingerprint);
    } finally {
      raw.close();
    }
  });
});

Deno.test("a proof signed by another key is refused with bad_signature, and nothing joins", async () => {
  await withServer(async (server) => {
    const claimed = await generateIdentity();
    const forger = await generateIdentity();
    const raw = await RawClient.open(server);
    try {
      await raw.write({ type: "hello", name: "mallory", key: claimed.identity.publicKey });
      const { nonce } = await until(raw, "challenge");
      await raw.write({ type: "proof", signature: await signProof(forger.identity, nonce) });
      const refused = await expectError(raw, "bad_signature");
      assert.match(refused.message, /does not match/);
      await raw.closedByServer();
      assert.equal(server.hub.member("mallory"), undefined);
    } finally {
      raw.close();
    }
  });
});

Deno.test("a proof replayed from another connection is refused: every challenge has a new nonce", async () => {
  await withServer(async (server) => {
    const { identity } = await generateIdentity();
    const first = await RawClient.open(server);
    const second = await RawClient.open(server);
    try {
      await first.write({ type: "hello", name: "ann", key: identity.publicKey });
      const { nonce } = await until(first, "challenge");
      const signature = await signProof(identity, nonce);
      await first.write({ type: "proof", signature });
      await until(first, "welcome");
      // Somebody who saw that proof on the wire sends it again, for the same key.
      await second.write({ type: "hello", name: "eve", key: identity.publicKey });
      const again = await until(second, "challenge");
      assert.notEqual(again.nonce, nonce);
      await second.write({ type: "proof", signature });
      await expectError(second, "bad_signature");
      await second.closedByServer();
      assert.equal(server.hub.member("ann")?.link.state, "live", "ann was not replaced");
    } finally {
      first.close();
      second.close();
    }
  });
});

Deno.test("a proof with no challenge, a malformed key and garbage signatures are refused", async () => {
  await withServer(async (server) => {
    const raw = await RawClient.open(server);
    try {
      await raw.write({ type: "proof", signature: "A".repeat(86) });
      await expectError(raw, "hello_first");
      await raw.write({ type: "hello", name: "x", key: "not-a-key" });
      await expectError(raw, "bad_frame");
      const { identity } = await generateIdentity();
      await raw.write({ type: "hello", name: "x", key: identity.publicKey });
      await until(raw, "challenge");
      await raw.write({ type: "say", text: "before the proof" });
      await expectError(raw, "hello_first");
      await raw.write({ type: "proof", signature: "!!" });
      await expectError(raw, "bad_signature");
      await raw.closedByServer();
    } finally {
      raw.close();
    }
  });
});

Deno.test("ChatClient with an identity answers the challenge by itself", async () => {
  await withServer(async (server) => {
    const { identity } = await generateIdentity();
    const client = await ChatClient.connect({
      hostname: "127.0.0.1",
      port: server.addr.port,
      name: "ann",
      identity,
    });
    try {
      assert.equal(client.welcome.fingerprint, (await keyFacts(identity.publicKey)).fingerprint);
    } finally {
      await client.close();
    }
  });
});

// ==== A person's paste ====

/** Opens a plain-text connection and gives the name; resolves once welcomed. */
async function person(port: number, name: string): Promise<RawClient> {
  const raw = await RawClient.open(port);
  await raw.linesUntil((l) => l.startsWith("Type your name"));
  await raw.write(`${name}\r\n`);
  await raw.linesUntil((l) => l.includes("type to talk"));
  return raw;
}

/** The next `count` messages from `from` that `client` receives. */
async function messagesFrom(
  client: ChatClient,
  from: string,
  count: number,
): Promise<MessageFrame[]> {
  const heard: MessageFrame[] = [];
  while (heard.length < count) heard.push(await until(client, "message", (m) => m.from === from));
  return heard;
}

/** Lines as typed or pasted: each with CRLF, one string. */
function typed(lines: readonly string[]): string {
  return lines.map((line) => `${line}\r\n`).join("");
}

Deno.test("a paste on nc goes out in order at the sending rate, and nothing is refused", async () => {
  await withServer(async (server) => {
    const dave = await connect(server, "dave");
    const carol = await person(server.addr.port, "carol");
    try {
      const lines = Array.from({ length: 30 }, (_, i) => `pasted line ${i + 1}`);
      await carol.write(typed(lines));
      const heard = await messagesFrom(dave, "carol", 30);
      assert.deepEqual(heard.map((m) => m.text), lines);
      // Ten at once (the burst), then twenty a second: never faster than the rate.
      const spread = heard.at(-1)!.ts - heard[0]!.ts;
      assert.ok(spread >= 990, `30 lines went out in ${spread} ms: faster than the rate`);
      const seen = await carol.linesUntil((l) => l.endsWith("pasted line 30"));
      assert.deepEqual(seen.filter((l) => l.startsWith("!")), [], "nothing was refused");
      await carol.write("and after\r\n");
      assert.equal((await messagesFrom(dave, "carol", 1))[0]!.text, "and after");
    } finally {
      carol.close();
      await dave.close();
    }
  }, { promptDelayMs: 20, rate: 20, burst: 10 });
});

Deno.test("a paste past the waiting bound is cut with one line, and the person stays", async () => {
  await withServer(async (server) => {
    const dave = await connect(server, "dave");
    const carol = await person(server.addr.port, "carol");
    try {
      // A first line that fills the small first read buffer, so the paste comes in one read.
      const long = `a long first line ${"x".repeat(300)}`;
      await carol.write(`${long}\r\n`);
      assert.equal((await messagesFrom(dave, "carol", 1))[0]!.text, long);
      const lines = Array.from({ length: 200 }, (_, i) => `pasted ${i + 1}`);
      await carol.write(typed(lines));
      // Nine left of the burst, then the fifty that may wait; the other 141 are refused.
      const heard = await messagesFrom(dave, "carol", 59);
      assert.deepEqual(heard.map((m) => m.text), lines.slice(0, 59));
      await carol.write("after the paste\r\n");
      assert.equal((await messagesFrom(dave, "carol", 1))[0]!.text, "after the paste");
      const seen = await carol.linesUntil((l) => l.endsWith("after the paste"));
      const refusals = seen.filter((l) => l.startsWith("!"));
      assert.deepEqual(refusals, [
        "! Too much at once: 50 lines wait to go out, 20 a second; the lines after them were " +
        "not sent",
      ]);
    } finally {
      carol.close();
      await dave.close();
    }
  }, { promptDelayMs: 20, rate: 20, burst: 10 });
});

Deno.test("the lines waiting hold a bounded number of characters", async () => {
  await withServer(async (server) => {
    const carol = await person(server.addr.port, "carol");
    try {
      // The burst, then one line of 30,000 characters waiting; the next does not fit beside it.
      const burst = Array.from({ length: 10 }, (_, i) => `short ${i + 1}`);
      await carol.write(typed([...burst, "y".repeat(30_000), "z".repeat(3_000)]));
      const seen = await carol.linesUntil((l) => l.startsWith("! Too much at once"));
      assert.equal(
        seen.at(-1),
        "! Too much at once: 1 line waits to go out, 20 a second; the lines after them were " +
          "not sent",
      );
      // The waiting line is then judged like any message: too long for one.
      await carol.linesUntil((l) => l.startsWith("! Message is longer than"));
    } finally {
      carol.close();
    }
  }, { promptDelayMs: 20, rate: 20, burst: 10 });
});

Deno.test("a person typing line by line within the allowance waits for nothing", async () => {
  await withServer(async (server) => {
    const carol = await person(server.addr.port, "carol");
    try {
      // One token every ten seconds after a burst of three: a line that waited would show it.
      const started = performance.now();
      for (const text of ["one", "two", "three"]) {
        await carol.write(`${text}\r\n`);
        await carol.linesUntil((l) => l.endsWith(`carol: ${text}`));
      }
      const ms = performance.now() - started;
      assert.ok(ms < 5000, `three lines typed one by one took ${Math.round(ms)} ms`);
    } finally {
      carol.close();
    }
  }, { promptDelayMs: 20, rate: 0.1, burst: 3 });
});
