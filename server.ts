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
  HELLO_TIMEOUT_MS,
  type HelloFrame,
  isDisconnectError,
  isValidRef,
  LineSplitter,
  LOBBY,
  MAX_FRAME_BYTES,
  MAX_LISTED_USERS,
  type MessageFrame,
  type MsgFrame,
  nameKey,
  OPERATOR_COMMANDS,
  Outbox,
  parseCommand,
  parsePort,
  printAbove,
  READ_BUFFER_BYTES,
  readCommandLine,
  renderFrame,
  type RenderOptions,
  type RoomInfo,
  roomKey,
  sanitizeForTerminal,
  type SayFrame,
  type ServerFrame,
  unknownCommand,
  UsageError,
  VERSION,
} from "./protocol.ts";

// ==== Constants ====

/** The address the CLI listens on unless told otherwise: every IPv4 interface. */
export const DEFAULT_HOST = "0.0.0.0";
/** How many bytes may wait for one slow client before it is disconnected. */
export const DEFAULT_MAX_QUEUE_BYTES = 1024 * 1024;
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
  /** What the client reported about itself, cleaned. */
  readonly info: ClientInfo;
  /** When the member joined, in milliseconds since the epoch. */
  readonly since: number;
  /** Where frames for this member go. */
  readonly peer: Peer;
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
}

/** The outcome of a hello: the new member, or an error frame for the peer alone. */
export type JoinResult = { ok: true; member: Member } | { ok: false; error: ErrorFrame };

/** The name the server speaks under; it is reserved, so nobody can pose as it. */
export const SERVER_SPEAKER = "server";

/**
 * The chat itself: members and their unique names, rooms, messages, private messages and notices.
 * It turns frames from members into frames for members and knows nothing about the network.
 */
export class ChatCore {
  /** The message of the day, shown on joining; empty for none. */
  motd: string;
  #members = new Map<string, Member>();
  #rooms = new Map<string, Room>();
  #lobby: Room;
  #serverName: string;
  #log: (line: string) => void;
  #now: () => number;
  #isNameBanned: (name: string) => boolean;
  #nextMessageId = 1;
  #quiet = false;

  constructor(options: ChatCoreOptions = {}) {
    this.#serverName = options.serverName ?? "chat";
    this.motd = options.motd ?? "";
    this.#log = options.log ?? (() => {});
    this.#now = options.now ?? Date.now;
    this.#isNameBanned = options.isNameBanned ?? (() => false);
    this.#lobby = this.#room(LOBBY);
  }

  /** Everyone present, in the order they joined. */
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
   * Handles a hello: on success the peer becomes a member of the lobby, gets a welcome, and the
   * lobby a `joined` notice. On failure nothing changes and the error is for the peer alone.
   */
  join(peer: Peer, hello: HelloFrame): JoinResult {
    const checked = checkName(hello.name);
    if (!checked.ok) return { ok: false, error: errorFrame("bad_name", checked.error) };
    if (this.#members.has(nameKey(checked.name))) {
      return { ok: false, error: nameTaken(checked.name) };
    }
    const now = this.#now();
    const member: Member = {
      name: checked.name,
      info: cleanClientInfo(hello.client),
      since: now,
      peer,
      rooms: new Set(),
      current: this.#lobby,
      lastActive: now,
      away: undefined,
      lastPrivateFrom: undefined,
    };
    this.#members.set(nameKey(member.name), member);
    this.#lobby.members.add(member);
    member.rooms.add(this.#lobby);
    this.#sendTo(member, {
      type: "welcome",
      name: member.name,
      ...userList(this.#lobby.members),
      server: { name: this.#serverName, version: VERSION },
      room: LOBBY,
      ...(this.motd ? { motd: this.motd } : {}),
    });
    this.#toRoom(this.#lobby, { type: "joined", name: member.name, ts: now, room: LOBBY }, member);
    this.#log(`${peer.address} + ${member.name} joined${describeClient(member.info)}`);
    return { ok: true, member };
  }

  /**
   * Handles a frame from a member. Returns an error frame for the member when the frame is
   * refused; `bye` is the network layer's to act on and is ignored here.
   */
  receive(member: Member, frame: ClientFrame): ErrorFrame | undefined {
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
      return `You are not in ${sanitizeForTerminal(name)}: /join it first`;
    }
    member.current = room;
    this.#sendTo(member, this.#roomFrame(room));
    return undefined;
  }

  /** Removes a member from the chat and tells each of its rooms why. Removing twice is harmless. */
  remove(member: Member, reason: string): void {
    const key = nameKey(member.name);
    if (this.#members.get(key) !== member) return;
    this.#members.delete(key);
    const ts = this.#now();
    for (const room of member.rooms) {
      this.#exitRoom(member, room);
      if (!this.#quiet) {
        this.#toRoom(room, { type: "left", name: member.name, ts, reason, room: room.name });
      }
    }
    this.#log(`${member.peer.address} - ${member.name} left (${reason})`);
  }

  /** Stops announcing leaves: the server is going down and everyone is leaving at once. */
  quiet(): void {
    this.#quiet = true;
  }

  /** The operator speaks to everyone. */
  announce(text: string): void {
    this.#broadcast({ type: "announce", text, ts: this.#now() });
    this.#log(`${SERVER_SPEAKER} (to everyone): ${text}`);
  }

  /** The operator speaks in one room, as {@linkcode SERVER_SPEAKER}. */
  sayAsServer(roomName: string, text: string): string | undefined {
    const room = this.room(roomName);
    if (!room) return `There is no room ${sanitizeForTerminal(roomName)}`;
    const message: MessageFrame = {
      type: "message",
      id: this.#nextMessageId++,
      ts: this.#now(),
      from: SERVER_SPEAKER,
      text,
      room: room.name,
    };
    this.#toRoom(room, message);
    this.#log(`${SERVER_SPEAKER} ${room.name}: ${text}`);
    return undefined;
  }

  #say(member: Member, frame: SayFrame): ErrorFrame | undefined {
    const refused = checkRef(frame.ref);
    if (refused) return refused;
    let room = member.current;
    if (frame.room !== undefined) {
      const found = this.room(frame.room);
      if (!found || !member.rooms.has(found)) {
        return withRef(
          errorFrame(
            "not_in_room",
            `You are not in ${sanitizeForTerminal(frame.room)}: /join it first`,
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
    this.#toRoom(room, message);
    this.#log(`${member.peer.address} ${room.name} ${member.name}: ${checked.text}`);
    return undefined;
  }

  #private(member: Member, frame: MsgFrame): ErrorFrame | undefined {
    const refused = checkRef(frame.ref);
    if (refused) return refused;
    const target = this.member(frame.to);
    if (!target) {
      const text = `Nobody called ${sanitizeForTerminal(frame.to).slice(0, 40)} is here`;
      return withRef(errorFrame("no_such_user", text), frame.ref);
    }
    const checked = checkText(frame.text);
    if (!checked.ok) return withRef(errorFrame("bad_text", checked.error), frame.ref);
    member.lastActive = this.#now();
    const out = new Outgoing({
      type: "private",
      id: this.#nextMessageId++,
      ts: member.lastActive,
      from: member.name,
      to: target.name,
      text: checked.text,
      ...(frame.ref === undefined ? {} : { ref: frame.ref }),
      ...(frame.action ? { action: true } : {}),
    });
    target.lastPrivateFrom = member.name;
    target.peer.send(out);
    if (target !== member) member.peer.send(out);
    if (target.away !== undefined) {
      this.#sendTo(member, { type: "notice", text: `${target.name} is away: ${target.away}` });
    }
    this.#log(`${member.peer.address} ${member.name} -> ${target.name} (private)`);
    return undefined;
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
        `There is no room ${sanitizeForTerminal(roomName).slice(0, 40)}`,
      );
    }
    this.#sendTo(member, { type: "users", ...userList(room.members), room: room.name });
    return undefined;
  }

  #joinRoom(member: Member, roomName: string): ErrorFrame | undefined {
    const checked = checkRoom(roomName);
    if (!checked.ok) return errorFrame("bad_room", checked.error);
    const room = this.#rooms.get(roomKey(checked.room)) ?? this.#room(checked.room);
    member.current = room;
    if (!room.members.has(member)) {
      room.members.add(member);
      member.rooms.add(room);
      this.#toRoom(
        room,
        { type: "joined", name: member.name, ts: this.#now(), room: room.name },
        member,
      );
      this.#log(`${member.peer.address} ${member.name} joined ${room.name}`);
    }
    this.#sendTo(member, this.#roomFrame(room));
    return undefined;
  }

  #leaveRoom(member: Member, roomName: string): ErrorFrame | undefined {
    const room = this.room(roomName);
    if (!room || !member.rooms.has(room)) {
      return errorFrame("not_in_room", `You are not in ${sanitizeForTerminal(roomName)}`);
    }
    if (member.rooms.size === 1) {
      return errorFrame("not_allowed", `${room.name} is your last room: join another first`);
    }
    // The leaver gets the notice too: it confirms the leave.
    this.#toRoom(room, {
      type: "left",
      name: member.name,
      ts: this.#now(),
      reason: "left",
      room: room.name,
    });
    this.#exitRoom(member, room);
    if (member.current === room) {
      // Input now goes to the room joined last: say so, as a join would.
      member.current = [...member.rooms].at(-1)!;
      this.#sendTo(member, this.#roomFrame(member.current));
    }
    this.#log(`${member.peer.address} ${member.name} left ${room.name}`);
    return undefined;
  }

  #topic(member: Member, roomName: string, topic: string | undefined): ErrorFrame | undefined {
    const room = this.room(roomName);
    if (!room || !member.rooms.has(room)) {
      return errorFrame("not_in_room", `You are not in ${sanitizeForTerminal(roomName)}`);
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
        `Nobody called ${sanitizeForTerminal(name).slice(0, 40)} is here`,
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
    // Everyone who shares a room hears it once, however many rooms they share.
    const audience = new Set<Member>([member]);
    for (const room of member.rooms) for (const other of room.members) audience.add(other);
    const out = new Outgoing({ type: "renamed", from: old, to: member.name, ts: this.#now() });
    for (const other of audience) other.peer.send(out);
    this.#log(`${member.peer.address} ${old} is now ${member.name}`);
    return undefined;
  }

  #room(name: string): Room {
    const room: Room = { name, topic: "", members: new Set() };
    this.#rooms.set(roomKey(name), room);
    return room;
  }

  #exitRoom(member: Member, room: Room): void {
    room.members.delete(member);
    member.rooms.delete(room);
    if (room.members.size === 0 && room !== this.#lobby) this.#rooms.delete(roomKey(room.name));
  }

  #roomFrame(room: Room): ServerFrame {
    return { type: "room", room: room.name, topic: room.topic, ...userList(room.members) };
  }

  #roomList(): RoomInfo[] {
    return [...this.#rooms.values()]
      .map((room) => ({ room: room.name, count: room.members.size, topic: room.topic }))
      .sort((a, b) => a.room.localeCompare(b.room));
  }

  #sendTo(member: Member, frame: ServerFrame): void {
    member.peer.send(new Outgoing(frame));
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

function nameTaken(name: string): ErrorFrame {
  return errorFrame("name_taken", `The name "${name}" is taken: choose another`);
}

function checkRef(ref: string | undefined): ErrorFrame | undefined {
  return ref === undefined || isValidRef(ref)
    ? undefined
    : errorFrame("bad_frame", 'Field "ref" must be 1-64 letters, digits or _.:-');
}

function withRef(error: ErrorFrame, ref: string | undefined): ErrorFrame {
  return ref === undefined ? error : { ...error, ref };
}

/** At most {@linkcode MAX_LISTED_USERS} names, in join order, and the full count. */
function userList(members: Set<Member> | Map<string, Member>): { users: string[]; count: number } {
  const users: string[] = [];
  for (const member of members.values()) {
    if (users.length === MAX_LISTED_USERS) break;
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
}

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

/** Starts a chat server; it is listening when this returns. */
export function startServer(options: ServerOptions = {}): ChatServer {
  const listener = Deno.listen({
    hostname: options.hostname ?? DEFAULT_HOST,
    port: options.port ?? DEFAULT_PORT,
  });
  const bans = new Bans(options.now);
  const core = new ChatCore({ ...options, isNameBanned: (name) => bans.has("name", name) });
  const log = options.log ?? (() => {});
  const settings: ConnectionSettings = {
    helloTimeoutMs: options.helloTimeoutMs ?? HELLO_TIMEOUT_MS,
    promptDelayMs: options.promptDelayMs ?? PROMPT_DELAY_MS,
    nameTimeoutMs: options.nameTimeoutMs ?? NAME_TIMEOUT_MS,
    maxQueueBytes: options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES,
    serverName: options.serverName ?? "chat",
    log,
  };
  const connections = new Set<Connection>();
  const handlers = new Set<Promise<void>>();
  const accepting = acceptLoop(listener, (conn) => {
    const connection = new Connection(conn, settings);
    connections.add(connection);
    const handler = serveConnection(connection, core, bans, log).finally(() => {
      connections.delete(connection);
      handlers.delete(handler);
    });
    handlers.add(handler);
  }, log);

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
  /** Why the connection is ending, once it is; also the reason given in `left`. */
  endReason: string | undefined;
  /** Resolves when the socket is closed. */
  readonly closed: Promise<void>;
  readonly telnet = new TelnetFilter();
  #conn: Deno.TcpConn;
  #outbox: Outbox;
  #settings: ConnectionSettings;
  #helloTimer: ReturnType<typeof setTimeout>;
  #promptTimer: ReturnType<typeof setTimeout> | undefined;
  #markClosed: () => void;

  constructor(conn: Deno.TcpConn, settings: ConnectionSettings) {
    this.#conn = conn;
    this.#settings = settings;
    this.address = displayAddress(conn.remoteAddr);
    conn.setNoDelay(true);
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
      this.#settings.log(`${this.address} ! no hello within ${ms} ms`);
      this.fail("timeout", "No hello received in time", "timed out");
    }, ms);
  }

  /** A silent client is probably a person on `nc` or `telnet`: greet it and ask for a name. */
  #askName(): void {
    this.#promptTimer = undefined;
    if (this.mode !== undefined || this.ending) return;
    this.mode = "text";
    clearTimeout(this.#helloTimer);
    this.#helloTimer = this.#deadline(this.#settings.nameTimeoutMs);
    this.sendText([
      `Welcome to ${this.#settings.serverName} (chat ${VERSION}).`,
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
  const splitter = new LineSplitter({ maxLineBytes: MAX_FRAME_BYTES });
  const buffer = new Uint8Array(READ_BUFFER_BYTES);
  const onLine = (line: string) => {
    if (!connection.ending) handleLine(connection, core, bans, line, log);
  };
  try {
    while (!connection.ending) {
      const n = await connection.conn.read(buffer);
      if (n === null) break;
      const chunk = buffer.subarray(0, n);
      splitter.push(connection.mode === "json" ? chunk : connection.telnet.filter(chunk), onLine);
    }
  } catch (error) {
    if (error instanceof FrameTooLargeError) {
      log(`${connection.address} ! too_large: line over ${MAX_FRAME_BYTES} bytes`);
      connection.fail("too_large", `Line is longer than ${MAX_FRAME_BYTES} bytes`, "sent too much");
    } else if (!isDisconnectError(error)) {
      log(`${connection.address} ! read failed: ${errorText(error)}`);
    }
  } finally {
    connection.closeAfterFlush("disconnected");
    if (connection.member) core.remove(connection.member, connection.endReason ?? "disconnected");
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
    ? [`${lines.length} connected:`, ...lines.map((l) => `  ${l}`)]
    : ["Nobody is connected"];
}

function kick(server: ChatServer, name: string, reason: string): string {
  if (!name) return "Usage: /kick <name> [reason]";
  const member = server.core.member(name);
  if (!member) return `Nobody called ${sanitizeForTerminal(name)} is here`;
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
  return {
    help: values.help,
    version: values.version,
    hostname: values.host.replace(/^\[(.*)\]$/, "$1"),
    port: port.port,
    serverName: values.name,
    motd: cleanLine(values.motd),
    console: consoleMode,
  };
}

function timestamp(date = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
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
  let screen: OperatorScreen = { print: (lines) => console.log(lines.join("\n")) };
  const log = (line: string) => screen.print([`${timestamp()} ${sanitizeForTerminal(line)}`]);
  let server: ChatServer;
  try {
    server = startServer({
      hostname: options.hostname,
      port: options.port,
      serverName: options.serverName ?? localHostname() ?? "chat",
      motd: options.motd,
      log,
    });
  } catch (error) {
    console.error(`server: ${listenErrorText(error, options.hostname, options.port)}`);
    return 1;
  }
  console.log(bannerLines(server.addr).join("\n"));
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
  screen = { print: (lines) => console.log(lines.join("\n")) };
  log("stopped");
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
