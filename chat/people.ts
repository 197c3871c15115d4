/**
 * What belongs to people with a key: the names they registered (only their key may use such a
 * name, in any case or look-alike form) and whether they are the server's operators. Both are
 * kept in the store, so they outlast a restart.
 *
 * @module
 */

import { fail, ok, type Result } from "../protocol.ts";
import type { ChatStore } from "./store.ts";
import { nameSkeleton } from "./names.ts";

/** How many names one key may register: enough for a person, too few to hoard names. */
export const MAX_NAMES_PER_KEY = 3;
/**
 * How many names the server keeps registered in all: keys cost nothing to make, so without a
 * bound the table would grow as long as somebody kept making them.
 */
export const MAX_REGISTERED_NAMES = 100_000;

/** Options for {@linkcode People}. */
export interface PeopleOptions {
  /** Where registrations and operators are kept; without one they last as long as the server. */
  store?: ChatStore | undefined;
  /**
   * Fingerprints of operators given on the command line (`--op`); they are operators for as long
   * as the server runs with them, and are not stored.
   * @default {[]}
   */
  operators?: readonly string[];
  /**
   * The clock, in milliseconds since the epoch.
   * @default {Date.now}
   */
  now?: () => number;
  /**
   * The most names registered in all.
   * @default {MAX_REGISTERED_NAMES}
   */
  maxNames?: number;
}

/** An operator as listed: fingerprint, the name they had when made one, and how. */
export interface OperatorEntry {
  fingerprint: string;
  name: string;
  /** `flag` for `--op`, `console` for one made with `/op`. */
  source: "flag" | "console";
}

/** Registered names and operators, by key fingerprint. */
export class People {
  /** Registered names by name key: the name as written and its owner's fingerprint. */
  #names = new Map<string, { name: string; owner: string }>();
  #operators = new Map<string, OperatorEntry>();
  #store: ChatStore | undefined;
  #now: () => number;
  #maxNames: number;

  constructor(options: PeopleOptions = {}) {
    this.#store = options.store;
    this.#maxNames = options.maxNames ?? MAX_REGISTERED_NAMES;
    this.#now = options.now ?? Date.now;
    for (const { key, name, owner } of this.#store?.names() ?? []) {
      // Keys are recomputed, so a store from a version that compared names differently still
      // keeps each name for its owner.
      const current = nameSkeleton(name);
      this.#names.set(current, { name, owner });
      if (current !== key) {
        this.#store?.deleteName(key);
        this.#store?.saveName({ key: current, name, owner }, this.#now());
      }
    }
    for (const { fingerprint, name } of this.#store?.operators() ?? []) {
      this.#operators.set(fingerprint, { fingerprint, name, source: "console" });
    }
    for (const fingerprint of options.operators ?? []) {
      this.#operators.set(fingerprint, { fingerprint, name: "", source: "flag" });
    }
  }

  /** The fingerprint of the key a name is registered to (in any case or look-alike form). */
  ownerOf(name: string): string | undefined {
    return this.#names.get(nameSkeleton(name))?.owner;
  }

  /** The names registered to a key. */
  namesOf(fingerprint: string): string[] {
    return [...this.#names.values()].filter((n) => n.owner === fingerprint).map((n) => n.name);
  }

  /**
   * Registers a name to a key. Fails when it belongs to another key, the key already has
   * {@linkcode MAX_NAMES_PER_KEY} names, or the server has its most names
   * ({@linkcode PeopleOptions.maxNames}).
   */
  register(name: string, fingerprint: string): Result<void> {
    const owner = this.ownerOf(name);
    if (owner === fingerprint) return ok(undefined);
    if (owner !== undefined) return fail(`The name "${name}" is registered to someone else`);
    if (this.#names.size >= this.#maxNames) {
      return fail("The server has no room for more registered names: ask its operator");
    }
    const own = this.namesOf(fingerprint);
    if (own.length >= MAX_NAMES_PER_KEY) {
      return fail(
        `Your key already has ${MAX_NAMES_PER_KEY} names (${own.join(", ")}): ` +
          "/unregister one of them first",
      );
    }
    const entry = { key: nameSkeleton(name), name, owner: fingerprint };
    this.#names.set(entry.key, entry);
    this.#store?.saveName(entry, this.#now());
    return ok(undefined);
  }

  /** Frees a registered name (whoever owns it); returns whether it was registered. */
  release(name: string): boolean {
    const key = nameSkeleton(name);
    if (!this.#names.has(key)) return false;
    this.#names.delete(key);
    this.#store?.deleteName(key);
    return true;
  }

  /** Whether the key with this fingerprint belongs to an operator. */
  isOperator(fingerprint: string | undefined): boolean {
    return fingerprint !== undefined && this.#operators.has(fingerprint);
  }

  /** Makes a key an operator (stored), noting the name its person had. */
  addOperator(fingerprint: string, name: string, by: string): void {
    if (this.#operators.get(fingerprint)?.source === "flag") return;
    this.#operators.set(fingerprint, { fingerprint, name, source: "console" });
    this.#store?.saveOperator({ fingerprint, name }, by, this.#now());
  }

  /**
   * Takes operator powers from a key; returns `false` when it had none, or has them from `--op`
   * (only a restart without the flag takes those).
   */
  removeOperator(fingerprint: string): boolean {
    if (this.#operators.get(fingerprint)?.source !== "console") return false;
    this.#operators.delete(fingerprint);
    this.#store?.deleteOperator(fingerprint);
    return true;
  }

  /** Every operator. */
  operators(): OperatorEntry[] {
    return [...this.#operators.values()];
  }
}
