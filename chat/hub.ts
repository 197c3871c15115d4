/**
 * The chat itself: it turns frames from members into frames for members. Hellos, messages,
 * private messages, rooms, topics, names, history and the operator's words all go through the
 * {@linkcode Hub}; it knows nothing about sockets or terminals (see `directory.ts` for how it
 * reaches people, `sessions.ts` for drops and resumes, `store.ts` for the disk).
 *
 * @module
 */

import {
  checkLine,
  checkName,
  checkRoom,
  checkText,
  cleanLine,
  type ClientFrame,
  type ErrorFrame,
  errorFrame,
  type HelloFrame,
  HISTORY_PAGE,
  type HistoryFrame,
  isPersonId,
  isValidRef,
  LOBBY,
  MAX_HISTORY_PAGE,
  MAX_ROOMS_PER_MEMBER,
  type MessageFrame,
  type MsgFrame,
  ok,
  type PrivateFrame,
  quoteInput,
  type Result,
  type RoomInfoFrame,
  roomKey,
  type SayFrame,
  type ServerFrame,
  type UsersFrame,
  VERSION,
  type WelcomeFrame,
} from "../protocol.ts";
import { Bans } from "./bans.ts";
import {
  ARRIVAL_LISTED_USERS,
  cleanClientInfo,
  describeClient,
  Directory,
  fitBudget,
  HELLO_REPLAY_BYTES,
  type Member,
  memberAddress,
  memberEncoder,
  Outgoing,
  type Peer,
  type Person,
  type Room,
  type UserList,
  userList,
} from "./directory.ts";
import { type Actor, CONSOLE, memberActor, Moderation } from "./moderation.ts";
import { looksReserved } from "./names.ts";
import { People } from "./people.ts";
import {
  GRACE_MS,
  nameTakenText,
  newSessionPersonId,
  newToken,
  PRESENCE_DELAY_MS,
  RESUME_WINDOW_MS,
  Sessions,
  TAKEOVER_SILENCE_MS,
} from "./sessions.ts";
import { type ChatStore, MAX_STORED_TOPICS, type StoredFrame, tokenHash } from "./store.ts";
import { type RoomActor, RoomRulebook } from "./rooms.ts";
import type { Access } from "./access.ts";

/** Options for {@linkcode Hub}. */
export interface HubOptions {
  /**
   * The server's name, sent in every welcome.
   * @default {"chat"}
   */
  serverName?: string;
  /**
   * The message of the day, shown to everyone who joins; kept in the store. Without it, the one
   * kept from before (if any).
   * @default {the stored one, or none}
   */
  motd?: string;
  /**
   * Receives one line per event for the operator: joins, leaves, messages, refusals.
   * @default {no logging}
   */
  log?: (line: string) => void;
  /**
   * The clock, in milliseconds since the epoch.
   * @default {Date.now}
   */
  now?: () => number;
  /**
   * The names, identities and addresses kept out.
   * @default {the bans kept in the store}
   */
  bans?: Bans;
  /**
   * Registered names and operators.
   * @default {those kept in the store}
   */
  people?: People;
  /**
   * Who may come in to a private server (a password, an allowlist, one-time invites).
   * @default {everyone}
   */
  access?: Access;
  /**
   * Where messages and sessions are kept. Without one there is no history and nothing survives
   * a restart, and messages are delivered without waiting for a disk.
   * @default {none}
   */
  store?: ChatStore;
  /**
   * How many earlier messages joining a room shows; 0 for none.
   * @default {50}
   */
  historyLimit?: number;
  /**
   * How long a member whose connection was lost keeps its name and rooms (shown as away), in
   * milliseconds; 0 lets it go at once.
   * @default {60000}
   */
  graceMs?: number;
  /**
   * How long after a drop the others are told the member is away, in milliseconds; back
   * within it, they are told nothing.
   * @default {5000}
   */
  presenceDelayMs?: number;
  /**
   * How many messages the store keeps: older ones are deleted, every minute and at start; 0 keeps
   * them all.
   * @default {500000}
   */
  keepMessages?: number;
  /**
   * How long a person on `nc` or `telnet` must have sent nothing before a new connection from
   * the same address, under the same name, takes their place (name and rooms), in milliseconds.
   * @default {30000}
   */
  takeoverSilenceMs?: number;
  /**
   * How long after being let go a session can still be resumed (with the messages missed), in
   * milliseconds.
   * @default {86400000}
   */
  resumeWindowMs?: number;
  /**
   * The most bytes of missed messages or history sent in one go, so that they fit in a client's
   * queue; what does not fit is left for `history` requests.
   * @default {262144}
   */
  replayBytes?: number;
  /**
   * The sending limits announced in the welcome (the network layer enforces them).
   * @default {none announced}
   */
  limits?: { rate: number; burst: number };
  /**
   * The largest room in which arrivals, leaves and dropped connections are announced; in bigger
   * rooms they would drown the conversation (and cost each arrival a frame per member), so only
   * `who` and the counts tell them.
   * @default {200}
   */
  announceLimit?: number;
}

/**
 * The outcome of a hello: the new (or resumed) member, or an error frame for the peer alone
 * (a fatal one, such as `banned`, ends the connection).
 */
export type JoinResult = Result<Member, ErrorFrame>;

/** A key the network layer verified (the client signed a fresh nonce with it). */
export interface VerifiedKey {
  publicKey: string;
  fingerprint: string;
  personId: string;
}

/** The name the server speaks under; it is reserved, so nobody can pose as it. */
export const SERVER_SPEAKER = "server";
/** How many earlier messages joining a room shows, unless told otherwise. */
export const HISTORY_LIMIT = 50;
/** How many messages the store keeps unless told otherwise. */
export const KEEP_MESSAGES = 500_000;
/** How long one room list is given to everyone who asks, in milliseconds. */
const ROOM_LIST_MS = 1000;
/** How often messages past what is kept are deleted, in milliseconds. */
const PRUNE_MESSAGES_MS = 60_000;
/** Where no `before` was given: history starts from the newest message. */
const NEWEST = Number.MAX_SAFE_INTEGER;

/**
 * The chat: members and their unique names, rooms, messages, private messages, notices, history
 * and sessions.
 *
 * Messages are delivered (their sender's copy being the acknowledgement) only once the store has
 * committed them. Everything else first lets the messages still waiting for their commit go out
 * (see {@linkcode Hub.deliverPendingMessages}), so that a leave, a rename or a history page never
 * overtakes a message sent before it.
 */
export class Hub {
  readonly #directory: Directory;
  readonly #sessions: Sessions;
  readonly #bans: Bans;
  readonly #people: People;
  readonly #rules: RoomRulebook;
  readonly #access: Access | undefined;
  /**
   * The people let in while this server runs: their sessions come back without the private
   * server's password again. A session from before (kept in the store across a restart, maybe
   * from before the server was made private) must pass the door like a new arrival.
   */
  readonly #admitted = new Set<string>();
  readonly #moderation: Moderation;
  #motd: string;
  #topics = new Map<string, string>();
  #serverName: string;
  #serverId: string;
  #log: (line: string) => void;
  /** Whether anyone reads the log: lines on the message path are not even built otherwise. */
  #logging: boolean;
  #now: () => number;
  #store: ChatStore | undefined;
  #historyLimit: number;
  #replayBytes: number;
  #pruneTimer: ReturnType<typeof setInterval> | undefined;
  #roomListCache: { at: number; out: Outgoing } | undefined;
  #limits: { rate: number; burst: number } | undefined;
  #nextMessageId: number;
  #quiet = false;

  constructor(options: HubOptions = {}) {
    this.#serverName = options.serverName ?? "chat";
    this.#log = options.log ?? (() => {});
    this.#logging = options.log !== undefined;
    this.#now = options.now ?? Date.now;
    this.#store = options.store;
    this.#motd = options.motd ?? this.#store?.setting("motd") ?? "";
    if (options.motd !== undefined) this.#store?.saveSetting("motd", options.motd);
    this.#serverId = this.#store?.setting("server_id") ?? newToken().slice(0, 12);
    this.#store?.saveSetting("server_id", this.#serverId);
    for (const { room, topic } of this.#store?.topics() ?? []) {
      this.#topics.set(roomKey(room), topic);
    }
    this.#bans = options.bans ?? new Bans({ store: this.#store, now: this.#now });
    this.#people = options.people ?? new People({ store: this.#store, now: this.#now });
    this.#rules = new RoomRulebook({ store: this.#store, now: this.#now });
    this.#access = options.access;
    this.#historyLimit = options.historyLimit ?? HISTORY_LIMIT;
    this.#replayBytes = options.replayBytes ?? 256 * 1024;
    this.#limits = options.limits;
    this.#directory = new Directory({
      ...(options.announceLimit === undefined ? {} : { announceLimit: options.announceLimit }),
      topicOf: (room) => this.#topics.get(roomKey(room)) ?? "",
    });
    this.#sessions = new Sessions(this.#directory, this.#store, {
      graceMs: options.graceMs ?? GRACE_MS,
      resumeWindowMs: options.resumeWindowMs ?? RESUME_WINDOW_MS,
      replayBytes: this.#replayBytes,
      presenceDelayMs: options.presenceDelayMs ?? PRESENCE_DELAY_MS,
      takeoverSilenceMs: options.takeoverSilenceMs ?? TAKEOVER_SILENCE_MS,
      now: this.#now,
      log: this.#log,
    }, {
      welcome: (member, resumed) => this.#welcome(member, resumed),
      deliverPendingMessages: () => this.deliverPendingMessages(),
      forget: (member, reason) => this.#forget(member, reason),
      refusal: (who) => this.#refusal(who),
    });
    this.#moderation = new Moderation({
      directory: this.#directory,
      bans: this.#bans,
      people: this.#people,
    }, {
      remove: (member, reason) => this.remove(member, reason),
      log: (line) => this.#log(line),
    });
    this.#nextMessageId = (this.#store?.lastId() ?? 0) + 1;
    const keep = options.keepMessages ?? KEEP_MESSAGES;
    if (this.#store && keep > 0) {
      this.#pruneMessages(keep);
      this.#pruneTimer = setInterval(() => this.#pruneMessages(keep), PRUNE_MESSAGES_MS);
    }
    this.#sessions.restore();
  }

  /** Everyone present (or held after losing the connection), in the order they joined. */
  get members(): Iterable<Member> {
    return this.#directory.members;
  }

  /** How many people are present, held ones included. */
  get size(): number {
    return this.#directory.size;
  }

  /** The member with that name (in any case or look-alike form), if present. */
  member(name: string): Member | undefined {
    return this.#directory.member(name);
  }

  /** The room with that name, if it exists. */
  findRoom(name: string): Room | undefined {
    return this.#directory.findRoom(name);
  }

  /** The message of the day, shown on joining; empty for none. */
  get motd(): string {
    return this.#motd;
  }

  /** The operators' powers, for the console. */
  get moderation(): Moderation {
    return this.#moderation;
  }

  /** The names, identities and addresses kept out. */
  get bans(): Bans {
    return this.#bans;
  }

  /** Registered names and operators. */
  get people(): People {
    return this.#people;
  }

  /** Sets the message of the day (kept in the store); empty for none. */
  setMotd(text: string, actor: Actor = CONSOLE): void {
    this.#motd = cleanLine(text);
    this.#store?.saveSetting("motd", this.#motd);
    this.#log(`${actor.label} set the message of the day: ${this.#motd}`);
  }

  /**
   * The ordering barrier: commits the messages still waiting for their commit, which delivers
   * them. Everything that is not a message goes through here first, so it never overtakes a
   * message sent before it; a message itself waits for its commit instead.
   */
  deliverPendingMessages(): void {
    this.#store?.commit();
  }

  /** Whether a private server lets `person` back in (a refusal if not), for a resume. */
  #admission(
    person: Person,
    peer: Peer,
    hello: HelloFrame,
    key: VerifiedKey | undefined,
  ): ErrorFrame | undefined {
    if (!this.#access?.isPrivate || this.#admitted.has(person.id)) return undefined;
    const shut = this.#access.refusal({
      fingerprint: person.key?.fingerprint,
      operator: this.#people.isOperator(key?.fingerprint),
      address: peer.address,
      password: hello.password,
      invite: hello.invite,
    });
    if (shut) this.#log(`${peer.address} ! ${shut.code}: ${hello.name}: ${shut.message}`);
    return shut;
  }

  /**
   * Handles a hello. A `resume` token of a session still held (or let go within the resume
   * window) gives that session back to this peer (closing its old connection, if it still looks
   * alive), with the messages missed since `last`. Otherwise the peer becomes a new member of the
   * lobby, gets a welcome and its history, and the lobby a `joined` notice. On failure nothing
   * changes and the error is for the peer alone.
   */
  join(peer: Peer, hello: HelloFrame, key?: VerifiedKey): JoinResult {
    this.deliverPendingMessages();
    const keyed: Person | undefined = key && {
      id: key.personId,
      key: { publicKey: key.publicKey, fingerprint: key.fingerprint },
    };
    const resumed = this.#sessions.resume(
      peer,
      hello,
      keyed,
      (person) => this.#admission(person, peer, hello, key),
    );
    if (resumed) {
      if (resumed.ok) this.#admitted.add(resumed.value.person.id);
      return resumed;
    }
    const checked = checkName(hello.name);
    if (!checked.ok) return { ok: false, error: errorFrame("bad_name", checked.error) };
    const person: Person = keyed ?? { id: newSessionPersonId() };
    const refused = this.#refusal({ name: checked.value, person, address: peer.address });
    if (refused) return { ok: false, error: refused };
    const holder = this.#directory.member(checked.value);
    if (holder?.link.state === "held") {
      const seconds = Math.max(1, Math.ceil((holder.link.until - this.#now()) / 1000));
      const text = `The name "${holder.name}" is held for ${seconds} s more for someone whose ` +
        "connection dropped: choose another, or try again then";
      return { ok: false, error: errorFrame("name_taken", text) };
    }
    if (holder) return { ok: false, error: errorFrame("name_taken", nameTakenText(checked.value)) };
    // Last, once the rest is known to be fine: an invite is used up only by a hello that joins.
    const shut = this.#access?.refusal({
      fingerprint: key?.fingerprint,
      operator: this.#people.isOperator(key?.fingerprint),
      address: peer.address,
      password: hello.password,
      invite: hello.invite,
    });
    if (shut) {
      this.#log(`${peer.address} ! ${shut.code}: ${checked.value}: ${shut.message}`);
      return { ok: false, error: shut };
    }
    this.#admitted.add(person.id);
    const token = newToken();
    const member = this.#directory.add({
      person,
      name: checked.value,
      info: cleanClientInfo(hello.client),
      link: { state: "live", peer },
      token,
      tokenHash: tokenHash(token),
      since: this.#now(),
      firstId: this.#nextMessageId,
    });
    this.#directory.enter(member, this.#directory.lobby, member.since);
    this.#sessions.save(member);
    this.#directory.send(member, this.#welcome(member, false));
    this.#sendHistory(member, this.#directory.lobby, NEWEST, this.#historyLimit, false);
    this.#log(`${peer.address} + ${member.name} joined${describeClient(member.info)}`);
    return ok(member);
  }

  /**
   * Handles a frame from a member. Returns an error frame for the member when the frame is
   * refused; `bye` is the network layer's to act on and is ignored here.
   */
  receive(member: Member, frame: ClientFrame): ErrorFrame | undefined {
    // Messages wait for their commit; anything else first lets earlier messages go out.
    if (frame.type !== "say" && frame.type !== "msg") this.deliverPendingMessages();
    switch (frame.type) {
      case "say":
        return this.#say(member, frame);
      case "msg":
        return this.#private(member, frame);
      case "who":
        return this.#who(member, frame.room);
      case "register":
        return this.#register(member);
      case "unregister":
        return this.#unregister(member);
      case "kick":
      case "ban":
      case "unban":
      case "bans":
      case "announce":
        return this.#operatorFrame(member, frame);
      case "motd":
        if (frame.text === undefined) {
          const text = this.#motd ? `Message of the day: ${this.#motd}` : "No message of the day";
          this.#directory.send(member, { type: "notice", text });
          return undefined;
        }
        return this.#operatorFrame(member, frame);
      case "join":
        return this.#joinRoom(member, frame.room);
      case "leave":
        return this.#leaveRoom(member, frame.room ?? member.current.name);
      case "rooms":
        this.#directory.send(member, this.#roomList());
        return undefined;
      case "topic":
        return this.#topic(member, frame.room, frame.topic);
      case "whois":
        return this.#whois(member, frame.name);
      case "nick":
        return this.#rename(member, frame.name);
      case "history":
        return this.#history(member, frame);
      case "away": {
        const message = checkLine(frame.message, "Away message");
        if (!message.ok) return errorFrame("bad_text", message.error);
        member.away = message.value || "away";
        this.#directory.send(member, { type: "notice", text: `You are away: ${member.away}` });
        return undefined;
      }
      case "back":
        member.away = undefined;
        this.#directory.send(member, { type: "notice", text: "You are back" });
        return undefined;
      case "ping":
        this.#directory.send(member, { type: "pong" });
        return undefined;
      case "pong":
      case "bye":
        return undefined;
      case "room_info":
      case "room_set":
      case "room_role":
      case "invite":
      case "remove":
        return this.#roomFrame(member, frame);
      case "hello":
      case "proof":
        return errorFrame("bad_frame", `Already joined: ${frame.type} belongs to the hello`);
      default: {
        const unexpected: never = frame;
        throw new TypeError(`Unhandled frame: ${JSON.stringify(unexpected)}`);
      }
    }
  }

  /**
   * Makes one of the member's rooms current, for clients whose input the server reads (plain
   * text). Returns an error frame when the member is not in that room.
   */
  switchRoom(member: Member, name: string): ErrorFrame | undefined {
    const room = this.#directory.findRoom(name);
    if (!room || !member.rooms.has(room)) {
      return errorFrame("not_in_room", `You are not in ${roomText(name)}: /join it first`);
    }
    member.current = room;
    this.#directory.send(member, this.#directory.roomFrame(room));
    return undefined;
  }

  /**
   * The member's connection (`peer`) ended without a goodbye. With `hold`, the member stays for
   * the grace period, shown as away, so that its client can resume; otherwise it leaves. A peer
   * that is no longer the member's (the session resumed elsewhere) changes nothing.
   */
  disconnect(member: Member, peer: Peer, reason: string, options: { hold: boolean }): void {
    if (member.link.state !== "live" || member.link.peer !== peer) return;
    if (!this.#directory.isPresent(member)) return;
    if (this.#quiet) {
      // Shutting down: the session stays stored, to be held again when the server restarts.
      this.#log(`${peer.address} - ${member.name} (${reason})`);
      return;
    }
    if (!options.hold || !this.#sessions.holding) return this.remove(member, reason);
    this.deliverPendingMessages();
    this.#sessions.hold(member, peer, reason);
  }

  /** Removes a member from the chat and tells each of its rooms why. Removing twice is harmless. */
  remove(member: Member, reason: string): void {
    this.deliverPendingMessages();
    if (!this.#forget(member, reason)) return;
    this.#sessions.drop(member);
  }

  /** Stops announcing leaves: the server is going down and everyone is leaving at once. */
  quiet(): void {
    this.#quiet = true;
  }

  /** Delivers what is pending and stops every timer; the store stays open for its owner. */
  close(): void {
    this.deliverPendingMessages();
    clearInterval(this.#pruneTimer);
    this.#sessions.close();
  }

  /**
   * The room list, encoded once and shared for {@linkcode ROOM_LIST_MS}: with many rooms, sorting
   * them is the costly part, and many people asking at once should not each pay for it.
   */
  #roomList(): Outgoing {
    const now = performance.now();
    if (this.#roomListCache === undefined || now - this.#roomListCache.at > ROOM_LIST_MS) {
      const out = new Outgoing({ type: "room_list", ...this.#directory.roomList() });
      this.#roomListCache = { at: now, out };
    }
    return this.#roomListCache.out;
  }

  /** Deletes the messages past the newest `keep`, so the database stops growing. */
  #pruneMessages(keep: number): void {
    const gone = this.#store?.pruneMessages(keep) ?? 0;
    if (gone > 0) this.#log(`- ${gone} old messages deleted (keeping the newest ${keep})`);
  }

  /** The operator speaks to everyone. */
  announce(text: string, actor: Actor = CONSOLE): void {
    this.#directory.broadcast({ type: "announce", text, ts: this.#now() });
    this.#log(`${SERVER_SPEAKER} (to everyone, by ${actor.label}): ${text}`);
  }

  /** The operator speaks in one room, as {@linkcode SERVER_SPEAKER}. */
  sayAsServer(roomName: string, text: string): string | undefined {
    const room = this.#directory.findRoom(roomName);
    if (!room) return `There is no room ${roomText(roomName)}`;
    const message: MessageFrame = {
      type: "message",
      id: this.#nextMessageId++,
      ts: this.#now(),
      from: SERVER_SPEAKER,
      text,
      room: room.name,
    };
    this.#commitThen(
      message,
      { sender: SERVER_SPEAKER },
      () => this.#directory.toRoom(room, message),
    );
    this.#log(`${SERVER_SPEAKER} ${room.name}: ${text}`);
    return undefined;
  }

  #welcome(member: Member, resumed: boolean): WelcomeFrame {
    const key = member.person.key;
    return {
      type: "welcome",
      name: member.name,
      id: member.person.id,
      ...(key ? { fingerprint: key.fingerprint } : {}),
      ...(this.#people.isOperator(key?.fingerprint) ? { operator: true } : {}),
      ...userList(member.current.members, ARRIVAL_LISTED_USERS),
      server: { name: this.#serverName, version: VERSION, id: this.#serverId },
      room: member.current.name,
      ...(this.#motd ? { motd: this.#motd } : {}),
      ...(member.token === undefined ? {} : { resume: member.token }),
      ...(resumed ? { resumed: true } : {}),
      last: this.#nextMessageId - 1,
      ...(this.#limits ? { limits: this.#limits } : {}),
    };
  }

  /** Takes a member out of every room (telling them why) and frees its name and session. */
  #forget(member: Member, reason: string): boolean {
    const rooms = this.#directory.remove(member);
    if (rooms === undefined) return false;
    this.#sessions.unhold(member);
    const ts = this.#now();
    if (!this.#quiet) {
      // Leaving the server is said once to each person, however many rooms they shared.
      this.#directory.notifyOnce(rooms, (room) => ({
        type: "left",
        name: member.name,
        id: member.person.id,
        ts,
        reason,
        room: room.name,
      }));
    }
    this.#log(`${memberAddress(member)} - ${member.name} left (${reason})`);
    return true;
  }

  // ==== Messages and history ====

  #say(member: Member, frame: SayFrame): ErrorFrame | undefined {
    const refused = checkIds(frame);
    if (refused) return refused;
    let room = member.current;
    if (frame.room !== undefined) {
      const found = this.#directory.findRoom(frame.room);
      if (!found || !member.rooms.has(found)) {
        const text = `You are not in ${roomText(frame.room)}: /join it first`;
        return withRef(errorFrame("not_in_room", text), frame.ref);
      }
      room = found;
    }
    const checked = checkText(frame.text);
    if (!checked.ok) return withRef(errorFrame("bad_text", checked.error), frame.ref);
    member.lastActive = this.#now();
    const message: MessageFrame = {
      type: "message",
      id: this.#nextMessageId++,
      ts: member.lastActive,
      from: member.name,
      fromId: member.person.id,
      text: checked.value,
      room: room.name,
      ...(frame.ref === undefined ? {} : { ref: frame.ref }),
      ...(frame.action ? { action: true } : {}),
    };
    const keys = { sender: member.person.id, cid: frame.cid };
    const stored = this.#commitThen(
      message,
      keys,
      () => this.#directory.toRoom(room, message),
      member,
    );
    if (stored && this.#logging) {
      const said = frame.action
        ? `* ${member.name} ${checked.value}`
        : `${member.name}: ${checked.value}`;
      this.#log(`${memberAddress(member)} ${room.name} ${said}`);
    }
    return undefined;
  }

  #private(member: Member, frame: MsgFrame): ErrorFrame | undefined {
    const refused = checkIds(frame);
    if (refused) return refused;
    const target = frame.toId === undefined
      ? this.#directory.member(frame.to)
      : this.#directory.memberByPerson(frame.toId);
    if (!target) {
      const text = frame.toId === undefined
        ? `Nobody called ${quoteInput(frame.to)} is here`
        : `${quoteInput(frame.to)} is no longer here (under any name)`;
      return withRef(errorFrame("no_such_user", text), frame.ref);
    }
    const checked = checkText(frame.text);
    if (!checked.ok) return withRef(errorFrame("bad_text", checked.error), frame.ref);
    member.lastActive = this.#now();
    const message: PrivateFrame = {
      type: "private",
      id: this.#nextMessageId++,
      ts: member.lastActive,
      from: member.name,
      fromId: member.person.id,
      to: target.name,
      toId: target.person.id,
      text: checked.value,
      ...(frame.ref === undefined ? {} : { ref: frame.ref }),
      ...(frame.action ? { action: true } : {}),
    };
    const keys = { sender: member.person.id, recipient: target.person.id, cid: frame.cid };
    const stored = this.#commitThen(message, keys, () => {
      const out = new Outgoing(message);
      target.lastPrivateFrom = { id: member.person.id, name: member.name };
      this.#directory.send(target, out);
      if (target !== member) this.#directory.send(member, out);
      if (target.away !== undefined) {
        const text = `${target.name} is away: ${target.away}`;
        this.#directory.send(member, { type: "notice", text });
      }
    }, member);
    if (stored && this.#logging) {
      this.#log(`${memberAddress(member)} ${member.name} -> ${target.name} (private)`);
    }
    return undefined;
  }

  /**
   * Stores a message and delivers it once committed; without a store, at once. A repeat of a
   * `cid` the sender already stored is not delivered again: the sender alone gets the stored
   * copy, as the acknowledgement it missed. Returns whether the message was new.
   */
  #commitThen(
    message: StoredFrame,
    keys: { sender: string; recipient?: string; cid?: string | undefined },
    deliver: () => void,
    sender?: Member,
  ): boolean {
    if (!this.#store) {
      deliver();
      return true;
    }
    const refuse = () => {
      if (sender) {
        this.#directory.send(sender, withRef(errorFrame("storage_failed"), message.ref));
      }
    };
    const added = this.#store.addMessage(message, keys, (ok) => ok ? deliver() : refuse());
    if (added.kind === "failed") {
      this.#log(`! could not store a message from ${sender?.name ?? message.from}: ${added.cause}`);
      refuse();
      return false;
    }
    if (added.kind === "duplicate" && sender && keys.cid !== undefined) {
      const { cid } = keys;
      this.#store.afterCommit(() => {
        const stored = this.#store?.messageByCid(keys.sender, cid);
        if (stored) {
          this.#directory.send(sender, {
            ...stored,
            ...(message.ref === undefined ? {} : { ref: message.ref }),
          });
        }
      });
    }
    return added.kind === "added";
  }

  /**
   * Sends up to `limit` messages of a room older than id `before`, after a `history` frame that
   * counts them; `always` sends that frame even when there is nothing to show.
   */
  #sendHistory(member: Member, room: Room, before: number, limit: number, always: boolean): void {
    if (limit <= 0) return;
    const found = this.#store?.history(room.name, before, limit + 1) ?? [];
    const candidates = found.length > limit ? found.slice(1) : found;
    // What joining a room shows is kept small (a hello is cheap to send); a page asked for may
    // be bigger, and costs its asker more of their allowance.
    const budget = always ? this.#replayBytes : Math.min(this.#replayBytes, HELLO_REPLAY_BYTES);
    const page = fitBudget(candidates.reverse(), budget, memberEncoder(member)).reverse();
    if (page.length === 0 && !always) return;
    this.#directory.send(member, {
      type: "history",
      room: room.name,
      count: page.length,
      more: found.length > page.length,
    });
    for (const out of page) this.#directory.send(member, out);
    const oldest = page[0]?.frame;
    if (oldest?.type === "message") member.historyFrom.set(room, oldest.id);
  }

  #history(member: Member, frame: HistoryFrame): ErrorFrame | undefined {
    if (frame.with !== undefined) return this.#privateHistory(member, frame.with, frame);
    const room = frame.room === undefined ? member.current : this.#directory.findRoom(frame.room);
    if (!room || !member.rooms.has(room)) {
      return errorFrame("not_in_room", `You are not in ${roomText(frame.room ?? "")}`);
    }
    const limit = frame.limit ?? HISTORY_PAGE;
    if (limit < 1 || limit > MAX_HISTORY_PAGE) {
      return errorFrame("bad_frame", `Field "limit" must be 1-${MAX_HISTORY_PAGE}`);
    }
    const before = frame.before ?? NEWEST;
    if (before < 1) return errorFrame("bad_frame", 'Field "before" must be a message id');
    this.#sendHistory(member, room, before, limit, true);
    return undefined;
  }

  /** A page of the private conversation between a member and another person. */
  #privateHistory(
    member: Member,
    other: string,
    frame: HistoryFrame,
  ): ErrorFrame | undefined {
    const them = isPersonId(other) ? other : this.#directory.member(other)?.person.id;
    if (them === undefined) {
      return errorFrame("no_such_user", `Nobody called ${quoteInput(other)} is here`);
    }
    const limit = frame.limit ?? HISTORY_PAGE;
    if (limit < 1 || limit > MAX_HISTORY_PAGE) {
      return errorFrame("bad_frame", `Field "limit" must be 1-${MAX_HISTORY_PAGE}`);
    }
    const before = frame.before ?? NEWEST;
    const found = this.#store?.privateHistory(member.person.id, them, before, limit + 1) ?? [];
    const candidates = found.length > limit ? found.slice(1) : found;
    const page = fitBudget(candidates.reverse(), this.#replayBytes, memberEncoder(member))
      .reverse();
    this.#directory.send(member, {
      type: "history",
      with: them,
      count: page.length,
      more: found.length > page.length,
    });
    for (const out of page) this.#directory.send(member, out);
    return undefined;
  }

  // ==== People: refusals, registered names, operators ====

  /**
   * Why somebody may not be here under a name: a ban of the name, their key or their address,
   * or a name registered to another key. Logs a refusal with its reason.
   */
  #refusal(who: { name: string; person: Person; address: string }): ErrorFrame | undefined {
    if (looksReserved(who.name)) return reservedLookalike(who.name);
    const fingerprint = who.person.key?.fingerprint;
    const ban = this.#bans.find({
      name: who.name,
      ...(fingerprint ? { fingerprint } : {}),
      address: who.address,
    });
    if (ban) {
      this.#log(`${who.address} ! refused ${who.name}: banned ${ban.kind} ${ban.target}`);
      return errorFrame("banned", "You are banned from this server");
    }
    const owner = this.#people.ownerOf(who.name);
    if (owner !== undefined && owner !== fingerprint) {
      return errorFrame(
        "name_taken",
        `The name "${who.name}" is registered to someone else: choose another`,
      );
    }
    return undefined;
  }

  #register(member: Member): ErrorFrame | undefined {
    const key = member.person.key;
    if (!key) {
      return errorFrame(
        "not_allowed",
        "Registering a name needs an identity: use the chat client without --anonymous",
      );
    }
    const registered = this.#people.register(member.name, key.fingerprint);
    if (!registered.ok) return errorFrame("not_allowed", registered.error);
    this.#directory.send(member, {
      type: "notice",
      text: `The name ${member.name} is registered to your key ${key.fingerprint}: ` +
        "only you can use it now (/unregister frees it)",
    });
    this.#log(`${memberAddress(member)} ${member.name} registered the name to ${key.fingerprint}`);
    return undefined;
  }

  #unregister(member: Member): ErrorFrame | undefined {
    const owner = this.#people.ownerOf(member.name);
    if (owner === undefined || owner !== member.person.key?.fingerprint) {
      return errorFrame("not_allowed", `The name ${member.name} is not registered to you`);
    }
    this.#people.release(member.name);
    this.#directory.send(member, {
      type: "notice",
      text: `The name ${member.name} is no longer registered: anyone may use it once you leave`,
    });
    this.#log(`${memberAddress(member)} ${member.name} unregistered the name`);
    return undefined;
  }

  /** The operator commands a client may send: refused unless the member is an operator. */
  #operatorFrame(
    member: Member,
    frame: Extract<ClientFrame, { type: "kick" | "ban" | "unban" | "bans" | "motd" | "announce" }>,
  ): ErrorFrame | undefined {
    if (!this.#people.isOperator(member.person.key?.fingerprint)) {
      return errorFrame("not_allowed", `Only the server's operators can use ${frame.type}`);
    }
    const actor = memberActor(member);
    let result: Result<string, ErrorFrame>;
    switch (frame.type) {
      case "kick":
        result = this.#moderation.kick(frame.name, frame.reason ?? "", actor);
        break;
      case "ban":
        result = this.#moderation.ban(frame.target, frame, actor);
        break;
      case "unban":
        result = this.#moderation.unban(frame.target, actor);
        break;
      case "bans":
        this.#directory.send(member, { type: "ban_list", bans: this.#moderation.bans() });
        return undefined;
      case "motd":
        this.setMotd(frame.text ?? "", actor);
        result = ok(this.#motd ? `Message of the day: ${this.#motd}` : "No message of the day");
        break;
      case "announce": {
        const checked = checkText(frame.text);
        if (!checked.ok) return errorFrame("bad_text", checked.error);
        this.announce(checked.value, actor);
        return undefined;
      }
    }
    if (!result.ok) return result.error;
    this.#directory.send(member, { type: "notice", text: result.value });
    return undefined;
  }

  // ==== Rooms, topics and names ====

  #who(member: Member, roomName: string | undefined): ErrorFrame | undefined {
    if (roomName === undefined) {
      this.#directory.send(member, this.#usersFrame(this.#directory.everyone()));
      return undefined;
    }
    const room = this.#directory.findRoom(roomName);
    if (!room) return errorFrame("bad_room", `There is no room ${roomText(roomName)}`);
    this.#directory.send(member, { ...this.#usersFrame(userList(room.members)), room: room.name });
    return undefined;
  }

  /** A `users` frame for a list, with who of them is away (held people included). */
  #usersFrame(list: UserList): UsersFrame {
    const away = list.users.filter((name) => this.#directory.member(name)?.away !== undefined);
    return { type: "users", ...list, ...(away.length > 0 ? { away } : {}) };
  }

  #joinRoom(member: Member, roomName: string): ErrorFrame | undefined {
    const checked = checkRoom(roomName);
    if (!checked.ok) return errorFrame("bad_room", checked.error);
    const present = this.#directory.findRoom(checked.value);
    if (member.rooms.size >= MAX_ROOMS_PER_MEMBER && !(present && member.rooms.has(present))) {
      return errorFrame(
        "too_many_rooms",
        `You are in ${member.rooms.size} rooms, the most one person may be in: leave one first`,
      );
    }
    const actor = this.#actor(member);
    if (!(present && member.rooms.has(present))) {
      const refused = this.#rules.joinRefusal(checked.value, actor);
      if (refused) return errorFrame("not_allowed", refused);
    }
    const room = this.#directory.openRoom(checked.value)!;
    if (!present) this.#rules.created(room.name, actor);
    const isNew = this.#directory.enter(member, room, this.#now());
    this.#directory.send(member, this.#directory.roomFrame(room));
    if (isNew) {
      this.#sessions.save(member);
      this.#sendHistory(member, room, NEWEST, this.#historyLimit, false);
      this.#log(`${memberAddress(member)} ${member.name} joined ${room.name}`);
    }
    return undefined;
  }

  #leaveRoom(member: Member, roomName: string): ErrorFrame | undefined {
    const room = this.#directory.findRoom(roomName);
    if (!room || !member.rooms.has(room)) {
      return errorFrame("not_in_room", `You are not in ${roomText(roomName)}`);
    }
    if (member.rooms.size === 1) {
      return errorFrame("not_allowed", `${room.name} is your last room: join another first`);
    }
    this.#takeOut(member, room, "left");
    this.#log(`${memberAddress(member)} ${member.name} left ${room.name}`);
    return undefined;
  }

  /**
   * Takes a member out of a room (which must not be their last), telling the room (and the
   * member, which confirms it) with `reason`, and moving their input to their last room.
   */
  #takeOut(member: Member, room: Room, reason: string): void {
    const left: ServerFrame = {
      type: "left",
      name: member.name,
      id: member.person.id,
      ts: this.#now(),
      reason,
      room: room.name,
    };
    if (!this.#directory.notifyRoom(room, left)) this.#directory.send(member, left);
    this.#directory.exit(member, room);
    if (member.current === room) {
      // Input now goes to the room joined last: say so, as a join would.
      member.current = [...member.rooms].at(-1)!;
      this.#directory.send(member, this.#directory.roomFrame(member.current));
    }
    this.#sessions.save(member);
  }

  // ==== Room moderation ====

  /** A member as room moderation sees them: a person, with a key or not, an operator or not. */
  #actor(member: Member): RoomActor {
    return {
      person: { id: member.person.id, name: member.name },
      keyed: member.person.key !== undefined,
      operator: this.#people.isOperator(member.person.key?.fingerprint),
    };
  }

  /** Answers `room_info`, and carries out `room_set`, `room_role`, `invite` and `remove`. */
  #roomFrame(
    member: Member,
    frame: Extract<
      ClientFrame,
      { type: "room_info" | "room_set" | "room_role" | "invite" | "remove" }
    >,
  ): ErrorFrame | undefined {
    const checked = checkRoom(frame.room);
    if (!checked.ok) return errorFrame("bad_room", checked.error);
    const name = this.#directory.findRoom(checked.value)?.name ??
      this.#rules.rulesOf(checked.value)?.room ?? checked.value;
    const actor = this.#actor(member);
    switch (frame.type) {
      case "room_info":
        this.#directory.send(member, this.#roomInfo(name));
        return undefined;
      case "room_set": {
        const change = {
          ...(frame.topicLocked === undefined ? {} : { topicLocked: frame.topicLocked }),
          ...(frame.inviteOnly === undefined ? {} : { inviteOnly: frame.inviteOnly }),
        };
        const result = this.#rules.set(name, actor, change);
        if (!result.ok) return errorFrame("not_allowed", result.error);
        this.#tellRoom(name, member, result.value);
        return undefined;
      }
      case "room_role": {
        const target = this.#directory.member(frame.name);
        if (!target) {
          return errorFrame("no_such_user", `Nobody called ${quoteInput(frame.name)} is here`);
        }
        const result = this.#rules.setRole(name, actor, this.#actor(target), frame.role);
        if (!result.ok) return errorFrame("not_allowed", result.error);
        this.#tellRoom(name, member, result.value, target);
        return undefined;
      }
      case "invite": {
        const target = this.#directory.member(frame.name);
        if (!target) {
          return errorFrame("no_such_user", `Nobody called ${quoteInput(frame.name)} is here`);
        }
        const result = this.#rules.invite(name, actor, { id: target.person.id, name: target.name });
        if (!result.ok) return errorFrame("not_allowed", result.error);
        this.#directory.send(target, {
          type: "notice",
          text: `${member.name} invites you to ${name}: /join ${name}`,
        });
        this.#directory.send(member, { type: "notice", text: `Invited ${target.name} to ${name}` });
        this.#log(`${memberAddress(member)} ${member.name} invited ${target.name} to ${name}`);
        return undefined;
      }
      case "remove":
        return this.#remove(member, actor, name, frame.name, frame.reason);
    }
  }

  /** A room's rules as a `room_info` frame. */
  #roomInfo(room: string): RoomInfoFrame {
    const rules = this.#rules.rulesOf(room);
    return {
      type: "room_info",
      room,
      ...(rules?.owner ? { owner: rules.owner.name, ownerId: rules.owner.id } : {}),
      moderators: [...(rules?.moderators.values() ?? [])].map((p) => p.name),
      topicLocked: rules?.topicLocked ?? false,
      inviteOnly: rules?.inviteOnly ?? false,
    };
  }

  /** Tells a room (and the one who acted, and `also`, wherever they are) what changed in it. */
  #tellRoom(room: string, actor: Member, text: string, also?: Member): void {
    const notice = new Outgoing({ type: "notice", text });
    const present = this.#directory.findRoom(room);
    const told = new Set<Member>(present?.members ?? []);
    if (present) this.#directory.toRoom(present, notice);
    for (const other of [actor, also]) {
      if (other && !told.has(other)) this.#directory.send(other, notice);
    }
    this.#log(`${memberAddress(actor)} ${text}`);
  }

  #remove(
    member: Member,
    actor: RoomActor,
    roomName: string,
    name: string,
    reason: string | undefined,
  ): ErrorFrame | undefined {
    const room = this.#directory.findRoom(roomName);
    const target = this.#directory.member(name);
    if (!room || !target || !target.rooms.has(room)) {
      return errorFrame("no_such_user", `Nobody called ${quoteInput(name)} is in ${roomName}`);
    }
    const refused = this.#rules.removalRefusal(room.name, actor, this.#actor(target));
    if (refused) return errorFrame("not_allowed", refused);
    if (target.rooms.size === 1) {
      if (room === this.#directory.lobby) {
        return errorFrame(
          "not_allowed",
          `${LOBBY} is ${target.name}'s only room: the server's operators can /kick instead`,
        );
      }
      // Nobody is left with no room: the lobby takes them.
      this.#directory.enter(target, this.#directory.lobby, this.#now());
      this.#directory.send(target, this.#directory.roomFrame(this.#directory.lobby));
    }
    const why = cleanLine(reason ?? "");
    this.#takeOut(target, room, `removed by ${member.name}${why ? `: ${why}` : ""}`);
    this.#log(`${memberAddress(member)} ${member.name} removed ${target.name} from ${room.name}`);
    return undefined;
  }

  /**
   * Keeps a room's topic for good (an empty one is forgotten). The topics run from the one set
   * longest ago to the latest; past {@linkcode MAX_STORED_TOPICS}, the first is forgotten.
   */
  #keepTopic(room: Room, by: string): void {
    const key = roomKey(room.name);
    this.#topics.delete(key);
    if (room.topic !== "") this.#topics.set(key, room.topic);
    this.#store?.saveTopic({ room: room.name, topic: room.topic, by }, this.#now());
    if (this.#topics.size <= MAX_STORED_TOPICS) return;
    const [oldest] = this.#topics.keys();
    this.#topics.delete(oldest!);
    this.#store?.saveTopic({ room: oldest!, topic: "", by }, this.#now());
  }

  #topic(member: Member, roomName: string, topic: string | undefined): ErrorFrame | undefined {
    const room = this.#directory.findRoom(roomName);
    if (!room || !member.rooms.has(room)) {
      return errorFrame("not_in_room", `You are not in ${roomText(roomName)}`);
    }
    if (topic === undefined) {
      this.#directory.send(member, { type: "topic", room: room.name, topic: room.topic });
      return undefined;
    }
    const locked = this.#rules.topicRefusal(room.name, this.#actor(member));
    if (locked) return errorFrame("not_allowed", locked);
    const checked = checkLine(topic, "Topic");
    if (!checked.ok) return errorFrame("bad_text", checked.error);
    room.topic = checked.value;
    this.#keepTopic(room, member.name);
    this.#directory.toRoom(room, {
      type: "topic",
      room: room.name,
      topic: room.topic,
      by: member.name,
      ts: this.#now(),
    });
    this.#log(
      `${memberAddress(member)} ${member.name} set the topic of ${room.name}: ${room.topic}`,
    );
    return undefined;
  }

  #whois(member: Member, name: string): ErrorFrame | undefined {
    const target = this.#directory.member(name);
    if (!target) return errorFrame("no_such_user", `Nobody called ${quoteInput(name)} is here`);
    const key = target.person.key;
    const asker = this.#people.isOperator(member.person.key?.fingerprint);
    // The host name a client reports is for the operators alone.
    const { host: _host, ...client } = target.info;
    this.#directory.send(member, {
      type: "whois",
      name: target.name,
      id: target.person.id,
      ...(key ? { fingerprint: key.fingerprint } : {}),
      ...(key && this.#people.ownerOf(target.name) === key.fingerprint ? { registered: true } : {}),
      ...(this.#people.isOperator(key?.fingerprint) ? { operator: true } : {}),
      rooms: [...target.rooms].map((r) => r.name),
      idle: this.#now() - target.lastActive,
      since: target.since,
      ...(target.away === undefined ? {} : { away: target.away }),
      client: asker || target === member ? target.info : client,
    });
    return undefined;
  }

  #rename(member: Member, name: string): ErrorFrame | undefined {
    const checked = checkName(name);
    if (!checked.ok) return errorFrame("bad_name", checked.error);
    const holder = this.#directory.member(checked.value);
    if (holder && holder !== member) return errorFrame("name_taken", nameTakenText(checked.value));
    if (looksReserved(checked.value)) return reservedLookalike(checked.value);
    if (this.#bans.find({ name: checked.value })) {
      return errorFrame("not_allowed", `The name "${checked.value}" is banned from this server`);
    }
    const owner = this.#people.ownerOf(checked.value);
    if (owner !== undefined && owner !== member.person.key?.fingerprint) {
      return errorFrame(
        "name_taken",
        `The name "${checked.value}" is registered to someone else: choose another`,
      );
    }
    const old = member.name;
    if (old === checked.value) return undefined;
    this.#directory.rename(member, checked.value);
    this.#sessions.save(member);
    // Everyone who shares a room hears it once, however many rooms they share.
    const out = new Outgoing({
      type: "renamed",
      from: old,
      to: member.name,
      id: member.person.id,
      ts: this.#now(),
    });
    this.#directory.toCompany(member, out, { news: false });
    this.#directory.send(member, out);
    this.#log(`${memberAddress(member)} ${old} is now ${member.name}`);
    return undefined;
  }
}

/** Checks the client-chosen `ref` and `cid` of a message. */
function checkIds(frame: { ref?: string; cid?: string }): ErrorFrame | undefined {
  for (const key of ["ref", "cid"] as const) {
    const value = frame[key];
    if (value !== undefined && !isValidRef(value)) {
      return errorFrame("bad_frame", `Field "${key}" must be 1-64 letters, digits or _.:-`);
    }
  }
  return undefined;
}

/** The refusal of a name that reads as a reserved one (`ѕеrvеr`, `SERVER`, `adrnin`). */
function reservedLookalike(name: string): ErrorFrame {
  return errorFrame("bad_name", `The name "${name}" looks like a reserved name: choose another`);
}

function withRef(error: ErrorFrame, ref: string | undefined): ErrorFrame {
  return ref === undefined ? error : { ...error, ref };
}

/** A room as someone typed it, for an answer: safe to print, with its `#` (`dev` means `#dev`). */
function roomText(typed: string): string {
  const quoted = quoteInput(typed);
  return quoted.startsWith("#") ? quoted : `#${quoted}`;
}
