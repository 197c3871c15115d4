/**
 * Sessions: what keeps a person's place when the connection does not last. A member whose
 * connection drops is held (name and rooms kept, shown as away) for a grace period; its client
 * resumes with the token from its welcome, or by proving its key again, and gets exactly the
 * messages it missed. A session let go after the grace, or held across a server restart, can
 * still be resumed for a while. A session belongs to a person: a keyed session comes back only to
 * its key, whatever name or token a hello offers.
 *
 * @module
 */

import {
  checkName,
  type ErrorFrame,
  errorFrame,
  type HelloFrame,
  ok,
  type Result,
  type WelcomeFrame,
} from "../protocol.ts";
import {
  cleanClientInfo,
  describeClient,
  type Directory,
  fitBudget,
  type Member,
  type Peer,
  type Person,
} from "./directory.ts";
import { type ChatStore, type StoredSession, tokenHash } from "./store.ts";

/** How long a member whose connection was lost is waited for, in milliseconds. */
export const GRACE_MS = 60_000;
/** How long after being let go a session can still be resumed, in milliseconds. */
export const RESUME_WINDOW_MS = 24 * 60 * 60 * 1000;
/** The most missed messages looked up on resuming; the byte budget usually binds first. */
const MAX_REPLAY = 5000;
/** The away message of somebody whose connection was lost. */
export const CONNECTION_LOST = "connection lost";

/** Options for {@linkcode Sessions}. */
export interface SessionsOptions {
  /** How long a dropped member is held, in milliseconds; 0 lets it go at once. */
  graceMs: number;
  /** How long after being let go a session can still be resumed, in milliseconds. */
  resumeWindowMs: number;
  /** The most bytes of missed messages replayed in one go. */
  replayBytes: number;
  /** The chat's clock, in milliseconds since the epoch. */
  now: () => number;
  /** Lines for the operator. */
  log: (line: string) => void;
}

/** What the sessions need from the hub they serve. */
export interface SessionHooks {
  /** The welcome for a member, `resumed` or new. */
  welcome(member: Member, resumed: boolean): WelcomeFrame;
  /** The ordering barrier: lets messages still waiting for their commit go first. */
  deliverPendingMessages(): void;
  /** Removes a member from the chat, telling its rooms why; returns whether it was present. */
  forget(member: Member, reason: string): boolean;
  /**
   * Why somebody may not come back under a name (a ban, a name registered to another key), or
   * `undefined` when they may.
   */
  refusal(who: { name: string; person: Person; address: string }): ErrorFrame | undefined;
}

/** The outcome of a hello carrying a resume token: the member, or why not. */
export type ResumeResult = Result<Member, ErrorFrame>;

/**
 * Holding, resuming, letting go and restoring sessions, over the hub's {@linkcode Directory} and
 * (when there is one) the store, where sessions outlive the process.
 */
export class Sessions {
  #directory: Directory;
  #store: ChatStore | undefined;
  #options: SessionsOptions;
  #hooks: SessionHooks;

  constructor(
    directory: Directory,
    store: ChatStore | undefined,
    options: SessionsOptions,
    hooks: SessionHooks,
  ) {
    this.#directory = directory;
    this.#store = store;
    this.#options = options;
    this.#hooks = hooks;
  }

  /** Whether dropped members are held at all (a grace period above 0). */
  get holding(): boolean {
    return this.#options.graceMs > 0;
  }

  /** Records where a member is (its name and rooms, the current one last), for resuming. */
  save(member: Member): void {
    const rooms = [...member.rooms].filter((r) => r !== member.current).map((r) => r.name);
    this.#store?.saveSession({
      tokenHash: member.tokenHash,
      person: member.person.id,
      publicKey: member.person.key?.publicKey ?? null,
      fingerprint: member.person.key?.fingerprint ?? null,
      name: member.name,
      rooms: [...rooms, member.current.name],
      since: member.since,
    });
  }

  /** Forgets a member's session for good: it left on purpose or was removed. */
  drop(member: Member): void {
    this.#store?.dropSession(member.tokenHash);
  }

  /**
   * Holds a member whose connection was lost: its name and rooms stay, it shows as away, and the
   * others sharing a small enough room hear so. It is let go at the end of the grace period.
   */
  hold(member: Member, peer: Peer, reason: string): void {
    const awayBefore = member.away;
    member.away = CONNECTION_LOST;
    this.#holdFor(member, peer.address, awayBefore);
    this.#directory.toCompany(member, {
      type: "presence",
      name: member.name,
      ts: this.#options.now(),
      away: CONNECTION_LOST,
    }, { news: true });
    this.#options.log(
      `${peer.address} ~ ${member.name} lost the connection (${reason}); holding the name`,
    );
  }

  /**
   * Gives a session back to a new connection: the session of the hello's `resume` token, or
   * (for a hello with a verified key) the person's own session, whether still present (held, or
   * live on a connection that may be dead) or let go within the resume window. A keyed session
   * comes back only to the same key. Returns `undefined` when there is no such session: the
   * hello then counts as a new arrival.
   */
  resume(peer: Peer, hello: HelloFrame, person: Person | undefined): ResumeResult | undefined {
    if (hello.resume !== undefined) {
      const hash = tokenHash(hello.resume);
      const present = this.#directory.memberByToken(hash);
      if (present && samePerson(present.person, person)) {
        return this.#takeOver(present, peer, hello);
      }
      const stored = this.#store?.session(hash);
      if (stored && this.#resumable(stored) && samePerson(personOf(stored), person)) {
        return this.#comeBack(stored, peer, hello);
      }
    }
    if (person?.key === undefined) return undefined;
    const present = this.#directory.memberByPerson(person.id);
    if (present) return this.#takeOver(present, peer, hello);
    const stored = this.#store?.sessionOfPerson(person.id);
    if (stored && this.#resumable(stored)) return this.#comeBack(stored, peer, hello);
    return undefined;
  }

  #resumable(stored: StoredSession): boolean {
    return (stored.leftAt ?? Infinity) >= this.#options.now() - this.#options.resumeWindowMs;
  }

  /** After a restart, everyone who was present is held as if their connection was just lost. */
  restore(): void {
    if (!this.#store) return;
    const now = this.#options.now();
    for (const session of this.#store.sessions(now - this.#options.resumeWindowMs)) {
      const checked = checkName(session.name);
      if (session.leftAt !== null || !checked.ok || this.#directory.member(checked.value)) continue;
      if (this.#directory.memberByPerson(session.person)) continue;
      const member = this.#directory.add({
        person: personOf(session),
        name: checked.value,
        info: {},
        // A placeholder for the line below, which holds the member.
        link: { state: "live", peer: NO_PEER },
        token: undefined,
        tokenHash: session.tokenHash,
        since: session.since,
      });
      member.away = CONNECTION_LOST;
      this.#enterRooms(member, session.rooms);
      this.#holdFor(member, "-", undefined);
    }
  }

  /** Stops every grace timer; the sessions stay stored, to be held again after a restart. */
  close(): void {
    for (const member of this.#directory.members) {
      if (member.link.state === "held") clearTimeout(member.link.timer);
    }
  }

  #holdFor(member: Member, address: string, awayBefore: string | undefined): void {
    const { graceMs, now } = this.#options;
    const timer = setTimeout(() => this.#letGo(member), graceMs);
    member.link = { state: "held", address, until: now() + graceMs, timer, awayBefore };
  }

  /** The grace period is over: the member leaves, but its session can still be resumed. */
  #letGo(member: Member): void {
    this.#hooks.deliverPendingMessages();
    if (!this.#hooks.forget(member, CONNECTION_LOST)) return;
    this.#store?.sessionLeft(member.tokenHash, this.#options.now());
  }

  /** Gives a present member to a new connection: its rooms, then exactly what it missed. */
  #takeOver(member: Member, peer: Peer, hello: HelloFrame): ResumeResult {
    const refused = this.#hooks.refusal({
      name: member.name,
      person: member.person,
      address: peer.address,
    });
    if (refused) return { ok: false, error: refused };
    const link = member.link;
    member.info = cleanClientInfo(hello.client);
    member.link = { state: "live", peer };
    if (link.state === "held") {
      clearTimeout(link.timer);
      member.away = link.awayBefore;
      this.#directory.toCompany(
        member,
        { type: "presence", name: member.name, ts: this.#options.now() },
        { news: true },
      );
    } else {
      link.peer.end(
        errorFrame("replaced", "This session connected again from elsewhere"),
        "replaced",
      );
    }
    this.#retoken(member, hello);
    this.#welcomeBack(member, hello.last);
    this.#options.log(`${peer.address} ~ ${member.name} resumed the session`);
    return ok(member);
  }

  /**
   * Keeps the token the welcome gives back: the hello's, when it was this session's; otherwise
   * (a client that came back by its key) the one known, or a new one for a session restored
   * after a restart, whose token only its client ever knew.
   */
  #retoken(member: Member, hello: HelloFrame): void {
    if (hello.resume !== undefined && tokenHash(hello.resume) === member.tokenHash) {
      member.token = hello.resume;
      return;
    }
    if (member.token !== undefined) return;
    this.#store?.dropSession(member.tokenHash);
    const token = newToken();
    this.#directory.retoken(member, token, tokenHash(token));
    this.save(member);
  }

  /** Lets somebody whose session was let go (but is still resumable) come back into its rooms. */
  #comeBack(stored: StoredSession, peer: Peer, hello: HelloFrame): ResumeResult {
    const checked = checkName(stored.name);
    if (!checked.ok) return { ok: false, error: errorFrame("bad_name", checked.error) };
    if (this.#directory.member(checked.value)) {
      return { ok: false, error: errorFrame("name_taken", nameTakenText(checked.value)) };
    }
    const person = personOf(stored);
    const refused = this.#hooks.refusal({ name: checked.value, person, address: peer.address });
    if (refused) return { ok: false, error: refused };
    const member = this.#directory.add({
      person,
      name: checked.value,
      info: cleanClientInfo(hello.client),
      link: { state: "live", peer },
      token: undefined,
      tokenHash: stored.tokenHash,
      since: stored.since,
    });
    this.#enterRooms(member, stored.rooms);
    this.#retoken(member, hello);
    this.save(member);
    this.#welcomeBack(member, hello.last);
    this.#options.log(`${peer.address} + ${member.name} came back${describeClient(member.info)}`);
    return ok(member);
  }

  /** Puts a member in the lobby and then in each of `rooms` (the last one ends up current). */
  #enterRooms(member: Member, rooms: readonly string[]): void {
    const now = this.#options.now();
    this.#directory.enter(member, this.#directory.lobby, now);
    for (const name of rooms) {
      const room = this.#directory.openRoom(name);
      if (room) this.#directory.enter(member, room, now);
    }
  }

  /** The welcome of a resumed session, its rooms (the current one last), and what it missed. */
  #welcomeBack(member: Member, last: number | undefined): void {
    const directory = this.#directory;
    directory.send(member, this.#hooks.welcome(member, true));
    for (const room of member.rooms) {
      if (room !== member.current) directory.send(member, directory.roomFrame(room));
    }
    directory.send(member, directory.roomFrame(member.current));
    if (last !== undefined) this.#replayMissed(member, last);
  }

  #replayMissed(member: Member, last: number): void {
    if (!this.#store) return;
    const rooms = [...member.rooms].map((r) => r.name);
    const { frames, total } = this.#store.missed(rooms, member.person.id, last, MAX_REPLAY);
    const fitting = fitBudget(frames.reverse(), this.#options.replayBytes).reverse();
    if (fitting.length < total) {
      this.#directory.send(member, {
        type: "notice",
        text: `${total - fitting.length} earlier missed messages are not shown: /history for them`,
      });
    }
    for (const out of fitting) this.#directory.send(member, out);
  }
}

/** A new resume token: 128 random bits, URL-safe. */
export function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

/** What a hello for a taken name is told. */
export function nameTakenText(name: string): string {
  return `The name "${name}" is taken: choose another`;
}

/** What a stored session says about its person. */
function personOf(stored: StoredSession): Person {
  return stored.publicKey !== null && stored.fingerprint !== null
    ? { id: stored.person, key: { publicKey: stored.publicKey, fingerprint: stored.fingerprint } }
    : { id: stored.person };
}

/**
 * Whether a hello's person may have a session: the same key for a keyed session; for a keyless
 * one, a hello without a key (its token being the proof).
 */
function samePerson(session: Person, hello: Person | undefined): boolean {
  return session.key === undefined
    ? hello?.key === undefined
    : session.key.fingerprint === hello?.key?.fingerprint;
}

/** A person id for a keyless person: `s:` and 12 random base64url characters. */
export function newSessionPersonId(): string {
  return `s:${newToken().slice(0, 12)}`;
}

/** A placeholder peer for a session restored after a restart, held a line after it is added. */
const NO_PEER: Peer = { address: "-", send: () => {}, end: () => {} };
