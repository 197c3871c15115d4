/**
 * Who is where: the members and their unique names, the rooms, and the fan-out of frames to them.
 * The hub and the sessions both work on one {@linkcode Directory}; neither touches a socket. A
 * member reaches the network only through its {@linkcode Peer}, and a frame only as an
 * {@linkcode Outgoing}, encoded once per face however many people receive it.
 *
 * @module
 */

import {
  checkRoom,
  cleanInfo,
  type ClientInfo,
  encodeFrame,
  type ErrorFrame,
  LOBBY,
  MAX_LISTED_ROOMS,
  MAX_LISTED_USERS,
  MAX_NAME_INPUT,
  type RoomInfo,
  roomKey,
  type ServerFrame,
} from "../protocol.ts";
import { nameSkeleton } from "./names.ts";
// How addresses count for the per-address limits, for the network layer too, which takes its
// values from this file alone.
export { addressGroup } from "./bans.ts";

// ==== Frames on their way out ====

/**
 * Turns a frame into the bytes one kind of connection reads: JSON lines for programs, text for
 * people on `nc` or `telnet`. The network layer supplies them; the chat never renders.
 */
export interface FrameEncoder {
  /** The frame's bytes, possibly none (a frame a face does not show). */
  encode(frame: ServerFrame): Uint8Array;
}

/** The protocol's own encoding: one JSON object and a newline. */
export const JSON_ENCODER: FrameEncoder = { encode: encodeFrame };

/**
 * One frame on its way out, encoded at most once per {@linkcode FrameEncoder} however many
 * people receive it.
 */
export class Outgoing {
  /** The frame being sent. */
  readonly frame: ServerFrame;
  #encoder: FrameEncoder | undefined;
  #bytes: Uint8Array | undefined;
  #others: Map<FrameEncoder, Uint8Array> | undefined;

  constructor(frame: ServerFrame) {
    this.frame = frame;
  }

  /** The frame as `encoder` writes it, encoded on first use and remembered. */
  bytes(encoder: FrameEncoder): Uint8Array {
    if (encoder === this.#encoder) return this.#bytes!;
    if (this.#encoder === undefined) {
      this.#encoder = encoder;
      return this.#bytes = encoder.encode(this.frame);
    }
    this.#others ??= new Map();
    let bytes = this.#others.get(encoder);
    if (bytes === undefined) {
      bytes = encoder.encode(this.frame);
      this.#others.set(encoder, bytes);
    }
    return bytes;
  }
}

/**
 * The most bytes of history joining a room brings (a hello joins the lobby), so that what a hello
 * of a few dozen bytes makes the server send stays small; the rest is a `history` request away,
 * and those cost more of their asker's allowance. (A resume brings what was missed since the
 * session began, within the larger replay budget: that much is owed to its client.)
 */
export const HELLO_REPLAY_BYTES = 64 * 1024;

/**
 * The frames that fit a byte budget, from the first, measured as `encoder` writes them (JSON, or
 * the text a person on `nc` reads, which can be longer): a replay or a history page never
 * overfills a client's queue. What does not fit is left for `history` requests.
 */
export function fitBudget(
  frames: readonly ServerFrame[],
  budgetBytes: number,
  encoder: FrameEncoder = JSON_ENCODER,
): Outgoing[] {
  const fitting: Outgoing[] = [];
  let bytes = 0;
  for (const frame of frames) {
    const out = new Outgoing(frame);
    bytes += out.bytes(encoder).length;
    if (bytes > budgetBytes) break;
    fitting.push(out);
  }
  return fitting;
}

// ==== Members and rooms ====

/**
 * The chat's view of one connection: somewhere to send frames, and a way to end it. The chat
 * never touches sockets; the network layer (or a test) implements this.
 */
export interface Peer {
  /** The remote IP address, for the operator's log. */
  readonly address: string;
  /** How frames are encoded for this peer: what it really receives, for sizing replays. */
  readonly encoder: FrameEncoder;
  /** Queues a frame. Must not block; a peer that cannot keep up disconnects itself. */
  send(out: Outgoing): void;
  /** Sends a fatal error, then ends the connection; the member is removed with `reason`. */
  end(error: ErrorFrame, reason: string): void;
  /**
   * How long the peer has sent nothing, in milliseconds, for a peer without heartbeats (a
   * person on `nc` or `telnet`, whose dead connection only a write can reveal); `undefined` for
   * peers that answer pings, whose silence the network layer already acts on.
   */
  silentMs(): number | undefined;
}

/**
 * How a member is connected: `live` through a peer, or `held` after its connection dropped (or
 * the server restarted), until `until` (on the chat's clock), when `timer` lets it go.
 */
export type MemberLink =
  | { state: "live"; peer: Peer }
  | {
    state: "held";
    /** Where the connection came from, for the operator; `-` after a restart. */
    address: string;
    until: number;
    /** Lets the member go at the end of the grace period. */
    timer: ReturnType<typeof setTimeout>;
    /** Tells the others of the drop, a few seconds in. */
    awayTimer: ReturnType<typeof setTimeout>;
    /** Whether the others were told the member is away. */
    told: boolean;
    /** The away message from before the drop, given back on resuming. */
    awayBefore: string | undefined;
  };

/** A room and who is in it. */
export interface Room {
  /** The name as first written, `#` included. */
  readonly name: string;
  topic: string;
  /** The members, in the order they joined. */
  readonly members: Set<Member>;
}

/**
 * Who a member is, whatever name they use: a person with a verified key (`k:` id, known by the
 * key's fingerprint), or a keyless person known only by their session (`s:` id).
 */
export interface Person {
  /** The person id sent in frames: stable across renames and resumes, not a secret. */
  readonly id: string;
  /** The verified key, for a person who has one. */
  readonly key?: { readonly publicKey: string; readonly fingerprint: string };
}

/** Somebody who has said hello and holds a name. */
export interface Member {
  /** Who this is. Everything that belongs to a person (private messages, ignores, bans) uses it. */
  readonly person: Person;
  /** The name as chosen, in normal form. */
  name: string;
  /** What the client reported about itself, cleaned (anew when a session resumes). */
  info: ClientInfo;
  /** When the member joined, in milliseconds since the epoch. */
  readonly since: number;
  /**
   * The id of the first message sent after the member joined (0 when unknown, for a session
   * restored after a restart): nothing older can have been missed, whatever a resume claims.
   */
  readonly firstId: number;
  /** Whether frames reach the member now, and how. */
  link: MemberLink;
  /**
   * The secret that lets this member's client resume the session after losing the connection;
   * unknown (`undefined`) for a session restored after a restart until its client comes back.
   */
  token: string | undefined;
  /** The token's hash ({@linkcode tokenHash}): how the session is found and stored. */
  tokenHash: string;
  /** The rooms the member is in, in the order joined. */
  readonly rooms: Set<Room>;
  /** Where plain input goes: the room joined or switched to last. */
  current: Room;
  /** When the member last said anything. */
  lastActive: number;
  /** The away message, while away. */
  away: string | undefined;
  /** Who last wrote to this member privately (their id, and their name then), for `/reply`. */
  lastPrivateFrom: { id: string; name: string } | undefined;
  /** Per room, the oldest message id sent as history, for paging further back. */
  readonly historyFrom: Map<Room, number>;
}

/** How frames are encoded for a member now (JSON while held: nothing is sent then). */
export function memberEncoder(member: Member): FrameEncoder {
  return member.link.state === "live" ? member.link.peer.encoder : JSON_ENCODER;
}

/** The address a member's connection came from, live or held. */
export function memberAddress(member: Member): string {
  return member.link.state === "live" ? member.link.peer.address : member.link.address;
}

/** A client's self-description as kept: no control characters, each field cut to 64. */
export function cleanClientInfo(info: ClientInfo | undefined): ClientInfo {
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

/**
 * How many names a welcome or a `room` frame lists: enough to see who is there in a small room,
 * while a join to a crowded room stays cheap (`who` lists up to {@linkcode MAX_LISTED_USERS}).
 */
export const ARRIVAL_LISTED_USERS = 50;

/** A list of people as frames carry it: names, their person ids, and how many there are in all. */
export interface UserList {
  users: string[];
  ids: string[];
  count: number;
}

/** At most `limit` of a room's members, in join order, and how many there are in all. */
export function userList(members: ReadonlySet<Member>, limit = MAX_LISTED_USERS): UserList {
  return { ...firstPeople(members, limit), count: members.size };
}

function firstPeople(members: Iterable<Member>, limit: number): { users: string[]; ids: string[] } {
  const users: string[] = [];
  const ids: string[] = [];
  for (const member of members) {
    if (users.length === limit) break;
    users.push(member.name);
    ids.push(member.person.id);
  }
  return { users, ids };
}

/** Options for {@linkcode Directory}. */
export interface DirectoryOptions {
  /**
   * The largest room in which arrivals, leaves and dropped connections are announced.
   * @default {200}
   */
  announceLimit?: number;
  /**
   * The topic a room starts with when it is created (again): the one kept from before.
   * @default {none}
   */
  topicOf?: (room: string) => string;
}

/** The largest room in which arrivals and leaves are announced, unless told otherwise. */
export const ANNOUNCE_LIMIT = 200;

/**
 * The members by name and by resume token, the rooms by name, and sending to them. Names and
 * room names are compared in their key form ({@linkcode nameKey}, {@linkcode roomKey}), so `Ann`
 * and `ａｎｎ` are one name.
 */
export class Directory {
  /** The room everyone is in on arrival; it never disappears. */
  readonly lobby: Room;
  #members = new Map<string, Member>();
  #byToken = new Map<string, Member>();
  #byPerson = new Map<string, Member>();
  #rooms = new Map<string, Room>();
  #announceLimit: number;
  #topicOf: (room: string) => string;

  constructor(options: DirectoryOptions = {}) {
    this.#announceLimit = options.announceLimit ?? ANNOUNCE_LIMIT;
    this.#topicOf = options.topicOf ?? (() => "");
    this.lobby = this.#createRoom(LOBBY);
  }

  /** Everyone present (or held after losing the connection), in the order they joined. */
  get members(): Iterable<Member> {
    return this.#members.values();
  }

  /** How many people are present, held ones included. */
  get size(): number {
    return this.#members.size;
  }

  /** Everyone, at most `limit` of them in the order they joined, and the full count. */
  everyone(limit = MAX_LISTED_USERS): UserList {
    return { ...firstPeople(this.#members.values(), limit), count: this.#members.size };
  }

  /** The member with that name (in any case or look-alike form), if present. */
  member(name: string): Member | undefined {
    // Longer input is no name; it is not even normalised.
    if (name.length > MAX_NAME_INPUT) return undefined;
    return this.#members.get(nameSkeleton(name));
  }

  /** The member whose session has that token hash, if present. */
  memberByToken(tokenHash: string): Member | undefined {
    return this.#byToken.get(tokenHash);
  }

  /** The member who is that person (by person id), if present. */
  memberByPerson(personId: string): Member | undefined {
    return this.#byPerson.get(personId);
  }

  /** Whether this member is the one holding its name (and not one already removed). */
  isPresent(member: Member): boolean {
    return this.#members.get(nameSkeleton(member.name)) === member;
  }

  /** The room with that name, if it exists. */
  findRoom(name: string): Room | undefined {
    const checked = checkRoom(name);
    return checked.ok ? this.#rooms.get(roomKey(checked.value)) : undefined;
  }

  /** The room with that name, created when it does not exist; `undefined` for a bad name. */
  openRoom(name: string): Room | undefined {
    const checked = checkRoom(name);
    if (!checked.ok) return undefined;
    return this.#rooms.get(roomKey(checked.value)) ?? this.#createRoom(checked.value);
  }

  /**
   * Adds a member under a free name, in no room yet (its current room is the lobby). The person
   * must not be present already.
   */
  add(
    fields: Pick<Member, "person" | "name" | "info" | "link" | "token" | "tokenHash"> & {
      since: number;
      firstId?: number;
    },
  ): Member {
    const member: Member = {
      ...fields,
      firstId: fields.firstId ?? 0,
      rooms: new Set(),
      current: this.lobby,
      lastActive: fields.since,
      away: undefined,
      lastPrivateFrom: undefined,
      historyFrom: new Map(),
    };
    this.#members.set(nameSkeleton(member.name), member);
    this.#byToken.set(member.tokenHash, member);
    this.#byPerson.set(member.person.id, member);
    return member;
  }

  /** Gives a member's session a new token (a restored session resumed by its key). */
  retoken(member: Member, token: string, hash: string): void {
    this.#byToken.delete(member.tokenHash);
    member.token = token;
    member.tokenHash = hash;
    this.#byToken.set(hash, member);
  }

  /** Gives a member another (free) name. */
  rename(member: Member, name: string): void {
    this.#members.delete(nameSkeleton(member.name));
    member.name = name;
    this.#members.set(nameSkeleton(name), member);
  }

  /**
   * Takes a member out of every room and frees its name and token. Returns the rooms it was in,
   * or `undefined` when it was not present.
   */
  remove(member: Member): Room[] | undefined {
    if (!this.isPresent(member)) return undefined;
    this.#members.delete(nameSkeleton(member.name));
    this.#byToken.delete(member.tokenHash);
    this.#byPerson.delete(member.person.id);
    const rooms = [...member.rooms];
    for (const room of rooms) this.exit(member, room);
    return rooms;
  }

  /**
   * Puts a member in a room and makes it current; the room's members hear of the arrival (in a
   * small enough room). Returns whether the member was new there.
   */
  enter(member: Member, room: Room, ts: number): boolean {
    member.current = room;
    if (room.members.has(member)) return false;
    room.members.add(member);
    member.rooms.add(room);
    this.notifyRoom(room, {
      type: "joined",
      name: member.name,
      id: member.person.id,
      ts,
      room: room.name,
    }, member);
    return true;
  }

  /** Takes a member out of a room; a room left empty disappears (but the lobby). */
  exit(member: Member, room: Room): void {
    room.members.delete(member);
    member.rooms.delete(room);
    member.historyFrom.delete(room);
    if (room.members.size === 0 && room !== this.lobby) this.#rooms.delete(roomKey(room.name));
  }

  /** The `room` frame that tells a member it is in a room: topic, and who is there. */
  roomFrame(room: Room): ServerFrame {
    return {
      type: "room",
      room: room.name,
      topic: room.topic,
      ...userList(room.members, ARRIVAL_LISTED_USERS),
    };
  }

  /**
   * The `limit` biggest rooms with their size and topic, sorted by name, and how many rooms there
   * are in all: the list stays small however many rooms people make.
   */
  roomList(limit = MAX_LISTED_ROOMS): { rooms: RoomInfo[]; count: number } {
    const rooms = [...this.#rooms.values()]
      .sort((a, b) => b.members.size - a.members.size)
      .slice(0, limit)
      .map((room) => ({ room: room.name, count: room.members.size, topic: room.topic }))
      .sort((a, b) => a.room.localeCompare(b.room));
    return { rooms, count: this.#rooms.size };
  }

  // ==== Fan-out ====

  /** Queues a frame (or an already encoded one) for one member; a held member gets nothing. */
  send(member: Member, frame: ServerFrame | Outgoing): void {
    if (member.link.state !== "live") return;
    member.link.peer.send(frame instanceof Outgoing ? frame : new Outgoing(frame));
  }

  /** Encodes a frame once and queues it for every member of a room (but `except`). */
  toRoom(room: Room, frame: ServerFrame | Outgoing, except?: Member): void {
    const out = frame instanceof Outgoing ? frame : new Outgoing(frame);
    for (const member of room.members) {
      if (member !== except && member.link.state === "live") member.link.peer.send(out);
    }
  }

  /**
   * Queues an arrival, a leave or a drop for a room's members (but `except`) when the room is
   * small enough for such news; returns whether it did.
   */
  notifyRoom(room: Room, frame: ServerFrame, except?: Member): boolean {
    if (room.members.size > this.#announceLimit) return false;
    this.toRoom(room, frame, except);
    return true;
  }

  /**
   * Queues news about someone (a leave, say) for the members of `rooms` that are small enough for
   * news, each member once however many of the rooms they are in: the frame for the first of
   * those rooms they are in (made by `frameFor`, encoded once per room). Returns how many rooms
   * carried it.
   */
  notifyOnce(rooms: Iterable<Room>, frameFor: (room: Room) => ServerFrame): number {
    const told = new Set<Member>();
    let carried = 0;
    for (const room of rooms) {
      if (room.members.size > this.#announceLimit) continue;
      const out = new Outgoing(frameFor(room));
      let sent = false;
      for (const member of room.members) {
        if (told.has(member) || member.link.state !== "live") continue;
        told.add(member);
        member.link.peer.send(out);
        sent = true;
      }
      if (sent) carried++;
    }
    return carried;
  }

  /**
   * Encodes a frame once and queues it for everyone else who shares a room with a member, once
   * each however many rooms they share; with `news`, only in rooms small enough for arrivals
   * and leaves to be announced.
   */
  toCompany(member: Member, frame: ServerFrame | Outgoing, options: { news: boolean }): void {
    const out = frame instanceof Outgoing ? frame : new Outgoing(frame);
    const company = new Set<Member>();
    for (const room of member.rooms) {
      if (options.news && room.members.size > this.#announceLimit) continue;
      for (const other of room.members) company.add(other);
    }
    company.delete(member);
    for (const other of company) this.send(other, out);
  }

  /** Encodes a frame once and queues it for every member. */
  broadcast(frame: ServerFrame): void {
    const out = new Outgoing(frame);
    for (const member of this.#members.values()) this.send(member, out);
  }

  #createRoom(name: string): Room {
    const room: Room = { name, topic: this.#topicOf(name), members: new Set() };
    this.#rooms.set(roomKey(name), room);
    return room;
  }
}
