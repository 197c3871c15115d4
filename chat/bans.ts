/**
 * The operator's bans: names and IP addresses kept out, for good or for some minutes.
 *
 * @module
 */

import { checkHost, checkName, fail, nameKey, ok, type Result } from "../protocol.ts";

/** What a ban names: a person's name, or an IP address. */
export type BanTarget = { kind: "name"; key: string; shown: string } | {
  kind: "address";
  key: string;
  shown: string;
};

/** Names and IP addresses kept out, for good or until a time. */
export class Bans {
  #entries = new Map<string, { target: BanTarget; until: number }>();
  #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Reads `ann` or `10.0.0.5` (or `::1`) as a ban target, or says why it is neither. */
  static target(text: string): Result<BanTarget> {
    if (/^[0-9.]+$/.test(text) || text.includes(":")) {
      const host = checkHost(text);
      if (!host.ok) return host;
      return ok({ kind: "address", key: `address ${text.toLowerCase()}`, shown: text });
    }
    const checked = checkName(text);
    if (!checked.ok) return fail(checked.error);
    return ok({ kind: "name", key: `name ${nameKey(checked.value)}`, shown: checked.value });
  }

  /** Bans a target, for `minutes` or (without) for good. */
  add(target: BanTarget, minutes?: number): void {
    const until = minutes === undefined ? Infinity : this.#now() + minutes * 60_000;
    this.#entries.set(target.key, { target, until });
  }

  /** Lifts a ban; returns whether there was one. */
  remove(target: BanTarget): boolean {
    return this.#entries.delete(target.key);
  }

  /** Whether a name or an address is banned now. */
  has(kind: BanTarget["kind"], value: string): boolean {
    const key = kind === "name" ? `name ${nameKey(value)}` : `address ${value.toLowerCase()}`;
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    if (entry.until > this.#now()) return true;
    this.#entries.delete(key);
    return false;
  }

  /** The bans in force, with when each ends (`Infinity`: never). */
  list(): { target: BanTarget; until: number }[] {
    return [...this.#entries.values()].filter((e) => e.until > this.#now());
  }
}
