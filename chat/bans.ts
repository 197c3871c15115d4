/**
 * The operator's bans: names, identities (key fingerprints) and IP addresses or networks kept
 * out, for good or for some minutes, kept in the store so they outlast a restart.
 *
 * Addresses are compared as addresses, not as text: an IPv4 address and its IPv4-mapped IPv6 form
 * (`10.0.0.5`, `::ffff:10.0.0.5`) are one address, every way of writing one IPv6 address is that
 * address, and a network in CIDR notation (`10.0.0.0/24`, `2001:db8::/32`) bans every address
 * in it.
 *
 * @module
 */

import {
  type BanInfo,
  checkName,
  fail,
  isFingerprint,
  ok,
  quoteInput,
  type Result,
} from "../protocol.ts";
import type { ChatStore, StoredBan } from "./store.ts";
import { nameSkeleton } from "./names.ts";

// ==== Addresses ====

/** An IP address or network as 128 bits (IPv4 inside `::ffff:0:0/96`) and a prefix length. */
export interface Network {
  bits: bigint;
  /** How many leading bits name the network: 128 for one address. */
  prefix: number;
}

const IPV4_MAPPED = 0xffffn << 32n;
const ALL_BITS = (1n << 128n) - 1n;

/** An IPv4 address (`10.0.0.5`) as 32 bits, or `undefined`. */
function parseIpv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
    return undefined;
  }
  return parts.reduce((bits, part) => (bits << 8n) | BigInt(Number(part)), 0n);
}

/** An IPv6 address in any of its textual forms (RFC 4291 §2.2) as 128 bits, or `undefined`. */
function parseIpv6(text: string): bigint | undefined {
  let groups = text.split(":");
  const last = groups.at(-1) ?? "";
  if (last.includes(".")) {
    // An embedded IPv4 address takes the place of the last two groups.
    const v4 = parseIpv4(last);
    if (v4 === undefined) return undefined;
    groups = [...groups.slice(0, -1), (v4 >> 16n).toString(16), (v4 & 0xffffn).toString(16)];
  }
  const joined = groups.join(":");
  const halves = joined.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : halves[0]!.split(":");
  const tail = halves.length === 2 ? (halves[1] === "" ? [] : halves[1]!.split(":")) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (!all.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return undefined;
  return all.reduce((bits, group) => (bits << 16n) | BigInt(parseInt(group, 16)), 0n);
}

/** An IP address as 128 bits (IPv4 as IPv4-mapped IPv6), or `undefined` for anything else. */
export function parseIp(text: string): bigint | undefined {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const v4 = parseIpv4(bare);
  if (v4 !== undefined) return IPV4_MAPPED | v4;
  return bare.includes(":") ? parseIpv6(bare) : undefined;
}

/**
 * The group an address counts in for the per-address limits: an IPv4 address is its own group;
 * an IPv6 address counts with its whole /64, since one subscriber usually gets a /64 (RFC 6177)
 * and can use any address in it. Text that is not an address is its own group.
 */
export function addressGroup(address: string): string {
  const bits = parseIp(address);
  if (bits === undefined || bits >> 32n === 0xffffn) return address;
  const network = (bits >> 64n).toString(16).padStart(16, "0").replace(/(.{4})(?!$)/g, "$1:");
  return `${network.replace(/(^|:)0{1,3}/g, "$1")}::/64`;
}

/**
 * Parses an address or a network in CIDR notation: `10.0.0.5`, `10.0.0.0/24`, `::1`,
 * `2001:db8::/32`, `::ffff:10.0.0.5`. An IPv4 prefix counts within the IPv4 part (`/24` is 24 of
 * its 32 bits).
 */
export function parseNetwork(text: string): Result<Network> {
  const [address = "", prefixText, ...extra] = text.split("/");
  const bits = parseIp(address);
  if (bits === undefined || extra.length > 0) {
    return fail(`Invalid address "${quoteInput(text)}": use an IPv4 or IPv6 address or network`);
  }
  const v4 = parseIpv4(address.replace(/^\[|\]$/g, "")) !== undefined;
  const max = v4 ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
      return fail(`Invalid network "${quoteInput(text)}": the prefix is 0-${max}`);
    }
    prefix = Number(prefixText);
  }
  const length = v4 ? prefix + 96 : prefix;
  return ok({ bits: bits & networkMask(length), prefix: length });
}

function networkMask(prefix: number): bigint {
  return prefix === 0 ? 0n : (ALL_BITS << BigInt(128 - prefix)) & ALL_BITS;
}

/** Whether an address (128 bits) lies in a network. */
export function inNetwork(address: bigint, network: Network): boolean {
  return (address & networkMask(network.prefix)) === network.bits;
}

function networkKey(network: Network): string {
  return `${network.bits.toString(16)}/${network.prefix}`;
}

function networkOfKey(key: string): Network {
  const [bits = "0", prefix = "128"] = key.split("/");
  return { bits: BigInt(`0x${bits}`), prefix: Number(prefix) };
}

// ==== Bans ====

/** A ban in force: what it names, how it is matched, until when, who made it and why. */
export type Ban = StoredBan;

/** What a ban names, parsed from what an operator typed. */
export interface BanTarget {
  kind: BanInfo["kind"];
  /** What it is matched by: a name key, a fingerprint, a network. */
  key: string;
  /** As typed, in normal form: `ann`, `SHA256:...`, `10.0.0.0/24`. */
  target: string;
}

/** Who or what a ban might keep out: any of a name, a key fingerprint and an address. */
export interface Arrival {
  name?: string;
  fingerprint?: string;
  address?: string;
}

/** Names, identities and addresses kept out, for good or until a time; kept in the store. */
export class Bans {
  #entries = new Map<string, Ban>();
  #store: ChatStore | undefined;
  #now: () => number;

  constructor(options: { store?: ChatStore | undefined; now?: () => number } = {}) {
    this.#store = options.store;
    this.#now = options.now ?? Date.now;
    for (const stored of this.#store?.bans(this.#now()) ?? []) {
      // A name ban is matched by the name's skeleton, recomputed in case it was stored by a
      // version that compared names differently.
      const ban = stored.kind === "name" ? { ...stored, key: nameSkeleton(stored.target) } : stored;
      this.#entries.set(entryKey(ban), ban);
      if (ban.key !== stored.key) {
        this.#store?.deleteBan(stored.kind, stored.key);
        this.#store?.saveBan(ban, this.#now());
      }
    }
  }

  /**
   * Reads what an operator typed as a ban target: `SHA256:...` is an identity, an address or a
   * network in CIDR notation is an address, anything else a name. Says why when it is none.
   */
  static target(text: string): Result<BanTarget> {
    if (text.startsWith("SHA256:")) {
      return isFingerprint(text)
        ? ok({ kind: "identity", key: text, target: text })
        : fail(`Invalid fingerprint "${quoteInput(text)}": copy it whole from /whois`);
    }
    if (/^[0-9.]+(\/\d*)?$/.test(text) || text.includes(":")) {
      const network = parseNetwork(text);
      if (!network.ok) return network;
      return ok({ kind: "address", key: networkKey(network.value), target: text });
    }
    const checked = checkName(text);
    if (!checked.ok) return checked;
    return ok({ kind: "name", key: nameSkeleton(checked.value), target: checked.value });
  }

  /** Bans a target, for `minutes` or (without) for good; replaces a ban of the same target. */
  add(
    target: BanTarget,
    options: { minutes?: number | undefined; by: string; reason?: string | undefined },
  ): Ban {
    const ban: Ban = {
      ...target,
      ...(options.minutes === undefined ? {} : { until: this.#now() + options.minutes * 60_000 }),
      by: options.by,
      ...(options.reason ? { reason: options.reason } : {}),
    };
    this.#entries.set(entryKey(ban), ban);
    this.#store?.saveBan(ban, this.#now());
    return ban;
  }

  /** Lifts a ban; returns whether there was one. */
  remove(target: BanTarget): boolean {
    this.#store?.deleteBan(target.kind, target.key);
    return this.#entries.delete(entryKey(target));
  }

  /** The bans in force. */
  list(): Ban[] {
    return [...this.#entries.values()].filter((ban) => this.#inForce(ban));
  }

  /** The ban that keeps out someone with this name, key or address, if any. */
  find(arrival: Arrival): Ban | undefined {
    if (arrival.name !== undefined) {
      const ban = this.#entries.get(`name ${nameSkeleton(arrival.name)}`);
      if (ban && this.#inForce(ban)) return ban;
    }
    if (arrival.fingerprint !== undefined) {
      const ban = this.#entries.get(`identity ${arrival.fingerprint}`);
      if (ban && this.#inForce(ban)) return ban;
    }
    const address = arrival.address === undefined ? undefined : parseIp(arrival.address);
    if (address !== undefined) {
      for (const ban of this.#entries.values()) {
        if (ban.kind === "address" && inNetwork(address, networkOfKey(ban.key))) {
          if (this.#inForce(ban)) return ban;
        }
      }
    }
    return undefined;
  }

  #inForce(ban: Ban): boolean {
    if (ban.until === undefined || ban.until > this.#now()) return true;
    this.#entries.delete(entryKey(ban));
    return false;
  }
}

function entryKey(target: Pick<BanTarget, "kind" | "key">): string {
  return `${target.kind} ${target.key}`;
}
