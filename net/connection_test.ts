/**
 * Tests for the key handshake of a connection against a real server: a hello with a key gets a
 * challenge, a good proof joins under the key, and a forged, replayed or unasked-for proof is
 * refused without trusting anything about the key.
 *
 * @module
 */

import assert from "node:assert/strict";
import { expectError, RawClient, until, withServer } from "../test_util.ts";
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
