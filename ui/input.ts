/**
 * What the terminal chat remembers, and what a person's typing means: plain text becomes a
 * message for the current room (a pasted block one multi-line message), a slash command is
 * carried out here or sent as its frame. No terminal I/O happens here, so the screen loop
 * (`interactive.ts`) and the tests share it.
 *
 * @module
 */

import { type ChatClient, type ChatEvent } from "../net/chat_client.ts";
import { formatAddress } from "../net/tcp.ts";
import {
  checkName,
  checkRoom,
  checkText,
  FATAL_ERROR_CODES,
  LOBBY,
  MAX_TEXT_LENGTH,
  nameKey,
  roomKey,
  type ServerAddress,
} from "../protocol.ts";
import {
  CHAT_COMMANDS,
  type ChatCommand,
  type CommandHandlers,
  commandHelp,
  findCommand,
  firstWord,
  type FrameBuilder,
  frameCommandHandlers,
  parseCommand,
  unknownCommand,
} from "./commands.ts";
import { mentions, type RenderOptions } from "./render.ts";
import { type ConnectionFacts, parseTarget, type ServerTarget } from "./target.ts";

// ==== State ====

/** What the terminal chat remembers between lines (the chat on screen, not the server's session). */
export interface TerminalState {
  client: ChatClient;
  view: RenderOptions;
  /** Where plain input goes. */
  room: string;
  /** The rooms we are in, as the server names them. */
  rooms: string[];
  /** Rooms we have heard of, for Tab completion. */
  knownRooms: Set<string>;
  /** People we have seen, for Tab completion. */
  users: Set<string>;
  /** Everyone seen, by person id, with the name they use now (renames followed). */
  people: Map<string, string>;
  /** Who last wrote to us privately: their name then, and their person id. */
  lastPrivate: { name: string; id?: string } | undefined;
  /** People whose messages are hidden, by person id (with their name, to list them). */
  ignored: Map<string, string>;
  bell: boolean;
  /** Per room key, the oldest message id shown as history: where `/history` goes on from. */
  oldest: Map<string, number>;
  /** Whether /quit was asked once while messages waited (a second one leaves). */
  quitting: boolean;
  /** Rooms asked to join (by room key): the answer makes the room current. */
  joining: Set<string>;
  /** Set by /connect: the client to carry on with once this one has closed, and where it is. */
  next: { client: ChatClient; where: string; facts: ConnectionFacts } | undefined;
  /** How this connection is made (TLS and the server's key, or plain): for `/server`. */
  facts: ConnectionFacts;
}

/**
 * A fresh state for a client; `previous` carries the ignore list and bell setting over (after
 * `/connect`).
 */
export function newTerminalState(
  client: ChatClient,
  options: { color: boolean; previous?: TerminalState; facts?: ConnectionFacts },
): TerminalState {
  const { color, previous } = options;
  return {
    client,
    view: { me: client.name, color, time: true, skipOwn: false, room: LOBBY },
    room: client.welcome.room ?? LOBBY,
    rooms: [client.welcome.room ?? LOBBY],
    knownRooms: new Set([LOBBY]),
    users: new Set(client.welcome.users),
    people: knownPeople(client.welcome),
    lastPrivate: undefined,
    ignored: previous?.ignored ?? new Map(),
    bell: previous?.bell ?? true,
    oldest: new Map(),
    joining: new Set(),
    quitting: false,
    next: undefined,
    facts: options.facts ?? { security: "plain", fingerprint: undefined },
  };
}

/** The people a list frame names, by person id. */
function knownPeople(list: { users: string[]; ids?: string[] }, into = new Map<string, string>()) {
  list.ids?.forEach((id, i) => {
    const name = list.users[i];
    if (name !== undefined) into.set(id, name);
  });
  return into;
}

/** Whether a message's sender is ignored: by person id, or (with no id) by name. */
function isIgnored(state: TerminalState, from: string, fromId: string | undefined): boolean {
  if (fromId !== undefined) return state.ignored.has(fromId);
  return [...state.ignored.values()].some((name) => nameKey(name) === nameKey(from));
}

/** The person id of someone seen under this name (in any case or look-alike form). */
function personNamed(state: TerminalState, name: string): string | undefined {
  const key = nameKey(name);
  for (const [id, current] of state.people) if (nameKey(current) === key) return id;
  return undefined;
}

/**
 * Updates the state from a frame or event and says whether to show it (`false` for ignored
 * people and for fatal errors, which are told once as the reason for disconnecting), and whether
 * to ring.
 */
export function applyEvent(state: TerminalState, event: ChatEvent): boolean | "bell" {
  const me = state.client.name;
  switch (event.type) {
    case "reconnected":
      state.view.me = event.welcome.name;
      return true;
    case "room": {
      if (!state.rooms.includes(event.room)) state.rooms.push(event.room);
      // Only a room one asked to join becomes the current one: the rooms a resume gives back
      // (or a reconnection joins again) leave the current room as it was.
      const key = roomKey(event.room);
      const current = state.rooms.some((r) => roomKey(r) === roomKey(state.room));
      if (state.joining.delete(key) || !current) {
        state.room = event.room;
        state.view.room = event.room;
      }
      for (const user of event.users) state.users.add(user);
      knownPeople(event, state.people);
      return true;
    }
    case "left":
      if (event.name === me && event.room !== undefined) {
        state.rooms = state.rooms.filter((r) => r !== event.room);
        if (state.room === event.room) state.room = state.rooms.at(-1) ?? LOBBY;
        state.view.room = state.room;
      }
      return true;
    case "joined":
      state.users.add(event.name);
      if (event.id !== undefined) state.people.set(event.id, event.name);
      return true;
    case "users":
      for (const user of event.users) state.users.add(user);
      knownPeople(event, state.people);
      return true;
    case "room_list":
      for (const info of event.rooms) state.knownRooms.add(info.room);
      return true;
    case "renamed":
      state.users.delete(event.from);
      state.users.add(event.to);
      state.view.me = me;
      if (event.id !== undefined) {
        // Ignores and /reply follow the person, not the name.
        state.people.set(event.id, event.to);
        if (state.ignored.has(event.id)) state.ignored.set(event.id, event.to);
        if (state.lastPrivate?.id === event.id) state.lastPrivate.name = event.to;
      }
      return true;
    case "message": {
      if (event.history) {
        const key = roomKey(event.room ?? LOBBY);
        state.oldest.set(key, Math.min(state.oldest.get(key) ?? Infinity, event.id));
      }
      if (event.fromId !== undefined) state.people.set(event.fromId, event.from);
      if (isIgnored(state, event.from, event.fromId)) return false;
      const rings = !event.history && event.from !== me && mentions(event.text, me);
      return rings && state.bell ? "bell" : true;
    }
    case "private":
      if (event.from === me) return true;
      if (event.fromId !== undefined) state.people.set(event.fromId, event.from);
      if (isIgnored(state, event.from, event.fromId)) return false;
      if (event.history) return true;
      state.lastPrivate = {
        name: event.from,
        ...(event.fromId === undefined ? {} : { id: event.fromId }),
      };
      return state.bell ? "bell" : true;
    case "error":
      return !FATAL_ERROR_CODES.has(event.code);
    default:
      return true;
  }
}

// ==== Input ====

/**
 * What a typed line led to: lines to show, `sent` (the server's copy will show it), or a request
 * to quit or to move to another server.
 */
export type InputResult =
  | string[]
  | "sent"
  | { quit: string | undefined }
  | { connect: ServerTarget };

/**
 * Works out what a typed line (or pasted block) means, doing what can be done at once. A typed
 * line starting with `/` is a command (`//` for text that starts with `/`); pasted text is always
 * text, sent as it is. Text longer than a message, a single line too, is split as a paste is.
 */
export function handleInput(
  state: TerminalState,
  line: string,
  options: { pasted?: boolean } = {},
): InputResult {
  if (line.trim() === "") return [];
  const parsed = options.pasted ? undefined : parseCommand(line);
  if (parsed === undefined) {
    const text = !options.pasted && line.startsWith("//") ? line.slice(1) : line;
    const messages = splitMessage(text);
    for (const message of messages) {
      const checked = checkText(message);
      if (!checked.ok) return [checked.error];
      // The server's copy of the message shows it; a refusal arrives as an error frame.
      state.client.say(checked.value, { room: state.room }).catch(() => {});
    }
    return whenOffline(state.client, messages.length);
  }
  const name = findCommand(CHAT_COMMANDS, parsed.name);
  if (name === undefined) return [unknownCommand(parsed.name)];
  return INPUT_COMMANDS[name](parsed.args, state);
}

type InputHandler = (args: string, state: TerminalState) => InputResult;

/** Sends the frame a command builds; messages are tracked until acknowledged. */
function sendFrame(build: FrameBuilder): InputHandler {
  return (args, state) => {
    const built = build(args, {
      room: state.room,
      lastPrivate: state.lastPrivate,
      oldest: state.oldest.get(roomKey(state.room)),
    });
    if (!built.ok) return [built.error];
    const frame = built.value;
    const { client } = state;
    if (frame.type === "join") {
      const room = checkRoom(frame.room);
      if (room.ok) state.joining.add(roomKey(room.value));
    }
    if (frame.type === "say") {
      client.say(frame.text, { room: state.room, action: frame.action ?? false }).catch(() => {});
      return whenOffline(client, 1);
    }
    if (frame.type === "msg") {
      client.tell(frame.to, frame.text).catch(() => {});
      return whenOffline(client, 1);
    }
    return client.send(frame) ? [] : ["Not connected: try again once reconnected"];
  };
}

/** How the terminal client carries out each chat command. */
const INPUT_COMMANDS: CommandHandlers<ChatCommand, TerminalState, InputResult> = {
  help: (args) => {
    const [name] = firstWord(args);
    return name ? commandHelp(CHAT_COMMANDS, { name }) : [
      "Type a message and press Enter to send it to the current room. Commands:",
      ...commandHelp(CHAT_COMMANDS),
      "  //text               Send a message that starts with /",
    ];
  },
  ...frameCommandHandlers(sendFrame),
  switch: (args, state) => switchRoom(state, firstWord(args)[0]),
  ignore: (args, state) => ignore(state, true, firstWord(args)[0]),
  unignore: (args, state) => ignore(state, false, firstWord(args)[0]),
  bell: (args, state) => {
    const [setting] = firstWord(args);
    if (setting === "") {
      return [`The bell is ${state.bell ? "on" : "off"} (/bell ${state.bell ? "off" : "on"})`];
    }
    if (setting !== "on" && setting !== "off") return ["Usage: /bell [on|off]"];
    state.bell = setting === "on";
    return [`Bell ${state.bell ? "on" : "off"} for private messages and mentions`];
  },
  connect: (args, state) => {
    const [where] = firstWord(args);
    if (where === "") return describeServer(state);
    const target = parseTarget(where, { plain: state.facts.security === "plain" });
    if (!target.ok) return [target.error];
    const here = state.client.address;
    if (sameServer(here, target.value.address)) {
      const named = target.value.fingerprint;
      const actual = state.facts.fingerprint;
      if (named !== undefined && actual !== undefined && named !== actual) {
        return [
          `You are already on ${formatAddress(here)}, but its key is ${actual}, not the ` +
          `${named} this invite names: the invite is for another server, or this one changed ` +
          "its key (ask its operator)",
        ];
      }
      return [`You are already on ${formatAddress(here)}`];
    }
    return { connect: target.value };
  },
  quit: (args, state) => {
    // Messages typed while offline would be lost: say so once, and leave on a second /quit.
    const waiting = state.client.connected ? 0 : state.client.unsent;
    if (waiting > 0 && !state.quitting) {
      state.quitting = true;
      return [
        `${waiting === 1 ? "1 message waits" : `${waiting} messages wait`} to be sent once ` +
        "reconnected: /quit again to leave without sending them",
      ];
    }
    return { quit: args.trim() || undefined };
  },
};

/**
 * `/server` (or `/connect` alone): where we are connected, whether the connection is encrypted,
 * and the server's key fingerprint to compare with the one its operator sees.
 */
function describeServer(state: TerminalState): string[] {
  const where = formatAddress(state.client.address);
  const { security, fingerprint } = state.facts;
  if (security === "plain") {
    return [
      `Connected to ${where} over plain TCP: not encrypted, anyone on the way can read it`,
      "To move to another server: /connect <host[:port]> or an invite",
    ];
  }
  return [
    `Connected to ${where} over TLS, encrypted; the server's key is pinned:`,
    `  ${fingerprint ?? "(not known yet)"}`,
    "Compare it with the key its operator sees (the server's start-up banner or console)",
    "To move to another server: /connect <host[:port]> or an invite",
  ];
}

/** Whether two addresses name the same server (the same host, in any case, and port). */
function sameServer(a: ServerAddress, b: ServerAddress): boolean {
  const host = (name: string) => {
    const lower = name.toLowerCase();
    return lower === "127.0.0.1" || lower === "::1" ? "localhost" : lower;
  };
  return host(a.hostname) === host(b.hostname) && a.port === b.port;
}

/** `sent` while connected; offline, a word that the message is kept for later. */
function whenOffline(client: ChatClient, count: number): InputResult {
  if (client.connected) return "sent";
  return [
    `Offline: ${
      count === 1 ? "the message is" : `${count} messages are`
    } kept and will be sent once reconnected`,
  ];
}

function switchRoom(state: TerminalState, room: string): string[] {
  const checked = checkRoom(room);
  if (!room || !checked.ok) return ["Usage: /switch <#room>"];
  const joined = state.rooms.find((r) => roomKey(r) === roomKey(checked.value));
  if (joined === undefined) return [`You are not in ${checked.value}: /join it first`];
  state.room = joined;
  state.view.room = joined;
  return [`Now talking in ${joined}`];
}

/** `/ignore [name]` and `/unignore <name>`: by person, so a rename does not undo it. */
function ignore(state: TerminalState, on: boolean, name: string): string[] {
  if (on && name === "") {
    const names = [...state.ignored.values()];
    return names.length === 0
      ? ["You are ignoring nobody"]
      : [`You are ignoring ${names.length}: ${names.join(", ")}`];
  }
  const checked = checkName(name);
  if (!checked.ok) return [`Usage: /${on ? "ignore" : "unignore"} <name>`];
  if (nameKey(checked.value) === nameKey(state.client.name)) {
    return [on ? "You cannot ignore yourself" : "You are not ignoring yourself"];
  }
  if (!on) {
    const id = [...state.ignored].find(([, n]) => nameKey(n) === nameKey(checked.value))?.[0];
    if (id === undefined) return [`You are not ignoring ${checked.value}`];
    state.ignored.delete(id);
    return [`No longer ignoring ${checked.value}`];
  }
  const id = personNamed(state, checked.value);
  if (id === undefined) {
    return [
      `Nobody called ${checked.value} has been seen here: nothing to ignore (/who lists people)`,
    ];
  }
  state.ignored.set(id, state.people.get(id) ?? checked.value);
  return [
    `Ignoring ${checked.value}: their messages are hidden from you, whatever name they take ` +
    "(/unignore to undo)",
  ];
}

/**
 * Splits a pasted block into messages: lines stay together while they fit in
 * {@linkcode MAX_TEXT_LENGTH} characters, and a longer line is cut.
 */
export function splitMessage(text: string): string[] {
  const messages: string[] = [];
  let current: string[] = [];
  for (const line of text.split("\n")) {
    for (const piece of chunk(Array.from(line), MAX_TEXT_LENGTH)) {
      const joined = [...current, piece].join("\n");
      if (Array.from(joined).length > MAX_TEXT_LENGTH) {
        messages.push(current.join("\n"));
        current = [piece];
      } else {
        current.push(piece);
      }
    }
  }
  if (current.join("").trim() !== "") messages.push(current.join("\n"));
  return messages.filter((m) => m.trim() !== "");
}

function chunk(chars: string[], size: number): string[] {
  if (chars.length === 0) return [""];
  const pieces: string[] = [];
  for (let i = 0; i < chars.length; i += size) pieces.push(chars.slice(i, i + size).join(""));
  return pieces;
}
