/**
 * What the page knows, without any DOM: the conversations (rooms and private ones), their lines
 * in message-id order with duplicates dropped, who is in each room, and what is unread. The page
 * draws from it; a test drives it directly.
 *
 * @module
 */

import {
  LOBBY,
  type MessageFrame,
  nameKey,
  type PrivateFrame,
  roomKey,
  type UsersFrame,
} from "../protocol.ts";
import { mentions } from "../ui/render.ts";

/** The most lines a conversation keeps; older ones are dropped (scrolling up fetches them). */
export const MAX_ENTRIES = 1000;

/** One line of a conversation: a message, one of ours on its way, or a notice. */
export type Entry =
  | {
    kind: "message";
    /** Where it sorts: messages by their id, so history and replays fall into place. */
    order: number;
    id: number;
    ts: number;
    from: string;
    text: string;
    action: boolean;
    mine: boolean;
    mention: boolean;
  }
  | {
    kind: "pending";
    order: number;
    ref: string;
    ts: number;
    from: string;
    text: string;
    action: boolean;
    failed?: string;
  }
  | { kind: "notice"; order: number; ts: number; text: string; tone: "info" | "error" };

/** Somebody in a room. */
export interface Person {
  name: string;
  id?: string | undefined;
  away: boolean;
}

/** A room, or a private conversation with one person. */
export interface Conversation {
  /** `#dev` (its room key) or `@` and the other person's id (or name, until the id is known). */
  key: string;
  kind: "room" | "private";
  /** The room's name, or the other person's latest name. */
  title: string;
  /** For a private conversation: the other person's id, once known. */
  peerId?: string | undefined;
  topic: string;
  /** Who is in the room (the first {@linkcode MAX_LISTED_USERS} the server lists). */
  people: Person[];
  /** How many people are in the room. */
  count: number;
  entries: Entry[];
  /** The ids of the messages shown, so none is shown twice. */
  ids: Set<number>;
  unread: number;
  mentions: number;
  /** The oldest message id shown: where the next page of history ends. */
  oldest?: number | undefined;
  /** Whether the server has earlier messages. */
  more: boolean;
  /** Whether a page of history was asked for and has not arrived. */
  loading: boolean;
}

/** What adding a message changed, for notifications. */
export interface Added {
  conversation: Conversation;
  /** False when the message was already shown (a replay, a resent acknowledgement). */
  fresh: boolean;
  mention: boolean;
  mine: boolean;
}

/** The conversation key of a room. */
export function roomConversationKey(room: string): string {
  return roomKey(room);
}

/** The page's whole state: who we are, the conversations, the one on screen. */
export class ChatModel {
  me = "";
  myId: string | undefined;
  conversations = new Map<string, Conversation>();
  current = roomConversationKey(LOBBY);
  /** The newest id of a message received live: a resume continues after it. */
  lastLive: number | undefined;
  /** Whether the person is looking at the page (not a hidden tab). */
  visible = true;
  #newest = 0;
  #sequence = 0;

  /** The conversation on screen, if it exists. */
  get shown(): Conversation | undefined {
    return this.conversations.get(this.current);
  }

  /** Unread messages in all conversations. */
  get unread(): number {
    let total = 0;
    for (const c of this.conversations.values()) total += c.unread;
    return total;
  }

  /** The room's conversation, made when new. */
  room(name: string): Conversation {
    const key = roomConversationKey(name);
    const found = this.conversations.get(key);
    if (found) return found;
    const made = newConversation(key, "room", name);
    this.conversations.set(key, made);
    return made;
  }

  /**
   * The private conversation with a person, made when new. One started by name takes the
   * person's id once it is known.
   */
  privateWith(name: string, id: string | undefined): Conversation {
    const byName = `@${nameKey(name)}`;
    const key = id === undefined ? byName : `@${id}`;
    const found = this.conversations.get(key);
    if (found) {
      found.title = name;
      return found;
    }
    const named = this.conversations.get(byName);
    if (named && id !== undefined && named.peerId === undefined) {
      this.conversations.delete(byName);
      Object.assign(named, { key, peerId: id, title: name });
      this.conversations.set(key, named);
      if (this.current === byName) this.current = key;
      return named;
    }
    const made = newConversation(key, "private", name);
    made.peerId = id;
    this.conversations.set(key, made);
    return made;
  }

  /** Whether a frame's sender is us. */
  isMine(from: string, fromId: string | undefined): boolean {
    return this.myId !== undefined && fromId !== undefined
      ? fromId === this.myId
      : nameKey(from) === nameKey(this.me);
  }

  /** Adds a room or private message where it belongs, unless it is already there. */
  addMessage(frame: MessageFrame | PrivateFrame): Added {
    const mine = this.isMine(frame.from, frame.fromId);
    const conversation = frame.type === "message"
      ? this.room(frame.room ?? LOBBY)
      : mine
      ? this.privateWith(frame.to, frame.toId)
      : this.privateWith(frame.from, frame.fromId);
    if (frame.ref !== undefined && mine) this.#dropPending(conversation, frame.ref);
    if (!frame.history) this.lastLive = Math.max(this.lastLive ?? 0, frame.id);
    this.#newest = Math.max(this.#newest, frame.id);
    const mention = !mine && (frame.type === "private" || mentions(frame.text, this.me));
    if (conversation.ids.has(frame.id)) return { conversation, fresh: false, mention, mine };
    conversation.ids.add(frame.id);
    conversation.oldest = Math.min(conversation.oldest ?? frame.id, frame.id);
    insert(conversation, {
      kind: "message",
      order: frame.id,
      id: frame.id,
      ts: frame.ts,
      from: frame.from,
      text: frame.text,
      action: frame.action === true,
      mine,
      mention: mention && frame.type === "message",
    });
    if (!frame.history && !mine && !this.#looking(conversation)) {
      conversation.unread++;
      if (mention) conversation.mentions++;
    }
    return { conversation, fresh: true, mention, mine };
  }

  /** Shows one of our messages as on its way, until the server's copy replaces it. */
  addPending(conversation: Conversation, ref: string, text: string, action: boolean): void {
    const order = 1e15 + ++this.#sequence;
    insert(conversation, {
      kind: "pending",
      order,
      ref,
      ts: Date.now(),
      from: this.me,
      text,
      action,
    });
  }

  /** Marks one of our messages as refused, saying why. */
  failPending(ref: string, reason: string): boolean {
    for (const conversation of this.conversations.values()) {
      const entry = conversation.entries.find((e) => e.kind === "pending" && e.ref === ref);
      if (entry?.kind === "pending") {
        entry.failed = reason;
        return true;
      }
    }
    return false;
  }

  /** Notes that messages up to this id exist: a notice sorts after them (a welcome's `last`). */
  seen(id: number): void {
    this.#newest = Math.max(this.#newest, id);
  }

  /** Adds a line from the server or the page itself, after what is there now. */
  addNotice(conversation: Conversation, text: string, tone: "info" | "error" = "info"): void {
    const order = this.#newest + ++this.#sequence / 1e6;
    insert(conversation, { kind: "notice", order, ts: Date.now(), text, tone });
  }

  /** Who is in a room now, from a `welcome`, `room` or `users` frame. */
  setPeople(
    conversation: Conversation,
    frame: Pick<UsersFrame, "users" | "ids" | "count" | "away">,
  ): void {
    const away = new Set(frame.away ?? []);
    conversation.people = frame.users.map((name, i) => ({
      name,
      id: frame.ids?.[i],
      away: away.has(name),
    }));
    conversation.count = frame.count ?? frame.users.length;
  }

  /** Somebody arrived in a room. */
  arrived(room: string, name: string, id: string | undefined): void {
    const conversation = this.room(room);
    if (conversation.people.some((p) => nameKey(p.name) === nameKey(name))) return;
    conversation.people.push({ name, id, away: false });
    conversation.count++;
  }

  /** Somebody left a room (or the server, when `room` is absent). */
  departed(room: string | undefined, name: string): Conversation[] {
    const rooms = room === undefined ? this.#roomsOf(name) : [this.room(room)];
    for (const conversation of rooms) {
      const before = conversation.people.length;
      conversation.people = conversation.people.filter((p) => nameKey(p.name) !== nameKey(name));
      if (conversation.people.length < before) conversation.count--;
    }
    return rooms;
  }

  /** Somebody renamed: in every room, and the private conversation with them. */
  renamed(from: string, to: string, id: string | undefined): Conversation[] {
    if (nameKey(from) === nameKey(this.me)) this.me = to;
    const rooms = this.#roomsOf(from);
    for (const c of rooms) {
      for (const p of c.people) if (nameKey(p.name) === nameKey(from)) p.name = to;
    }
    for (const c of this.conversations.values()) {
      if (c.kind === "private" && (c.peerId === id || nameKey(c.title) === nameKey(from))) {
        c.title = to;
      }
    }
    return rooms;
  }

  /** Somebody is away (held after a drop), or back. */
  presence(name: string, away: boolean): Conversation[] {
    const rooms = this.#roomsOf(name);
    for (const c of rooms) {
      for (const p of c.people) if (nameKey(p.name) === nameKey(name)) p.away = away;
    }
    return rooms;
  }

  /** We left a room: it goes from the list. */
  leave(room: string): void {
    const key = roomConversationKey(room);
    this.conversations.delete(key);
    if (this.current === key) this.current = roomConversationKey(LOBBY);
  }

  /** Puts a conversation on screen; it is read. */
  show(key: string): void {
    if (!this.conversations.has(key)) return;
    this.current = key;
    this.markRead();
  }

  /** The conversation on screen is read (when the page is visible). */
  markRead(): void {
    const shown = this.shown;
    if (shown && this.visible) {
      shown.unread = 0;
      shown.mentions = 0;
    }
  }

  /** The rooms and private conversations, in the order the side list shows them. */
  list(): Conversation[] {
    const all = [...this.conversations.values()];
    const byTitle = (a: Conversation, b: Conversation) => a.title.localeCompare(b.title);
    return [
      ...all.filter((c) => c.kind === "room").sort(byTitle),
      ...all.filter((c) => c.kind === "private").sort(byTitle),
    ];
  }

  #looking(conversation: Conversation): boolean {
    return this.visible && conversation.key === this.current;
  }

  #roomsOf(name: string): Conversation[] {
    return [...this.conversations.values()].filter((c) =>
      c.kind === "room" && c.people.some((p) => nameKey(p.name) === nameKey(name))
    );
  }

  #dropPending(conversation: Conversation, ref: string): void {
    for (const c of [conversation, ...this.conversations.values()]) {
      const at = c.entries.findIndex((e) => e.kind === "pending" && e.ref === ref);
      if (at >= 0) {
        c.entries.splice(at, 1);
        return;
      }
    }
  }
}

function newConversation(key: string, kind: "room" | "private", title: string): Conversation {
  return {
    key,
    kind,
    title,
    topic: "",
    people: [],
    count: 0,
    entries: [],
    ids: new Set(),
    unread: 0,
    mentions: 0,
    more: kind === "private",
    loading: false,
  };
}

/** Puts an entry in its place by order (nearly always at the end), keeping at most the newest. */
function insert(conversation: Conversation, entry: Entry): void {
  const entries = conversation.entries;
  let at = entries.length;
  while (at > 0 && entries[at - 1]!.order > entry.order) at--;
  entries.splice(at, 0, entry);
  if (entries.length > MAX_ENTRIES) {
    const dropped = entries.splice(0, entries.length - MAX_ENTRIES);
    for (const e of dropped) if (e.kind === "message") conversation.ids.delete(e.id);
    const first = entries.find((e) => e.kind === "message");
    conversation.oldest = first?.kind === "message" ? first.id : undefined;
    conversation.more = true;
  }
}
