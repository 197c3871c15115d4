/**
 * The slash commands people type, described once: the terminal client's `/help` and Tab
 * completion, the plain-text face of the server (nc, telnet) and the operator console all come
 * from these tables. Pure: no I/O, so the browser page can use it too.
 *
 * Each program that reads commands carries them out with a {@linkcode CommandHandlers} map keyed
 * by the table's names, so a command added to a table without a handler does not compile.
 *
 * @module
 */

import {
  checkLine,
  type ClientFrame,
  fail,
  HISTORY_PAGE,
  MAX_HISTORY_PAGE,
  ok,
  quoteInput,
  type Result,
  type RoomRole,
} from "../protocol.ts";

// ==== Tables ====

/** What a command needs to know to build its frame. */
export interface CommandContext {
  /** The room plain input goes to. */
  room: string;
  /** Who last wrote privately (their name, and their person id when known), for `/reply`. */
  lastPrivate?: { name: string; id?: string | undefined } | undefined;
  /** The oldest message id seen in the room, for `/history` to page back from. */
  oldest?: number | undefined;
}

/**
 * Builds the frame a command sends from its arguments, or says what is wrong with them
 * (`Usage: /msg <name> <text>`).
 */
export type FrameBuilder = (args: string, context: CommandContext) => Result<ClientFrame>;

/** A command as people type it: `/name arguments`. */
export interface CommandSpec {
  /** Other names for it. */
  readonly aliases: readonly string[];
  /** Its arguments as the help shows them: `<name> <text>`, `[#room]`. */
  readonly args: string;
  /** One line of help. */
  readonly help: string;
  /**
   * Builds the frame the command sends. Absent for commands that the program itself carries out
   * (`/help`, `/ignore`...).
   */
  readonly frame?: FrameBuilder;
}

/** A table of commands by name (without the slash), in the order help lists them. */
export type CommandTable<N extends string> = { readonly [K in N]: CommandSpec };

/**
 * How one program carries out every command of a table: a handler per name, given the
 * arguments and the program's own context, returning what the program makes of it.
 */
export type CommandHandlers<N extends string, C, R> = {
  readonly [K in N]: (args: string, context: C) => R;
};

/** Splits off the first word: `"bob hi there"` → `["bob", "hi there"]`. */
export function firstWord(text: string): [string, string] {
  const match = /^\s*(\S*)\s*([\s\S]*)$/.exec(text)!;
  return [match[1]!, match[2]!];
}

function usage(spec: string): Result<ClientFrame> {
  return fail(`Usage: ${spec}`);
}

function joinCommand(args: string): Result<ClientFrame> {
  const [room, rest] = firstWord(args);
  return room && !rest.trim() ? ok({ type: "join", room }) : usage("/join <#room> (one at a time)");
}

function leaveCommand(args: string, context: CommandContext): Result<ClientFrame> {
  const [room] = firstWord(args);
  return ok({ type: "leave", room: room || context.room });
}

/** `/topic [#room] [text]`: a room named first is the one meant, else the current one. */
function topicCommand(args: string, context: CommandContext): Result<ClientFrame> {
  const [first, rest] = firstWord(args);
  const [room, text] = first.startsWith("#") ? [first, rest] : [context.room, args];
  if (text.trim() === "") return ok({ type: "topic", room });
  const topic = checkLine(text, "Topic");
  return topic.ok ? ok({ type: "topic", room, topic: topic.value }) : topic;
}

/** `/who` is the current room, `/who #room` another, `/who *` everyone on the server. */
function whoCommand(args: string, context: CommandContext): Result<ClientFrame> {
  const [room, rest] = firstWord(args);
  if (rest.trim()) return usage("/who [#room|*]");
  if (room === "*") return ok({ type: "who" });
  return ok({ type: "who", room: room || context.room });
}

function whoisCommand(args: string): Result<ClientFrame> {
  const [name] = firstWord(args);
  return name ? ok({ type: "whois", name }) : usage("/whois <name>");
}

function msgCommand(args: string): Result<ClientFrame> {
  const [to, text] = firstWord(args);
  return to && text.trim() ? ok({ type: "msg", to, text }) : usage("/msg <name> <text>");
}

function replyCommand(args: string, context: CommandContext): Result<ClientFrame> {
  const last = context.lastPrivate;
  if (!last) return fail("Nobody has written to you privately yet");
  if (!args.trim()) return usage("/reply <text>");
  // By person id: the answer reaches the person who wrote, whatever name they use now.
  return ok({ type: "msg", to: last.name, ...(last.id ? { toId: last.id } : {}), text: args });
}

function meCommand(args: string, context: CommandContext): Result<ClientFrame> {
  return args.trim()
    ? ok({ type: "say", room: context.room, text: args, action: true })
    : usage("/me <action>");
}

function nickCommand(args: string): Result<ClientFrame> {
  const [name, rest] = firstWord(args);
  return name && !rest ? ok({ type: "nick", name }) : usage("/nick <newname>");
}

function awayCommand(args: string): Result<ClientFrame> {
  const message = checkLine(args, "Away message");
  return message.ok ? ok({ type: "away", message: message.value || "away" }) : message;
}

function historyCommand(args: string, context: CommandContext): Result<ClientFrame> {
  const [first, rest] = firstWord(args);
  // `/history 20` pages the room; `/history bob 20` the private conversation with bob.
  const person = first !== "" && !/^[-+]?[\d.]+$/.test(first) ? first : undefined;
  const text = (person === undefined ? args : rest).trim();
  const limit = text === "" ? HISTORY_PAGE : Number(text);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_HISTORY_PAGE) {
    return usage(`/history [name] [count]: count is 1-${MAX_HISTORY_PAGE}`);
  }
  if (person !== undefined) return ok({ type: "history", with: person, limit });
  return ok({
    type: "history",
    room: context.room,
    limit,
    ...(context.oldest === undefined ? {} : { before: context.oldest }),
  });
}

function kickCommand(args: string): Result<ClientFrame> {
  const [name, reason] = firstWord(args);
  if (!name) return usage("/kick <name> [reason]");
  return ok({ type: "kick", name, ...(reason.trim() ? { reason: reason.trim() } : {}) });
}

/** `/ban <target> [minutes] [reason]`, as on the console. */
function banCommand(args: string): Result<ClientFrame> {
  const [target, rest] = firstWord(args);
  if (!target) return usage("/ban <name|SHA256:key|address[/bits]> [minutes] [reason]");
  const [first, afterFirst] = firstWord(rest);
  const minutes = /^\d+(\.\d+)?$/.test(first) ? Number(first) : undefined;
  const reason = (minutes === undefined ? rest : afterFirst).trim();
  return ok({
    type: "ban",
    target,
    ...(minutes === undefined ? {} : { minutes }),
    ...(reason ? { reason } : {}),
  });
}

function unbanCommand(args: string): Result<ClientFrame> {
  const [target] = firstWord(args);
  return target ? ok({ type: "unban", target }) : usage("/unban <name|SHA256:key|address[/bits]>");
}

function motdCommand(args: string): Result<ClientFrame> {
  const text = args.trim();
  return ok(text ? { type: "motd", text } : { type: "motd" });
}

function announceCommand(args: string): Result<ClientFrame> {
  return args.trim() ? ok({ type: "announce", text: args.trim() }) : usage("/announce <text>");
}

/**
 * `/room [#room] [setting [name]]`: without a setting, who runs the room; `lock`/`unlock` the
 * topic, `invite-only`/`open`, `mod`/`unmod <name>`, `give <name>` to hand it over.
 */
function roomCommand(args: string, context: CommandContext): Result<ClientFrame> {
  const [first, afterFirst] = firstWord(args);
  const [room, rest] = first.startsWith("#") ? [first, afterFirst] : [context.room, args];
  const [setting, afterSetting] = firstWord(rest);
  const [name, extra] = firstWord(afterSetting);
  const spec = "/room [#room] [lock|unlock|invite-only|open|mod <name>|unmod <name>|give <name>]";
  const settings: Record<string, { topicLocked?: boolean; inviteOnly?: boolean }> = {
    lock: { topicLocked: true },
    unlock: { topicLocked: false },
    "invite-only": { inviteOnly: true },
    open: { inviteOnly: false },
  };
  const roles: Record<string, RoomRole> = { mod: "moderator", unmod: "member", give: "owner" };
  if (setting === "") return ok({ type: "room_info", room });
  const change = settings[setting.toLowerCase()];
  if (change && !name) return ok({ type: "room_set", room, ...change });
  const role = roles[setting.toLowerCase()];
  if (role && name && !extra.trim()) return ok({ type: "room_role", room, name, role });
  return usage(spec);
}

/** `/invite <name> [#room]`. */
function inviteCommand(args: string, context: CommandContext): Result<ClientFrame> {
  const [name, rest] = firstWord(args);
  const [room, extra] = firstWord(rest);
  if (!name || extra.trim() || (room && !room.startsWith("#"))) {
    return usage("/invite <name> [#room]");
  }
  return ok({ type: "invite", room: room || context.room, name });
}

/** `/remove <name> [reason]`, from the current room. */
function removeCommand(args: string, context: CommandContext): Result<ClientFrame> {
  const [name, reason] = firstWord(args);
  if (!name) return usage("/remove <name> [reason]");
  return ok({
    type: "remove",
    room: context.room,
    name,
    ...(reason.trim() ? { reason: reason.trim() } : {}),
  });
}

function quitCommand(args: string): Result<ClientFrame> {
  const message = args.trim();
  return ok(message ? { type: "bye", message } : { type: "bye" });
}

/**
 * Every command a chat user can type, described once: the client's `/help` and Tab completion
 * and the server's handling of plain-text users all come from this table.
 */
export const CHAT_COMMANDS = {
  help: { aliases: ["?"], args: "[command]", help: "List the commands, or explain one" },
  join: {
    aliases: ["j"],
    args: "<#room>",
    help: "Join a room (creating it) and make it current",
    frame: joinCommand,
  },
  leave: { aliases: ["part"], args: "[#room]", help: "Leave a room", frame: leaveCommand },
  switch: { aliases: ["sw"], args: "<#room>", help: "Make another of your rooms current" },
  rooms: {
    aliases: ["list"],
    args: "",
    help: "List the rooms, their sizes and topics",
    frame: () => ok({ type: "rooms" }),
  },
  topic: {
    aliases: [],
    args: "[#room] [text]",
    help: "Show or set the topic of the current room (or of #room)",
    frame: topicCommand,
  },
  history: {
    aliases: ["h"],
    args: "[name] [count]",
    help: "Show earlier messages of the current room (or with someone), further back each time",
    frame: historyCommand,
  },
  who: {
    aliases: ["names"],
    args: "[#room|*]",
    help: "List the people in this room (or in #room; * for everyone on the server)",
    frame: whoCommand,
  },
  whois: {
    aliases: [],
    args: "<name>",
    help: "Show someone's rooms, idle time, away message and client",
    frame: whoisCommand,
  },
  msg: {
    aliases: ["m", "tell"],
    args: "<name> <text>",
    help: "Send a private message",
    frame: msgCommand,
  },
  reply: {
    aliases: ["r"],
    args: "<text>",
    help: "Answer the last person who wrote to you privately",
    frame: replyCommand,
  },
  me: { aliases: [], args: "<action>", help: "Act something out: /me waves", frame: meCommand },
  nick: { aliases: ["name"], args: "<newname>", help: "Change your name", frame: nickCommand },
  away: {
    aliases: [],
    args: "[message]",
    help: "Mark yourself away; private messages get the message",
    frame: awayCommand,
  },
  back: {
    aliases: [],
    args: "",
    help: "You are no longer away",
    frame: () => ok({ type: "back" }),
  },
  ignore: {
    aliases: [],
    args: "[name]",
    help: "Hide someone's messages from you, whatever name they take; alone, list who",
  },
  unignore: { aliases: [], args: "<name>", help: "Show someone's messages again" },
  register: {
    aliases: [],
    args: "",
    help: "Register your name to your key: nobody else can use it, in any form",
    frame: () => ok({ type: "register" }),
  },
  unregister: {
    aliases: [],
    args: "",
    help: "Free your registered name",
    frame: () => ok({ type: "unregister" }),
  },
  room: {
    aliases: [],
    args: "[#room] [lock|unlock|invite-only|open|mod <name>|unmod <name>|give <name>]",
    help: "Who runs a room; its owner: lock the topic, invite only, moderators, hand it over",
    frame: roomCommand,
  },
  invite: {
    aliases: [],
    args: "<name> [#room]",
    help: "Invite someone to a room (owners and moderators)",
    frame: inviteCommand,
  },
  remove: {
    aliases: [],
    args: "<name> [reason]",
    help: "Take someone out of this room (owners and moderators)",
    frame: removeCommand,
  },
  motd: {
    aliases: [],
    args: "[text]",
    help: "Show the message of the day (operators: set it)",
    frame: motdCommand,
  },
  kick: {
    aliases: [],
    args: "<name> [reason]",
    help: "Operators: disconnect someone",
    frame: kickCommand,
  },
  ban: {
    aliases: [],
    args: "<target> [minutes] [reason]",
    help: "Operators: keep a name, a key (SHA256:...) or an address/network out",
    frame: banCommand,
  },
  unban: { aliases: [], args: "<target>", help: "Operators: lift a ban", frame: unbanCommand },
  bans: {
    aliases: [],
    args: "",
    help: "Operators: list the bans",
    frame: () => ok({ type: "bans" }),
  },
  announce: {
    aliases: [],
    args: "<text>",
    help: "Operators: say something to everyone on the server",
    frame: announceCommand,
  },
  bell: { aliases: [], args: "[on|off]", help: "Ring on private messages and mentions" },
  connect: {
    aliases: ["server"],
    args: "[host[:port] | invite]",
    help: "Show this server's address and key, or move to another server",
  },
  quit: {
    aliases: ["exit", "bye"],
    args: "[message]",
    help: "Leave the chat, saying goodbye",
    frame: quitCommand,
  },
} as const satisfies CommandTable<string>;

/** The name of a chat command, as in {@linkcode CHAT_COMMANDS}. */
export type ChatCommand = keyof typeof CHAT_COMMANDS;

/** The chat commands that come down to their frame, as {@linkcode CHAT_COMMANDS} builds it. */
export type FrameCommand = {
  [K in ChatCommand]: (typeof CHAT_COMMANDS)[K] extends { frame: FrameBuilder } ? K : never;
}[ChatCommand];

/**
 * A handler for every {@linkcode FrameCommand}, made by `handler`: the part of a program's
 * handler map where each command just sends its frame. The program then adds (or overrides) the
 * commands it carries out itself.
 */
export function frameCommandHandlers<C, R>(
  handler: (build: FrameBuilder) => (args: string, context: C) => R,
): CommandHandlers<FrameCommand, C, R> {
  const entries = commandNames(CHAT_COMMANDS).flatMap((name) => {
    const build = frameBuilder(CHAT_COMMANDS, name);
    return build === undefined ? [] : [[name, handler(build)] as const];
  });
  return Object.fromEntries(entries) as CommandHandlers<
    FrameCommand,
    C,
    R
  >;
}

/** The commands of the server's operator console; the server carries them all out itself. */
export const OPERATOR_COMMANDS = {
  help: { aliases: ["?"], args: "[command]", help: "List the commands, or explain one" },
  who: { aliases: [], args: "", help: "Everyone, with address, app, OS and host" },
  kick: { aliases: [], args: "<name> [reason]", help: "Disconnect someone (held people too)" },
  ban: {
    aliases: [],
    args: "<target> [minutes] [reason]",
    help: "Keep a name, a key (SHA256:...) or an address/network out (for good, or minutes)",
  },
  unban: { aliases: [], args: "<target>", help: "Lift a ban" },
  bans: { aliases: [], args: "", help: "List the bans" },
  op: { aliases: [], args: "<name>", help: "Make someone with a key an operator (kept)" },
  deop: { aliases: [], args: "<name|SHA256:key>", help: "Take operator powers away" },
  ops: { aliases: [], args: "", help: "List the operators" },
  release: { aliases: [], args: "<name>", help: "Free a registered name" },
  announce: { aliases: [], args: "<text>", help: "Say something to everyone, as the server" },
  invite: {
    aliases: [],
    args: "[#room]",
    help: "Print a one-time invite: it admits one person, once, without the password",
  },
  say: { aliases: [], args: "<#room> <text>", help: "Speak in one room as the server" },
  motd: { aliases: [], args: "[text]", help: "Show or set the message of the day" },
  shutdown: { aliases: [], args: "[reason]", help: "Tell everyone, then stop the server" },
} as const satisfies CommandTable<string>;

/** The name of an operator command, as in {@linkcode OPERATOR_COMMANDS}. */
export type OperatorCommand = keyof typeof OPERATOR_COMMANDS;

// ==== Reading commands ====

/**
 * Splits a typed line into a command name and its arguments, or returns `undefined` for
 * ordinary text. `//text` is text that starts with a slash.
 */
export function parseCommand(line: string): { name: string; args: string } | undefined {
  if (!line.startsWith("/") || line.startsWith("//")) return undefined;
  const [name, args] = firstWord(line.slice(1));
  return { name: name.toLowerCase(), args };
}

/** The names of a table, in its order. */
export function commandNames<N extends string>(table: CommandTable<N>): N[] {
  return Object.keys(table) as N[];
}

/** Finds a command by name or alias (in any case); returns its name in the table. */
export function findCommand<N extends string>(
  table: CommandTable<N>,
  typed: string,
): N | undefined {
  const wanted = typed.toLowerCase();
  return commandNames(table).find((name) =>
    name === wanted || table[name].aliases.includes(wanted)
  );
}

/** A command's frame builder, or `undefined` for commands the program carries out itself. */
export function frameBuilder<N extends string>(
  table: CommandTable<N>,
  name: N,
): FrameBuilder | undefined {
  const spec: CommandSpec = table[name];
  return spec.frame;
}

/** Every way to type a command of a table, slash included: `/join`, `/j`... for completion. */
export function commandWords<N extends string>(table: CommandTable<N>): string[] {
  return commandNames(table).flatMap((name) => [name, ...table[name].aliases]).map((w) => `/${w}`);
}

/**
 * The help for one command, or for all of them (or those `names` lists): generated from the
 * table, so it never lies.
 */
export function commandHelp<N extends string>(
  table: CommandTable<N>,
  options: { name?: string; names?: readonly N[] } = {},
): string[] {
  const format = (name: N, width: number) => {
    const spec = table[name];
    return `/${`${name} ${spec.args}`.trim().padEnd(width)}  ${spec.help}` +
      (spec.aliases.length ? ` (also ${spec.aliases.map((a) => `/${a}`).join(", ")})` : "");
  };
  const names = options.names ?? commandNames(table);
  if (options.name !== undefined) {
    const found = findCommand(table, options.name.replace(/^\//, ""));
    return found !== undefined && names.includes(found)
      ? [format(found, 0)]
      : [`Unknown command /${quoteInput(options.name)}: type /help for the list`];
  }
  const width = Math.max(...names.map((name) => `${name} ${table[name].args}`.trim().length));
  return names.map((name) => `  ${format(name, width)}`);
}

/** The one line an unknown command gets: nothing was sent. */
export function unknownCommand(name: string): string {
  return `Unknown command /${quoteInput(name)}: type /help for the list (nothing was sent)`;
}
