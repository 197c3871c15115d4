/**
 * Where the client connects and how it knows it reached the right server: an invite (the address,
 * the server's key, a room, a one-time secret) or a plain address; TLS with the key pinned (from
 * the invite, `--fingerprint`, or the known-servers file), or, with `--plain`, unencrypted TCP.
 *
 * What happens at a first contact (no key known for that address): a key trusted at another
 * address is the same server, accepted at once; otherwise a person on a terminal is shown the
 * fingerprint and asked, and a script is refused unless it asked for trust on first use
 * (`--tofu`). A known address answering with another key is a hard stop that says both keys and
 * how to accept the new one.
 *
 * @module
 */

import { type DialRefusal, type Transport } from "../net/conn.ts";
import { dialTcp, formatAddress } from "../net/tcp.ts";
import { dialTls } from "../net/tls.ts";
import {
  DEFAULT_PORT,
  DEFAULT_TLS_PORT,
  ok,
  parseAddress,
  parseInvite,
  type Result,
  type ServerAddress,
} from "../protocol.ts";
import type { KnownServers } from "./config.ts";

/** Where to connect: an address, and what an invite adds to it. */
export interface ServerTarget {
  address: ServerAddress;
  /** The server's key, from an invite. */
  fingerprint?: string;
  /** A room to join, from an invite. */
  room?: string;
  /** A one-time secret, from an invite, for a private server. */
  secret?: string;
  /** Whether the target came from an invite. */
  invited: boolean;
}

/**
 * Reads what a person gave as the server: an invite (`chat://...`, always TLS), or
 * `host[:port]`, where the port is the TLS one (5051) unless `plain` (5050).
 */
export function parseTarget(text: string, options: { plain: boolean }): Result<ServerTarget> {
  const invite = parseInvite(text);
  if (invite !== undefined) {
    if (!invite.ok) return invite;
    return ok({ ...invite.value, invited: true });
  }
  // The address rules (and their errors: a scheme, an IPv6 address that ends like a port) are
  // parseAddress's; only the default port differs.
  const address = parseAddress(text);
  if (!address.ok) return address;
  const hasPort = /\]:\d+$|^[^:\[\]]*:\d+$/.test(text.trim());
  const port = options.plain ? DEFAULT_PORT : DEFAULT_TLS_PORT;
  return ok({
    address: hasPort ? address.value : { ...address.value, port },
    invited: false,
  });
}

/** How to reach a target. */
export interface DialSettings {
  /** Connect without TLS (to the plain port). */
  plain: boolean;
  /** A key given on the command line (`--fingerprint`): it wins over what is remembered. */
  fingerprint?: string | undefined;
  /** Trust a server seen for the first time without asking (`--tofu`, for scripts). */
  tofu: boolean;
  /** The servers trusted before. */
  known: KnownServers;
  /**
   * Asks a person whether to trust a server seen for the first time (its fingerprint shown);
   * without it (a script), such a server is refused unless `tofu`.
   */
  confirm?: (address: ServerAddress, fingerprint: string) => Promise<boolean>;
}

/** What the client knows of the connection it made: for the prompt and `/server`. */
export interface ConnectionFacts {
  /** `tls` with the key checked, or `plain`. */
  security: "tls" | "plain";
  /** The server's key, when over TLS. */
  fingerprint: string | undefined;
}

/**
 * A dialer for `ChatClientOptions.dial`: TLS pinned as the module says, or plain TCP; `facts`
 * is filled in as connections are made. A key trusted here is remembered for the address.
 */
export function dialerFor(
  target: ServerTarget,
  settings: DialSettings,
  facts: ConnectionFacts,
): (address: ServerAddress, timeoutMs: number) => Promise<Result<Transport, string | DialRefusal>> {
  // An invite is always TLS: it names the key (with --plain it is refused on the command line,
  // but `/connect` may bring one into a plain session).
  if (settings.plain && !target.invited) {
    facts.security = "plain";
    return dialTcp;
  }
  facts.security = "tls";
  const where = formatAddress(target.address);
  const given = target.fingerprint ?? settings.fingerprint;
  const remembered = settings.known.at(where);
  const pin = {
    fingerprint: given ?? remembered,
    firstContact: async (fingerprint: string) =>
      settings.known.trusts(fingerprint) || settings.tofu ||
      (settings.confirm !== undefined && await settings.confirm(target.address, fingerprint)),
    keyChangedText: (expected: string, actual: string) =>
      `${
        given !== undefined
          ? `The server at ${where} does not have the key ${
            target.invited ? "its invite names" : "--fingerprint gives"
          }: expected ${expected}, got ${actual}.`
          : `The server at ${where} has another key than before: it had ${expected}, it has ` +
            `${actual}.`
      } Nothing was sent. Someone may be in the way; if its operator says the key changed, ` +
      `accept the new one with: deno task client ${where} --fingerprint ${actual}`,
  };
  return dialTls(pin, (fingerprint) => {
    facts.fingerprint = fingerprint;
    settings.known.trust(where, fingerprint);
    // Once trusted, later connections (reconnections) need no question.
    pin.fingerprint = fingerprint;
  });
}
