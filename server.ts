#!/usr/bin/env -S deno run --allow-net --allow-sys=hostname,networkInterfaces
/**
 * The chat server: accepts TCP connections, lets people pick a unique name and relays their
 * messages to everyone present.
 *
 * ```sh
 * deno task server                 # listen on 0.0.0.0:5050
 * deno task server --port 6000     # another port
 * ```
 *
 * It is also a library: {@linkcode startServer} runs a server in-process (tests and benchmarks use
 * it), and {@linkcode ChatCore} is the chat itself, with no sockets in it.
 *
 * @module
 */

import process from "node:process";
import * as readline from "node:readline";
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { parseArgs } from "node:util";
import {
  CHAT_COMMANDS,
  checkHost,
  checkName,
  checkRoom,
  checkText,
  cleanInfo,
  cleanLine,
  clearInputLine,
  type ClientFrame,
  type ClientInfo,
  commandHelp,
  decodeClientFrame,
  DEFAULT_PORT,
  encodeFrame,
  type ErrorCode,
  type ErrorFrame,
  errorFrame,
  findCommand,
  firstSentence,
  firstWord,
  FrameTooLargeError,
  heartbeat,
  HEARTBEAT_MS,
  HELLO_TIMEOUT_MS,
  type HelloFrame,
  HISTORY_PAGE,
  type HistoryFrame,
  isDisconnectError,
  isValidRef,
  LineSplitter,
  LOBBY,
  MAX_FRAME_BYTES,
  MAX_HISTORY_PAGE,
  MAX_LISTED_USERS,
  type MessageFrame,
  type MsgFrame,
  nameKey,
  OPERATOR_COMMANDS,
  Outbox,
  parseCommand,
  parsePort,
  printAbove,
  type PrivateFrame,
  quoteInput,
  READ_BUFFER_BYTES,
  readCommandLine,
  renderFrame,
  type RenderOptions,
  type RoomInfo,
  roomKey,
  sanitizeForTerminal,
  type SayFrame,
  type ServerFrame,
  TokenBucket,
  unknownCommand,
  UsageError,
  VERSION,
  type WelcomeFrame,
  writeLinesSync,
} from "./protocol.ts";

// ==== Constants ====

/** The address the CLI listens on unless told otherwise: every IPv4 interface. */
export const DEFAULT_HOST = "0.0.0.0";
/** How many bytes may wait for one slow client before it is disconnected. */
export const DEFAULT_MAX_QUEUE_BYTES = 1024 * 1024;
/** The database file the command line uses unless told otherwise. */
export const DEFAULT_DB = "chat.db";
/** Bad frames in a row that make the server give up on a connection. */
export const MAX_ERRORS_IN_A_ROW = 5;
/** How long a closing connection gets to receive its last frames, in milliseconds. */
const CLOSE_GRACE_MS = 1000;

// ==== Chat core ====

/**
 * One frame on its way out, encoded at most once per wire format however many people receive
 * it: JSON for programs, readable text for people on `nc` or `telnet`.
 */
export class Outgoing {
  /** The frame being sent. */
  readonly frame: ServerFrame;
  #json: Uint8Array | undefined;
  #text: Uint8Array | undefined;

  constructor(frame: ServerFrame) {
    this.frame = frame;
  }

  /** The frame as a JSON line. */
  get json(): Uint8Array {
    return this.#json ??= encodeFrame(this.frame);
  }

  /** The frame as plain text lines (possibly none), for plain-text clients. */
  get text(): Uint8Array {
    return this.#text ??= encodeText(renderFrame(this.frame, PLAIN_TEXT_VIEW));
  }
}

/** How frames read on a plain-text client: times, rooms always named, no colours. */
const PLAIN_TEXT_VIEW: RenderOptions = { me: "", color: false, time: true, skipOwn: false };
const textEncoder = new TextEncoder();

/** Encodes lines of text for a plain-text client: CRLF line ends, as telnet expects. */
export function encodeText(lines: readonly string[]): Uint8Array {
  return textEncoder.encode(lines.map((line) => `${line}\r\n`).join(""));
}

/**
 * The chat core's view of one connection: somewhere to send frames, and a way to end it. The
 * core never touches sockets; the network layer (or a test) implements this.
 */
export interface Peer {
  /** The remote IP address, for the operator's log. */
  readonly address: string;
  /** Queues a frame. Must not block; a peer that cannot keep up disconnects itself. */
  send(out: Outgoing): void;
  /** Sends a fatal error, then ends the connection; the member is removed with `reason`. */
  end(error: ErrorFrame, reason: string): void;
}

/** A room and who is in it. */
export interface Room {
  /** The name as first written, `#` included. */
  readonly name: string;
  topic: string;
  /** The members, in the order they joined. */
  readonly members: Set<Member>;
}

/** Somebody who has said hello and holds a name. */
export interface Member {
  /** The name as chosen, in normal form. */
  name: string;
  /** What the client reported about itself, cleaned (anew when a session resumes). */
  info: ClientInfo;
  /** When the member joined, in milliseconds since the epoch. */
  readonly since: number;
  /** Where frames for this member go; while the connection is lost, nowhere. */
  peer: Peer;
  /** The secret that lets this member's client resume the session after losing the connection. */
  readonly token: string;
  /** The rooms the member is in, in the order joined. */
  readonly rooms: Set<Room>;
  /** Where plain input goes: the room joined or switched to last. */
  current: Room;
  /** When the member last said anything. */
  lastActive: number;
  /** The away message, while away. */
  away: string | undefined;
  /** Who last wrote to this member privately, for `/reply`. */
  lastPrivateFrom: string | undefined;
  /** While the connection is lost: the timer that lets the member go at the end of the grace. */
  grace: ReturnType<typeof setTimeout> | undefined;
  /** While the connection is lost: when the grace period ends, on the core's clock. */
  graceEnds: number | undefined;
  /** The away message from before the connection was lost, given back on resuming. */
  awayBeforeLoss: string | undefined;
  /** Per room, the oldest message id sent as history, for paging further back. */
  readonly historyFrom: Map<Room, number>;
}

/** Options for {@linkcode ChatCore}. */
export interface ChatCoreOptions {
  /**
   * The server's name, sent in every welcome.
   * @default {"chat"}
   */
  serverName?: string;
  /**
   * The message of the day, shown to everyone who joins.
   * @default {none}
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
   * Says whether a name is kept out (banned); such a name cannot be taken by renaming either.
   * @default {no name is kept out}
   */
  isNameBanned?: (name: string) => boolean;
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

/** The outcome of a hello: the new member, or an error frame for the peer alone. */
export type JoinResult = { ok: true; member: Member } | { ok: false; error: ErrorFrame };

/** The name the server speaks under; it is reserved, so nobody can pose as it. */
export const SERVER_SPEAKER = "server";
/** How many earlier messages joining a room shows, unless told otherwise. */
export const HISTORY_LIMIT = 50;
/** The largest room in which arrivals and leaves are announced, unless told otherwise. */
export const ANNOUNCE_LIMIT = 200;
/** How long a member whose connection was lost is waited for, in milliseconds. */
export const GRACE_MS = 60_000;
/** How long after being let go a session can still be resumed, in milliseconds. */
export const RESUME_WINDOW_MS = 24 * 60 * 60 * 1000;
/** The most missed messages looked up on resuming; the byte budget usually binds first. */
const MAX_REPLAY = 5000;
/** The away message of somebody whose connection was lost. */
const CONNECTION_LOST = "connection lost";

/** A peer for a member whose connection is lost: frames go nowhere (they are in the store). */
function lostPeer(address: string): Peer {
  return { address, send: () => {}, end: () => {} };
}

/**
 * The chat itself: members and their unique names, rooms, messages, private messages, notices,
 * history and sessions. It turns frames from members into frames for members and knows nothing
 * about the network.
 */
export class ChatCore {
  /** The message of the day, shown on joining; empty for none. */
  motd: string;
  #members = new Map<string, Member>();
  #sessions = new Map<string, Member>();
  #rooms = new Map<string, Room>();
  #lobby: Room;
  #serverName: string;
  #log: (line: string) => void;
  /** Whether anyone reads the log: lines on the message path are not even built otherwise. */
  #logging: boolean;
  #announceLimit: number;
  #now: () => number;
  #isNameBanned: (name: string) => boolean;
  #store: ChatStore | undefined;
  #historyLimit: number;
  #graceMs: number;
  #resumeWindowMs: number;
  #replayBytes: number;
  #limits: { rate: number; burst: number } | undefined;
  #nextMessageId: number;
  #quiet = false;

  constructor(options: ChatCoreOptions = {}) {
    this.#serverName = options.serverName ?? "chat";
    this.motd = options.motd ?? "";
    this.#log = options.log ?? (() => {});
    this.#logging = options.log !== undefined;
    this.#announceLimit = options.announceLimit ?? ANNOUNCE_LIMIT;
    this.#now = options.now ?? Date.now;
    this.#isNameBanned = options.isNameBanned ?? (() => false);
    this.#store = options.store;
    this.#historyLimit = options.historyLimit ?? HISTORY_LIMIT;
    this.#graceMs = options.graceMs ?? GRACE_MS;
    this.#resumeWindowMs = options.resumeWindowMs ?? RESUME_WINDOW_MS;
    this.#replayBytes = options.replayBytes ?? 256 * 1024;
    this.#limits = options.limits;
    this.#lobby = this.#room(LOBBY);
    this.#nextMessageId = (this.#store?.lastId() ?? 0) + 1;
    this.#restoreSessions();
  }

  /** Everyone present (or briefly away after losing the connection), in the order they joined. */
  get members(): Iterable<Member> {
    return this.#members.values();
  }

  /** How many people are present. */
  get size(): number {
    return this.#members.size;
  }

  /** The member with that name (in any case or look-alike form), if present. */
  member(name: string): Member | undefined {
    return this.#members.get(nameKey(name));
  }

  /** The room with that name, if it exists. */
  room(name: string): Room | undefined {
    const checked = checkRoom(name);
    return checked.ok ? this.#rooms.get(roomKey(checked.room)) : undefined;
  }

  /**
   * Handles a hello. A `resume` token of a session still held gives that session back to this
   * peer (closing its old connection, if it still looks alive), with the messages missed since
   * `last`. Otherwise the peer becomes a new member of the lobby, gets a welcome and its
   * history, and the lobby a `joined` notice. On failure nothing changes and the error is for
   * the peer alone.
   */
  join(peer: Peer, hello: HelloFrame): JoinResult {
    this.#store?.commit();
    if (hello.resume !== undefined) {
      const held = this.#sessions.get(hello.resume);
      if (held) return { ok: true, member: this.#resume(held, peer, hello) };
      const stored = this.#store?.session(hello.resume);
      if (stored && (stored.leftAt ?? Infinity) >= this.#now() - this.#resumeWindowMs) {
        return this.#comeBack(stored, peer, hello);
      }
    }
    const checked = checkName(hello.name);
    if (!checked.ok) return { ok: false, error: errorFrame("bad_name", checked.error) };
    const holder = this.#members.get(nameKey(checked.name));
    if (holder?.graceEnds !== undefined) {
      const seconds = Math.max(1, Math.ceil((holder.graceEnds - this.#now()) / 1000));
      const text = `The name "${holder.name}" is held for ${seconds} s more for someone whose ` +
        "connection dropped: choose another, or try again then";
      return { ok: false, error: errorFrame("name_taken", text) };
    }
    if (holder) return { ok: false, error: nameTaken(checked.name) };
    const member = this.#add(checked.name, peer, cleanClientInfo(hello.client), newToken());
    this.#enterRoom(member, this.#lobby, member.since);
    this.#saveSession(member);
    this.#sendTo(member, this.#welcome(member, false));
    this.#sendHistory(member, this.#lobby, Number.MAX_SAFE_INTEGER, this.#historyLimit, false);
    this.#log(`${peer.address} + ${member.name} joined${describeClient(member.info)}`);
    return { ok: true, member };
  }

  /**
   * Handles a frame from a member. Returns an error frame for the member when the frame is
   * refused; `bye` is the network layer's to act on and is ignored here.
   */
  receive(member: Member, frame: ClientFrame): ErrorFrame | undefined {
    // Messages wait for their commit; anything else first lets earlier messages go out.
    if (frame.type !== "say" && frame.type !== "msg") this.#store?.commit();
    switch (frame.type) {
      case "say":
        return this.#say(member, frame);
      case "msg":
        return this.#private(member, frame);
      case "who":
        return this.#who(member, frame.room);
      case "join":
        return this.#joinRoom(member, frame.room);
      case "leave":
        return this.#leaveRoom(member, frame.room ?? member.current.name);
      case "rooms":
        this.#sendTo(member, { type: "room_list", rooms: this.#roomList() });
        return undefined;
      case "topic":
        return this.#topic(member, frame.room, frame.topic);
      case "whois":
        return this.#whois(member, frame.name);
      case "nick":
        return this.#rename(member, frame.name);
      case "history":
        return this.#history(member, frame);
      case "away":
        member.away = cleanLine(frame.message) || "away";
        this.#sendTo(member, { type: "notice", text: `You are away: ${member.away}` });
        return undefined;
      case "back":
        member.away = undefined;
        this.#sendTo(member, { type: "notice", text: "You are back" });
        return undefined;
      case "ping":
        this.#sendTo(member, { type: "pong" });
        return undefined;
      case "pong":
      case "bye":
        return undefined;
      case "hello":
        return errorFrame("bad_frame", "Already joined: hello is only for the first frame");
      default: {
        const unexpected: never = frame;
        throw new TypeError(`Unhandled frame: ${JSON.stringify(unexpected)}`);
      }
    }
  }

  /**
   * Makes one of the member's rooms current, for clients whose input the server reads (plain
   * text). Returns an error message when the member is not in that room.
   */
  switchRoom(member: Member, name: string): string | undefined {
    const room = this.room(name);
    if (!room || !member.rooms.has(room)) {
      return `You are not in ${quoteInput(name)}: /join it first`;
    }
    member.current = room;
    this.#sendTo(member, this.#roomFrame(room));
    return undefined;
  }

  /**
   * The member's connection (`peer`) ended without a goodbye. With `hold`, the member stays for
   * the grace period, shown as away, so that its client can resume; otherwise it leaves. A peer
   * that is no longer the member's (the session resumed elsewhere) changes nothing.
   */
  disconnect(member: Member, peer: Peer, reason: string, options: { hold: boolean }): void {
    if (member.peer !== peer || this.#members.get(nameKey(member.name)) !== member) return;
    if (this.#quiet) {
      // Shutting down: the session stays stored, to be held again when the server restarts.
      this.#log(`${peer.address} - ${member.name} (${reason})`);
      return;
    }
    if (!options.hold || this.#graceMs <= 0) return this.remove(member, reason);
    this.#store?.commit();
    member.peer = lostPeer(peer.address);
    member.awayBeforeLoss = member.away;
    member.away = CONNECTION_LOST;
    this.#hold(member);
    this.#toRoomsOf(member, {
      type: "presence",
      name: member.name,
      ts: this.#now(),
      away: CONNECTION_LOST,
    });
    this.#log(`${peer.address} ~ ${member.name} lost the connection (${reason}); holding the name`);
  }

  /** Removes a member from the chat and tells each of its rooms why. Removing twice is harmless. */
  remove(member: Member, reason: string): void {
    this.#store?.commit();
    if (!this.#forget(member, reason)) return;
    this.#store?.dropSession(member.token);
  }

  /** Stops announcing leaves: the server is going down and everyone is leaving at once. */
  quiet(): void {
    this.#quiet = true;
  }

  /** Commits what is pending and stops every timer; the store stays open for its owner. */
  close(): void {
    this.#store?.commit();
    for (const member of this.#members.values()) clearTimeout(member.grace);
  }

  /** The operator speaks to everyone. */
  announce(text: string): void {
    this.#broadcast({ type: "announce", text, ts: this.#now() });
    this.#log(`${SERVER_SPEAKER} (to everyone): ${text}`);
  }

  /** The operator speaks in one room, as {@linkcode SERVER_SPEAKER}. */
  sayAsServer(roomName: string, text: string): string | undefined {
    const room = this.room(roomName);
    if (!room) return `There is no room ${quoteInput(roomName)}`;
    const message: MessageFrame = {
      type: "message",
      id: this.#nextMessageId++,
      ts: this.#now(),
      from: SERVER_SPEAKER,
      text,
      room: room.name,
    };
    this.#commitThen(message, { sender: SERVER_SPEAKER }, () => this.#toRoom(room, message));
    this.#log(`${SERVER_SPEAKER} ${room.name}: ${text}`);
    return undefined;
  }

  #add(name: string, peer: Peer, info: ClientInfo, token: string): Member {
    const now = this.#now();
    const member: Member = {
      name,
      info,
      since: now,
      peer,
      token,
      rooms: new Set(),
      current: this.#lobby,
      lastActive: now,
      away: undefined,
      lastPrivateFrom: undefined,
      grace: undefined,
      graceEnds: undefined,
      awayBeforeLoss: undefined,
      historyFrom: new Map(),
    };
    this.#members.set(nameKey(name), member);
    this.#sessions.set(token, member);
    return member;
  }

  /** Puts a member in a room, making it current, and tells the others there. */
  #enterRoom(member: Member, room: Room, ts = this.#now()): void {
    member.current = room;
    if (room.members.has(member)) return;
    room.members.add(member);
    member.rooms.add(room);
    this.#announce(room, { type: "joined", name: member.name, ts, room: room.name }, member);
  }

  #welcome(member: Member, resumed: boolean): WelcomeFrame {
    return {
      type: "welcome",
      name: member.name,
      ...userList(member.current.members, ARRIVAL_LISTED_USERS),
      server: { name: this.#serverName, version: VERSION },
      room: member.current.name,
      ...(this.motd ? { motd: this.motd } : {}),
      resume: member.token,
      ...(resumed ? { resumed: true } : {}),
      last: this.#nextMessageId - 1,
      ...(this.#limits ? { limits: this.#limits } : {}),
    };
  }

  /** Gives a held session to a new connection: its rooms, then exactly what it missed. */
  #resume(member: Member, peer: Peer, hello: HelloFrame): Member {
    const old = member.peer;
    member.info = cleanClientInfo(hello.client);
    const wasLost = member.grace !== undefined;
    clearTimeout(member.grace);
    member.grace = undefined;
    member.graceEnds = undefined;
    member.peer = peer;
    if (wasLost) {
      member.away = member.awayBeforeLoss;
      this.#toRoomsOf(member, { type: "presence", name: member.name, ts: this.#now() });
    } else {
      old.end(errorFrame("replaced", "This session connected again from elsewhere"), "replaced");
    }
    this.#welcomeBack(member, hello.last);
    this.#log(`${peer.address} ~ ${member.name} resumed the session`);
    return member;
  }

  /** Lets somebody whose session was let go (but is still resumable) come back into its rooms. */
  #comeBack(stored: StoredSession, peer: Peer, hello: HelloFrame): JoinResult {
    const checked = checkName(stored.name);
    if (!checked.ok) return { ok: false, error: errorFrame("bad_name", checked.error) };
    if (this.#members.has(nameKey(checked.name))) {
      return { ok: false, error: nameTaken(checked.name) };
    }
    if (this.#isNameBanned(checked.name)) {
      return { ok: false, error: errorFrame("banned", "This name is banned from the server") };
    }
    const member = this.#add(checked.name, peer, cleanClientInfo(hello.client), stored.token);
    this.#enterRoom(member, this.#lobby);
    for (const name of stored.rooms) {
      const room = this.#roomNamed(name);
      if (room) this.#enterRoom(member, room);
    }
    this.#saveSession(member);
    this.#welcomeBack(member, hello.last);
    this.#log(`${peer.address} + ${member.name} came back${describeClient(member.info)}`);
    return { ok: true, member };
  }

  /** The welcome of a resumed session, its rooms (the current one last), and what it missed. */
  #welcomeBack(member: Member, last: number | undefined): void {
    this.#sendTo(member, this.#welcome(member, true));
    for (const room of member.rooms) {
      if (room !== member.current) this.#sendTo(member, this.#roomFrame(room));
    }
    this.#sendTo(member, this.#roomFrame(member.current));
    if (last !== undefined) this.#replayMissed(member, last);
  }

  #replayMissed(member: Member, last: number): void {
    if (!this.#store) return;
    const rooms = [...member.rooms].map((r) => r.name);
    const { frames, total } = this.#store.missed(rooms, nameKey(member.name), last, MAX_REPLAY);
    const fitting = this.#fit(frames.reverse()).reverse();
    if (fitting.length < total) {
      this.#sendTo(member, {
        type: "notice",
        text: `${total - fitting.length} earlier missed messages are not shown: /history for them`,
      });
    }
    for (const out of fitting) member.peer.send(out);
  }

  /** The leading frames whose encoded size fits the replay budget, encoded. */
  #fit(frames: ServerFrame[]): Outgoing[] {
    const fitting: Outgoing[] = [];
    let bytes = 0;
    for (const frame of frames) {
      const out = new Outgoing(frame);
      bytes += out.json.length;
      if (bytes > this.#replayBytes) break;
      fitting.push(out);
    }
    return fitting;
  }

  /**
   * Sends up to `limit` messages of a room older than id `before`, after a `history` frame that
   * counts them; `always` sends that frame even when there is nothing to show.
   */
  #sendHistory(member: Member, room: Room, before: number, limit: number, always: boolean): void {
    if (limit <= 0) return;
    const found = this.#store?.history(room.name, before, limit + 1) ?? [];
    const candidates = found.length > limit ? found.slice(1) : found;
    const page = this.#fit(candidates.reverse()).reverse();
    if (page.length === 0 && !always) return;
    this.#sendTo(member, {
      type: "history",
      room: room.name,
      count: page.length,
      more: found.length > page.length,
    });
    for (const out of page) member.peer.send(out);
    const oldest = page[0]?.frame;
    if (oldest?.type === "message") member.historyFrom.set(room, oldest.id);
  }

  #history(member: Member, frame: HistoryFrame): ErrorFrame | undefined {
    const room = frame.room === undefined ? member.current : this.room(frame.room);
    if (!room || !member.rooms.has(room)) {
      return errorFrame("not_in_room", `You are not in ${quoteInput(frame.room ?? "")}`);
    }
    const limit = frame.limit ?? HISTORY_PAGE;
    if (limit < 1 || limit > MAX_HISTORY_PAGE) {
      return errorFrame("bad_frame", `Field "limit" must be 1-${MAX_HISTORY_PAGE}`);
    }
    const before = frame.before ?? Number.MAX_SAFE_INTEGER;
    if (before < 1) return errorFrame("bad_frame", 'Field "before" must be a message id');
    this.#sendHistory(member, room, before, limit, true);
    return undefined;
  }

  #say(member: Member, frame: SayFrame): ErrorFrame | undefined {
    const refused = checkIds(frame);
    if (refused) return refused;
    let room = member.current;
    if (frame.room !== undefined) {
      const found = this.room(frame.room);
      if (!found || !member.rooms.has(found)) {
        return withRef(
          errorFrame(
            "not_in_room",
            `You are not in ${quoteInput(frame.room)}: /join it first`,
          ),
          frame.ref,
        );
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
      text: checked.text,
      room: room.name,
      ...(frame.ref === undefined ? {} : { ref: frame.ref }),
      ...(frame.action ? { action: true } : {}),
    };
    const keys = { sender: nameKey(member.name), cid: frame.cid };
    const stored = this.#commitThen(message, keys, () => this.#toRoom(room, message), member);
    if (stored && this.#logging) {
      this.#log(`${member.peer.address} ${room.name} ${member.name}: ${checked.text}`);
    }
    return undefined;
  }

  #private(member: Member, frame: MsgFrame): ErrorFrame | undefined {
    const refused = checkIds(frame);
    if (refused) return refused;
    const target = this.member(frame.to);
    if (!target) {
      const text = `Nobody called ${quoteInput(frame.to)} is here`;
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
      to: target.name,
      text: checked.text,
      ...(frame.ref === undefined ? {} : { ref: frame.ref }),
      ...(frame.action ? { action: true } : {}),
    };
    const keys = { sender: nameKey(member.name), recipient: nameKey(target.name), cid: frame.cid };
    const stored = this.#commitThen(message, keys, () => {
      const out = new Outgoing(message);
      target.lastPrivateFrom = member.name;
      target.peer.send(out);
      if (target !== member) member.peer.send(out);
      if (target.away !== undefined) {
        this.#sendTo(member, { type: "notice", text: `${target.name} is away: ${target.away}` });
      }
    }, member);
    if (stored && this.#logging) {
      this.#log(`${member.peer.address} ${member.name} -> ${target.name} (private)`);
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
      if (sender) this.#sendTo(sender, withRef(errorFrame("storage_failed"), message.ref));
    };
    const added = this.#store.addMessage(message, keys, (ok) => ok ? deliver() : refuse());
    if (added === "failed") {
      this.#log(`! could not store a message from ${keys.sender}`);
      refuse();
      return false;
    }
    if (added === "duplicate" && sender && keys.cid !== undefined) {
      const { cid } = keys;
      this.#store.afterCommit(() => {
        const stored = this.#store?.messageByCid(keys.sender, cid);
        if (stored) {
          this.#sendTo(sender, {
            ...stored,
            ...(message.ref === undefined ? {} : { ref: message.ref }),
          });
        }
      });
    }
    return added === "added";
  }

  #who(member: Member, roomName: string | undefined): ErrorFrame | undefined {
    if (roomName === undefined) {
      this.#sendTo(member, { type: "users", ...userList(this.#members) });
      return undefined;
    }
    const room = this.room(roomName);
    if (!room) {
      return errorFrame(
        "bad_room",
        `There is no room ${quoteInput(roomName)}`,
      );
    }
    this.#sendTo(member, { type: "users", ...userList(room.members), room: room.name });
    return undefined;
  }

  #joinRoom(member: Member, roomName: string): ErrorFrame | undefined {
    const checked = checkRoom(roomName);
    if (!checked.ok) return errorFrame("bad_room", checked.error);
    const room = this.#roomNamed(checked.room)!;
    const isNew = !room.members.has(member);
    this.#enterRoom(member, room);
    this.#sendTo(member, this.#roomFrame(room));
    if (isNew) {
      this.#saveSession(member);
      this.#sendHistory(member, room, Number.MAX_SAFE_INTEGER, this.#historyLimit, false);
      this.#log(`${member.peer.address} ${member.name} joined ${room.name}`);
    }
    return undefined;
  }

  #leaveRoom(member: Member, roomName: string): ErrorFrame | undefined {
    const room = this.room(roomName);
    if (!room || !member.rooms.has(room)) {
      return errorFrame("not_in_room", `You are not in ${quoteInput(roomName)}`);
    }
    if (member.rooms.size === 1) {
      return errorFrame("not_allowed", `${room.name} is your last room: join another first`);
    }
    // The leaver gets the notice too: it confirms the leave.
    const left: ServerFrame = {
      type: "left",
      name: member.name,
      ts: this.#now(),
      reason: "left",
      room: room.name,
    };
    if (!this.#announce(room, left)) this.#sendTo(member, left);
    this.#exitRoom(member, room);
    if (member.current === room) {
      // Input now goes to the room joined last: say so, as a join would.
      member.current = [...member.rooms].at(-1)!;
      this.#sendTo(member, this.#roomFrame(member.current));
    }
    this.#saveSession(member);
    this.#log(`${member.peer.address} ${member.name} left ${room.name}`);
    return undefined;
  }

  #topic(member: Member, roomName: string, topic: string | undefined): ErrorFrame | undefined {
    const room = this.room(roomName);
    if (!room || !member.rooms.has(room)) {
      return errorFrame("not_in_room", `You are not in ${quoteInput(roomName)}`);
    }
    if (topic === undefined) {
      this.#sendTo(member, { type: "topic", room: room.name, topic: room.topic });
      return undefined;
    }
    room.topic = cleanLine(topic);
    this.#toRoom(room, {
      type: "topic",
      room: room.name,
      topic: room.topic,
      by: member.name,
      ts: this.#now(),
    });
    this.#log(`${member.peer.address} ${member.name} set the topic of ${room.name}: ${room.topic}`);
    return undefined;
  }

  #whois(member: Member, name: string): ErrorFrame | undefined {
    const target = this.member(name);
    if (!target) {
      return errorFrame(
        "no_such_user",
        `Nobody called ${quoteInput(name)} is here`,
      );
    }
    this.#sendTo(member, {
      type: "whois",
      name: target.name,
      rooms: [...target.rooms].map((r) => r.name),
      idle: this.#now() - target.lastActive,
      since: target.since,
      ...(target.away === undefined ? {} : { away: target.away }),
      client: target.info,
    });
    return undefined;
  }

  #rename(member: Member, name: string): ErrorFrame | undefined {
    const checked = checkName(name);
    if (!checked.ok) return errorFrame("bad_name", checked.error);
    const holder = this.member(checked.name);
    if (holder && holder !== member) return nameTaken(checked.name);
    if (this.#isNameBanned(checked.name)) {
      return errorFrame("not_allowed", `The name "${checked.name}" is banned from this server`);
    }
    const old = member.name;
    if (old === checked.name) return undefined;
    this.#members.delete(nameKey(old));
    member.name = checked.name;
    this.#members.set(nameKey(member.name), member);
    this.#saveSession(member);
    // Everyone who shares a room hears it once, however many rooms they share.
    const out = new Outgoing({ type: "renamed", from: old, to: member.name, ts: this.#now() });
    for (const other of this.#audience(member)) other.peer.send(out);
    member.peer.send(out);
    this.#log(`${member.peer.address} ${old} is now ${member.name}`);
    return undefined;
  }

  /** Takes a member out of every room (telling them why) and frees its name and session. */
  #forget(member: Member, reason: string): boolean {
    const key = nameKey(member.name);
    if (this.#members.get(key) !== member) return false;
    this.#members.delete(key);
    this.#sessions.delete(member.token);
    clearTimeout(member.grace);
    const ts = this.#now();
    for (const room of member.rooms) {
      this.#exitRoom(member, room);
      if (!this.#quiet) {
        this.#announce(room, { type: "left", name: member.name, ts, reason, room: room.name });
      }
    }
    this.#log(`${member.peer.address} - ${member.name} left (${reason})`);
    return true;
  }

  /** The grace period is over: the member leaves, but its session can still be resumed. */
  #letGo(member: Member): void {
    this.#store?.commit();
    if (!this.#forget(member, CONNECTION_LOST)) return;
    this.#store?.sessionLeft(member.token, this.#now());
  }

  /** After a restart, everyone who was present is held as if their connection was just lost. */
  #restoreSessions(): void {
    if (!this.#store) return;
    for (const session of this.#store.sessions(this.#now() - this.#resumeWindowMs)) {
      const checked = checkName(session.name);
      if (session.leftAt !== null || !checked.ok || this.#members.has(nameKey(checked.name))) {
        continue;
      }
      const member = this.#add(checked.name, lostPeer("-"), {}, session.token);
      member.away = CONNECTION_LOST;
      this.#enterRoom(member, this.#lobby);
      for (const name of session.rooms) {
        const room = this.#roomNamed(name);
        if (room) this.#enterRoom(member, room);
      }
      this.#hold(member);
    }
  }

  /** Keeps a member whose connection is lost for the grace period, then lets it go. */
  #hold(member: Member): void {
    member.graceEnds = this.#now() + this.#graceMs;
    member.grace = setTimeout(() => this.#letGo(member), this.#graceMs);
  }

  #saveSession(member: Member): void {
    const rooms = [...member.rooms].filter((r) => r !== member.current).map((r) => r.name);
    this.#store?.saveSession(member.token, member.name, [...rooms, member.current.name]);
  }

  /** The room with that name, created when it does not exist; `undefined` for a bad name. */
  #roomNamed(name: string): Room | undefined {
    const checked = checkRoom(name);
    if (!checked.ok) return undefined;
    return this.#rooms.get(roomKey(checked.room)) ?? this.#room(checked.room);
  }

  #room(name: string): Room {
    const room: Room = { name, topic: "", members: new Set() };
    this.#rooms.set(roomKey(name), room);
    return room;
  }

  #exitRoom(member: Member, room: Room): void {
    room.members.delete(member);
    member.rooms.delete(room);
    member.historyFrom.delete(room);
    if (room.members.size === 0 && room !== this.#lobby) this.#rooms.delete(roomKey(room.name));
  }

  #roomFrame(room: Room): ServerFrame {
    return {
      type: "room",
      room: room.name,
      topic: room.topic,
      ...userList(room.members, ARRIVAL_LISTED_USERS),
    };
  }

  #roomList(): RoomInfo[] {
    return [...this.#rooms.values()]
      .map((room) => ({ room: room.name, count: room.members.size, topic: room.topic }))
      .sort((a, b) => a.room.localeCompare(b.room));
  }

  #sendTo(member: Member, frame: ServerFrame): void {
    member.peer.send(new Outgoing(frame));
  }

  /**
   * Everyone else who shares a room with a member, once each; with `announced`, only the rooms
   * small enough for arrivals and leaves to be announced.
   */
  #audience(member: Member, announced = false): Set<Member> {
    const audience = new Set<Member>();
    for (const room of member.rooms) {
      if (announced && room.members.size > this.#announceLimit) continue;
      for (const other of room.members) audience.add(other);
    }
    audience.delete(member);
    return audience;
  }

  /** Tells those sharing a small enough room with a member that it dropped, or is back. */
  #toRoomsOf(member: Member, frame: ServerFrame): void {
    const out = new Outgoing(frame);
    for (const other of this.#audience(member, true)) other.peer.send(out);
  }

  /**
   * Queues an arrival or a leave for a room's members (but `except`) when the room is small
   * enough for such news; returns whether it did.
   */
  #announce(room: Room, frame: ServerFrame, except?: Member): boolean {
    if (room.members.size > this.#announceLimit) return false;
    this.#toRoom(room, frame, except);
    return true;
  }

  /** Encodes a frame once and queues it for every member of a room (but `except`). */
  #toRoom(room: Room, frame: ServerFrame, except?: Member): void {
    const out = new Outgoing(frame);
    for (const member of room.members) {
      if (member !== except) member.peer.send(out);
    }
  }

  /** Encodes a frame once and queues it for every member. */
  #broadcast(frame: ServerFrame): void {
    const out = new Outgoing(frame);
    for (const member of this.#members.values()) member.peer.send(out);
  }
}

/** A new resume token: 128 random bits, URL-safe. */
function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

function nameTaken(name: string): ErrorFrame {
  return errorFrame("name_taken", `The name "${name}" is taken: choose another`);
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

function withRef(error: ErrorFrame, ref: string | undefined): ErrorFrame {
  return ref === undefined ? error : { ...error, ref };
}

/**
 * How many names a welcome or a `room` frame lists: enough to see who is there in a small room,
 * while a join to a crowded room stays cheap (`who` lists up to {@linkcode MAX_LISTED_USERS}).
 */
const ARRIVAL_LISTED_USERS = 50;

/** At most `limit` names, in join order, and the full count. */
function userList(
  members: Set<Member> | Map<string, Member>,
  limit = MAX_LISTED_USERS,
): { users: string[]; count: number } {
  const users: string[] = [];
  for (const member of members.values()) {
    if (users.length === limit) break;
    users.push(member.name);
  }
  return { users, count: members.size };
}

function cleanClientInfo(info: ClientInfo | undefined): ClientInfo {
  if (info === undefined) return {};
  const clean: ClientInfo = {};
  if (info.app) clean.app = cleanInfo(info.app);
  if (info.os) clean.os = cleanInfo(info.os);
  if (info.host) clean.host = cleanInfo(info.host);
  return clean;
}

/** The client's self-description for the operator: ` (chat-client 0.1.0, on linux, host pc)`. */
export function describeClient(info: ClientInfo): string {
  const parts = [info.app, info.os && `on ${info.os}`, info.host && `host ${info.host}`];
  const known = parts.filter((p) => p);
  return known.length === 0 ? "" : ` (${known.join(", ")})`;
}

// ==== Message store ====

/**
 * The database's schema, one step per version: a database at version N gets steps N+1 onwards,
 * each in its own transaction, and `PRAGMA user_version` records how far it got.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE messages (
     id INTEGER PRIMARY KEY,
     ts INTEGER NOT NULL,
     room_key TEXT,
     room TEXT,
     sender TEXT NOT NULL,
     sender_key TEXT NOT NULL,
     recipient TEXT,
     recipient_key TEXT,
     text TEXT NOT NULL,
     action INTEGER NOT NULL DEFAULT 0,
     cid TEXT
   );
   CREATE INDEX messages_by_room ON messages (room_key, id) WHERE room_key IS NOT NULL;
   CREATE INDEX messages_by_recipient ON messages (recipient_key, id)
     WHERE recipient_key IS NOT NULL;
   CREATE UNIQUE INDEX messages_by_cid ON messages (sender_key, cid) WHERE cid IS NOT NULL;
   CREATE TABLE sessions (
     token TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     rooms TEXT NOT NULL,
     left_at INTEGER
   );`,
];

/**
 * How much message text one transaction gathers before it is committed without waiting for the
 * end of the turn: its messages then reach every recipient's queue together.
 */
const MAX_BATCH_TEXT = 16 * 1024;

/** A stored message: a room message (with `room`) or a private one (with `to`). */
export type StoredFrame = MessageFrame | PrivateFrame;

/** A session as stored: whose it is, its rooms (the current one last), and when it ended. */
export interface StoredSession {
  token: string;
  name: string;
  rooms: string[];
  /** When the person was last let go after losing the connection; `null` while present. */
  leftAt: number | null;
}

interface MessageRow {
  id: number;
  ts: number;
  room: string | null;
  sender: string;
  recipient: string | null;
  text: string;
  action: number;
}

/** A database file that cannot be opened or is already in use. */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreError";
  }
}

/**
 * Messages and sessions in SQLite (Deno's built-in `node:sqlite`), in WAL mode. Writes are
 * grouped: the first write opens a transaction and it is committed at the end of the current
 * turn of the event loop (or sooner, by {@linkcode ChatStore.commit}), after which the callbacks
 * waiting on it run. So a message is acknowledged only once it is on disk, and a burst of
 * messages costs one commit. A committed message survives the server being killed; a power cut
 * may lose the last moments (`synchronous=NORMAL`).
 */
export class ChatStore {
  #db: DatabaseSync;
  #statements: Map<string, StatementSync> = new Map();
  #inTransaction = false;
  #commitTimer: ReturnType<typeof setTimeout> | undefined;
  #batchBytes = 0;
  #waiting: ((ok: boolean) => void)[] = [];

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /**
   * Opens (creating and migrating as needed) the database at `path`; `:memory:` for one that
   * lives only as long as the server. The server holds it exclusively.
   * @throws {StoreError} when the file cannot be opened, is in use or is not a chat database.
   */
  static open(path: string): ChatStore {
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path);
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      const store = new ChatStore(db);
      store.#migrate();
      return store;
    } catch (error) {
      db?.close();
      throw new StoreError(storeErrorText(path, error));
    }
  }

  /** The highest message id stored, 0 for none. */
  lastId(): number {
    const row = this.#get("SELECT max(id) AS id FROM messages") as { id: number | null };
    return row.id ?? 0;
  }

  /**
   * Adds a message to the current transaction; `done` runs once it is committed (`true`) or the
   * commit failed (`false`). Returns `duplicate`, adding nothing, when its sender already stored
   * a message with the same `cid`, and `failed` when the database refused it (a full disk...).
   */
  addMessage(
    frame: StoredFrame,
    keys: { sender: string; recipient?: string; cid?: string | undefined },
    done: (ok: boolean) => void,
  ): "added" | "duplicate" | "failed" {
    const room = frame.type === "message" ? frame.room ?? LOBBY : null;
    let result: { changes: number | bigint };
    try {
      result = this.#write(
        `INSERT INTO messages
         (id, ts, room_key, room, sender, sender_key, recipient, recipient_key, text, action, cid)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        frame.id,
        frame.ts,
        room === null ? null : roomKey(room),
        room,
        frame.from,
        keys.sender,
        frame.type === "private" ? frame.to : null,
        keys.recipient ?? null,
        frame.text,
        frame.action ? 1 : 0,
        keys.cid ?? null,
      );
    } catch {
      return "failed";
    }
    if (result.changes === 0) return "duplicate";
    this.#waiting.push(done);
    this.#batchBytes += frame.text.length;
    // A big batch goes out at once rather than piling up in the clients' queues.
    if (this.#batchBytes >= MAX_BATCH_TEXT) this.commit();
    return "added";
  }

  /** Runs `fn` once everything written so far is committed (at once when nothing is pending). */
  afterCommit(fn: () => void): void {
    if (this.#inTransaction) this.#waiting.push((ok) => ok && fn());
    else fn();
  }

  /** The message a sender stored under a `cid`, if any. */
  messageByCid(senderKey: string, cid: string): StoredFrame | undefined {
    const row = this.#get(
      `SELECT id, ts, room, sender, recipient, text, action FROM messages
       WHERE sender_key = ? AND cid = ?`,
      senderKey,
      cid,
    ) as MessageRow | undefined;
    return row && frameFromRow(row);
  }

  /** Up to `limit` messages of a room older than id `before`, oldest first. */
  history(room: string, before: number, limit: number): MessageFrame[] {
    const rows = this.#all(
      `SELECT id, ts, room, sender, recipient, text, action FROM messages
       WHERE room_key = ? AND id < ? ORDER BY id DESC LIMIT ?`,
      roomKey(room),
      before,
      limit,
    ) as MessageRow[];
    return rows.reverse().map((row) => ({ ...frameFromRow(row), history: true }) as MessageFrame);
  }

  /**
   * The newest (up to `limit`) messages after id `after` that a person missed: those of their
   * rooms and those to or from them privately, oldest first; and how many there are in all.
   */
  missed(
    rooms: string[],
    nameKey: string,
    after: number,
    limit: number,
  ): { frames: StoredFrame[]; total: number } {
    const where = `id > ? AND (room_key IN (SELECT value FROM json_each(?))
       OR recipient_key = ? OR (room_key IS NULL AND sender_key = ?))`;
    const args = [after, JSON.stringify(rooms.map(roomKey)), nameKey, nameKey];
    const rows = this.#all(
      `SELECT id, ts, room, sender, recipient, text, action FROM messages
       WHERE ${where} ORDER BY id DESC LIMIT ?`,
      ...args,
      limit,
    ) as MessageRow[];
    const total = rows.length < limit
      ? rows.length
      : (this.#get(`SELECT count(*) AS n FROM messages WHERE ${where}`, ...args) as { n: number })
        .n;
    return { frames: rows.reverse().map(frameFromRow), total };
  }

  /** Records a session as present, with its name and rooms (the current one last). */
  saveSession(token: string, name: string, rooms: string[]): void {
    this.#write(
      "INSERT OR REPLACE INTO sessions (token, name, rooms, left_at) VALUES (?, ?, ?, NULL)",
      token,
      name,
      JSON.stringify(rooms),
    );
  }

  /** Marks a session as let go at `at`: it can still be resumed for a while. */
  sessionLeft(token: string, at: number): void {
    this.#write("UPDATE sessions SET left_at = ? WHERE token = ?", at, token);
  }

  /** Forgets a session: its person left on purpose, or was removed. */
  dropSession(token: string): void {
    this.#write("DELETE FROM sessions WHERE token = ?", token);
  }

  /** The session with that token, if stored. */
  session(token: string): StoredSession | undefined {
    const row = this.#get(
      "SELECT token, name, rooms, left_at FROM sessions WHERE token = ?",
      token,
    ) as SessionRow | undefined;
    return row && sessionFromRow(row);
  }

  /** Every stored session; those let go before `expired` are deleted first. */
  sessions(expired: number): StoredSession[] {
    this.#write("DELETE FROM sessions WHERE left_at < ?", expired);
    this.commit();
    const rows = this.#all("SELECT token, name, rooms, left_at FROM sessions") as SessionRow[];
    return rows.map(sessionFromRow);
  }

  /**
   * Commits the open transaction, then runs what waited for it. When the commit fails, every
   * write since the last commit is undone and the callbacks hear `false`.
   */
  commit(): void {
    if (!this.#inTransaction) return;
    this.#inTransaction = false;
    this.#batchBytes = 0;
    clearTimeout(this.#commitTimer);
    let ok = true;
    try {
      this.#db.exec("COMMIT");
    } catch {
      ok = false;
      try {
        this.#db.exec("ROLLBACK");
      } catch {
        // The transaction is already gone.
      }
    }
    for (const done of this.#waiting.splice(0)) done(ok);
  }

  /** Commits what is pending and closes the database. */
  close(): void {
    this.commit();
    this.#db.close();
  }

  #write(sql: string, ...args: SQLInputValue[]): { changes: number | bigint } {
    if (!this.#inTransaction) {
      this.#db.exec("BEGIN");
      this.#inTransaction = true;
      // Committing once the event loop has polled again lets the messages that other
      // connections brought in meanwhile share the transaction.
      this.#commitTimer = setTimeout(() => this.commit(), 0);
    }
    return this.#statement(sql).run(...args);
  }

  #get(sql: string, ...args: SQLInputValue[]): unknown {
    return this.#statement(sql).get(...args);
  }

  #all(sql: string, ...args: SQLInputValue[]): unknown[] {
    return this.#statement(sql).all(...args);
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #migrate(): void {
    const { user_version: version } = this.#get("PRAGMA user_version") as { user_version: number };
    if (version > MIGRATIONS.length) {
      throw new Error(`it was written by a newer server (schema ${version})`);
    }
    for (let step = version; step < MIGRATIONS.length; step++) {
      this.#db.exec("BEGIN");
      this.#db.exec(MIGRATIONS[step]!);
      this.#db.exec(`PRAGMA user_version = ${step + 1}`);
      this.#db.exec("COMMIT");
    }
  }
}

interface SessionRow {
  token: string;
  name: string;
  rooms: string;
  left_at: number | null;
}

function sessionFromRow(row: SessionRow): StoredSession {
  let rooms: unknown;
  try {
    rooms = JSON.parse(row.rooms);
  } catch {
    rooms = [];
  }
  return {
    token: row.token,
    name: row.name,
    rooms: Array.isArray(rooms) ? rooms.filter((r) => typeof r === "string") : [],
    leftAt: row.left_at,
  };
}

function frameFromRow(row: MessageRow): StoredFrame {
  const action = row.action ? { action: true } : {};
  return row.room === null
    ? {
      type: "private",
      id: row.id,
      ts: row.ts,
      from: row.sender,
      to: row.recipient ?? "",
      text: row.text,
      ...action,
    }
    : {
      type: "message",
      id: row.id,
      ts: row.ts,
      from: row.sender,
      text: row.text,
      room: row.room,
      ...action,
    };
}

function storeErrorText(path: string, error: unknown): string {
  const text = errorText(error);
  if (error instanceof Deno.errors.PermissionDenied) {
    return `Cannot open ${path}: permission denied (the server needs --allow-read --allow-write)`;
  }
  if (/locked|busy/i.test(text)) {
    return `Cannot open ${path}: another server is using it (stop it, or use another --db)`;
  }
  if (/not a database|malformed/i.test(text)) {
    return `Cannot open ${path}: it is not a chat database (use another --db)`;
  }
  return `Cannot open ${path}: ${text.replace(/\.$/, "")}`;
}

// ==== Bans ====

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

  /** Reads `ann` or `10.0.0.5` (or `::1`) as a ban target, or returns why it is neither. */
  static target(text: string): BanTarget | string {
    if (/^[0-9.]+$/.test(text) || text.includes(":")) {
      const error = checkHost(text);
      return error ?? { kind: "address", key: `address ${text.toLowerCase()}`, shown: text };
    }
    const checked = checkName(text);
    return checked.ok
      ? { kind: "name", key: `name ${nameKey(checked.name)}`, shown: checked.name }
      : checked.error;
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

// ==== Network layer ====

/** Options for {@linkcode startServer}. */
export interface ServerOptions extends ChatCoreOptions {
  /**
   * The address to listen on.
   * @default {"0.0.0.0"}
   */
  hostname?: string;
  /**
   * The TCP port; 0 picks a free one (see {@linkcode ChatServer.addr}).
   * @default {5050}
   */
  port?: number;
  /**
   * How long a new connection has to say hello (or start typing a name), in milliseconds.
   * @default {10000}
   */
  helloTimeoutMs?: number;
  /**
   * How long after connecting a silent client is taken for a person on `nc` or `telnet` and
   * asked for a name, in milliseconds.
   * @default {1000}
   */
  promptDelayMs?: number;
  /**
   * How long a person asked for a name has to give one, in milliseconds.
   * @default {120000}
   */
  nameTimeoutMs?: number;
  /**
   * How many bytes may wait for one client before it counts as too slow and is disconnected.
   * @default {1048576}
   */
  maxQueueBytes?: number;
  /**
   * The longest line a client may send, in bytes, newline included.
   * @default {65536}
   */
  maxFrameBytes?: number;
  /**
   * The database file for messages and sessions; `":memory:"` for one that lasts as long as the
   * server; `false` for no store at all (no history, nothing survives a restart).
   * @default {":memory:"}
   */
  db?: string | false;
  /**
   * How long a connection may be silent before it is pinged, and then how long it has to answer
   * before it is closed, in milliseconds. Plain-text clients are not pinged (TCP keepalive
   * watches them).
   * @default {30000}
   */
  heartbeatMs?: number;
  /**
   * Frames a second each client may send after a burst of `burst`; 0 for no limit.
   * @default {5}
   */
  rate?: number;
  /**
   * Frames a client may send at once before `rate` applies.
   * @default {10}
   */
  burst?: number;
  /**
   * The most connections at once; 0 for no limit.
   * @default {1000}
   */
  maxClients?: number;
  /**
   * The most connections at once from one IP address; 0 for no limit.
   * @default {20}
   */
  maxClientsPerAddress?: number;
}

/** The limits a server starts with unless told otherwise. */
export const DEFAULT_LIMITS = {
  rate: 5,
  burst: 10,
  maxClients: 1000,
  maxClientsPerAddress: 20,
} as const;
/** Refused frames in a row (over the rate) after which a client is disconnected for flooding. */
export const FLOOD_STRIKES = 20;
/** Why a connection may end without its member leaving: the client may come back and resume. */
const RESUMABLE_REASONS: ReadonlySet<string> = new Set(["disconnected", "too slow", "no answer"]);

/** A running server. */
export interface ChatServer {
  /** Where it listens, with the real port when 0 was asked for. */
  readonly addr: Deno.NetAddr;
  /** The chat core. */
  readonly core: ChatCore;
  /** The names and addresses kept out. */
  readonly bans: Bans;
  /** Resolves once the server has shut down, whoever asked it to. */
  readonly closed: Promise<void>;
  /** Every connection, with its member once it has joined, for the operator. */
  connections(): Iterable<Peer & { readonly member: Member | undefined }>;
  /**
   * Tells every client the server is shutting down, gives them a moment to receive it, closes
   * every connection and the listener, and resolves when all of that is done.
   */
  close(reason?: string): Promise<void>;
}

/** How long after connecting a silent client is asked for a name, in milliseconds. */
export const PROMPT_DELAY_MS = 1000;
/** How long a person asked for a name has to give one, in milliseconds. */
export const NAME_TIMEOUT_MS = 120_000;

/**
 * Starts a chat server; it is listening when this returns.
 * @throws {StoreError} when the database cannot be opened; the errors of `Deno.listen`.
 */
export function startServer(options: ServerOptions = {}): ChatServer {
  const store = options.db === false ? undefined : ChatStore.open(options.db ?? ":memory:");
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({
      hostname: options.hostname ?? DEFAULT_HOST,
      port: options.port ?? DEFAULT_PORT,
    });
  } catch (error) {
    store?.close();
    throw error;
  }
  const bans = new Bans(options.now);
  const log = options.log ?? (() => {});
  const settings: ConnectionSettings = {
    helloTimeoutMs: options.helloTimeoutMs ?? HELLO_TIMEOUT_MS,
    promptDelayMs: options.promptDelayMs ?? PROMPT_DELAY_MS,
    nameTimeoutMs: options.nameTimeoutMs ?? NAME_TIMEOUT_MS,
    maxQueueBytes: options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES,
    maxFrameBytes: options.maxFrameBytes ?? MAX_FRAME_BYTES,
    heartbeatMs: options.heartbeatMs ?? HEARTBEAT_MS,
    rate: options.rate ?? DEFAULT_LIMITS.rate,
    burst: options.burst ?? DEFAULT_LIMITS.burst,
    serverName: options.serverName ?? "chat",
    log,
  };
  const core = new ChatCore({
    ...options,
    ...(store ? { store } : {}),
    isNameBanned: (name) => bans.has("name", name),
    replayBytes: Math.floor(settings.maxQueueBytes / 4),
    limits: { rate: settings.rate, burst: settings.burst },
  });
  const maxClients = options.maxClients ?? DEFAULT_LIMITS.maxClients;
  const maxPerAddress = options.maxClientsPerAddress ?? DEFAULT_LIMITS.maxClientsPerAddress;
  const connections = new Set<Connection>();
  const perAddress = new Map<string, number>();
  const handlers = new Set<Promise<void>>();
  const accepting = acceptLoop(listener, (conn) => {
    const connection = new Connection(conn, settings);
    const fromAddress = perAddress.get(connection.address) ?? 0;
    if (maxClients > 0 && connections.size >= maxClients) {
      refuse(connection, `The server is full (${maxClients} connections): try again later`, log);
    } else if (maxPerAddress > 0 && fromAddress >= maxPerAddress) {
      refuse(
        connection,
        `Too many connections from your address (${maxPerAddress}): close one first`,
        log,
      );
    } else {
      connections.add(connection);
      perAddress.set(connection.address, fromAddress + 1);
      const handler = serveConnection(connection, core, bans, log).finally(() => {
        connections.delete(connection);
        const left = (perAddress.get(connection.address) ?? 1) - 1;
        if (left === 0) perAddress.delete(connection.address);
        else perAddress.set(connection.address, left);
        handlers.delete(handler);
      });
      handlers.add(handler);
    }
  }, log);
  const heartbeat = setInterval(
    () => checkHeartbeats(connections, settings.heartbeatMs),
    Math.max(10, Math.floor(settings.heartbeatMs / 4)),
  );

  const { promise: closed, resolve: markClosed } = Promise.withResolvers<void>();
  let closing: Promise<void> | undefined;
  async function close(reason = "The server is shutting down"): Promise<void> {
    listener.close();
    await accepting;
    core.quiet();
    const notice = new Outgoing(errorFrame("shutting_down", reason));
    for (const connection of connections) {
      connection.send(notice);
      connection.closeAfterFlush("server shutting down");
    }
    await Promise.all(handlers);
    clearInterval(heartbeat);
    core.close();
    store?.close();
    markClosed();
  }
  return {
    addr: listener.addr,
    core,
    bans,
    closed,
    connections: () => connections,
    close: (reason) => closing ??= close(reason),
  };
}

/** Turns a connection away at once: one `server_full` error, then it closes. */
function refuse(connection: Connection, message: string, log: (line: string) => void): void {
  log(`${connection.address} ! refused: ${message}`);
  connection.fail("server_full", message, "refused");
}

/**
 * Pings every joined JSON client that has been silent for `heartbeatMs`, and closes those still
 * silent `heartbeatMs` after the ping.
 */
function checkHeartbeats(connections: Iterable<Connection>, heartbeatMs: number): void {
  const now = performance.now();
  for (const connection of connections) {
    if (connection.mode !== "json" || !connection.member || connection.ending) continue;
    const verdict = heartbeat(now - connection.lastHeard, heartbeatMs, connection.pinged);
    if (verdict === "give_up") {
      connection.fail(
        "timeout",
        `No answer to a ping for ${Math.round(heartbeatMs / 1000)} s: closing`,
        "no answer",
      );
    } else if (verdict === "ping") {
      connection.pinged = true;
      connection.send(PING);
    }
  }
}

const PING = new Outgoing({ type: "ping" });

async function acceptLoop(
  listener: Deno.Listener,
  onConnection: (conn: Deno.TcpConn) => void,
  log: (line: string) => void,
): Promise<void> {
  while (true) {
    let conn: Deno.TcpConn;
    try {
      conn = await listener.accept() as Deno.TcpConn;
    } catch (error) {
      if (error instanceof Deno.errors.BadResource) return; // the listener was closed
      // Running out of file descriptors and the like: report and keep serving the others.
      log(`! accept failed: ${errorText(error)}`);
      continue;
    }
    onConnection(conn);
  }
}

interface ConnectionSettings {
  helloTimeoutMs: number;
  promptDelayMs: number;
  nameTimeoutMs: number;
  maxQueueBytes: number;
  maxFrameBytes: number;
  heartbeatMs: number;
  rate: number;
  burst: number;
  serverName: string;
  log: (line: string) => void;
}

/**
 * One client connection: its socket, its bounded outbox, its hello deadline, whether it speaks
 * JSON or plain text, and how it ends. This is the core's {@linkcode Peer}.
 */
class Connection implements Peer {
  readonly address: string;
  /** Set once the hello is accepted. */
  member: Member | undefined;
  /** `json` for programs, `text` for people on `nc` or `telnet`; unknown until the first line. */
  mode: "json" | "text" | undefined;
  errorsInARow = 0;
  /** Frames refused in a row for going over the rate. */
  limitedInARow = 0;
  /** When anything last arrived, on the `performance.now()` clock. */
  lastHeard = performance.now();
  /** Whether a ping went out since anything last arrived. */
  pinged = false;
  /** The client's sending allowance. */
  readonly bucket: TokenBucket;
  /** Why the connection is ending, once it is; also the reason given in `left`. */
  endReason: string | undefined;
  /** Resolves when the socket is closed. */
  readonly closed: Promise<void>;
  readonly telnet = new TelnetFilter();
  #conn: Deno.TcpConn;
  #outbox: Outbox;
  readonly settings: ConnectionSettings;
  #helloTimer: ReturnType<typeof setTimeout>;
  #promptTimer: ReturnType<typeof setTimeout> | undefined;
  #markClosed: () => void;

  constructor(conn: Deno.TcpConn, settings: ConnectionSettings) {
    this.#conn = conn;
    this.settings = settings;
    this.address = displayAddress(conn.remoteAddr);
    this.bucket = new TokenBucket({ rate: settings.rate, burst: settings.burst });
    conn.setNoDelay(true);
    conn.setKeepAlive(true);
    this.#outbox = new Outbox(conn, {
      maxBytes: settings.maxQueueBytes,
      onError: () => this.close("disconnected"),
    });
    const { promise, resolve } = Promise.withResolvers<void>();
    this.closed = promise;
    this.#markClosed = resolve;
    this.#helloTimer = this.#deadline(settings.helloTimeoutMs);
    this.#promptTimer = setTimeout(() => this.#askName(), settings.promptDelayMs);
  }

  /** The socket, for the read loop. */
  get conn(): Deno.TcpConn {
    return this.#conn;
  }

  /** Whether the connection is ending and should take no more frames. */
  get ending(): boolean {
    return this.endReason !== undefined;
  }

  /** Settles the mode on the first line: a JSON object means a program, anything else a person. */
  detectMode(line: string): void {
    clearTimeout(this.#promptTimer);
    if (this.mode === undefined || line.trimStart().startsWith("{")) {
      this.mode = line.trimStart().startsWith("{") ? "json" : "text";
    }
  }

  /** Records the accepted hello and stops the hello deadline. */
  joined(member: Member): void {
    this.member = member;
    clearTimeout(this.#helloTimer);
  }

  send(out: Outgoing): void {
    if (this.ending) return;
    const bytes = this.mode === "text" ? out.text : out.json;
    if (bytes.length > 0 && !this.#outbox.push(bytes)) this.close("too slow");
  }

  /** Sends lines of text to a plain-text client. */
  sendText(lines: string[]): void {
    if (!this.ending && !this.#outbox.push(encodeText(lines))) this.close("too slow");
  }

  end(error: ErrorFrame, reason: string): void {
    if (this.ending) return;
    this.send(new Outgoing(error));
    this.closeAfterFlush(reason);
  }

  /** Sends a fatal error, then closes once it is delivered (or the grace time is over). */
  fail(code: ErrorCode, message: string, reason: string): void {
    this.end(errorFrame(code, message), reason);
  }

  /** Closes once everything queued is written, or after {@linkcode CLOSE_GRACE_MS}. */
  closeAfterFlush(reason: string): void {
    if (this.ending) return;
    this.endReason = reason;
    const timer = setTimeout(() => this.close(reason), CLOSE_GRACE_MS);
    this.#outbox.drained().then(() => {
      clearTimeout(timer);
      this.close(reason);
    });
  }

  /** Closes the socket now; a pending read then ends the read loop. Closing twice is harmless. */
  close(reason: string): void {
    this.endReason ??= reason;
    clearTimeout(this.#helloTimer);
    clearTimeout(this.#promptTimer);
    try {
      this.#conn.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
    this.#markClosed();
  }

  #deadline(ms: number): ReturnType<typeof setTimeout> {
    return setTimeout(() => {
      this.settings.log(`${this.address} ! no hello within ${ms} ms`);
      this.fail("timeout", "No hello received in time", "timed out");
    }, ms);
  }

  /** A silent client is probably a person on `nc` or `telnet`: greet it and ask for a name. */
  #askName(): void {
    this.#promptTimer = undefined;
    if (this.mode !== undefined || this.ending) return;
    this.mode = "text";
    clearTimeout(this.#helloTimer);
    this.#helloTimer = this.#deadline(this.settings.nameTimeoutMs);
    this.sendText([
      `Welcome to ${this.settings.serverName} (chat ${VERSION}).`,
      "Type your name and press Enter (1-24 letters, digits, _ or -):",
    ]);
  }
}

/**
 * Removes telnet option negotiation (IAC sequences) from the bytes a plain-text client sends,
 * so a `telnet` user's name and lines arrive clean. Keeps state across reads.
 */
class TelnetFilter {
  #state: "data" | "iac" | "option" | "sub" | "sub_iac" = "data";

  filter(chunk: Uint8Array): Uint8Array {
    if (this.#state === "data" && !chunk.includes(IAC)) return chunk;
    const out = new Uint8Array(chunk.length);
    let n = 0;
    for (const byte of chunk) {
      switch (this.#state) {
        case "data":
          if (byte === IAC) this.#state = "iac";
          else out[n++] = byte;
          break;
        case "iac":
          // WILL, WONT, DO, DONT carry an option byte; SB opens a subnegotiation.
          this.#state = byte >= 0xfb && byte <= 0xfe ? "option" : byte === 0xfa ? "sub" : "data";
          break;
        case "option":
          this.#state = "data";
          break;
        case "sub":
          if (byte === IAC) this.#state = "sub_iac";
          break;
        case "sub_iac":
          this.#state = byte === 0xf0 ? "data" : "sub"; // IAC SE ends it
          break;
      }
    }
    return out.subarray(0, n);
  }
}

const IAC = 0xff;
/** The read buffer a connection starts with; it grows to `READ_BUFFER_BYTES` once a read fills it. */
const IDLE_READ_BYTES = 256;

/** Reads lines from one connection and feeds them to the core until the connection ends. */
async function serveConnection(
  connection: Connection,
  core: ChatCore,
  bans: Bans,
  log: (line: string) => void,
): Promise<void> {
  if (bans.has("address", connection.address)) {
    log(`${connection.address} ! refused: the address is banned`);
    connection.fail("banned", "This address is banned from the server", "banned");
  }
  const maxFrameBytes = connection.settings.maxFrameBytes;
  const splitter = new LineSplitter({ maxLineBytes: maxFrameBytes });
  // Idle connections are most of them: each starts with a small buffer, grown once it fills.
  let buffer = new Uint8Array(IDLE_READ_BYTES);
  const onLine = (line: string) => {
    if (!connection.ending) handleLine(connection, core, bans, line, log);
  };
  try {
    while (!connection.ending) {
      const n = await connection.conn.read(buffer);
      if (n === null) break;
      connection.lastHeard = performance.now();
      connection.pinged = false;
      const chunk = buffer.subarray(0, n);
      splitter.push(connection.mode === "json" ? chunk : connection.telnet.filter(chunk), onLine);
      if (n === buffer.length && buffer.length < READ_BUFFER_BYTES) {
        buffer = new Uint8Array(READ_BUFFER_BYTES);
      }
    }
  } catch (error) {
    if (error instanceof FrameTooLargeError) {
      log(`${connection.address} ! too_large: line over ${maxFrameBytes} bytes`);
      connection.fail("too_large", `Line is longer than ${maxFrameBytes} bytes`, "sent too much");
    } else if (!isDisconnectError(error)) {
      log(`${connection.address} ! read failed: ${errorText(error)}`);
    }
  } finally {
    connection.closeAfterFlush("disconnected");
    if (connection.member) {
      const reason = connection.endReason ?? "disconnected";
      const hold = connection.mode === "json" && RESUMABLE_REASONS.has(reason);
      core.disconnect(connection.member, connection, reason, { hold });
    }
  }
  await connection.closed;
}

/** Acts on one line; bad input is answered, and too much of it in a row ends the connection. */
function handleLine(
  connection: Connection,
  core: ChatCore,
  bans: Bans,
  line: string,
  log: (line: string) => void,
): void {
  if (
    connection.mode === undefined || (connection.member === undefined && connection.mode === "text")
  ) {
    connection.detectMode(line);
  }
  const frame = connection.mode === "json" ? decodeLine(line) : textToFrame(connection, core, line);
  if (frame !== undefined && !("code" in frame) && overRate(connection, frame, log)) return;
  const error = frame === undefined || "code" in frame
    ? frame
    : dispatchFrame(connection, core, bans, frame);
  if (error === undefined) {
    connection.errorsInARow = 0;
    return;
  }
  log(`${connection.address} ! ${error.code}: ${error.message}`);
  connection.send(new Outgoing(error));
  if (connection.mode === "text" && connection.member === undefined) {
    connection.sendText(["Type your name and press Enter:"]);
  }
  if (++connection.errorsInARow >= MAX_ERRORS_IN_A_ROW) {
    connection.fail("too_many_errors", "Too many bad frames in a row", "too many bad frames");
  }
}

/**
 * Takes a token for a joined client's frame (pings, pongs and goodbyes are free). Over the rate
 * the frame is refused with `rate_limited`; {@linkcode FLOOD_STRIKES} refusals in a row
 * disconnect. Returns whether the frame was refused.
 */
function overRate(
  connection: Connection,
  frame: ClientFrame,
  log: (line: string) => void,
): boolean {
  if (
    !connection.member || frame.type === "ping" || frame.type === "pong" || frame.type === "bye"
  ) {
    return false;
  }
  if (connection.bucket.take()) {
    connection.limitedInARow = 0;
    return false;
  }
  if (++connection.limitedInARow >= FLOOD_STRIKES) {
    log(`${connection.address} ! flooding: ${connection.member.name} kept going over the rate`);
    connection.fail("flooding", "You kept sending too fast: disconnected", "flooding");
    return true;
  }
  const error = errorFrame(
    "rate_limited",
    `Too fast: at most ${connection.settings.rate} a second after a burst of ${connection.settings.burst}; this was not sent`,
  );
  const ref = "ref" in frame ? frame.ref : undefined;
  connection.send(new Outgoing(ref === undefined ? error : { ...error, ref }));
  return true;
}

function decodeLine(line: string): ClientFrame | ErrorFrame {
  const decoded = decodeClientFrame(line);
  if (decoded.ok) return decoded.frame;
  return errorFrame(
    decoded.error.kind === "too_large" ? "too_large" : "bad_frame",
    decoded.error.message,
  );
}

/** Commands a plain-text user may type that the server carries out itself, with no frame. */
const TEXT_LOCAL_COMMANDS = new Set(["help", "switch"]);

/**
 * Turns a line typed on `nc` or `telnet` into the frame a program would have sent: a name
 * before joining, then a message for the current room or a command from the command table.
 * Returns `undefined` when the line was handled here.
 */
function textToFrame(
  connection: Connection,
  core: ChatCore,
  line: string,
): ClientFrame | ErrorFrame | undefined {
  const member = connection.member;
  if (member === undefined) {
    return { type: "hello", name: line.trim(), client: { app: "plain text (nc or telnet)" } };
  }
  const parsed = parseCommand(line);
  if (parsed === undefined) {
    return { type: "say", text: line.startsWith("//") ? line.slice(1) : line };
  }
  const command = findCommand(CHAT_COMMANDS, parsed.name);
  if (command === undefined) return errorFrame("bad_frame", unknownCommand(parsed.name));
  if (command.name === "help") {
    connection.sendText(textHelp(parsed.args));
    return undefined;
  }
  if (command.name === "switch") {
    const problem = core.switchRoom(member, firstWord(parsed.args)[0]);
    return problem ? errorFrame("not_in_room", problem) : undefined;
  }
  if (command.frame === undefined) {
    return errorFrame(
      "not_allowed",
      `/${command.name} needs the chat client: it is not available here`,
    );
  }
  const frame = command.frame(parsed.args, {
    room: member.current.name,
    lastPrivate: member.lastPrivateFrom,
    oldest: member.historyFrom.get(member.current),
  });
  return typeof frame === "string" ? errorFrame("bad_frame", frame) : frame;
}

function textHelp(name: string): string[] {
  const available = CHAT_COMMANDS.filter((c) => c.frame || TEXT_LOCAL_COMMANDS.has(c.name));
  const topic = firstWord(name)[0];
  if (topic) return commandHelp(available, topic);
  return ["Type to talk in your current room. Commands:", ...commandHelp(available)];
}

/** Carries out a decoded frame; returns the error to answer with, if any. */
function dispatchFrame(
  connection: Connection,
  core: ChatCore,
  bans: Bans,
  frame: ClientFrame,
): ErrorFrame | undefined {
  if (frame.type === "bye") {
    const reason = frame.message ? `quit: ${cleanLine(frame.message)}` : "quit";
    connection.closeAfterFlush(reason);
    return undefined;
  }
  if (connection.member) return core.receive(connection.member, frame);
  if (frame.type !== "hello") {
    return errorFrame("hello_first", 'The first frame must be {"type":"hello","name":"..."}');
  }
  if (bans.has("name", frame.name)) {
    connection.fail("banned", "This name is banned from the server", "banned");
    return undefined;
  }
  const joined = core.join(connection, frame);
  if (!joined.ok) return joined.error;
  connection.joined(joined.member);
  if (connection.mode === "text") {
    connection.sendText([`Hello ${joined.member.name}: type to talk, /help for commands.`]);
  }
  return undefined;
}

// ==== Operator console ====

/** What an operator command did: lines to show the operator, and whether to shut down. */
export interface OperatorResult {
  lines: string[];
  shutdown?: string;
}

/**
 * Carries out one line typed at the server's console: plain text is announced to everyone,
 * `/kick`, `/ban` and the rest act on the server. The console's commands exist only here: no
 * frame a client can send reaches them.
 */
export function runOperatorCommand(server: ChatServer, line: string): OperatorResult {
  const text = line.trim();
  if (text === "") return { lines: [] };
  const parsed = parseCommand(text);
  if (parsed === undefined) {
    const announcement = text.startsWith("//") ? text.slice(1) : text;
    const checked = checkText(announcement);
    if (!checked.ok) return { lines: [checked.error] };
    server.core.announce(checked.text);
    return { lines: [] };
  }
  const command = findCommand(OPERATOR_COMMANDS, parsed.name);
  if (command === undefined) return { lines: [unknownCommand(parsed.name)] };
  const [first, rest] = firstWord(parsed.args);
  switch (command.name) {
    case "help":
      return {
        lines: first ? commandHelp(OPERATOR_COMMANDS, first) : [
          "Plain text is announced to everyone. Commands:",
          ...commandHelp(OPERATOR_COMMANDS),
        ],
      };
    case "who":
      return { lines: operatorWho(server) };
    case "kick":
      return { lines: [kick(server, first, rest)] };
    case "ban":
      return { lines: [ban(server, first, rest)] };
    case "unban": {
      const target = Bans.target(first);
      if (typeof target === "string") {
        return { lines: [first ? target : "Usage: /unban <name|address>"] };
      }
      return {
        lines: [
          server.bans.remove(target)
            ? `Unbanned ${target.shown}`
            : `${target.shown} was not banned`,
        ],
      };
    }
    case "bans":
      return { lines: banList(server.bans) };
    case "say": {
      const checked = checkText(rest);
      if (!first || !checked.ok) return { lines: ["Usage: /say <#room> <text>"] };
      const problem = server.core.sayAsServer(first, checked.text);
      return { lines: problem ? [problem] : [] };
    }
    case "motd":
      if (parsed.args.trim()) server.core.motd = cleanLine(parsed.args);
      return {
        lines: [
          server.core.motd ? `Message of the day: ${server.core.motd}` : "No message of the day",
        ],
      };
    case "shutdown":
      return {
        lines: ["Shutting down"],
        shutdown: cleanLine(parsed.args) || "The server is shutting down",
      };
    default:
      return { lines: [unknownCommand(parsed.name)] };
  }
}

function operatorWho(server: ChatServer): string[] {
  const lines: string[] = [];
  for (const member of server.core.members) {
    if (member.grace !== undefined) {
      lines.push(`${member.name} from ${member.peer.address}: connection lost, held for a while`);
    }
  }
  for (const { address, member } of server.connections()) {
    lines.push(
      member
        ? `${member.name} from ${address}${describeClient(member.info)} in ${
          [...member.rooms].map((r) => r.name).join(" ")
        }${member.away ? `, away: ${member.away}` : ""}`
        : `(no name yet) from ${address}`,
    );
  }
  return lines.length
    ? [`${lines.length} present:`, ...lines.map((l) => `  ${l}`)]
    : ["Nobody is connected"];
}

function kick(server: ChatServer, name: string, reason: string): string {
  if (!name) return "Usage: /kick <name> [reason]";
  const member = server.core.member(name);
  if (!member) return `Nobody called ${quoteInput(name)} is here`;
  const why = cleanLine(reason);
  member.peer.end(
    errorFrame("kicked", why ? `You were kicked: ${why}` : "You were kicked by the operator"),
    why ? `kicked: ${why}` : "kicked",
  );
  return `Kicked ${member.name}`;
}

function ban(server: ChatServer, targetText: string, minutesText: string): string {
  if (!targetText) return "Usage: /ban <name|address> [minutes]";
  const target = Bans.target(targetText);
  if (typeof target === "string") return target;
  const minutes = minutesText.trim() === "" ? undefined : Number(minutesText.trim());
  if (minutes !== undefined && !(Number.isFinite(minutes) && minutes > 0)) {
    return "Minutes must be a positive number";
  }
  server.bans.add(target, minutes);
  let removed = 0;
  for (const peer of [...server.connections()]) {
    const hit = target.kind === "address"
      ? peer.address === target.shown
      : peer.member !== undefined && nameKey(peer.member.name) === nameKey(target.shown);
    if (!hit) continue;
    peer.end(errorFrame("banned", "You are banned from this server"), "banned");
    removed++;
  }
  const span = minutes === undefined ? "for good" : `for ${minutes} minutes`;
  return `Banned ${target.shown} ${span}${removed ? `; disconnected ${removed}` : ""}`;
}

function banList(bans: Bans): string[] {
  const list = bans.list();
  if (list.length === 0) return ["No bans"];
  return list.map(({ target, until }) =>
    `  ${target.shown} (${target.kind}) ${
      until === Infinity ? "for good" : `until ${new Date(until).toLocaleString()}`
    }`
  );
}

/** An address as people write it: `10.0.0.5` rather than `::ffff:10.0.0.5`. */
function displayAddress(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") return addr.transport;
  return addr.hostname.startsWith("::ffff:") ? addr.hostname.slice(7) : addr.hostname;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ==== Command line ====

const USAGE = `Chat server ${VERSION}: people join with the chat client, or with nc or telnet.

USAGE:
  deno task server [OPTIONS]

OPTIONS:
      --host HOST      Address to listen on: 0.0.0.0 for every IPv4 interface,
                       :: for IPv6 and IPv4, 127.0.0.1 for this computer only
                                                       (default: ${DEFAULT_HOST})
  -p, --port PORT      TCP port to listen on           (default: ${DEFAULT_PORT})
      --name NAME      Server name shown to people who join
                                                       (default: this computer's name)
      --motd TEXT      Message of the day, shown to everyone who joins
                                                       (default: none)
      --console MODE   The operator console: auto (on when run in a terminal),
                       on (read commands from standard input), or off
                                                       (default: auto)
      --db PATH        Database file for messages and sessions; :memory: keeps
                       nothing after the server stops; none keeps no history
                       at all                          (default: ${DEFAULT_DB})

LIMITS (0 turns a limit off where noted):
      --history N      Earlier messages shown on joining a room (0: none)
                                                       (default: ${HISTORY_LIMIT})
      --announce-limit N
                       Largest room in which arrivals and leaves are
                       announced                       (default: ${ANNOUNCE_LIMIT})
      --grace SECONDS  How long a dropped connection keeps its name and rooms,
                       shown as away, waiting to resume (default: ${GRACE_MS / 1000})
      --resume-hours H How long after that a session can still be resumed
                       with what it missed             (default: ${RESUME_WINDOW_MS / 3_600_000})
      --heartbeat SECONDS
                       Silence before a client is pinged, and then before it
                       is dropped                      (default: ${HEARTBEAT_MS / 1000})
      --hello-timeout SECONDS
                       Time a new connection has to say hello
                                                       (default: ${HELLO_TIMEOUT_MS / 1000})
      --rate N         Frames a second per client, after a burst (0: no limit)
                                                       (default: ${DEFAULT_LIMITS.rate})
      --burst N        Frames a client may send at once (default: ${DEFAULT_LIMITS.burst})
      --max-clients N  Connections at once (0: no limit)
                                                       (default: ${DEFAULT_LIMITS.maxClients})
      --max-per-ip N   Connections at once from one IP address (0: no limit)
                                                       (default: ${DEFAULT_LIMITS.maxClientsPerAddress})
      --max-queue BYTES
                       Bytes waiting for a client before it counts as too
                       slow and is dropped             (default: ${DEFAULT_MAX_QUEUE_BYTES})
      --max-frame BYTES
                       Longest line a client may send  (default: ${MAX_FRAME_BYTES})

  -h, --help           Show this help and exit
  -V, --version        Show the version and exit

In the console, plain text is announced to everyone; /help lists the commands.
Stop it with Ctrl+C or /shutdown: everyone connected is told first.`;

interface CliOptions {
  help: boolean;
  version: boolean;
  hostname: string;
  port: number;
  serverName: string | undefined;
  motd: string;
  console: "auto" | "on" | "off";
  db: string | false;
  limits: Required<
    Pick<
      ServerOptions,
      | "announceLimit"
      | "historyLimit"
      | "graceMs"
      | "resumeWindowMs"
      | "heartbeatMs"
      | "helloTimeoutMs"
      | "rate"
      | "burst"
      | "maxClients"
      | "maxClientsPerAddress"
      | "maxQueueBytes"
      | "maxFrameBytes"
    >
  >;
}

/** Reads a numeric flag: a number within `min` and `max` (whole unless `fraction`). */
function numberFlag(
  values: Record<string, unknown>,
  flag: string,
  fallback: number,
  { min = 0, max = Number.MAX_SAFE_INTEGER, fraction = false } = {},
): number {
  const text = values[flag];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (
    typeof text !== "string" || text.trim() === "" || !Number.isFinite(value) ||
    (!fraction && !Number.isInteger(value)) || value < min || value > max
  ) {
    const kind = fraction ? "a number" : "a whole number";
    return usageFail(`--${flag} must be ${kind} from ${min} to ${max}, not "${String(text)}"`);
  }
  return value;
}

function usageFail(message: string): never {
  throw new UsageError(sanitizeForTerminal(message));
}

function parseCli(args: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        host: { type: "string", default: DEFAULT_HOST },
        port: { type: "string", short: "p", default: String(DEFAULT_PORT) },
        name: { type: "string" },
        motd: { type: "string", default: "" },
        console: { type: "string", default: "auto" },
        db: { type: "string", default: DEFAULT_DB },
        history: { type: "string" },
        "announce-limit": { type: "string" },
        grace: { type: "string" },
        "resume-hours": { type: "string" },
        heartbeat: { type: "string" },
        "hello-timeout": { type: "string" },
        rate: { type: "string" },
        burst: { type: "string" },
        "max-clients": { type: "string" },
        "max-per-ip": { type: "string" },
        "max-queue": { type: "string" },
        "max-frame": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "V", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError(firstSentence(error));
  }
  const { values } = parsed;
  const hostError = checkHost(values.host);
  if (hostError) throw new UsageError(hostError);
  const port = parsePort(values.port);
  if (!port.ok) throw new UsageError(port.error);
  const consoleMode = values.console;
  if (consoleMode !== "auto" && consoleMode !== "on" && consoleMode !== "off") {
    throw new UsageError(
      `Invalid --console "${sanitizeForTerminal(consoleMode)}": use auto, on or off`,
    );
  }
  if (values.db.trim() === "") throw new UsageError("--db needs a file name (or :memory:)");
  const seconds = (flag: string, fallback: number, min: number) =>
    numberFlag(values, flag, fallback / 1000, { min, max: 86_400, fraction: true }) * 1000;
  return {
    help: values.help,
    version: values.version,
    hostname: values.host.replace(/^\[(.*)\]$/, "$1"),
    port: port.port,
    serverName: values.name,
    motd: cleanLine(values.motd),
    console: consoleMode,
    db: values.db === "none" ? false : values.db,
    limits: {
      historyLimit: numberFlag(values, "history", HISTORY_LIMIT, { max: MAX_HISTORY_PAGE }),
      announceLimit: numberFlag(values, "announce-limit", ANNOUNCE_LIMIT),
      graceMs: seconds("grace", GRACE_MS, 0),
      resumeWindowMs: numberFlag(values, "resume-hours", RESUME_WINDOW_MS / 3_600_000, {
        max: 24 * 365,
        fraction: true,
      }) * 3_600_000,
      heartbeatMs: seconds("heartbeat", HEARTBEAT_MS, 1),
      helloTimeoutMs: seconds("hello-timeout", HELLO_TIMEOUT_MS, 1),
      rate: numberFlag(values, "rate", DEFAULT_LIMITS.rate, { fraction: true, max: 1_000_000 }),
      burst: numberFlag(values, "burst", DEFAULT_LIMITS.burst, { min: 1, max: 1_000_000 }),
      maxClients: numberFlag(values, "max-clients", DEFAULT_LIMITS.maxClients),
      maxClientsPerAddress: numberFlag(
        values,
        "max-per-ip",
        DEFAULT_LIMITS.maxClientsPerAddress,
      ),
      maxQueueBytes: numberFlag(values, "max-queue", DEFAULT_MAX_QUEUE_BYTES, {
        min: MAX_FRAME_BYTES,
      }),
      maxFrameBytes: numberFlag(values, "max-frame", MAX_FRAME_BYTES, {
        min: 1024,
        max: 16 * 1024 * 1024,
      }),
    },
  };
}

let stampSecond = -1;
let stampText = "";

/** The log's `2026-11-21 14:02:05`, formatted once a second however many lines share it. */
function timestamp(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== stampSecond) {
    const date = new Date(now);
    const pad = (n: number) => String(n).padStart(2, "0");
    stampSecond = second;
    stampText = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
      `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  }
  return stampText;
}

/**
 * Log lines on standard output, gathered and written together at the end of each turn of the
 * event loop: a busy server logs thousands of lines a second, and one write per line would cost
 * more than the chat itself.
 */
function bufferedOutput(): OperatorScreen & { flush(): void } {
  let pending: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const lines = pending;
    pending = [];
    writeLinesSync(Deno.stdout, lines);
  };
  return {
    print(lines: string[]): void {
      pending.push(...lines);
      timer ??= setTimeout(flush, 0);
    },
    flush,
  };
}

function localHostname(): string | undefined {
  try {
    return Deno.hostname();
  } catch {
    return undefined;
  }
}

/** The addresses other computers can reach this one on: IPv4, not loopback or link-local. */
function lanAddresses(): string[] {
  try {
    return Deno.networkInterfaces()
      .filter((i) =>
        i.family === "IPv4" && !i.address.startsWith("127.") && !i.address.startsWith("169.254.")
      )
      .map((i) => i.address);
  } catch {
    return [];
  }
}

function bannerLines(addr: Deno.NetAddr): string[] {
  const where = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const lines = [`Chat server ${VERSION} listening on ${where}:${addr.port}`];
  const wildcard = addr.hostname === "0.0.0.0" || addr.hostname === "::";
  const loopback = addr.hostname.startsWith("127.") || addr.hostname === "::1";
  const port = addr.port === DEFAULT_PORT ? "" : `:${addr.port}`;
  if (loopback) {
    lines.push("Only this computer can connect (use --host 0.0.0.0 to let others in).");
  } else if (wildcard) {
    const addresses = lanAddresses();
    if (addresses.length > 0) {
      lines.push("People on other computers join with:");
      for (const address of addresses) lines.push(`  deno task client ${address}${port}`);
      lines.push(`  or: nc ${addresses[0]} ${addr.port}`);
    }
  }
  lines.push(`On this computer: deno task client localhost${port}`);
  return lines;
}

function listenErrorText(error: unknown, hostname: string, port: number): string {
  const where = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  if (error instanceof Deno.errors.AddrInUse) {
    return `Cannot listen on ${where}: the port is in use (another server running? try --port ${
      port + 1
    })`;
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return `Cannot listen on ${where}: this computer has no such address (try --host 0.0.0.0)`;
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return `Cannot listen on ${where}: permission denied (ports below 1024 need privileges; try --port ${DEFAULT_PORT})`;
  }
  return `Cannot listen on ${where}: ${errorText(error)}`;
}

/** Waits for Ctrl+C (SIGINT) or SIGTERM; a second one exits at once. */
function untilSignal(): Promise<string> {
  const { promise, resolve } = Promise.withResolvers<string>();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  let received = false;
  for (const signal of signals) {
    Deno.addSignalListener(signal, () => {
      if (received) Deno.exit(1);
      received = true;
      resolve(`${signal}: shutting down`);
    });
  }
  return promise;
}

/** Where the operator reads: the log, and (with the console on) command replies. */
interface OperatorScreen {
  /** Prints lines, above the console's prompt when there is one. */
  print(lines: string[]): void;
}

/**
 * Reads operator commands from standard input: with a prompt that log lines never garble on a
 * terminal, or line by line from a pipe. Resolves `onShutdown` when the operator asks for it.
 */
function startConsole(
  server: ChatServer,
  onShutdown: (reason: string) => void,
): OperatorScreen & { close(): void } {
  const terminal = Deno.stdin.isTerminal();
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal,
    historySize: 200,
    completer: (line: string): [string[], string] => {
      const names = OPERATOR_COMMANDS.map((c) => `/${c.name}`).filter((c) => c.startsWith(line));
      return [line.startsWith("/") ? names : [], line];
    },
  });
  const screen = {
    print(lines: string[]): void {
      if (lines.length === 0) return;
      if (terminal) printAbove(rl, lines);
      else console.log(lines.join("\n"));
    },
    close(): void {
      if (terminal) clearInputLine(rl);
      rl.close();
    },
  };
  if (terminal) {
    rl.setPrompt("server> ");
    rl.prompt();
    rl.on("SIGINT", () => onShutdown("SIGINT: shutting down"));
  }
  rl.on("line", (line) => {
    const result = runOperatorCommand(server, line);
    screen.print(result.lines);
    if (terminal) rl.prompt();
    if (result.shutdown !== undefined) onShutdown(result.shutdown);
  });
  return screen;
}

/** Runs the server's command line; resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  const options = readCommandLine("server", args, parseCli, USAGE);
  if (typeof options === "number") return options;
  const output = bufferedOutput();
  let screen: OperatorScreen = output;
  const log = (line: string) => screen.print([`${timestamp()} ${sanitizeForTerminal(line)}`]);
  let server: ChatServer;
  try {
    server = startServer({
      hostname: options.hostname,
      port: options.port,
      serverName: options.serverName ?? localHostname() ?? "chat",
      motd: options.motd,
      db: options.db,
      ...options.limits,
      log,
    });
  } catch (error) {
    const text = error instanceof StoreError
      ? error.message
      : listenErrorText(error, options.hostname, options.port);
    console.error(`server: ${text}`);
    return 1;
  }
  console.log(bannerLines(server.addr).join("\n"));
  console.log(
    options.db === false
      ? "No messages are kept (--db none): no history, and no resuming after a restart."
      : options.db === ":memory:"
      ? "Messages are kept in memory only (--db :memory:)."
      : `Messages are kept in ${options.db}.`,
  );
  const consoleOn = options.console === "on" ||
    (options.console === "auto" && Deno.stdin.isTerminal());
  const stop = Promise.withResolvers<string>();
  let operatorConsole: ReturnType<typeof startConsole> | undefined;
  if (consoleOn) {
    console.log("Console on: type to announce to everyone, /help for commands, Ctrl+C to stop.");
    operatorConsole = startConsole(server, stop.resolve);
    screen = operatorConsole;
  } else {
    console.log("Press Ctrl+C to stop.");
  }
  const reason = await Promise.race([untilSignal(), stop.promise]);
  log(`${reason}; telling ${server.core.size} people`);
  await server.close(reason.startsWith("SIG") ? undefined : reason);
  operatorConsole?.close();
  screen = output;
  log("stopped");
  output.flush();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
