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
  nameKey,
  ok,
  type Result,
  type WelcomeFrame,
} from "../protocol.ts";
import {
  addressGroup,
  cleanClientInfo,
  describeClient,
  type Directory,
  fitBudget,
  JSON_ENCODER,
  type Member,
  memberEncoder,
  type Peer,
  type Person,
} from "./directory.ts";
import { type ChatStore, MAX_STORED_SESSIONS, type StoredSession, tokenHash } from "./store.ts";

/** How long a member whose connection was lost is waited for, in milliseconds. */
export const GRACE_MS = 60_000;
/** How long after being let go a session can still be resumed, in milliseconds. */
export const RESUME_WINDOW_MS = 24 * 60 * 60 * 1000;
/** The most missed messages looked up on resuming; the byte budget usually binds first. */
const MAX_REPLAY = 500;
/** The away message of somebody whose connection was lost. */
export const CONNECTION_LOST = "connection lost";
/**
 * How long after a drop the others hear of it, in milliseconds: somebody back within it was never
 * shown as away, so a flapping connection does not flood the room with away and back.
 */
export const PRESENCE_DELAY_MS = 5000;
/**
 * The most people held at once for one IP address; holding one more lets the one held longest
 * go, so logging in and dropping over and over cannot fill the server with ghosts.
 */
export const MAX_HELD_PER_ADDRESS = 10;
/**
 * The most people held at once in all (as many as the default cap on people connected): holding
 * one more lets the one held longest go, and a restart holds only the newest this many again.
 */
export const MAX_HELD = 1000;
/**
 * How long a person on `nc` or `telnet` must have sent nothing before a new connection from the
 * same address, under the same name, takes their place, in milliseconds. Such connections have no
 * heartbeat, so one whose network path died silently would otherwise keep the name for hours.
 */
export const TAKEOVER_SILENCE_MS = 30_000;
/** How often stored sessions that expired are deleted while the server runs, in milliseconds. */
const PRUNE_INTERVAL_MS = 10 * 60 * 1000;

/** Options for {@linkcode Sessions}. */
export interface SessionsOptions {
  /** How long a dropped member is held, in milliseconds; 0 lets it go at once. */
  graceMs: number;
  /** How long after being let go a session can still be resumed, in milliseconds. */
  resumeWindowMs: number;
  /** The most bytes of missed messages replayed in one go. */
  replayBytes: number;
  /** How long after a drop the others hear of it, in milliseconds. */
  presenceDelayMs: number;
  /**
   * How long a peer without heartbeats must have been silent before a newcomer from its address
   * may take its place under its name, in milliseconds.
   */
  takeoverSilenceMs: number;
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
  /** The people held for each address group ({@linkcode addressGroup}), longest held first. */
  #heldByAddress = new Map<string, Set<Member>>();
  /** Everyone held, longest held first. */
  #held = new Set<Member>();
  #pruneTimer: ReturnType<typeof setInterval> | undefined;

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
    if (store) this.#pruneTimer = setInterval(() => this.#prune(), PRUNE_INTERVAL_MS);
  }

  /** Deletes the stored sessions that can no longer be resumed. */
  #prune(): void {
    const expired = this.#options.now() - this.#options.resumeWindowMs;
    const gone = this.#store?.pruneSessions(expired, MAX_STORED_SESSIONS) ?? 0;
    if (gone > 0) this.#options.log(`- ${gone} expired sessions deleted`);
  }

  /** Whether dropped members are held at all (a grace period above 0). */
  get holding(): boolean {
    return this.#options.graceMs > 0;
  }

  /**
   * Records where a member is (its name and rooms, the current one last), for resuming. People
   * on `nc` or `telnet` are not recorded: their client keeps no token, so their session could
   * only come back as a ghost after a restart.
   */
  save(member: Member): void {
    if (member.link.state === "live" && member.link.peer.silentMs() !== undefined) return;
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
    this.#options.log(
      `${peer.address} ~ ${member.name} lost the connection (${reason}); holding the name`,
    );
    const held = this.#heldByAddress.get(addressGroup(peer.address));
    if (held && held.size > MAX_HELD_PER_ADDRESS) {
      const longest = held.values().next().value!;
      this.#options.log(
        `${peer.address} - letting ${longest.name} go early: more than ` +
          `${MAX_HELD_PER_ADDRESS} people held for the address`,
      );
      this.#letGo(longest);
    }
    if (this.#held.size > MAX_HELD) {
      const longest = this.#held.values().next().value!;
      this.#options.log(
        `- letting ${longest.name} go early: more than ${MAX_HELD} people held in all`,
      );
      this.#letGo(longest);
    }
  }

  /** Tells the others sharing a small enough room that a held member is away, once. */
  #tellAway(member: Member): void {
    if (member.link.state !== "held" || member.link.told) return;
    member.link.told = true;
    this.#directory.toCompany(member, {
      type: "presence",
      name: member.name,
      id: member.person.id,
      ts: this.#options.now(),
      away: CONNECTION_LOST,
    }, { news: true });
  }

  /** A held member is held no more (resumed, let go, or removed): its timers stop. */
  unhold(member: Member): void {
    const link = member.link;
    if (link.state !== "held") return;
    clearTimeout(link.timer);
    clearTimeout(link.awayTimer);
    this.#held.delete(member);
    const group = addressGroup(link.address);
    const held = this.#heldByAddress.get(group);
    held?.delete(member);
    if (held?.size === 0) this.#heldByAddress.delete(group);
  }

  /**
   * Gives a session back to a new connection: the session of the hello's `resume` token, or
   * (for a hello with a verified key) the person's own session, whether still present (held, or
   * live on a connection that may be dead) or let go within the resume window. A keyed session
   * comes back only to the same key. Returns `undefined` when there is no such session: the
   * hello then counts as a new arrival. `admit` may refuse the person whose session it is (a
   * private server's door: see `Hub`).
   */
  resume(
    peer: Peer,
    hello: HelloFrame,
    person: Person | undefined,
    admit: (person: Person) => ErrorFrame | undefined = () => undefined,
  ): ResumeResult | undefined {
    if (hello.resume !== undefined) {
      const hash = tokenHash(hello.resume);
      const present = this.#directory.memberByToken(hash);
      if (present && samePerson(present.person, person)) {
        return refusedOr(admit(present.person), () => this.#takeOver(present, peer, hello));
      }
      const stored = this.#store?.session(hash);
      if (stored && this.#resumable(stored) && samePerson(personOf(stored), person)) {
        return refusedOr(admit(personOf(stored)), () => this.#comeBack(stored, peer, hello));
      }
    }
    if (person?.key === undefined) {
      const silent = this.#silentTextMember(peer, hello);
      return silent && refusedOr(admit(silent.person), () => this.#takeOver(silent, peer, hello));
    }
    const present = this.#directory.memberByPerson(person.id);
    if (present) return refusedOr(admit(person), () => this.#takeOver(present, peer, hello));
    const stored = this.#store?.sessionOfPerson(person.id);
    if (stored && this.#resumable(stored)) {
      return refusedOr(admit(person), () => this.#comeBack(stored, peer, hello));
    }
    return undefined;
  }

  /**
   * The member a keyless hello may take over: present under the hello's very name, without a key,
   * connected from the same address through a peer without heartbeats that has been silent for
   * {@linkcode SessionsOptions.takeoverSilenceMs}. A person whose `nc` lost its network path thus
   * gets their name and rooms back by connecting again; somebody from another address cannot.
   */
  #silentTextMember(peer: Peer, hello: HelloFrame): Member | undefined {
    const checked = checkName(hello.name);
    if (!checked.ok) return undefined;
    const member = this.#directory.member(checked.value);
    if (
      member === undefined || member.person.key !== undefined || member.link.state !== "live" ||
      nameKey(member.name) !== nameKey(checked.value) || member.link.peer.address !== peer.address
    ) {
      return undefined;
    }
    const silent = member.link.peer.silentMs();
    return silent !== undefined && silent >= this.#options.takeoverSilenceMs ? member : undefined;
  }

  #resumable(stored: StoredSession): boolean {
    return (stored.leftAt ?? Infinity) >= this.#options.now() - this.#options.resumeWindowMs;
  }

  /** After a restart, everyone who was present is held as if their connection was just lost. */
  restore(): void {
    if (!this.#store) return;
    const now = this.#options.now();
    const present = this.#store.presentSessions(now - this.#options.resumeWindowMs, MAX_HELD, now);
    for (const session of present) {
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

  /** Stops every timer; the sessions stay stored, to be held again after a restart. */
  close(): void {
    clearInterval(this.#pruneTimer);
    for (const member of this.#directory.members) this.unhold(member);
  }

  #holdFor(member: Member, address: string, awayBefore: string | undefined): void {
    const { graceMs, presenceDelayMs, now } = this.#options;
    const timer = setTimeout(() => this.#letGo(member), graceMs);
    const awayTimer = setTimeout(() => this.#tellAway(member), presenceDelayMs);
    member.link = {
      state: "held",
      address,
      until: now() + graceMs,
      timer,
      awayTimer,
      told: false,
      awayBefore,
    };
    this.#held.add(member);
    const group = addressGroup(address);
    const held = this.#heldByAddress.get(group) ?? new Set();
    held.add(member);
    this.#heldByAddress.set(group, held);
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
    this.unhold(member);
    member.info = cleanClientInfo(hello.client);
    member.link = { state: "live", peer };
    if (link.state === "held") {
      member.away = link.awayBefore;
      // Back before the others heard of the drop: they hear nothing at all.
      if (link.told) {
        this.#directory.toCompany(
          member,
          { type: "presence", name: member.name, id: member.person.id, ts: this.#options.now() },
          { news: true },
        );
      }
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
    // Nothing from before the member arrived can have been missed, whatever `last` says: a
    // resume "from 0" gets what was sent since the session began, not the whole history.
    const after = Math.max(last, member.firstId - 1);
    const bytes = this.#options.replayBytes;
    const { frames, total } = this.#store.missed(rooms, member.person.id, after, {
      limit: MAX_REPLAY,
      bytes,
    });
    const fitting = fitBudget(frames.reverse(), bytes, memberEncoder(member)).reverse();
    if (fitting.length < total) {
      this.#directory.send(member, {
        type: "notice",
        text: `${
          plural(total - fitting.length, "earlier missed message is", "earlier missed messages are")
        } not shown: /history for them`,
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
/** The refusal, if there is one; else what `resume` gives. */
function refusedOr(refusal: ErrorFrame | undefined, resume: () => ResumeResult): ResumeResult {
  return refusal ? { ok: false, error: refusal } : resume();
}

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
const NO_PEER: Peer = {
  address: "-",
  encoder: JSON_ENCODER,
  send: () => {},
  end: () => {},
  silentMs: () => undefined,
};

/** `1 message is`, `2 messages are`: a count with the words for one or for several. */
function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}
