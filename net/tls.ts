/**
 * TLS, the second {@linkcode Transport}: the server's encrypted listener (next to the plain one),
 * and the client's connection, pinned by the server's key.
 *
 * The client checks the server by the fingerprint of its public key (SPKI SHA-256), not by its
 * name: a server is the same server whatever address it was dialled at (a LAN address, a
 * forwarded public one, a name its certificate does not list). `Deno.connectTls` always checks the
 * name and exposes no peer certificate, so the client uses `node:tls` with the certificate chain
 * left unchecked (`rejectUnauthorized: false`) and compares the key's fingerprint itself once the
 * handshake is done, before it sends a single byte: a server with another key gets nothing.
 * The server listens with `node:tls` too (see {@linkcode listenTls} for why).
 *
 * @module
 */

import { X509Certificate } from "node:crypto";
import tls from "node:tls";
import { fail, ok, type Result, type ServerAddress } from "../protocol.ts";
import { DialRefusal, errorText, type Transport } from "./conn.ts";
import { AcceptQueue, listenNode, SocketTransport, type StoppingListener } from "./node_socket.ts";
import { formatAddress } from "./tcp.ts";

/** How long a client has to finish its TLS handshake, in milliseconds. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** The most finished handshakes waiting for the gateway to take them. */
const MAX_WAITING_SOCKETS = 256;

/**
 * Listens for TLS connections with a certificate and key (PEM); resolves once it listens.
 *
 * It is `node:tls` rather than `Deno.listenTls`: a Deno TLS connection whose client never
 * finishes its handshake cannot be closed (the socket stays open after `close()`, measured), so
 * a few stalled handshakes a minute would use up the server's file descriptors. Here a
 * handshake has {@linkcode HANDSHAKE_TIMEOUT_MS}, and a failed one is destroyed at once.
 * @throws the listening errors (`EADDRINUSE`, `EADDRNOTAVAIL`, a key it cannot use).
 */
export async function listenTls(
  options: {
    hostname: string;
    port: number;
    certPem: string;
    keyPem: string;
    /** @default {HANDSHAKE_TIMEOUT_MS} */
    handshakeTimeoutMs?: number;
  },
): Promise<StoppingListener> {
  const queue = new AcceptQueue(MAX_WAITING_SOCKETS);
  const server = tls.createServer({
    cert: options.certPem,
    key: options.keyPem,
    handshakeTimeout: options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
  });
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    socket.setNoDelay(true);
    const address = (socket.remoteAddress ?? "unknown").replace(/^::ffff:/, "");
    if (!queue.offer(new SocketTransport(socket, address, "tls"))) socket.destroy();
  });
  // A plain client on the TLS port, a stalled or broken handshake: gone, quietly.
  server.on("tlsClientError", (_error: Error, socket: { destroy(): void }) => socket.destroy());
  const { addr, finished } = await listenNode(server, options.hostname, options.port);
  return {
    kind: "tls",
    addr,
    finished,
    accept: () => queue.accept(),
    close(): void {
      queue.close();
      server.close();
    },
  };
}

/** What the client knows of a server's key before connecting. */
export interface TlsPin {
  /** The fingerprint the server's key must have (from an invite, `--fingerprint`, or trust). */
  fingerprint?: string | undefined;
  /**
   * Called when there is no `fingerprint` to compare with (a first contact): resolves to whether
   * to go on with this server. Without it, a first contact is refused.
   */
  firstContact?: (fingerprint: string) => Promise<boolean>;
  /** What to say when the key is not `fingerprint` (with the command to accept the new one). */
  keyChangedText?: (expected: string, actual: string) => string;
}

/** Why a TLS connection was refused before anything was sent: the server's key was not the one. */
export class KeyMismatchError extends Error {
  constructor(
    readonly address: ServerAddress,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      `The server at ${formatAddress(address)} has another key than the one you trust: ` +
        `expected ${expected}, got ${actual}`,
    );
    this.name = "KeyMismatchError";
  }
}

/**
 * `SHA256:` and the base64 SHA-256 of DER bytes (a SubjectPublicKeyInfo), unpadded, as OpenSSH
 * writes key fingerprints. Kept here, not in `certs.ts`, so the client needs no x509 library.
 */
export async function fingerprintOf(spki: ArrayBuffer | Uint8Array): Promise<string> {
  const bytes = spki instanceof Uint8Array ? spki : new Uint8Array(spki);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return `SHA256:${btoa(String.fromCharCode(...digest)).replace(/=+$/, "")}`;
}

/**
 * A dialer (as `ChatClientOptions.dial` takes) for TLS pinned by `pin`. The handshake is done,
 * the server's key compared, and only then is the connection handed over; a server with another
 * key, or a first contact that is not trusted, gets nothing. Fails with one line for a person.
 */
export function dialTls(
  pin: TlsPin,
  onKey?: (fingerprint: string) => void,
): (address: ServerAddress, timeoutMs: number) => Promise<Result<Transport, string | DialRefusal>> {
  return async (address, timeoutMs) => {
    const shaken = await handshake(address, timeoutMs);
    if (!shaken.ok) return shaken;
    const { socket, fingerprint } = shaken.value;
    const refusal = await checkKey(address, fingerprint, pin);
    if (refusal) {
      socket.destroy();
      return fail(refusal);
    }
    onKey?.(fingerprint);
    // The server may have closed while the key was checked (a person deciding whether to trust
    // it can take longer than the server waits for a hello): the socket is gone, and wrapping it
    // would give a transport whose reads never end. The key was accepted all the same.
    if (socket.destroyed) {
      return fail(
        `Cannot connect to ${formatAddress(address)}: the server closed the connection while ` +
          "its key was being checked (try again)",
      );
    }
    socket.removeAllListeners("error");
    return ok(new SocketTransport(socket, address.hostname, "tls"));
  };
}

/** Why a server's key is refused, or `undefined` to go on. */
async function checkKey(
  address: ServerAddress,
  fingerprint: string,
  pin: TlsPin,
): Promise<DialRefusal | undefined> {
  if (pin.fingerprint !== undefined) {
    if (pin.fingerprint === fingerprint) return undefined;
    return new DialRefusal(
      "key_changed",
      pin.keyChangedText?.(pin.fingerprint, fingerprint) ??
        new KeyMismatchError(address, pin.fingerprint, fingerprint).message,
    );
  }
  if (pin.firstContact && await pin.firstContact(fingerprint)) return undefined;
  return new DialRefusal(
    "not_trusted",
    `${formatAddress(address)} is a server you have not trusted yet (its key is ` +
      `${fingerprint}): use its invite, or --fingerprint ${fingerprint} once you have checked it`,
  );
}

/**
 * Connects and completes the TLS handshake (the chain and name left unchecked: the key is
 * compared instead); resolves to the socket and the fingerprint of the server's key.
 */
function handshake(
  address: ServerAddress,
  timeoutMs: number,
): Promise<Result<{ socket: tls.TLSSocket; fingerprint: string }>> {
  return new Promise((resolve) => {
    const where = formatAddress(address);
    const isName = !/^[\d.]+$/.test(address.hostname) && !address.hostname.includes(":");
    const socket = tls.connect({
      host: address.hostname,
      port: address.port,
      rejectUnauthorized: false,
      ...(isName ? { servername: address.hostname } : {}),
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(fail(`Cannot connect to ${where}: no answer after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.once("error", (error: Error & { code?: string }) => {
      clearTimeout(timer);
      resolve(fail(tlsErrorText(where, error)));
    });
    socket.once("secureConnect", async () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      // Until the socket is handed over, an error must still be heard (one with no listener
      // would end the program); the socket is destroyed by it, which dialTls checks.
      socket.on("error", () => {});
      try {
        const raw = socket.getPeerCertificate(true)?.raw;
        if (!raw) throw new Error("the server sent no certificate");
        const spki = new X509Certificate(raw).publicKey.export({ type: "spki", format: "der" });
        socket.setNoDelay(true);
        resolve(ok({ socket, fingerprint: await fingerprintOf(new Uint8Array(spki)) }));
      } catch (error) {
        socket.destroy();
        resolve(fail(`Cannot read the key of ${where}: ${errorText(error)}`));
      }
    });
  });
}

/** A failed TLS connection in one line, with what to try. */
function tlsErrorText(where: string, error: Error & { code?: string }): string {
  switch (error.code) {
    case "ECONNREFUSED":
      return `Cannot connect to ${where}: connection refused (is the server running, and is ` +
        "this its TLS port?)";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `Cannot connect to ${where}: unknown host`;
    case "ECONNRESET":
    case "ERR_SSL_WRONG_VERSION_NUMBER":
    case "EPROTO":
      return `Cannot connect to ${where} with TLS: it does not speak TLS (the plain port? use ` +
        "the TLS port, usually 5051, or --plain)";
    default:
      return `Cannot connect to ${where} with TLS: ${errorText(error)}`;
  }
}
