/**
 * What the terminal chat follows from the frames it shows, for its prompt and Tab completion:
 * who is present now, in which rooms something was said unseen, which day the last thing shown
 * was on, and which messages still wait for the server's acknowledgement. Pure: no I/O.
 *
 * @module
 */

import type { ChatEvent } from "../net/chat_client.ts";
import { LOBBY, nameKey, roomKey } from "../protocol.ts";
import { dayLine, sameDay } from "./render.ts";

// ==== Who is here ====

/**
 * The people present in each of one's rooms, kept from `welcome`, `room`, `joined`, `left`,
 * `renamed` and `users` frames, and those of the last server-wide `/who *`: the names Tab offers.
 * Someone who left is offered no more.
 */
export class Presence {
  /** Per room key: the people there, by name key. */
  #rooms = new Map<string, Map<string, string>>();
  /** People on the server (the last server-wide list), by name key. */
  #elsewhere = new Map<string, string>();
  #me: string;

  /** Starts with the people of a welcome (`users` of `room`); `me` is one's own name. */
  constructor(me: string, welcome: { users: readonly string[]; room?: string | undefined }) {
    this.#me = me;
    this.#setRoom(welcome.room ?? LOBBY, welcome.users);
  }

  /** Follows one frame or event. */
  apply(event: ChatEvent): void {
    switch (event.type) {
      case "reconnected":
        this.#me = event.welcome.name;
        if (!event.welcome.resumed) this.#rooms.clear();
        this.#setRoom(event.welcome.room ?? LOBBY, event.welcome.users);
        return;
      case "room":
        this.#setRoom(event.room, event.users);
        return;
      case "joined":
        if (event.room !== undefined) this.#room(event.room).set(nameKey(event.name), event.name);
        return;
      case "left":
        this.#left(event.name, event.room, event.reason);
        return;
      case "renamed":
        this.#renamed(event.from, event.to);
        return;
      case "users":
        if (event.room !== undefined) {
          // A long list is cut; only a whole one can say who is no longer there.
          if ((event.count ?? event.users.length) <= event.users.length) {
            this.#setRoom(event.room, event.users);
          } else {
            for (const user of event.users) this.#room(event.room).set(nameKey(user), user);
          }
        } else {
          this.#elsewhere = new Map(event.users.map((user) => [nameKey(user), user]));
        }
        return;
    }
  }

  /** Everyone present now but oneself, sorted, each once. */
  names(): string[] {
    const all = new Map(this.#elsewhere);
    for (const people of this.#rooms.values()) for (const [key, name] of people) all.set(key, name);
    all.delete(nameKey(this.#me));
    return [...all.values()].sort((a, b) => a.localeCompare(b));
  }

  #room(room: string): Map<string, string> {
    const key = roomKey(room);
    let people = this.#rooms.get(key);
    if (people === undefined) {
      people = new Map();
      this.#rooms.set(key, people);
    }
    return people;
  }

  #setRoom(room: string, users: readonly string[]): void {
    this.#rooms.set(roomKey(room), new Map(users.map((user) => [nameKey(user), user])));
  }

  #left(name: string, room: string | undefined, reason: string): void {
    const key = nameKey(name);
    if (key === nameKey(this.#me)) {
      if (room !== undefined) this.#rooms.delete(roomKey(room));
      return;
    }
    if (room !== undefined) this.#rooms.get(roomKey(room))?.delete(key);
    else for (const people of this.#rooms.values()) people.delete(key);
    // Leaving a room is not leaving the server; any other reason is.
    if (reason !== "left") this.#elsewhere.delete(key);
  }

  #renamed(from: string, to: string): void {
    const before = nameKey(from);
    if (before === nameKey(this.#me)) this.#me = to;
    for (const people of [...this.#rooms.values(), this.#elsewhere]) {
      if (people.delete(before)) people.set(nameKey(to), to);
    }
  }
}

// ==== Activity in other rooms ====

/** Unseen messages in one room. */
export interface RoomActivity {
  /** The room, as the server names it. */
  room: string;
  /** How many messages arrived since the room was last current. */
  count: number;
  /** Whether one of them mentions you. */
  mention: boolean;
}

/** Counts the messages that arrive in rooms other than the current one, until it is visited. */
export class Activity {
  #rooms = new Map<string, RoomActivity>();

  /** Counts a message in `room` (when it is not `current`). */
  message(room: string, current: string, mention: boolean): void {
    const key = roomKey(room);
    if (key === roomKey(current)) return;
    const seen = this.#rooms.get(key) ?? { room, count: 0, mention: false };
    seen.count++;
    seen.mention ||= mention;
    this.#rooms.set(key, seen);
  }

  /** Forgets a room's count: it is current now, or left. */
  clear(room: string): void {
    this.#rooms.delete(roomKey(room));
  }

  /** The rooms with unseen messages, in the order they first had some. */
  rooms(): RoomActivity[] {
    return [...this.#rooms.values()];
  }
}

// ==== Days ====

/**
 * Says when what is shown moves to another day: history from earlier days, or a chat left open
 * past midnight. It starts on the day it is made, so today's first message needs no line.
 */
export class DayMarks {
  #last: number;

  /** Starts on the day of `now` (milliseconds since 1970). */
  constructor(now: number = Date.now()) {
    this.#last = now;
  }

  /** The line to show before something of time `ts`, when its day is not the last one shown. */
  before(ts: number): string | undefined {
    if (sameDay(ts, this.#last)) {
      this.#last = ts;
      return undefined;
    }
    this.#last = ts;
    return dayLine(ts);
  }
}

/** The time of a frame or event, when it has one (messages, arrivals, leaves...). */
export function eventTime(event: ChatEvent): number | undefined {
  return "ts" in event && typeof event.ts === "number" ? event.ts : undefined;
}

// ==== Messages waiting ====

/** A message sent and not yet acknowledged, as shown above the prompt. */
export interface Waiting {
  /** What to show: the text as typed, or the command that sent it. */
  text: string;
  /** `part/parts` when the text was split into several messages. */
  part: string;
}

/**
 * The messages waiting for the server's acknowledgement, oldest first. The client acknowledges
 * in the order messages were sent, so its count of unacknowledged messages says how many of the
 * oldest are done.
 */
export class WaitingMessages {
  #waiting: Waiting[] = [];

  /** Notes `count` messages just sent for one line of input. */
  sent(text: string, count: number): void {
    for (let i = 1; i <= count; i++) {
      this.#waiting.push({ text, part: count > 1 ? `${i}/${count}` : "" });
    }
  }

  /**
   * Keeps only the newest `unsent` (the client's count of messages not yet acknowledged); returns
   * whether that changed anything.
   */
  settle(unsent: number): boolean {
    const done = this.#waiting.length - Math.max(0, unsent);
    if (done <= 0) return false;
    this.#waiting.splice(0, done);
    return true;
  }

  /** How many wait. */
  get length(): number {
    return this.#waiting.length;
  }

  /**
   * The rows to show for them, at most `maxRows`: a marker, the first line of each text (how
   * many more it has), then how many more wait when they do not all fit.
   */
  rows(maxRows: number): string[] {
    const shown = this.#waiting.length > maxRows
      ? this.#waiting.slice(0, Math.max(0, maxRows - 1))
      : this.#waiting;
    const rows = shown.map(({ text, part }) => {
      const lines = text.split("\n");
      const more = lines.length > 1 ? ` (+${lines.length - 1} lines)` : "";
      return `${WAITING_MARK} ${lines[0]}${more}${part ? ` (${part})` : ""}`;
    });
    if (shown.length < this.#waiting.length) {
      rows.push(`${WAITING_MARK} ...and ${this.#waiting.length - shown.length} more waiting`);
    }
    return rows;
  }
}

/** What starts the row of a message that waits for its acknowledgement, in place of its time. */
export const WAITING_MARK = "[sending]";
