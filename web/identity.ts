/**
 * The browser's identity: an Ed25519 key pair made with WebCrypto and kept in IndexedDB, one per
 * name typed in the join form (so two tabs under two names are two people). The private key is
 * made non-extractable: the page can sign with it, but no script can read it out. Browsers offer
 * WebCrypto only in secure contexts (https, or http on localhost); elsewhere there is no
 * identity, and the page resumes with its stored token alone.
 *
 * @module
 */

import { proofText } from "../protocol.ts";

/** A key pair that can sign the server's challenge. */
export interface PageIdentity {
  /** The public key: 32 bytes, base64url. */
  publicKey: string;
  /** Signs the proof for a challenge's nonce; resolves to the signature in base64url. */
  prove(nonce: string): Promise<string>;
}

const ED25519 = { name: "Ed25519" } as const;
const DATABASE = "chat";
const STORE = "keys";

/** Bytes as base64url without padding. */
export function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

/**
 * The identity kept for a name, made on first use; `undefined` where the browser cannot keep
 * one (not a secure context, no IndexedDB, no Ed25519).
 */
export async function identityFor(nameKey: string): Promise<PageIdentity | undefined> {
  if (!globalThis.isSecureContext || !globalThis.indexedDB || !crypto.subtle) return undefined;
  try {
    const db = await openDatabase();
    try {
      let pair = await request<CryptoKeyPair | undefined>(
        db.transaction(STORE).objectStore(STORE).get(nameKey),
      );
      if (!pair) {
        pair = await crypto.subtle.generateKey(ED25519, false, ["sign", "verify"]) as CryptoKeyPair;
        await request(db.transaction(STORE, "readwrite").objectStore(STORE).put(pair, nameKey));
      }
      return await identityOf(pair);
    } finally {
      db.close();
    }
  } catch (error) {
    console.warn("chat: no identity in this browser:", error);
    return undefined;
  }
}

async function identityOf(pair: CryptoKeyPair): Promise<PageIdentity> {
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const publicKey = toBase64Url(raw);
  return {
    publicKey,
    prove: async (nonce) => {
      const data = new TextEncoder().encode(proofText(nonce, publicKey));
      return toBase64Url(new Uint8Array(await crypto.subtle.sign(ED25519, pair.privateKey, data)));
    },
  };
}

function openDatabase(): Promise<IDBDatabase> {
  const opening = indexedDB.open(DATABASE, 1);
  opening.onupgradeneeded = () => opening.result.createObjectStore(STORE);
  return request(opening);
}

function request<T>(req: IDBRequest<T> | IDBRequest): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result as T);
    req.onerror = () => reject(req.error);
  });
}
