/**
 * Tests for identities: key pairs made with WebCrypto, proofs that verify only for their nonce and
 * key, fingerprints and person ids in the forms frames and people use.
 *
 * @module
 */

import assert from "node:assert/strict";
import { isFingerprint, isKeyText, isPersonId, isSignatureText } from "../protocol.ts";
import {
  fromBase64Url,
  generateIdentity,
  keyFacts,
  loadIdentity,
  newNonce,
  signProof,
  toBase64Url,
  verifyProof,
} from "./identity.ts";

Deno.test("a new identity has a 32-byte key, a fingerprint and a person id in their forms", async () => {
  const { identity, stored } = await generateIdentity();
  assert.ok(isKeyText(identity.publicKey));
  const facts = await keyFacts(identity.publicKey);
  assert.ok(isFingerprint(facts.fingerprint), facts.fingerprint);
  assert.ok(isPersonId(facts.personId), facts.personId);
  assert.equal(
    facts.personId.slice(2),
    toBase64Url(
      new Uint8Array(
        await crypto.subtle.digest("SHA-256", fromBase64Url(identity.publicKey) as BufferSource),
      ),
    ).slice(0, 12),
  );
  const again = await loadIdentity(stored);
  assert.equal(again.publicKey, identity.publicKey);
});

Deno.test("a proof verifies for its own nonce and key only", async () => {
  const { identity } = await generateIdentity();
  const other = await generateIdentity();
  const nonce = newNonce();
  const signature = await signProof(identity, nonce);
  assert.ok(isSignatureText(signature));
  assert.equal(await verifyProof(identity.publicKey, nonce, signature), true);
  assert.equal(await verifyProof(identity.publicKey, newNonce(), signature), false, "replayed");
  assert.equal(await verifyProof(other.identity.publicKey, nonce, signature), false, "other key");
  // A character in the middle: every one of its 6 bits is signature (the last one's low bits
  // are padding, and changing them would change nothing).
  const flipped = signature.slice(0, 10) + (signature[10] === "A" ? "B" : "A") +
    signature.slice(11);
  assert.equal(await verifyProof(identity.publicKey, nonce, flipped), false, "tampered");
  for (const garbage of ["", "x", "!".repeat(86)]) {
    assert.equal(await verifyProof(identity.publicKey, nonce, garbage), false, garbage);
    assert.equal(await verifyProof(garbage, nonce, signature), false, garbage);
  }
});

Deno.test("nonces do not repeat", () => {
  const nonces = new Set(Array.from({ length: 1000 }, newNonce));
  assert.equal(nonces.size, 1000);
  for (const nonce of nonces) assert.ok(isKeyText(nonce));
});

Deno.test("base64url round-trips every byte value", () => {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(fromBase64Url(toBase64Url(bytes)), bytes);
  assert.doesNotMatch(toBase64Url(bytes), /[+/=]/);
});
