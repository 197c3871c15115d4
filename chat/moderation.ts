/**
 * What the server's operators can do, whether from the console or from their own client: kick,
 * ban and unban, list bans, release a registered name, and (from the console only) make people
 * operators. Every action is logged with who did it. A kick or a ban reaches a person whose
 * connection dropped too: their held session is removed, so they cannot resume it.
 *
 * @module
 */

import {
  checkName,
  cleanLine,
  type ErrorFrame,
  errorFrame,
  isFingerprint,
  ok,
  quoteInput,
  type Result,
} from "../protocol.ts";
import { type Ban, Bans, type BanTarget, parseIp } from "./bans.ts";
import { type Directory, type Member, memberAddress } from "./directory.ts";
import type { People } from "./people.ts";

/** Who is acting: the console, or an operator by name and key. */
export interface Actor {
  /** How the log and the bans name them: `console`, or `ann (SHA256:...)`. */
  readonly label: string;
}

/** The operator at the server's console. */
export const CONSOLE: Actor = { label: "console" };

/** The actor for a member who is an operator. */
export function memberActor(member: Member): Actor {
  return { label: `${member.name} (${member.person.key?.fingerprint ?? member.person.id})` };
}

/** What moderation needs from the hub it serves. */
export interface ModerationHooks {
  /** Removes a member from the chat (telling its rooms why) and forgets its session. */
  remove(member: Member, reason: string): void;
  /** Lines for the operator's log. */
  log(line: string): void;
}

/** What an action did, in a line for whoever asked, or why it was refused. */
export type ActionResult = Result<string, ErrorFrame>;

/** The operators' powers over a hub's members, bans, names and operators. */
export class Moderation {
  #directory: Directory;
  #bans: Bans;
  #people: People;
  #hooks: ModerationHooks;

  constructor(
    parts: { directory: Directory; bans: Bans; people: People },
    hooks: ModerationHooks,
  ) {
    this.#directory = parts.directory;
    this.#bans = parts.bans;
    this.#people = parts.people;
    this.#hooks = hooks;
  }

  /** Disconnects someone (or removes them while held), telling them and their rooms why. */
  kick(name: string, reason: string, actor: Actor): ActionResult {
    if (!name) return usage("/kick <name> [reason]");
    const member = this.#directory.member(name);
    if (!member) return refuse("no_such_user", `Nobody called ${quoteInput(name)} is here`);
    const why = cleanLine(reason);
    this.#removeMember(member, {
      error: errorFrame(
        "kicked",
        why ? `You were kicked: ${why}` : "You were kicked by the operator",
      ),
      reason: why ? `kicked: ${why}` : "kicked",
    });
    this.#hooks.log(`${actor.label} kicked ${member.name}${why ? `: ${why}` : ""}`);
    return ok(`Kicked ${member.name}`);
  }

  /**
   * Bans a name, an identity (`SHA256:...`) or an address or network, for `minutes` or for good.
   * Banning the name of someone present with a key bans their key too. Everyone present whom the
   * ban covers (held people included) is removed.
   */
  ban(
    text: string,
    options: { minutes?: number | undefined; reason?: string | undefined },
    actor: Actor,
  ): ActionResult {
    if (!text) return usage("/ban <name|SHA256:key|address[/bits]> [minutes]");
    const { minutes } = options;
    if (minutes !== undefined && !(Number.isFinite(minutes) && minutes > 0)) {
      return refuse("bad_frame", "Minutes must be a positive number");
    }
    const parsed = Bans.target(text);
    if (!parsed.ok) return refuse("bad_frame", parsed.error);
    const reason = cleanLine(options.reason ?? "");
    const made: Ban[] = [this.#bans.add(parsed.value, { minutes, by: actor.label, reason })];
    const holder = parsed.value.kind === "name" ? this.#directory.member(text) : undefined;
    const key = holder?.person.key;
    if (key) {
      const identity: BanTarget = {
        kind: "identity",
        key: key.fingerprint,
        target: key.fingerprint,
      };
      made.push(this.#bans.add(identity, { minutes, by: actor.label, reason }));
    }
    let removed = 0;
    for (const member of [...this.#directory.members]) {
      if (!this.#covers(member)) continue;
      this.#removeMember(member, {
        error: errorFrame("banned", "You are banned from this server"),
        reason: "banned",
      });
      removed++;
    }
    const span = minutes === undefined
      ? "for good"
      : `for ${minutes} ${minutes === 1 ? "minute" : "minutes"}`;
    const what = made.map((b) => `${b.target} (${b.kind})`).join(" and ");
    this.#hooks.log(`${actor.label} banned ${what} ${span}${reason ? `: ${reason}` : ""}`);
    return ok(`Banned ${what} ${span}${removed ? `; removed ${removed}` : ""}`);
  }

  /** Lifts a ban. */
  unban(text: string, actor: Actor): ActionResult {
    if (!text) return usage("/unban <name|SHA256:key|address[/bits]>");
    const parsed = Bans.target(text);
    if (!parsed.ok) return refuse("bad_frame", parsed.error);
    if (!this.#bans.remove(parsed.value)) return ok(`${parsed.value.target} was not banned`);
    this.#hooks.log(`${actor.label} lifted the ban of ${parsed.value.target}`);
    return ok(`Unbanned ${parsed.value.target}`);
  }

  /** The bans in force. */
  bans(): Ban[] {
    return this.#bans.list();
  }

  /** Frees a registered name, whoever owns it. */
  release(name: string, actor: Actor): ActionResult {
    if (!name) return usage("/release <name>");
    const checked = checkName(name);
    if (!checked.ok) return refuse("bad_name", checked.error);
    if (!this.#people.release(name)) return ok(`${quoteInput(name)} was not registered`);
    this.#hooks.log(`${actor.label} released the name ${name}`);
    return ok(`Released ${name}: anyone may use it now`);
  }

  /** Makes someone present with a key an operator (only the console may). */
  op(name: string, actor: Actor): ActionResult {
    if (!name) return usage("/op <name>");
    const member = this.#directory.member(name);
    if (!member) return refuse("no_such_user", `Nobody called ${quoteInput(name)} is here`);
    const key = member.person.key;
    if (!key) {
      return refuse(
        "not_allowed",
        `${member.name} has no key: only people whose client has an identity can be operators`,
      );
    }
    this.#people.addOperator(key.fingerprint, member.name, actor.label);
    this.#directory.send(member, {
      type: "notice",
      text: "You are now an operator: /help lists the operator commands",
    });
    this.#hooks.log(`${actor.label} made ${member.name} (${key.fingerprint}) an operator`);
    return ok(`${member.name} (${key.fingerprint}) is now an operator`);
  }

  /** Takes operator powers from someone, by name (present) or fingerprint. */
  deop(text: string, actor: Actor): ActionResult {
    if (!text) return usage("/deop <name|SHA256:key>");
    const member = isFingerprint(text) ? undefined : this.#directory.member(text);
    const fingerprint = isFingerprint(text) ? text : member?.person.key?.fingerprint;
    if (fingerprint === undefined) {
      return refuse("no_such_user", `Nobody called ${quoteInput(text)} is here`);
    }
    if (!this.#people.removeOperator(fingerprint)) {
      return ok(`${quoteInput(text)} is not an operator made on the console`);
    }
    if (member) {
      this.#directory.send(member, { type: "notice", text: "You are no longer an operator" });
    }
    this.#hooks.log(`${actor.label} took operator powers from ${text}`);
    return ok(`${text} is no longer an operator`);
  }

  /** Whether a ban in force covers a member: by name, key or address. */
  #covers(member: Member): boolean {
    const address = memberAddress(member);
    return this.#bans.find({
      name: member.name,
      ...(member.person.key ? { fingerprint: member.person.key.fingerprint } : {}),
      ...(parseIp(address) === undefined ? {} : { address }),
    }) !== undefined;
  }

  /** Tells a live member why, and removes it (live or held) with its session. */
  #removeMember(member: Member, why: { error: ErrorFrame; reason: string }): void {
    if (member.link.state === "live") member.link.peer.end(why.error, why.reason);
    this.#hooks.remove(member, why.reason);
  }
}

function usage(text: string): ActionResult {
  return refuse("bad_frame", `Usage: ${text}`);
}

function refuse(code: ErrorFrame["code"], message: string): ActionResult {
  return { ok: false, error: errorFrame(code, message) };
}
