/**
 * Identities: Ed25519 key pairs made and used with WebCrypto (built into Deno and browsers). A
 * client proves it holds its key by signing the server's fresh nonce ({@linkcode proofText}); the
 * server checks the signature and from then on knows the person by the key's fingerprint.
 *
 * Keys travel as 32 raw bytes in base64url; fingerprints are shown as OpenSSH shows them
 * (`SHA256:` and the hash in base64), and a person id (`k:` and 12 characters) is cut from the
 * same hash.
 *
 * @module
 */

import { isKeyText, isSignatureText, proofText } from "../protocol.ts";

const ED25519 = { name: "Ed25519" } as const;
const encoder = new TextEncoder();

/** A key pair that can sign hellos. */
export interface Identity {
  /** The public key: 32 bytes, base64url. */
  readonly publicKey: string;
  /** Signs bytes with the private key; resolves to the 64-byte signature. */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** What is known about a verified key. */
export interface KeyFacts {
  /** The public key: 32 bytes, base64url. */
  publicKey: string;
  /** `SHA256:` and the key's hash in base64, as people compare it. */
  fingerprint: string;
  /** `k:` and 12 base64url characters of the same hash: the person's id in frames. */
  personId: string;
}

/** Bytes as base64url without padding. */
export function toBase64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_");
}

/** base64url without padding as bytes. */
export function fromBase64Url(text: string): Uint8Array {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - base64.length % 4) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/=+$/, "");
}

/** The fingerprint and person id of a public key (base64url, 32 bytes). */
export async function keyFacts(publicKey: string): Promise<KeyFacts> {
  const hash = new Uint8Array(
    await crypto.subtle.digest("SHA-256", fromBase64Url(publicKey) as BufferSource),
  );
  return {
    publicKey,
    fingerprint: `SHA256:${toBase64(hash)}`,
    personId: `k:${toBase64Url(hash).slice(0, 12)}`,
  };
}

/** A fresh nonce for a challenge: 32 random bytes, base64url. */
export function newNonce(): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
}

/**
 * Whether `signature` is the key's signature of {@linkcode proofText} for this nonce. Anything
 * malformed (a key or signature of the wrong length, not base64url) is simply not a proof.
 */
export async function verifyProof(
  publicKey: string,
  nonce: string,
  signature: string,
): Promise<boolean> {
  if (!isKeyText(publicKey) || !isSignatureText(signature)) return false;
  try {
    const key = await crypto.subtle.importKey(
      "raw",
      fromBase64Url(publicKey) as BufferSource,
      ED25519,
      false,
      ["verify"],
    );
    return await crypto.subtle.verify(
      ED25519,
      key,
      fromBase64Url(signature) as BufferSource,
      encoder.encode(proofText(nonce, publicKey)),
    );
  } catch {
    return false;
  }
}

/** Signs the proof for a challenge's nonce with an identity; resolves to base64url. */
export async function signProof(identity: Identity, nonce: string): Promise<string> {
  const signature = await identity.sign(encoder.encode(proofText(nonce, identity.publicKey)));
  return toBase64Url(signature);
}

/** An identity as stored: the private key in PKCS #8 and the public key, both base64url. */
export interface StoredIdentity {
  privateKey: string;
  publicKey: string;
}

/** Makes a new Ed25519 identity, with its stored form. */
export async function generateIdentity(): Promise<{ identity: Identity; stored: StoredIdentity }> {
  const pair = await crypto.subtle.generateKey(ED25519, true, ["sign", "verify"]) as CryptoKeyPair;
  const stored = {
    privateKey: toBase64Url(
      new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey)),
    ),
    publicKey: toBase64Url(new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey))),
  };
  return { identity: identityOf(pair.privateKey, stored.publicKey), stored };
}

/**
 * Loads a stored identity.
 * @throws {TypeError} when the stored keys are not an Ed25519 key pair that belong together.
 */
export async function loadIdentity(stored: StoredIdentity): Promise<Identity> {
  if (!isKeyText(stored.publicKey)) throw new TypeError("the public key is not 32 bytes");
  let privateKey: CryptoKey;
  try {
    privateKey = await crypto.subtle.importKey(
      "pkcs8",
      fromBase64Url(stored.privateKey) as BufferSource,
      ED25519,
      false,
      ["sign"],
    );
  } catch {
    throw new TypeError("the private key is not an Ed25519 key");
  }
  const identity = identityOf(privateKey, stored.publicKey);
  // A key pair that does not belong together would fail every hello: say so now.
  const probe = newNonce();
  if (!await verifyProof(stored.publicKey, probe, await signProof(identity, probe))) {
    throw new TypeError("the private key does not belong to the public key");
  }
  return identity;
}

function identityOf(privateKey: CryptoKey, publicKey: string): Identity {
  return {
    publicKey,
    sign: async (data) =>
      new Uint8Array(await crypto.subtle.sign(ED25519, privateKey, data as BufferSource)),
  };
}
