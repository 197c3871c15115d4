/**
 * Room moderation: who owns a room and who helps run it, whether its topic is locked and whether
 * it takes only those invited. Owners and moderators are people, by person id (a key), never
 * names: whoever takes a name later gets none of its powers. A room's rules outlive the room
 * emptying out (they are kept in the store), so its owner keeps it. `#lobby` belongs to the
 * server's operators: it has no owner, and only operators moderate it.
 *
 * @module
 */

import { fail, LOBBY, ok, type Result, roomKey } from "../protocol.ts";
import type { ChatStore } from "./store.ts";

/** Somebody named in a room's rules: their person id and the name they had then. */
export interface RoomPerson {
  id: string;
  name: string;
}

/** A room's rules. */
export interface RoomRules {
  /** The room's name as first written. */
  room: string;
  /** Who owns it: the person who created it with a key, or whom it was given to. */
  owner: RoomPerson | undefined;
  /** People who may moderate it besides its owner, by person id. */
  moderators: Map<string, RoomPerson>;
  /** People invited to it (for an invite-only room), by person id. */
  invited: Map<string, RoomPerson>;
  /** Whether only its owner, moderators and the server's operators may set its topic. */
  topicLocked: boolean;
  /** Whether only those invited (and its owner, moderators, operators) may join it. */
  inviteOnly: boolean;
}

/** The most rooms whose rules are kept; past it, the rules changed longest ago are forgotten. */
export const MAX_ROOM_RULES = 10_000;
/** The most people invited to, or moderating, one room. */
export const MAX_ROOM_PEOPLE = 500;

/** What someone acting on a room is: a person, and whether they are one of the server's operators. */
export interface RoomActor {
  person: RoomPerson;
  /** Whether the person has a key: only people with one can own or moderate a room. */
  keyed: boolean;
  operator: boolean;
}

/** How much say someone has in a room. */
export type RoomStanding = "operator" | "owner" | "moderator" | "member";

/** Every room's rules, kept in the store when there is one. */
export class RoomRulebook {
  #rules = new Map<string, RoomRules>();
  #store: ChatStore | undefined;
  #now: () => number;

  constructor(options: { store?: ChatStore | undefined; now?: () => number } = {}) {
    this.#store = options.store;
    this.#now = options.now ?? Date.now;
    for (const stored of this.#store?.roomRules() ?? []) {
      const rules = rulesFromJson(stored.room, stored.rules);
      if (rules) this.#rules.set(roomKey(stored.room), rules);
    }
  }

  /** A room's rules, if it has any. */
  rulesOf(room: string): RoomRules | undefined {
    return this.#rules.get(roomKey(room));
  }

  /**
   * A room was just created by `creator`: a person with a key becomes its owner. `#lobby`, and a
   * room that already has rules (an owner kept from before), get none.
   */
  created(room: string, creator: RoomActor): void {
    if (roomKey(room) === roomKey(LOBBY) || this.rulesOf(room) || !creator.keyed) return;
    this.#change(room, (rules) => rules.owner = creator.person);
  }

  /** How much say someone has in a room: operators everywhere, then its owner and moderators. */
  standing(room: string, actor: RoomActor): RoomStanding {
    if (actor.operator) return "operator";
    const rules = this.rulesOf(room);
    if (rules?.owner?.id === actor.person.id) return "owner";
    if (rules?.moderators.has(actor.person.id)) return "moderator";
    return "member";
  }

  /** Whether someone may moderate a room (set a locked topic, invite, remove people). */
  mayModerate(room: string, actor: RoomActor): boolean {
    return this.standing(room, actor) !== "member";
  }

  /** Why someone may not join a room (it is invite-only), or `undefined` when they may. */
  joinRefusal(room: string, actor: RoomActor): string | undefined {
    const rules = this.rulesOf(room);
    if (!rules?.inviteOnly || this.mayModerate(room, actor) || rules.invited.has(actor.person.id)) {
      return undefined;
    }
    return `${rules.room} is invite-only: ask its owner or a moderator for an invite`;
  }

  /** Why someone may not set a room's topic (it is locked), or `undefined` when they may. */
  topicRefusal(room: string, actor: RoomActor): string | undefined {
    if (!this.rulesOf(room)?.topicLocked || this.mayModerate(room, actor)) return undefined;
    return `The topic of ${room} is locked: only its owner and moderators can change it`;
  }

  /**
   * Changes a room's settings; only its owner (or an operator) may. Returns a line saying what
   * changed, for the room.
   */
  set(
    room: string,
    actor: RoomActor,
    change: { topicLocked?: boolean; inviteOnly?: boolean },
  ): Result<string> {
    const refused = this.#ownerRefusal(room, actor, "change its settings");
    if (refused) return fail(refused);
    const rules = this.#change(room, (rules) => {
      if (change.topicLocked !== undefined) rules.topicLocked = change.topicLocked;
      if (change.inviteOnly !== undefined) rules.inviteOnly = change.inviteOnly;
    });
    const said = [
      ...(change.topicLocked === undefined
        ? []
        : [change.topicLocked ? "locked the topic" : "unlocked the topic"]),
      ...(change.inviteOnly === undefined
        ? []
        : [change.inviteOnly ? "made it invite-only" : "opened it to everyone"]),
    ];
    return ok(`${actor.person.name} ${said.join(" and ") || "changed nothing"} (${rules.room})`);
  }

  /**
   * Gives someone a role in a room: `moderator`, `member` (no role), or `owner` (the room is
   * handed over; its old owner stays a moderator). Only the owner (or an operator) may, and only
   * to a person with a key.
   */
  setRole(
    room: string,
    actor: RoomActor,
    target: RoomActor,
    role: "owner" | "moderator" | "member",
  ): Result<string> {
    const refused = this.#ownerRefusal(room, actor, "give roles in it");
    if (refused) return fail(refused);
    if (role !== "member" && !target.keyed) {
      return fail(`${target.person.name} has no key: only people with one can run a room`);
    }
    const rules = this.#change(room, (rules) => {
      if (role === "owner") {
        if (rules.owner && rules.owner.id !== target.person.id) {
          rules.moderators.set(rules.owner.id, rules.owner);
        }
        rules.owner = target.person;
        rules.moderators.delete(target.person.id);
      } else if (role === "moderator") {
        if (rules.moderators.size >= MAX_ROOM_PEOPLE) return;
        rules.moderators.set(target.person.id, target.person);
      } else {
        rules.moderators.delete(target.person.id);
      }
    });
    const name = target.person.name;
    return ok(
      role === "owner"
        ? `${actor.person.name} gave ${rules.room} to ${name}`
        : role === "moderator"
        ? `${actor.person.name} made ${name} a moderator of ${rules.room}`
        : `${name} no longer moderates ${rules.room}`,
    );
  }

  /** Invites someone to a room; its owner, moderators and operators may. */
  invite(room: string, actor: RoomActor, target: RoomPerson): Result<void> {
    if (!this.mayModerate(room, actor)) {
      return fail(`Only the owner and moderators of ${room} can invite to it`);
    }
    const current = this.rulesOf(room);
    if (current && current.invited.size >= MAX_ROOM_PEOPLE && !current.invited.has(target.id)) {
      return fail(`${room} has ${MAX_ROOM_PEOPLE} invitations already`);
    }
    this.#change(room, (rules) => rules.invited.set(target.id, target));
    return ok(undefined);
  }

  /** Why someone may not remove `target` from a room, or `undefined` when they may. */
  removalRefusal(room: string, actor: RoomActor, target: RoomActor): string | undefined {
    if (!this.mayModerate(room, actor)) {
      return `Only the owner and moderators of ${room} can remove people from it`;
    }
    const mine = this.standing(room, actor);
    const theirs = this.standing(room, target);
    const rank: Record<RoomStanding, number> = { member: 0, moderator: 1, owner: 2, operator: 3 };
    if (rank[theirs] >= rank[mine] && mine !== "operator") {
      return `${target.person.name} is the ${theirs} of ${room}: you cannot remove them`;
    }
    if (theirs === "operator") return `${target.person.name} is an operator of the server`;
    return undefined;
  }

  #ownerRefusal(room: string, actor: RoomActor, what: string): string | undefined {
    if (roomKey(room) === roomKey(LOBBY)) {
      return actor.operator ? undefined : `${LOBBY} belongs to the server's operators`;
    }
    const standing = this.standing(room, actor);
    if (standing === "owner" || standing === "operator") return undefined;
    const owner = this.rulesOf(room)?.owner;
    return owner
      ? `Only the owner of ${room} (${owner.name}) can ${what}`
      : `${room} has no owner: only the server's operators can ${what}`;
  }

  /** Changes a room's rules (made when it has none) and keeps them. */
  #change(room: string, edit: (rules: RoomRules) => void): RoomRules {
    const key = roomKey(room);
    const rules = this.#rules.get(key) ?? emptyRules(room);
    edit(rules);
    // Re-inserted last: the map runs from the rules changed longest ago to the latest.
    this.#rules.delete(key);
    this.#rules.set(key, rules);
    this.#store?.saveRoomRules(rules.room, rulesToJson(rules), this.#now());
    if (this.#rules.size > MAX_ROOM_RULES) {
      const [oldest] = this.#rules.values();
      this.#rules.delete(roomKey(oldest!.room));
      this.#store?.deleteRoomRules(oldest!.room);
    }
    return rules;
  }
}

function emptyRules(room: string): RoomRules {
  return {
    room,
    owner: undefined,
    moderators: new Map(),
    invited: new Map(),
    topicLocked: false,
    inviteOnly: false,
  };
}

/** A room's rules as the store keeps them: JSON. */
function rulesToJson(rules: RoomRules): string {
  return JSON.stringify({
    owner: rules.owner ?? null,
    moderators: [...rules.moderators.values()],
    invited: [...rules.invited.values()],
    topicLocked: rules.topicLocked,
    inviteOnly: rules.inviteOnly,
  });
}

/** Rules read back from the store; `undefined` for text that is not what {@linkcode rulesToJson} wrote. */
function rulesFromJson(room: string, text: string): RoomRules | undefined {
  try {
    const value = JSON.parse(text) as {
      owner: RoomPerson | null;
      moderators: RoomPerson[];
      invited: RoomPerson[];
      topicLocked: boolean;
      inviteOnly: boolean;
    };
    const byId = (people: RoomPerson[]) =>
      new Map(people.filter(isRoomPerson).map((p) => [p.id, p] as const));
    return {
      room,
      owner: isRoomPerson(value.owner) ? value.owner : undefined,
      moderators: byId(Array.isArray(value.moderators) ? value.moderators : []),
      invited: byId(Array.isArray(value.invited) ? value.invited : []),
      topicLocked: value.topicLocked === true,
      inviteOnly: value.inviteOnly === true,
    };
  } catch {
    return undefined;
  }
}

function isRoomPerson(value: unknown): value is RoomPerson {
  return typeof value === "object" && value !== null &&
    typeof (value as RoomPerson).id === "string" && typeof (value as RoomPerson).name === "string";
}
