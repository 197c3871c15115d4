/**
 * Private servers: who may come in. A server with a password (`--password-file`), an allowlist of
 * identity fingerprints (`--allow`, like ssh-chat's whitelist), or both admits a person who holds
 * an allowed key, or knows the password, or brings a one-time invite the operator made; the
 * server's operators always. A server with neither admits everyone.
 *
 * The password is compared in constant time (of their SHA-256 digests, so the length leaks
 * nothing either). Three wrong passwords from one address make it wait: 10 s, then twice as long
 * for each wrong one after.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import { type ErrorFrame, errorFrame } from "../protocol.ts";
import { addressGroup } from "./bans.ts";

/** Wrong passwords one address may give before it must wait. */
export const PASSWORD_TRIES = 3;
/** The first wait after {@linkcode PASSWORD_TRIES} wrong passwords, in milliseconds. */
export const PASSWORD_WAIT_MS = 10_000;
/** The longest wait, in milliseconds. */
const MAX_PASSWORD_WAIT_MS = 15 * 60_000;
/** How long a one-time invite stays good, in milliseconds (a day). */
export const INVITE_LIFETIME_MS = 24 * 60 * 60 * 1000;
/** The most one-time invites waiting to be used; making one more forgets the oldest. */
const MAX_INVITES = 1000;
/** The most addresses whose wrong passwords are remembered. */
const MAX_FAILING_ADDRESSES = 10_000;

/** Options for {@linkcode Access}. */
export interface AccessOptions {
  /** The password, when the server has one. */
  password?: string | undefined;
  /** The fingerprints (`SHA256:...`) of the identities admitted without a password. */
  allowed?: Iterable<string> | undefined;
  /** The clock, in milliseconds since the epoch. @default {Date.now} */
  now?: () => number;
}

/** Who is asking to come in. */
export interface Applicant {
  /** The fingerprint of their verified key, if they have one. */
  fingerprint: string | undefined;
  /** Whether they are one of the server's operators. */
  operator: boolean;
  /** Where they connect from. */
  address: string;
  /** The password they gave. */
  password: string | undefined;
  /** The one-time invite secret they gave. */
  invite: string | undefined;
}

/** Who may come in to a private server. */
export class Access {
  #password: Uint8Array | undefined;
  #allowed: Set<string>;
  #now: () => number;
  /** One-time invite secrets, with when they stop being good; oldest first. */
  #invites = new Map<string, number>();
  /** Per address group: wrong passwords given, and until when it must wait. */
  #failures = new Map<string, { count: number; until: number }>();

  constructor(options: AccessOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#allowed = new Set(options.allowed ?? []);
    this.#password = options.password === undefined ? undefined : digest(options.password);
  }

  /** Whether the server admits only some people. */
  get isPrivate(): boolean {
    return this.#password !== undefined || this.#allowed.size > 0;
  }

  /** Whether the server has a password (people without an allowed key are asked for it). */
  get hasPassword(): boolean {
    return this.#password !== undefined;
  }

  /**
   * Why someone may not come in, or `undefined` when they may. A good invite is used up; a wrong
   * password counts against the address.
   */
  refusal(who: Applicant): ErrorFrame | undefined {
    if (!this.isPrivate || who.operator) return undefined;
    if (who.fingerprint !== undefined && this.#allowed.has(who.fingerprint)) return undefined;
    if (who.invite !== undefined && this.#useInvite(who.invite)) return undefined;
    if (this.#password === undefined) {
      return errorFrame(
        "not_admitted",
        who.fingerprint === undefined
          ? "This server admits only the identities it lists: connect with your identity " +
            "and ask its operator to add your fingerprint"
          : `This server does not list your identity (${who.fingerprint}): ask its operator`,
      );
    }
    const group = addressGroup(who.address);
    const waiting = this.#waitFor(group);
    if (waiting > 0) {
      return errorFrame(
        "rate_limited",
        `Too many wrong passwords from your address: try again in ${Math.ceil(waiting / 1000)} s`,
      );
    }
    if (who.password === undefined || who.password === "") {
      return errorFrame("password_required", "This server is private: give its password");
    }
    if (timingSafeEqual(digest(who.password), this.#password)) {
      this.#failures.delete(group);
      return undefined;
    }
    const left = this.#fail(group);
    return errorFrame(
      "password_required",
      left > 0
        ? `Wrong password: try again (${left} more ${left === 1 ? "try" : "tries"} before a wait)`
        : `Wrong password: wait ${Math.ceil(this.#waitFor(group) / 1000)} s before trying again`,
    );
  }

  /** Makes a one-time invite secret: it admits one person, once, within a day. */
  makeInvite(): string {
    const bytes = crypto.getRandomValues(new Uint8Array(18));
    const secret = btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
    if (this.#invites.size >= MAX_INVITES) {
      const [oldest] = this.#invites.keys();
      this.#invites.delete(oldest!);
    }
    this.#invites.set(secret, this.#now() + INVITE_LIFETIME_MS);
    return secret;
  }

  #useInvite(secret: string): boolean {
    const until = this.#invites.get(secret);
    if (until === undefined) return false;
    this.#invites.delete(secret);
    return until > this.#now();
  }

  /** How long an address must still wait before its next password, in milliseconds. */
  #waitFor(group: string): number {
    const failures = this.#failures.get(group);
    return failures ? Math.max(0, failures.until - this.#now()) : 0;
  }

  /** Counts a wrong password; returns how many tries are left before a wait. */
  #fail(group: string): number {
    if (!this.#failures.has(group) && this.#failures.size >= MAX_FAILING_ADDRESSES) {
      const [oldest] = this.#failures.keys();
      this.#failures.delete(oldest!);
    }
    const failures = this.#failures.get(group) ?? { count: 0, until: 0 };
    failures.count++;
    if (failures.count >= PASSWORD_TRIES) {
      const doublings = failures.count - PASSWORD_TRIES;
      failures.until = this.#now() +
        Math.min(MAX_PASSWORD_WAIT_MS, PASSWORD_WAIT_MS * 2 ** Math.min(doublings, 20));
    }
    this.#failures.set(group, failures);
    return Math.max(0, PASSWORD_TRIES - failures.count);
  }
}

/** The SHA-256 of a password's UTF-8 bytes. */
function digest(password: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(password, "utf8").digest());
}
