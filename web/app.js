// protocol.ts
var VERSION = "0.1.0";
var MAX_FRAME_BYTES = 64 * 1024;
var MAX_NAME_LENGTH = 24;
var MAX_TEXT_LENGTH = 2e3;
var MAX_ROOM_LENGTH = 32;
var MAX_TOPIC_LENGTH = 200;
var LOBBY = "#lobby";
var HEARTBEAT_MS = 3e4;
var MAX_HISTORY_PAGE = 200;
var HISTORY_PAGE = 50;
var RESERVED_NAMES = /* @__PURE__ */ new Set([
  "server",
  "system",
  "admin",
  "operator",
  "you"
]);
var MAX_NAME_INPUT = MAX_NAME_LENGTH * 8;
var MAX_ROOM_INPUT = (MAX_ROOM_LENGTH + 1) * 8;
var INVISIBLE_REGEXP = /\p{Default_Ignorable_Code_Point}/u;
var SCRIPTS = [
  "Latin",
  "Cyrillic",
  "Greek",
  "Armenian",
  "Georgian",
  "Hebrew",
  "Arabic",
  "Syriac",
  "Thaana",
  "Devanagari",
  "Bengali",
  "Gurmukhi",
  "Gujarati",
  "Oriya",
  "Tamil",
  "Telugu",
  "Kannada",
  "Malayalam",
  "Sinhala",
  "Thai",
  "Lao",
  "Tibetan",
  "Myanmar",
  "Khmer",
  "Mongolian",
  "Ethiopic",
  "Cherokee",
  "Hangul",
  "Hiragana",
  "Katakana",
  "Han",
  "Bopomofo"
];
var SCRIPT_REGEXPS = SCRIPTS.map((name) => [
  name,
  new RegExp(`^\\p{Script=${name}}$`, "u")
]);
var SCRIPT_MIXES = [
  /* @__PURE__ */ new Set([
    "Latin",
    "Han",
    "Hiragana",
    "Katakana"
  ]),
  /* @__PURE__ */ new Set([
    "Latin",
    "Han",
    "Hangul"
  ]),
  /* @__PURE__ */ new Set([
    "Latin",
    "Han",
    "Bopomofo"
  ])
];
var NAME_REGEXP = /^[\p{L}\p{N}_-]{1,24}$/u;
var ROOM_REGEXP = /^#[\p{L}\p{N}_-]{1,32}$/u;
var VISIBLE_REGEXP = /[^\s\p{Default_Ignorable_Code_Point}\p{M}\p{Cf}\u2800]/u;
var CONTROL_REGEXP = /(?![\t\n])\p{Cc}/gu;
var TERMINAL_UNSAFE_REGEXP = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/gu;
function ok(value) {
  return {
    ok: true,
    value
  };
}
function fail(error) {
  return {
    ok: false,
    error
  };
}
var ERROR_CODES = {
  bad_frame: "The line is not valid JSON or not a well-formed frame",
  too_large: "A line exceeded the frame limit (fatal)",
  bad_name: "The name breaks the name rules",
  name_taken: "Somebody else is using that name",
  hello_first: "The first frame must be a hello",
  bad_text: "The message text is empty, too long, or shows nothing (only invisible characters)",
  bad_room: "The room name breaks the room rules, or there is no such room",
  not_in_room: "The command needs a room you are in",
  too_many_rooms: "You are in as many rooms as one person may be: leave one first",
  no_such_user: "Nobody by that name is here",
  not_allowed: "The server does not allow that",
  timeout: "No hello, or no answer to a ping, arrived in time (fatal)",
  too_many_errors: "Too many bad frames (five at once, then one per 5 s): fatal",
  too_slow: "The client stopped reading and its outgoing queue filled up (fatal)",
  shutting_down: "The server is shutting down (fatal)",
  kicked: "The server's operator removed you (fatal)",
  banned: "The server's operator has banned you or your address (fatal)",
  rate_limited: "Too many frames too fast: the frame was dropped; slow down",
  flooding: "Kept sending too fast after being told to slow down (fatal)",
  server_full: "The server, or its limit for your address, has no room for another connection (fatal)",
  replaced: "The same session connected again from elsewhere (fatal)",
  bad_signature: "The hello's key could not be verified: a bad or late proof (fatal)",
  storage_failed: "The server could not store the message: it was not sent; try again",
  password_required: "The server is private: give its password (or use an invite)",
  not_admitted: "The server is private and admits only the people it lists (fatal)"
};
var FATAL_ERROR_CODES = /* @__PURE__ */ new Set([
  "too_large",
  "timeout",
  "too_many_errors",
  "too_slow",
  "shutting_down",
  "kicked",
  "banned",
  "flooding",
  "server_full",
  "replaced",
  "bad_signature",
  "not_admitted"
]);
var RECONNECT_ERROR_CODES = /* @__PURE__ */ new Set([
  "timeout",
  "too_slow",
  "shutting_down",
  "server_full"
]);
var FRAME_COSTS = {
  history: 5,
  rooms: 5,
  who: 2,
  bye: 0
};
function frameCost(frame) {
  return FRAME_COSTS[frame.type] ?? 1;
}
var encoder = new TextEncoder();
var DecodeError = class extends Error {
  /** What kind of fault this is. */
  kind;
  constructor(kind, message) {
    super(message);
    this.name = "DecodeError";
    this.kind = kind;
  }
};
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
function badField(key, want) {
  return new DecodeError("bad_field", `Field "${key}" must be ${want}`);
}
function readString(o, key) {
  const value = o[key];
  if (typeof value !== "string") throw badField(key, "a string");
  return value;
}
function readInteger(o, key) {
  const value = o[key];
  if (!Number.isSafeInteger(value)) throw badField(key, "an integer");
  return value;
}
function readStringArray(o, key) {
  const value = o[key];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw badField(key, "an array of strings");
  }
  return value;
}
function optional(o, key, read) {
  return o[key] === void 0 ? {} : {
    [key]: read(o, key)
  };
}
function readClientInfo(o, key) {
  const info = o[key];
  if (!isObject(info)) throw badField(key, "an object");
  return {
    ...optional(info, "app", readString),
    ...optional(info, "os", readString),
    ...optional(info, "host", readString)
  };
}
function readBoolean(o, key) {
  const value = o[key];
  if (typeof value !== "boolean") throw badField(key, "true or false");
  return value;
}
function readLimits(o, key) {
  const limits = o[key];
  if (!isObject(limits)) throw badField(key, "an object");
  return {
    rate: readNumber(limits, "rate"),
    burst: readNumber(limits, "burst")
  };
}
function readNumber(o, key) {
  const value = o[key];
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw badField(key, "a number of at least 0");
  }
  return value;
}
function readServerInfo(o, key) {
  const info = o[key];
  if (!isObject(info)) throw badField(key, "an object");
  return {
    name: readString(info, "name"),
    version: readString(info, "version"),
    ...optional(info, "id", readString)
  };
}
function readBanInfos(o, key) {
  const value = o[key];
  if (!Array.isArray(value)) throw badField(key, "an array");
  return value.map((item) => {
    if (!isObject(item)) throw badField(key, "an array of objects");
    const kind = readString(item, "kind");
    if (kind !== "name" && kind !== "identity" && kind !== "address") {
      throw badField("kind", "name, identity or address");
    }
    return {
      target: readString(item, "target"),
      kind,
      ...optional(item, "until", readInteger),
      ...optional(item, "by", readString),
      ...optional(item, "reason", readString)
    };
  });
}
function readRoomInfos(o, key) {
  const value = o[key];
  if (!Array.isArray(value)) throw badField(key, "an array");
  return value.map((item) => {
    if (!isObject(item)) throw badField(key, "an array of objects");
    return {
      room: readString(item, "room"),
      count: readInteger(item, "count"),
      topic: readString(item, "topic")
    };
  });
}
function readErrorCode(o, key) {
  const code = readString(o, key);
  return Object.hasOwn(ERROR_CODES, code) ? code : "bad_frame";
}
var SERVER_FRAME_READERS = {
  welcome: (o) => ({
    type: "welcome",
    name: readString(o, "name"),
    ...optional(o, "id", readString),
    ...optional(o, "fingerprint", readString),
    ...optional(o, "operator", readBoolean),
    users: readStringArray(o, "users"),
    ...optional(o, "ids", readStringArray),
    ...optional(o, "count", readInteger),
    server: readServerInfo(o, "server"),
    ...optional(o, "room", readString),
    ...optional(o, "motd", readString),
    ...optional(o, "resume", readString),
    ...optional(o, "resumed", readBoolean),
    ...optional(o, "last", readInteger),
    ...optional(o, "limits", readLimits)
  }),
  message: (o) => ({
    type: "message",
    id: readInteger(o, "id"),
    ts: readInteger(o, "ts"),
    from: readString(o, "from"),
    ...optional(o, "fromId", readString),
    text: readString(o, "text"),
    ...optional(o, "room", readString),
    ...optional(o, "ref", readString),
    ...optional(o, "action", readBoolean),
    ...optional(o, "history", readBoolean)
  }),
  private: (o) => ({
    type: "private",
    id: readInteger(o, "id"),
    ts: readInteger(o, "ts"),
    from: readString(o, "from"),
    ...optional(o, "fromId", readString),
    to: readString(o, "to"),
    ...optional(o, "toId", readString),
    text: readString(o, "text"),
    ...optional(o, "ref", readString),
    ...optional(o, "action", readBoolean),
    ...optional(o, "history", readBoolean)
  }),
  joined: (o) => ({
    type: "joined",
    name: readString(o, "name"),
    ...optional(o, "id", readString),
    ts: readInteger(o, "ts"),
    ...optional(o, "room", readString)
  }),
  left: (o) => ({
    type: "left",
    name: readString(o, "name"),
    ...optional(o, "id", readString),
    ts: readInteger(o, "ts"),
    reason: readString(o, "reason"),
    ...optional(o, "room", readString)
  }),
  users: (o) => ({
    type: "users",
    users: readStringArray(o, "users"),
    ...optional(o, "ids", readStringArray),
    ...optional(o, "count", readInteger),
    ...optional(o, "room", readString),
    ...optional(o, "away", readStringArray)
  }),
  room: (o) => ({
    type: "room",
    room: readString(o, "room"),
    topic: readString(o, "topic"),
    users: readStringArray(o, "users"),
    ...optional(o, "ids", readStringArray),
    count: readInteger(o, "count")
  }),
  room_list: (o) => ({
    type: "room_list",
    rooms: readRoomInfos(o, "rooms"),
    ...optional(o, "count", readInteger)
  }),
  topic: (o) => ({
    type: "topic",
    room: readString(o, "room"),
    topic: readString(o, "topic"),
    ...optional(o, "by", readString),
    ...optional(o, "ts", readInteger)
  }),
  renamed: (o) => ({
    type: "renamed",
    from: readString(o, "from"),
    to: readString(o, "to"),
    ...optional(o, "id", readString),
    ts: readInteger(o, "ts")
  }),
  whois: (o) => ({
    type: "whois",
    name: readString(o, "name"),
    ...optional(o, "id", readString),
    ...optional(o, "fingerprint", readString),
    ...optional(o, "registered", readBoolean),
    ...optional(o, "operator", readBoolean),
    rooms: readStringArray(o, "rooms"),
    idle: readInteger(o, "idle"),
    since: readInteger(o, "since"),
    ...optional(o, "away", readString),
    ...optional(o, "client", readClientInfo)
  }),
  notice: (o) => ({
    type: "notice",
    text: readString(o, "text")
  }),
  announce: (o) => ({
    type: "announce",
    text: readString(o, "text"),
    ts: readInteger(o, "ts")
  }),
  history: (o) => ({
    type: "history",
    // A page of a room, or (with `with`) of a private conversation: one of the two.
    ...o.with === void 0 ? {
      room: readString(o, "room")
    } : optional(o, "room", readString),
    ...optional(o, "with", readString),
    count: readInteger(o, "count"),
    more: readBoolean(o, "more")
  }),
  presence: (o) => ({
    type: "presence",
    name: readString(o, "name"),
    ...optional(o, "id", readString),
    ts: readInteger(o, "ts"),
    ...optional(o, "away", readString)
  }),
  challenge: (o) => ({
    type: "challenge",
    nonce: readString(o, "nonce")
  }),
  ban_list: (o) => ({
    type: "ban_list",
    bans: readBanInfos(o, "bans")
  }),
  room_info: (o) => ({
    type: "room_info",
    room: readString(o, "room"),
    ...optional(o, "owner", readString),
    ...optional(o, "ownerId", readString),
    moderators: readStringArray(o, "moderators"),
    topicLocked: readBoolean(o, "topicLocked"),
    inviteOnly: readBoolean(o, "inviteOnly")
  }),
  ping: () => ({
    type: "ping"
  }),
  pong: () => ({
    type: "pong"
  }),
  error: (o) => ({
    type: "error",
    code: readErrorCode(o, "code"),
    message: readString(o, "message"),
    ...optional(o, "ref", readString)
  })
};
function decodeWith(line, readers) {
  if (line.length * 3 >= MAX_FRAME_BYTES && encoder.encode(line).length >= MAX_FRAME_BYTES) {
    return fail(new DecodeError("too_large", "Frame is larger than 64 KiB"));
  }
  let value;
  try {
    value = JSON.parse(line);
  } catch {
    return fail(new DecodeError("bad_json", "Frame is not valid JSON"));
  }
  if (!isObject(value)) {
    return fail(new DecodeError("bad_field", "Frame must be a JSON object"));
  }
  const type = value.type;
  if (typeof type !== "string") return fail(badField("type", "a string"));
  if (!Object.hasOwn(readers, type)) {
    const shown = JSON.stringify(type.length > 40 ? `${type.slice(0, 40)}...` : type);
    return fail(new DecodeError("unknown_type", `Unknown frame type: ${shown}`));
  }
  try {
    return ok(readers[type](value));
  } catch (error) {
    if (error instanceof DecodeError) return fail(error);
    throw error;
  }
}
function decodeServerFrame(line) {
  return decodeWith(line, SERVER_FRAME_READERS);
}
function nameKey(name) {
  return foldCase(name.normalize("NFKC"));
}
function foldCase(text) {
  return text.toUpperCase().toLowerCase();
}
function checkName(name) {
  const rules = `use 1-${MAX_NAME_LENGTH} letters, digits, _ or -`;
  if (name.length > MAX_NAME_INPUT) {
    return fail(`Invalid name: longer than ${MAX_NAME_LENGTH} characters; ${rules}`);
  }
  const normal = name.normalize("NFC");
  if (!NAME_REGEXP.test(normal)) return fail(`Invalid name "${quoteInput(name)}": ${rules}`);
  const look = lookProblem(normal);
  if (look) return fail(`Invalid name "${quoteInput(normal)}": ${look}`);
  if (RESERVED_NAMES.has(nameKey(normal))) {
    return fail(`The name "${normal}" is reserved: choose another`);
  }
  return ok(normal);
}
function lookProblem(text) {
  if (INVISIBLE_REGEXP.test(text)) return "it has characters that show nothing";
  const scripts = /* @__PURE__ */ new Set();
  for (const char of text) {
    if (!/\p{L}/u.test(char)) continue;
    scripts.add(SCRIPT_REGEXPS.find(([, pattern]) => pattern.test(char))?.[0] ?? "Other");
  }
  if (scripts.size <= 1 || SCRIPT_MIXES.some((mix) => [
    ...scripts
  ].every((s) => mix.has(s)))) {
    return void 0;
  }
  return `it mixes letters of ${[
    ...scripts
  ].join(" and ")}: use letters of one script`;
}
function roomKey(room) {
  return foldCase(room.normalize("NFKC"));
}
function checkRoom(room) {
  const rules = `use # and 1-${MAX_ROOM_LENGTH} letters, digits, _ or -`;
  if (room.length > MAX_ROOM_INPUT) {
    return fail(`Invalid room: longer than ${MAX_ROOM_LENGTH} characters; ${rules}`);
  }
  const normal = (room.startsWith("#") ? room : `#${room}`).normalize("NFC");
  if (!ROOM_REGEXP.test(normal)) return fail(`Invalid room "${quoteInput(room)}": ${rules}`);
  const look = lookProblem(normal);
  if (look) return fail(`Invalid room "${quoteInput(normal)}": ${look}`);
  return ok(normal);
}
function checkLine(text, what) {
  const clean = sanitizeForTerminal(text).toWellFormed().trim();
  const length = countCharacters(clean);
  if (length > MAX_TOPIC_LENGTH) {
    return fail(`${what} is longer than ${MAX_TOPIC_LENGTH} characters (${length}): shorten it`);
  }
  return ok(clean);
}
function dropBlankLines(text) {
  if (!text.includes("\n")) return text;
  const lines = [];
  let blankBefore = false;
  for (const line of text.split("\n")) {
    if (VISIBLE_REGEXP.test(line)) {
      if (blankBefore && lines.length > 0) lines.push("");
      lines.push(line);
      blankBefore = false;
    } else {
      blankBefore = true;
    }
  }
  return lines.join("\n");
}
function checkText(text) {
  if (text.length > MAX_TEXT_LENGTH * 4) {
    return fail(`Message is longer than ${MAX_TEXT_LENGTH} characters`);
  }
  const clean = dropBlankLines(text.replace(CONTROL_REGEXP, "").toWellFormed());
  if (clean.trim() === "") return fail("Message is empty");
  if (!VISIBLE_REGEXP.test(clean)) {
    return fail("Message shows nothing: it is made only of invisible characters");
  }
  if (clean.length > MAX_TEXT_LENGTH && countCharacters(clean) > MAX_TEXT_LENGTH) {
    return fail(`Message is longer than ${MAX_TEXT_LENGTH} characters`);
  }
  return ok(clean);
}
function proofText(nonce, key) {
  return `chat-hello-proof-v1
${nonce}
${key}`;
}
function sanitizeForTerminal(text) {
  return text.replace(TERMINAL_UNSAFE_REGEXP, (c) => c === "\n" || c === "	" ? " " : "");
}
var MAX_QUOTED = 40;
function quoteInput(text) {
  const chars = Array.from(sanitizeForTerminal(text));
  return chars.length > MAX_QUOTED ? `${chars.slice(0, MAX_QUOTED).join("")}...` : chars.join("");
}
function countCharacters(text) {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

// ui/commands.ts
function firstWord(text) {
  const match = /^\s*(\S*)\s*([\s\S]*)$/.exec(text);
  return [
    match[1],
    match[2]
  ];
}
function usage(spec) {
  return fail(`Usage: ${spec}`);
}
function joinCommand(args) {
  const [room, rest] = firstWord(args);
  return room && !rest.trim() ? ok({
    type: "join",
    room
  }) : usage("/join <#room> (one at a time)");
}
function leaveCommand(args, context) {
  const [room] = firstWord(args);
  return ok({
    type: "leave",
    room: room || context.room
  });
}
function topicCommand(args, context) {
  const [first, rest] = firstWord(args);
  const [room, text] = first.startsWith("#") ? [
    first,
    rest
  ] : [
    context.room,
    args
  ];
  if (text.trim() === "") return ok({
    type: "topic",
    room
  });
  const topic = checkLine(text, "Topic");
  return topic.ok ? ok({
    type: "topic",
    room,
    topic: topic.value
  }) : topic;
}
function whoCommand(args, context) {
  const [room, rest] = firstWord(args);
  if (rest.trim()) return usage("/who [#room|*]");
  if (room === "*") return ok({
    type: "who"
  });
  return ok({
    type: "who",
    room: room || context.room
  });
}
function whoisCommand(args) {
  const [name] = firstWord(args);
  return name ? ok({
    type: "whois",
    name
  }) : usage("/whois <name>");
}
function msgCommand(args) {
  const [to, text] = firstWord(args);
  return to && text.trim() ? ok({
    type: "msg",
    to,
    text
  }) : usage("/msg <name> <text>");
}
function replyCommand(args, context) {
  const last = context.lastPrivate;
  if (!last) return fail("Nobody has written to you privately yet");
  if (!args.trim()) return usage("/reply <text>");
  return ok({
    type: "msg",
    to: last.name,
    ...last.id ? {
      toId: last.id
    } : {},
    text: args
  });
}
function meCommand(args, context) {
  return args.trim() ? ok({
    type: "say",
    room: context.room,
    text: args,
    action: true
  }) : usage("/me <action>");
}
function nickCommand(args) {
  const [name, rest] = firstWord(args);
  return name && !rest ? ok({
    type: "nick",
    name
  }) : usage("/nick <newname>");
}
function awayCommand(args) {
  const message = checkLine(args, "Away message");
  return message.ok ? ok({
    type: "away",
    message: message.value || "away"
  }) : message;
}
function historyCommand(args, context) {
  const [first, rest] = firstWord(args);
  const person = first !== "" && !/^[-+]?[\d.]+$/.test(first) ? first : void 0;
  const text = (person === void 0 ? args : rest).trim();
  const limit = text === "" ? HISTORY_PAGE : Number(text);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_HISTORY_PAGE) {
    return usage(`/history [name] [count]: count is 1-${MAX_HISTORY_PAGE}`);
  }
  if (person !== void 0) return ok({
    type: "history",
    with: person,
    limit
  });
  return ok({
    type: "history",
    room: context.room,
    limit,
    ...context.oldest === void 0 ? {} : {
      before: context.oldest
    }
  });
}
function kickCommand(args) {
  const [name, reason] = firstWord(args);
  if (!name) return usage("/kick <name> [reason]");
  return ok({
    type: "kick",
    name,
    ...reason.trim() ? {
      reason: reason.trim()
    } : {}
  });
}
function banCommand(args) {
  const [target, rest] = firstWord(args);
  if (!target) return usage("/ban <name|SHA256:key|address[/bits]> [minutes] [reason]");
  const [first, afterFirst] = firstWord(rest);
  const minutes = /^\d+(\.\d+)?$/.test(first) ? Number(first) : void 0;
  const reason = (minutes === void 0 ? rest : afterFirst).trim();
  return ok({
    type: "ban",
    target,
    ...minutes === void 0 ? {} : {
      minutes
    },
    ...reason ? {
      reason
    } : {}
  });
}
function unbanCommand(args) {
  const [target] = firstWord(args);
  return target ? ok({
    type: "unban",
    target
  }) : usage("/unban <name|SHA256:key|address[/bits]>");
}
function motdCommand(args) {
  const text = args.trim();
  return ok(text ? {
    type: "motd",
    text
  } : {
    type: "motd"
  });
}
function announceCommand(args) {
  return args.trim() ? ok({
    type: "announce",
    text: args.trim()
  }) : usage("/announce <text>");
}
function roomCommand(args, context) {
  const [first, afterFirst] = firstWord(args);
  const [room, rest] = first.startsWith("#") ? [
    first,
    afterFirst
  ] : [
    context.room,
    args
  ];
  const [setting, afterSetting] = firstWord(rest);
  const [name, extra] = firstWord(afterSetting);
  const spec = "/room [#room] [lock|unlock|invite-only|open|mod <name>|unmod <name>|give <name>]";
  const settings = {
    lock: {
      topicLocked: true
    },
    unlock: {
      topicLocked: false
    },
    "invite-only": {
      inviteOnly: true
    },
    open: {
      inviteOnly: false
    }
  };
  const roles = {
    mod: "moderator",
    unmod: "member",
    give: "owner"
  };
  if (setting === "") return ok({
    type: "room_info",
    room
  });
  const change = settings[setting.toLowerCase()];
  if (change && !name) return ok({
    type: "room_set",
    room,
    ...change
  });
  const role = roles[setting.toLowerCase()];
  if (role && name && !extra.trim()) return ok({
    type: "room_role",
    room,
    name,
    role
  });
  return usage(spec);
}
function inviteCommand(args, context) {
  const [name, rest] = firstWord(args);
  const [room, extra] = firstWord(rest);
  if (!name || extra.trim() || room && !room.startsWith("#")) {
    return usage("/invite <name> [#room]");
  }
  return ok({
    type: "invite",
    room: room || context.room,
    name
  });
}
function removeCommand(args, context) {
  const [name, reason] = firstWord(args);
  if (!name) return usage("/remove <name> [reason]");
  return ok({
    type: "remove",
    room: context.room,
    name,
    ...reason.trim() ? {
      reason: reason.trim()
    } : {}
  });
}
function quitCommand(args) {
  const message = args.trim();
  return ok(message ? {
    type: "bye",
    message
  } : {
    type: "bye"
  });
}
var CHAT_COMMANDS = {
  help: {
    aliases: [
      "?"
    ],
    args: "[command]",
    help: "List the commands, or explain one"
  },
  join: {
    aliases: [
      "j"
    ],
    args: "<#room>",
    help: "Join a room (creating it) and make it current",
    frame: joinCommand
  },
  leave: {
    aliases: [
      "part"
    ],
    args: "[#room]",
    help: "Leave a room",
    frame: leaveCommand
  },
  switch: {
    aliases: [
      "sw"
    ],
    args: "<#room>",
    help: "Make another of your rooms current"
  },
  rooms: {
    aliases: [
      "list"
    ],
    args: "",
    help: "List the rooms, their sizes and topics",
    frame: () => ok({
      type: "rooms"
    })
  },
  topic: {
    aliases: [],
    args: "[#room] [text]",
    help: "Show or set the topic of the current room (or of #room)",
    frame: topicCommand
  },
  history: {
    aliases: [
      "h"
    ],
    args: "[name] [count]",
    help: "Show earlier messages of the current room (or with someone), further back each time",
    frame: historyCommand
  },
  who: {
    aliases: [
      "names"
    ],
    args: "[#room|*]",
    help: "List the people in this room (or in #room; * for everyone on the server)",
    frame: whoCommand
  },
  whois: {
    aliases: [],
    args: "<name>",
    help: "Show someone's rooms, idle time, away message and client",
    frame: whoisCommand
  },
  msg: {
    aliases: [
      "m",
      "tell"
    ],
    args: "<name> <text>",
    help: "Send a private message",
    frame: msgCommand
  },
  reply: {
    aliases: [
      "r"
    ],
    args: "<text>",
    help: "Answer the last person who wrote to you privately",
    frame: replyCommand
  },
  me: {
    aliases: [],
    args: "<action>",
    help: "Act something out: /me waves",
    frame: meCommand
  },
  nick: {
    aliases: [
      "name"
    ],
    args: "<newname>",
    help: "Change your name",
    frame: nickCommand
  },
  away: {
    aliases: [],
    args: "[message]",
    help: "Mark yourself away; private messages get the message",
    frame: awayCommand
  },
  back: {
    aliases: [],
    args: "",
    help: "You are no longer away",
    frame: () => ok({
      type: "back"
    })
  },
  ignore: {
    aliases: [],
    args: "[name]",
    help: "Hide someone's messages from you, whatever name they take; alone, list who"
  },
  unignore: {
    aliases: [],
    args: "<name>",
    help: "Show someone's messages again"
  },
  register: {
    aliases: [],
    args: "",
    help: "Register your name to your key: nobody else can use it, in any form",
    frame: () => ok({
      type: "register"
    })
  },
  unregister: {
    aliases: [],
    args: "",
    help: "Free your registered name",
    frame: () => ok({
      type: "unregister"
    })
  },
  room: {
    aliases: [],
    args: "[#room] [lock|unlock|invite-only|open|mod <name>|unmod <name>|give <name>]",
    help: "Who runs a room; its owner: lock the topic, invite only, moderators, hand it over",
    frame: roomCommand
  },
  invite: {
    aliases: [],
    args: "<name> [#room]",
    help: "Invite someone to a room (owners and moderators)",
    frame: inviteCommand
  },
  remove: {
    aliases: [],
    args: "<name> [reason]",
    help: "Take someone out of this room (owners and moderators)",
    frame: removeCommand
  },
  motd: {
    aliases: [],
    args: "[text]",
    help: "Show the message of the day (operators: set it)",
    frame: motdCommand
  },
  kick: {
    aliases: [],
    args: "<name> [reason]",
    help: "Operators: disconnect someone",
    frame: kickCommand
  },
  ban: {
    aliases: [],
    args: "<target> [minutes] [reason]",
    help: "Operators: keep a name, a key (SHA256:...) or an address/network out",
    frame: banCommand
  },
  unban: {
    aliases: [],
    args: "<target>",
    help: "Operators: lift a ban",
    frame: unbanCommand
  },
  bans: {
    aliases: [],
    args: "",
    help: "Operators: list the bans",
    frame: () => ok({
      type: "bans"
    })
  },
  announce: {
    aliases: [],
    args: "<text>",
    help: "Operators: say something to everyone on the server",
    frame: announceCommand
  },
  bell: {
    aliases: [],
    args: "[on|off]",
    help: "Ring on private messages and mentions"
  },
  connect: {
    aliases: [
      "server"
    ],
    args: "[host[:port] | invite]",
    help: "Show this server's address and key, or move to another server"
  },
  quit: {
    aliases: [
      "exit",
      "bye"
    ],
    args: "[message]",
    help: "Leave the chat, saying goodbye",
    frame: quitCommand
  }
};
function frameCommandHandlers(handler) {
  const entries = commandNames(CHAT_COMMANDS).flatMap((name) => {
    const build = frameBuilder(CHAT_COMMANDS, name);
    return build === void 0 ? [] : [
      [
        name,
        handler(build)
      ]
    ];
  });
  return Object.fromEntries(entries);
}
function parseCommand(line) {
  if (!line.startsWith("/") || line.startsWith("//")) return void 0;
  const [name, args] = firstWord(line.slice(1));
  return {
    name: name.toLowerCase(),
    args
  };
}
function commandNames(table) {
  return Object.keys(table);
}
function findCommand(table, typed) {
  const wanted = typed.toLowerCase();
  return commandNames(table).find((name) => name === wanted || table[name].aliases.includes(wanted));
}
function frameBuilder(table, name) {
  const spec = table[name];
  return spec.frame;
}
function commandWords(table) {
  return commandNames(table).flatMap((name) => [
    name,
    ...table[name].aliases
  ]).map((w) => `/${w}`);
}
function commandHelp(table, options = {}) {
  const format = (name, width2) => {
    const spec = table[name];
    return `/${`${name} ${spec.args}`.trim().padEnd(width2)}  ${spec.help}` + (spec.aliases.length ? ` (also ${spec.aliases.map((a) => `/${a}`).join(", ")})` : "");
  };
  const names = options.names ?? commandNames(table);
  if (options.name !== void 0) {
    const found = findCommand(table, options.name.replace(/^\//, ""));
    return found !== void 0 && names.includes(found) ? [
      format(found, 0)
    ] : [
      `Unknown command /${quoteInput(options.name)}: type /help for the list`
    ];
  }
  const width = Math.max(...names.map((name) => `${name} ${table[name].args}`.trim().length));
  return names.map((name) => `  ${format(name, width)}`);
}
function unknownCommand(name) {
  return `Unknown command /${quoteInput(name)}: type /help for the list (nothing was sent)`;
}

// ui/render.ts
var MAX_MESSAGE_ROWS = 40;
var GUTTER = "\u2502 ";
var NOTICE_MARK = "-!-";
var NAME_COLORS = [
  31,
  32,
  33,
  34,
  35,
  36,
  91,
  92,
  93,
  94,
  95,
  96
];
var ANSI_REGEXP = /\x1b\[[0-9;]*m/g;
var WIDE_REGEXP = /[\u1100-\u115F\u2E80-\uA4CF\uAC00-\uD7A3\uF900-\uFAFF\uFE30-\uFE4F\uFF00-\uFF60\uFFE0-\uFFE6\u{20000}-\u{3FFFD}]|\p{Emoji_Presentation}|\uFE0F/u;
var ZERO_WIDTH_REGEXP = /^[\p{Mn}\p{Me}\p{Cf}]+$/u;
var graphemes = new Intl.Segmenter();
function paint(text, style, color) {
  return color ? `\x1B[${style}m${text}\x1B[0m` : text;
}
function nameColor(name) {
  let hash = 0;
  for (const char of nameKey(name)) hash = hash * 31 + char.codePointAt(0) >>> 0;
  return NAME_COLORS[hash % NAME_COLORS.length];
}
function displayWidth(text) {
  let width = 0;
  for (const { segment } of graphemes.segment(text.replace(ANSI_REGEXP, ""))) {
    width += ZERO_WIDTH_REGEXP.test(segment) ? 0 : WIDE_REGEXP.test(segment) ? 2 : 1;
  }
  return width;
}
function mentions(text, name) {
  if (name === "") return false;
  const key = nameKey(name);
  return text.split(/[^\p{L}\p{M}\p{N}_-]+/u).some((word) => word.length <= MAX_NAME_INPUT && nameKey(word) === key);
}
function formatDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1e3));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor(s % 3600 / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor(s % 86400 / 3600)}h`;
}
function formatDateTime(ts, options = {}) {
  const date = new Date(ts);
  const pad = (n) => String(n).padStart(2, "0");
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  return `${day} ${time}${options.seconds ? `:${pad(date.getSeconds())}` : ""}`;
}
function dayLine(ts) {
  const day = new Date(ts).toLocaleDateString("en-GB", {
    weekday: "long",
    day: "numeric",
    month: "long",
    year: "numeric"
  }).replace(",", "");
  return `--- ${day} ---`;
}
function sameDay(a, b) {
  return new Date(a).toDateString() === new Date(b).toDateString();
}
function clock(ts) {
  const date = new Date(ts);
  const pad = (n) => String(n).padStart(2, "0");
  return `[${pad(date.getHours())}:${pad(date.getMinutes())}]`;
}
function dayClock(ts) {
  const date = new Date(ts);
  if (date.toDateString() === (/* @__PURE__ */ new Date()).toDateString()) return clock(ts);
  const day = date.toLocaleString("en", {
    month: "short",
    day: "numeric"
  });
  return `[${day} ${clock(ts).slice(1)}`;
}
function stamp(ts, options) {
  return options.time && ts !== void 0 ? `${paint(clock(ts), 2, options.color)} ` : "";
}
function speech(prefix, text, options, style) {
  const indent = Math.max(0, displayWidth(prefix) - GUTTER.length);
  const gutter = " ".repeat(indent) + paint(GUTTER, 2, options.color);
  const body = (line) => style ? paint(line, style, true) : line;
  const columns = options.width === void 0 ? Infinity : Math.max(20, options.width);
  const lines = text.replace(/\n(\s*\n)+/g, "\n\n").split("\n").map(sanitizeForTerminal);
  const pieces = lines.flatMap((line, i) => wrap(line, columns - (i === 0 ? displayWidth(prefix) : indent + GUTTER.length)));
  const maxRows = Math.max(2, options.maxRows ?? MAX_MESSAGE_ROWS);
  const shown = pieces.length > maxRows ? pieces.slice(0, maxRows - 1) : pieces;
  const rows = shown.map((piece, i) => i === 0 ? `${prefix}${body(piece)}` : `${gutter}${body(piece)}`);
  if (shown.length < pieces.length) {
    const left = pieces.length - shown.length;
    rows.push(`${gutter}${paint(`(${left} more rows not shown)`, 2, options.color)}`);
  }
  return rows;
}
function wrap(line, columns) {
  if (columns === Infinity || displayWidth(line) <= columns) return [
    line
  ];
  const limit = Math.max(1, columns);
  const rows = [];
  let row = "";
  let width = 0;
  let lastSpace = -1;
  for (const { segment } of graphemes.segment(line)) {
    const w = ZERO_WIDTH_REGEXP.test(segment) ? 0 : WIDE_REGEXP.test(segment) ? 2 : 1;
    if (width + w > limit) {
      if (lastSpace > row.length / 2) {
        rows.push(row.slice(0, lastSpace));
        row = row.slice(lastSpace + 1);
      } else {
        rows.push(row);
        row = "";
      }
      width = displayWidth(row);
      lastSpace = -1;
    }
    if (segment === " ") lastSpace = row.length;
    row += segment;
    width += w;
  }
  rows.push(row);
  return rows;
}
function notice(text, ts, options) {
  const line = `${NOTICE_MARK} ${sanitizeForTerminal(text)}`;
  return [
    `${stamp(ts, options)}${paint(line, 2, options.color)}`
  ];
}
function speaker(name, options) {
  if (options.me !== "" && nameKey(name) === nameKey(options.me)) {
    return paint("You", 1, options.color);
  }
  const clean = sanitizeForTerminal(name);
  return paint(clean, nameColor(clean), options.color);
}
function listUsers(users, count, where) {
  const total = count ?? users.length;
  const names = users.map(sanitizeForTerminal).sort((a, b) => a.localeCompare(b)).join(", ");
  const more = total > users.length ? ` and ${total - users.length} more` : "";
  return `${total} ${total === 1 ? "person" : "people"} ${where}: ${names}${more}`;
}
function renderMessage(frame, options) {
  const mine = options.me !== "" && nameKey(frame.from) === nameKey(options.me);
  if (mine && options.skipOwn) return [];
  const room = frame.room !== void 0 && frame.room !== options.room ? `${paint(sanitizeForTerminal(frame.room), 36, options.color)} ` : "";
  const highlight = !mine && options.color && mentions(frame.text, options.me) ? "1;33" : void 0;
  const who = speaker(frame.from, options);
  const time = frame.history && options.time ? `${paint(dayClock(frame.ts), 2, options.color)} ` : stamp(frame.ts, options);
  const actor = mine ? paint(sanitizeForTerminal(frame.from), 1, options.color) : who;
  const prefix = frame.action ? `${time}${room}* ${actor} ` : `${time}${room}${who}: `;
  return speech(prefix, frame.text, options, highlight ?? (frame.history && options.color ? "2" : void 0));
}
function renderPrivate(frame, options) {
  const mine = options.me !== "" && nameKey(frame.from) === nameKey(options.me);
  if (mine && options.skipOwn) return [];
  const tag = paint("(private)", 35, options.color);
  const who = speaker(frame.from, options);
  const to = options.me !== "" && !mine ? "" : ` \u2192 ${speaker(frame.to, options)}`;
  const time = frame.history && options.time ? `${paint(dayClock(frame.ts), 2, options.color)} ` : stamp(frame.ts, options);
  const actor = mine ? paint(sanitizeForTerminal(frame.from), 1, options.color) : who;
  const prefix = frame.action ? `${time}${tag} * ${actor}${to} ` : `${time}${tag} ${who}${to}: `;
  return speech(prefix, frame.text, options, frame.history && options.color ? "2" : void 0);
}
function renderWhois(frame) {
  const client = frame.client ?? {};
  const parts = [
    `in ${frame.rooms.join(" ") || "no room"}`,
    `idle ${formatDuration(frame.idle)}`,
    `here since ${sameDay(frame.since, Date.now()) ? clock(frame.since).slice(1, -1) : formatDateTime(frame.since)}`,
    ...frame.away === void 0 ? [] : [
      `away: ${frame.away}`
    ],
    ...client.app ? [
      `using ${client.app}${client.os ? ` on ${client.os}` : ""}`
    ] : [],
    ...client.host ? [
      `host ${client.host}`
    ] : [],
    ...frame.operator ? [
      "an operator"
    ] : []
  ];
  const key = frame.fingerprint === void 0 ? "no key: known only by this session" : `key ${frame.fingerprint}${frame.registered ? "; the name is registered to this key" : ""}`;
  return [
    `${frame.name}: ${parts.join("; ")}`,
    `${frame.name}: ${key}`
  ];
}
function describeBan(ban) {
  const span = ban.until === void 0 ? "for good" : `until ${formatDateTime(ban.until)}`;
  return `${ban.target} (${ban.kind}) ${span}${ban.by ? `, by ${ban.by}` : ""}${ban.reason ? `: ${ban.reason}` : ""}`;
}
function describeRoom(info) {
  const owner = info.owner !== void 0 ? `owned by ${info.owner}` : info.room === LOBBY ? "run by the server's operators" : "no owner";
  const parts = [
    owner,
    ...info.moderators.length > 0 ? [
      `moderators: ${info.moderators.join(", ")}`
    ] : [],
    info.topicLocked ? "topic locked" : "anyone may set the topic",
    info.inviteOnly ? "invite-only" : "open to everyone"
  ];
  return `${info.room}: ${parts.join("; ")}`;
}
function renderFrame(frame, options) {
  switch (frame.type) {
    case "message":
      return renderMessage(frame, options);
    case "private":
      return renderPrivate(frame, options);
    case "joined":
      return notice(`${frame.name} joined${frame.room ? ` ${frame.room}` : ""}`, frame.ts, options);
    case "left":
      return notice(`${frame.name} left${frame.room ? ` ${frame.room}` : ""} (${frame.reason})`, frame.ts, options);
    case "renamed":
      return notice(`${frame.from} is now known as ${frame.to}`, frame.ts, options);
    case "users": {
      const away = new Set(frame.away ?? []);
      const users = frame.users.map((name) => away.has(name) ? `${name} (away)` : name);
      return notice(listUsers(users, frame.count, frame.room ? `in ${frame.room}` : "on the server"), void 0, options);
    }
    case "room":
      return notice(`You are in ${frame.room}${frame.topic ? ` (topic: ${frame.topic})` : ""}. ` + listUsers(frame.users, frame.count, "here"), void 0, options);
    case "room_list": {
      const total = frame.count ?? frame.rooms.length;
      const shown = total > frame.rooms.length ? ` (the ${frame.rooms.length} biggest shown)` : "";
      return [
        ...notice(`${total} ${total === 1 ? "room" : "rooms"}${shown}:`, void 0, options),
        ...frame.rooms.map((r) => `  ${sanitizeForTerminal(r.room)} (${r.count})${r.topic ? ` ${sanitizeForTerminal(r.topic)}` : ""}`)
      ];
    }
    case "topic":
      return notice(frame.by !== void 0 ? `${frame.by} set the topic of ${frame.room}: ${frame.topic}` : frame.topic ? `Topic of ${frame.room}: ${frame.topic}` : `${frame.room} has no topic`, frame.ts, options);
    case "whois":
      return renderWhois(frame).flatMap((line) => notice(line, void 0, options));
    case "notice":
      return notice(frame.text, void 0, options);
    case "history": {
      const where = frame.room ?? "your private conversation";
      return notice(frame.count === 0 ? `No earlier messages in ${where}` : `${frame.count} earlier ${frame.count === 1 ? "message" : "messages"} in ${where}` + (frame.more ? " (/history for more):" : ":"), void 0, options);
    }
    case "presence":
      return notice(frame.away === void 0 ? `${frame.name} is back` : `${frame.name} is away: ${frame.away}`, frame.ts, options);
    case "announce":
      return speech(`${stamp(frame.ts, options)}${paint("** server:", "1;35", options.color)} `, frame.text, options);
    case "welcome":
      return [
        ...notice(frame.resumed ? `Back on ${frame.server.name} as ${frame.name}, in your rooms: anything you missed follows` : `Joined ${frame.server.name} as ${frame.name}. ` + listUsers(frame.users, frame.count, `in ${frame.room ?? LOBBY}`), void 0, options),
        ...frame.motd ? notice(`Message of the day: ${frame.motd}`, void 0, options) : []
      ];
    case "error":
      return [
        paint(`! ${sanitizeForTerminal(frame.message)}`, 31, options.color)
      ];
    case "ban_list":
      return frame.bans.length === 0 ? notice("No bans", void 0, options) : [
        ...notice(`${frame.bans.length} ${frame.bans.length === 1 ? "ban" : "bans"}:`, void 0, options),
        ...frame.bans.map((ban) => `  ${sanitizeForTerminal(describeBan(ban))}`)
      ];
    case "room_info":
      return notice(describeRoom(frame), void 0, options);
    case "challenge":
    case "ping":
    case "pong":
      return [];
    default: {
      const unexpected = frame;
      return unexpected;
    }
  }
}

// web/identity.ts
var ED25519 = {
  name: "Ed25519"
};
var DATABASE = "chat";
var STORE = "keys";
function toBase64Url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}
async function identityFor(nameKey2) {
  if (!globalThis.isSecureContext || !globalThis.indexedDB || !crypto.subtle) return void 0;
  try {
    const db = await openDatabase();
    try {
      let pair = await request(db.transaction(STORE).objectStore(STORE).get(nameKey2));
      if (!pair) {
        pair = await crypto.subtle.generateKey(ED25519, false, [
          "sign",
          "verify"
        ]);
        await request(db.transaction(STORE, "readwrite").objectStore(STORE).put(pair, nameKey2));
      }
      return await identityOf(pair);
    } finally {
      db.close();
    }
  } catch (error) {
    console.warn("chat: no identity in this browser:", error);
    return void 0;
  }
}
async function identityOf(pair) {
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const publicKey = toBase64Url(raw);
  return {
    publicKey,
    prove: async (nonce) => {
      const data = new TextEncoder().encode(proofText(nonce, publicKey));
      return toBase64Url(new Uint8Array(await crypto.subtle.sign(ED25519, pair.privateKey, data)));
    }
  };
}
function openDatabase() {
  const opening = indexedDB.open(DATABASE, 1);
  opening.onupgradeneeded = () => opening.result.createObjectStore(STORE);
  return request(opening);
}
function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

// web/link.ts
var RETRY_MIN_MS = 500;
var RETRY_MAX_MS = 3e4;
var Link = class {
  #options;
  #socket;
  #welcomed = false;
  #everWelcomed;
  #ended = false;
  #attempt = 0;
  #lastError;
  #queue = [];
  #inFlight = /* @__PURE__ */ new Map();
  #bucket = new Bucket(0, 1);
  #pumpTimer;
  #retryTimer;
  #lastHeard = Date.now();
  #pinged = false;
  #heartbeat = setInterval(() => this.#checkHeartbeat(), 5e3);
  #onOnline = () => this.retryNow();
  constructor(options) {
    this.#options = options;
    this.#everWelcomed = options.resuming;
    globalThis.addEventListener("online", this.#onOnline);
  }
  /** Whether the server has welcomed us on the current socket. */
  get online() {
    return this.#welcomed;
  }
  /** Opens the first connection. */
  start() {
    this.#open();
  }
  /**
   * Sends a frame, paced. A message (with its `ref` and `cid`) waits while offline and is sent
   * again after a reconnection until acknowledged; anything else is sent only while online
   * (returns `false` otherwise).
   */
  send(frame) {
    const tracked = (frame.type === "say" || frame.type === "msg") && frame.ref !== void 0;
    if (!tracked && !this.#welcomed) return false;
    if (this.#ended) return false;
    this.#queue.push(frame);
    this.#pump();
    return true;
  }
  /**
   * The messages not yet acknowledged, in the order they were typed: what a reload must not
   * lose (the page keeps them with its session and sends them again; the server drops
   * repeats by `cid`).
   */
  unsent() {
    const queued = this.#queue.filter((frame) => (frame.type === "say" || frame.type === "msg") && frame.ref !== void 0);
    return [
      ...this.#inFlight.values(),
      ...queued
    ];
  }
  /** Tries to reconnect at once, if waiting to. */
  retryNow() {
    if (this.#retryTimer === void 0) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = void 0;
    this.#open();
  }
  /** Leaves: says goodbye and closes for good. */
  close(frame = {
    type: "bye"
  }) {
    if (this.#welcomed) this.#socket?.send(JSON.stringify(frame));
    this.#end("You left the chat.");
    this.#socket?.close(1e3);
  }
  #open() {
    this.#options.onStatus({
      state: "connecting"
    });
    this.#lastError = void 0;
    const socket = new WebSocket(this.#options.url);
    this.#socket = socket;
    socket.onopen = () => this.#write(this.#options.hello());
    socket.onmessage = (event) => {
      if (socket === this.#socket && typeof event.data === "string") this.#received(event.data);
    };
    socket.onclose = () => {
      if (socket === this.#socket) this.#closed();
    };
  }
  /** One frame from the server. */
  #received(text) {
    this.#lastHeard = Date.now();
    this.#pinged = false;
    const decoded = decodeServerFrame(text);
    if (!decoded.ok) {
      console.warn("chat: a frame the page does not understand:", decoded.error.message);
      return;
    }
    const frame = decoded.value;
    switch (frame.type) {
      case "challenge":
        this.#prove(frame.nonce);
        return;
      case "ping":
        this.#write({
          type: "pong"
        });
        return;
      case "welcome":
        this.#welcome(frame);
        break;
      case "message":
      case "private":
        if (frame.ref !== void 0) this.#inFlight.delete(frame.ref);
        break;
      case "error":
        if (frame.ref !== void 0) this.#inFlight.delete(frame.ref);
        if (!this.#welcomed || FATAL_ERROR_CODES.has(frame.code)) this.#lastError = frame;
        break;
    }
    this.#options.onFrame(frame);
    if (frame.type === "error" && !this.#welcomed) this.#socket?.close();
  }
  async #prove(nonce) {
    const identity2 = this.#options.identity;
    if (identity2) this.#write({
      type: "proof",
      signature: await identity2.prove(nonce)
    });
  }
  #welcome(frame) {
    this.#welcomed = true;
    this.#everWelcomed = true;
    this.#attempt = 0;
    const limits = frame.limits ?? {
      rate: 0,
      burst: 1
    };
    this.#bucket = new Bucket(limits.rate, limits.burst);
    this.#bucket.take(this.#options.identity ? 2 : 1);
    this.#queue = [
      ...this.#inFlight.values(),
      ...this.#queue
    ];
    this.#inFlight.clear();
    this.#options.onStatus({
      state: "online",
      welcome: frame
    });
    this.#pump();
  }
  #closed() {
    const error = this.#lastError;
    this.#welcomed = false;
    clearTimeout(this.#pumpTimer);
    this.#pumpTimer = void 0;
    if (this.#ended) return;
    const retry = error === void 0 ? this.#everWelcomed : this.#everWelcomed && RECONNECT_ERROR_CODES.has(error.code);
    const reason = error?.message ?? "The connection to the server was lost";
    if (!retry) {
      this.#end(this.#everWelcomed ? reason : error?.message ?? "Cannot reach the chat server", error);
      return;
    }
    this.#attempt++;
    const wait = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (this.#attempt - 1));
    const retryInMs = Math.round(wait * (0.75 + Math.random() / 2));
    this.#options.onStatus({
      state: "offline",
      reason,
      retryInMs
    });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = void 0;
      this.#open();
    }, retryInMs);
  }
  #end(reason, error) {
    if (this.#ended) return;
    this.#ended = true;
    this.#welcomed = false;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#heartbeat);
    globalThis.removeEventListener("online", this.#onOnline);
    this.#options.onStatus({
      state: "ended",
      reason,
      ...error ? {
        error
      } : {}
    });
  }
  /** Sends what waits, as fast as the server's limits allow. */
  #pump() {
    if (this.#pumpTimer !== void 0) return;
    while (this.#welcomed && this.#queue.length > 0) {
      const frame = this.#queue[0];
      const wait = this.#bucket.wait(frameCost(frame));
      if (wait > 0) {
        this.#pumpTimer = setTimeout(() => {
          this.#pumpTimer = void 0;
          this.#pump();
        }, wait);
        return;
      }
      this.#queue.shift();
      if ((frame.type === "say" || frame.type === "msg") && frame.ref !== void 0) {
        this.#inFlight.set(frame.ref, frame);
      }
      this.#write(frame);
    }
  }
  /** One frame out: one WebSocket text message (the JSON of the frame, no newline). */
  #write(frame) {
    if (this.#socket?.readyState !== WebSocket.OPEN) return;
    this.#bucket.take(frameCost(frame));
    this.#socket.send(JSON.stringify(frame));
  }
  /** Pings a silent server; closes (and so reconnects) when it stays silent. */
  #checkHeartbeat() {
    if (!this.#welcomed) return;
    const silent = Date.now() - this.#lastHeard;
    if (silent > 2 * HEARTBEAT_MS) this.#socket?.close();
    else if (silent > HEARTBEAT_MS && !this.#pinged) {
      this.#pinged = true;
      this.#write({
        type: "ping"
      });
    }
  }
};
var Bucket = class {
  rate;
  burst;
  #tokens;
  #at;
  constructor(rate, burst) {
    this.rate = rate;
    this.burst = burst;
    this.#at = performance.now();
    this.#tokens = burst;
  }
  /** How long until `cost` tokens are there, in milliseconds. */
  wait(cost) {
    if (this.rate === 0) return 0;
    this.#refill();
    const needed = Math.min(cost, this.burst);
    return this.#tokens >= needed ? 0 : Math.ceil((needed - this.#tokens) * 1e3 / this.rate);
  }
  take(cost) {
    this.#refill();
    this.#tokens -= Math.min(cost, this.burst);
  }
  #refill() {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + (now - this.#at) * this.rate / 1e3);
    this.#at = now;
  }
};

// web/model.ts
var MAX_ENTRIES = 1e3;
function roomConversationKey(room) {
  return roomKey(room);
}
var ChatModel = class {
  me = "";
  myId;
  conversations = /* @__PURE__ */ new Map();
  current = roomConversationKey(LOBBY);
  /** The newest id of a message received live: a resume continues after it. */
  lastLive;
  /** Whether the person is looking at the page (not a hidden tab). */
  visible = true;
  #newest = 0;
  #sequence = 0;
  /** The conversation on screen, if it exists. */
  get shown() {
    return this.conversations.get(this.current);
  }
  /** Unread messages in all conversations. */
  get unread() {
    let total = 0;
    for (const c of this.conversations.values()) total += c.unread;
    return total;
  }
  /** The room's conversation, made when new. */
  room(name) {
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
  privateWith(name, id) {
    const byName = `@${nameKey(name)}`;
    const key = id === void 0 ? byName : `@${id}`;
    const found = this.conversations.get(key);
    if (found) {
      found.title = name;
      return found;
    }
    const named = this.conversations.get(byName);
    if (named && id !== void 0 && named.peerId === void 0) {
      this.conversations.delete(byName);
      Object.assign(named, {
        key,
        peerId: id,
        title: name
      });
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
  isMine(from, fromId) {
    return this.myId !== void 0 && fromId !== void 0 ? fromId === this.myId : nameKey(from) === nameKey(this.me);
  }
  /** Adds a room or private message where it belongs, unless it is already there. */
  addMessage(frame) {
    const mine = this.isMine(frame.from, frame.fromId);
    const conversation = frame.type === "message" ? this.room(frame.room ?? LOBBY) : mine ? this.privateWith(frame.to, frame.toId) : this.privateWith(frame.from, frame.fromId);
    if (frame.ref !== void 0 && mine) this.#dropPending(conversation, frame.ref);
    if (!frame.history) this.lastLive = Math.max(this.lastLive ?? 0, frame.id);
    this.#newest = Math.max(this.#newest, frame.id);
    const mention = !mine && (frame.type === "private" || mentions(frame.text, this.me));
    if (conversation.ids.has(frame.id)) return {
      conversation,
      fresh: false,
      mention,
      mine
    };
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
      mention: mention && frame.type === "message"
    });
    if (!frame.history && !mine && !this.#looking(conversation)) {
      conversation.unread++;
      if (mention) conversation.mentions++;
    }
    return {
      conversation,
      fresh: true,
      mention,
      mine
    };
  }
  /** Shows one of our messages as on its way, until the server's copy replaces it. */
  addPending(conversation, ref, text, action) {
    const order = 1e15 + ++this.#sequence;
    insert(conversation, {
      kind: "pending",
      order,
      ref,
      ts: Date.now(),
      from: this.me,
      text,
      action
    });
  }
  /** Marks one of our messages as refused, saying why. */
  failPending(ref, reason) {
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
  seen(id) {
    this.#newest = Math.max(this.#newest, id);
  }
  /** Adds a line from the server or the page itself, after what is there now. */
  addNotice(conversation, text, tone = "info") {
    const order = this.#newest + ++this.#sequence / 1e6;
    insert(conversation, {
      kind: "notice",
      order,
      ts: Date.now(),
      text,
      tone
    });
  }
  /** Who is in a room now, from a `welcome`, `room` or `users` frame. */
  setPeople(conversation, frame) {
    const away = new Set(frame.away ?? []);
    conversation.people = frame.users.map((name, i) => ({
      name,
      id: frame.ids?.[i],
      away: away.has(name)
    }));
    conversation.count = frame.count ?? frame.users.length;
  }
  /** Somebody arrived in a room. */
  arrived(room, name, id) {
    const conversation = this.room(room);
    if (conversation.people.some((p) => nameKey(p.name) === nameKey(name))) return;
    conversation.people.push({
      name,
      id,
      away: false
    });
    conversation.count++;
  }
  /** Somebody left a room (or the server, when `room` is absent). */
  departed(room, name) {
    const rooms = room === void 0 ? this.#roomsOf(name) : [
      this.room(room)
    ];
    for (const conversation of rooms) {
      const before = conversation.people.length;
      conversation.people = conversation.people.filter((p) => nameKey(p.name) !== nameKey(name));
      if (conversation.people.length < before) conversation.count--;
    }
    return rooms;
  }
  /** Somebody renamed: in every room, and the private conversation with them. */
  renamed(from, to, id) {
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
  presence(name, away) {
    const rooms = this.#roomsOf(name);
    for (const c of rooms) {
      for (const p of c.people) if (nameKey(p.name) === nameKey(name)) p.away = away;
    }
    return rooms;
  }
  /** We left a room: it goes from the list. */
  leave(room) {
    const key = roomConversationKey(room);
    this.conversations.delete(key);
    if (this.current === key) this.current = roomConversationKey(LOBBY);
  }
  /** Puts a conversation on screen; it is read. */
  show(key) {
    if (!this.conversations.has(key)) return;
    this.current = key;
    this.markRead();
  }
  /** The conversation on screen is read (when the page is visible). */
  markRead() {
    const shown = this.shown;
    if (shown && this.visible) {
      shown.unread = 0;
      shown.mentions = 0;
    }
  }
  /** The rooms and private conversations, in the order the side list shows them. */
  list() {
    const all = [
      ...this.conversations.values()
    ];
    const byTitle = (a, b) => a.title.localeCompare(b.title);
    return [
      ...all.filter((c) => c.kind === "room").sort(byTitle),
      ...all.filter((c) => c.kind === "private").sort(byTitle)
    ];
  }
  #looking(conversation) {
    return this.visible && conversation.key === this.current;
  }
  #roomsOf(name) {
    return [
      ...this.conversations.values()
    ].filter((c) => c.kind === "room" && c.people.some((p) => nameKey(p.name) === nameKey(name)));
  }
  #dropPending(conversation, ref) {
    for (const c of [
      conversation,
      ...this.conversations.values()
    ]) {
      const at = c.entries.findIndex((e) => e.kind === "pending" && e.ref === ref);
      if (at >= 0) {
        c.entries.splice(at, 1);
        return;
      }
    }
  }
};
function newConversation(key, kind, title) {
  return {
    key,
    kind,
    title,
    topic: "",
    people: [],
    count: 0,
    entries: [],
    ids: /* @__PURE__ */ new Set(),
    unread: 0,
    mentions: 0,
    more: kind === "private",
    loading: false
  };
}
function insert(conversation, entry) {
  const entries = conversation.entries;
  let at = entries.length;
  while (at > 0 && entries[at - 1].order > entry.order) at--;
  entries.splice(at, 0, entry);
  if (entries.length > MAX_ENTRIES) {
    const dropped = entries.splice(0, entries.length - MAX_ENTRIES);
    for (const e of dropped) if (e.kind === "message") conversation.ids.delete(e.id);
    const first = entries.find((e) => e.kind === "message");
    conversation.oldest = first?.kind === "message" ? first.id : void 0;
    conversation.more = true;
  }
}

// web/view.ts
function byId(id) {
  const element2 = document.getElementById(id);
  if (!element2) throw new Error(`The page has no #${id}`);
  return element2;
}
var UNSAFE_TEXT = /(?![\n\t])[\p{Cc}\u202A-\u202E\u2066-\u2069]/gu;
function displayable(text) {
  return text.replace(UNSAFE_TEXT, "");
}
function element(tag, className = "", text) {
  const made = document.createElement(tag);
  if (className) made.className = className;
  if (text !== void 0) made.textContent = displayable(text);
  return made;
}
function nameClass(name) {
  return `name c${nameColor(name)}`;
}
function clock2(ts) {
  return new Date(ts).toLocaleTimeString([], {
    hour: "2-digit",
    minute: "2-digit"
  });
}
function drawList(model2, pick2) {
  const rooms = byId("rooms");
  const privates = byId("privates");
  rooms.replaceChildren();
  privates.replaceChildren();
  for (const conversation of model2.list()) {
    const button = element("button", "conversation");
    button.type = "button";
    button.dataset.key = conversation.key;
    if (conversation.key === model2.current) button.setAttribute("aria-current", "page");
    const title = element("span", conversation.kind === "private" ? nameClass(conversation.title) : "", conversation.title);
    button.append(title, ...badges(conversation));
    button.addEventListener("click", () => pick2(conversation.key));
    const item = element("li");
    item.append(button);
    (conversation.kind === "room" ? rooms : privates).append(item);
  }
  byId("privates-heading").hidden = privates.childElementCount === 0;
}
function badges(conversation) {
  const shown = [];
  if (conversation.mentions > 0) {
    const mention = element("span", "mention", "@");
    mention.setAttribute("aria-label", `${conversation.mentions} for you`);
    mention.title = "Mentions you";
    shown.push(mention);
  }
  if (conversation.unread > 0) {
    const count = element("span", "count", String(conversation.unread));
    count.setAttribute("aria-label", `${conversation.unread} unread`);
    shown.push(count);
  }
  return shown;
}
function drawEntries(conversation) {
  const items = [];
  let day;
  for (const entry of conversation.entries) {
    const today = new Date(entry.ts).toDateString();
    if (today !== day) {
      const separator = element("li", "day", dayLine(entry.ts).replace(/^-+ | -+$/g, ""));
      separator.setAttribute("role", "separator");
      items.push(separator);
    }
    day = today;
    items.push(drawEntry(entry));
  }
  byId("entries").replaceChildren(...items);
  const top = byId("log-top");
  if (conversation.more) {
    const earlier = element("button", "earlier", conversation.loading ? "Loading\u2026" : "Earlier messages");
    earlier.type = "button";
    earlier.id = "earlier";
    top.replaceChildren(earlier);
  } else {
    top.replaceChildren(conversation.entries.length ? "The conversation starts here." : "");
  }
}
function drawEntry(entry) {
  const time = element("time", "", clock2(entry.ts));
  time.dateTime = new Date(entry.ts).toISOString();
  if (entry.kind === "notice") {
    const item2 = element("li", `notice ${entry.tone}`);
    item2.append(time, " ", element("span", "text", entry.text));
    return item2;
  }
  const classes = [
    "msg"
  ];
  if (entry.kind === "message") {
    if (entry.mine) classes.push("mine");
    if (entry.mention) classes.push("mentioned");
  } else {
    classes.push("mine", entry.failed ? "failed" : "pending");
  }
  if (entry.action) classes.push("action");
  const item = element("li", classes.join(" "));
  if (entry.kind === "message") item.dataset.id = String(entry.id);
  const from = element("span", nameClass(entry.from), entry.from);
  const text = element("span", "text", entry.text);
  if (entry.action) item.append(time, " ", "* ", from, " ", text);
  else item.append(time, " ", from, element("span", "colon", ": "), text);
  if (entry.kind === "pending") {
    item.append(" ", element("span", "state", entry.failed ? `not sent: ${entry.failed}` : "sending\u2026"));
  }
  return item;
}
function drawPeople(conversation) {
  const list = byId("people-list");
  const people = conversation?.kind === "room" ? conversation.people : [];
  const items = [
    ...people
  ].sort((a, b) => a.name.localeCompare(b.name)).map((person) => {
    const item = element("li", person.away ? "away" : "");
    item.append(element("span", nameClass(person.name), person.name));
    if (person.away) item.append(" ", element("span", "muted", "(away)"));
    return item;
  });
  list.replaceChildren(...items);
  const count = conversation?.kind === "room" ? conversation.count : 0;
  byId("people-heading").textContent = conversation?.kind === "room" ? `Here (${count})` : "Private";
  const more = count - people.length;
  if (more > 0) list.append(element("li", "muted", `and ${more} more`));
}
function drawConversation(conversation, jump) {
  const log = byId("log");
  const fromBottom = log.scrollHeight - log.scrollTop;
  const atBottom = fromBottom - log.clientHeight < 48;
  byId("title").textContent = displayable(conversation ? conversation.kind === "private" ? `${conversation.title} (private)` : conversation.title : "");
  byId("topic").textContent = displayable(conversation?.topic ?? "");
  if (conversation) drawEntries(conversation);
  drawPeople(conversation);
  log.scrollTop = jump || atBottom ? log.scrollHeight : log.scrollHeight - fromBottom;
}

// web/app.ts
var SESSION_KEY = "chat.session";
var NAME_KEY = "chat.name";
var BELL_KEY = "chat.bell";
var IGNORE_KEY = "chat.ignored";
var OPERATOR_ONLY = new Set(commandNames(CHAT_COMMANDS).filter((name) => CHAT_COMMANDS[name].help.startsWith("Operators:")));
var model = new ChatModel();
var link;
var session;
var password;
var welcome;
var joining = /* @__PURE__ */ new Set();
var quietWho = /* @__PURE__ */ new Set();
var lastRoom = LOBBY;
var lastPrivate;
var pageId = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16)).join("");
var nextRef = 1;
var pasted = false;
var drawPending = false;
var jumpToEnd = true;
var identity;
var restoreView;
function loadSession() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null");
    return stored && typeof stored.name === "string" ? stored : void 0;
  } catch {
    return void 0;
  }
}
function saveSession() {
  if (!session) return;
  session.last = model.lastLive ?? session.last;
  session.view = model.current;
  session.unsent = link?.unsent() ?? session.unsent;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}
function endSession() {
  session = void 0;
  sessionStorage.removeItem(SESSION_KEY);
}
function helloFrame() {
  const s = session;
  const last = model.lastLive ?? s.last;
  return {
    type: "hello",
    name: s.name,
    client: {
      app: `chat-web ${VERSION}`
    },
    ...identity ? {
      key: identity.publicKey
    } : {},
    ...s.resume ? {
      resume: s.resume
    } : {},
    ...last === void 0 ? {} : {
      last
    },
    ...password ? {
      password
    } : {}
  };
}
async function start(resuming) {
  identity = await identityFor(nameKey(session.joinName));
  link = new Link({
    url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`,
    hello: helloFrame,
    identity,
    resuming,
    onFrame: receive,
    onStatus: showStatus
  });
  if (resuming) showChat();
  for (const frame of resuming ? session.unsent ?? [] : []) resend(frame);
  link.start();
}
function resend(frame) {
  const conversation = frame.type === "say" ? model.room(frame.room ?? LOBBY) : model.privateWith(frame.to, frame.toId);
  model.addPending(conversation, frame.ref, frame.text, frame.action === true);
  link?.send(frame);
}
function showJoin(error = "") {
  byId("chat-view").hidden = true;
  byId("join-view").hidden = false;
  byId("join-error").textContent = error;
  byId(byId("join-password-row").hidden ? "join-name" : "join-password").focus();
  document.title = "Chat";
}
function showChat() {
  byId("join-view").hidden = true;
  byId("chat-view").hidden = false;
  byId("input").focus();
}
function submitJoin(event) {
  event.preventDefault();
  const typed = byId("join-name").value.trim();
  const name = checkName(typed);
  if (!name.ok) {
    showJoin(name.error);
    return;
  }
  const typedPassword = byId("join-password").value;
  password = typedPassword === "" ? void 0 : typedPassword;
  localStorage.setItem(NAME_KEY, name.value);
  if (globalThis.Notification?.permission === "default" && localStorage.getItem(BELL_KEY) !== "off") {
    Notification.requestPermission().catch(() => {
    });
  }
  byId("join-error").textContent = "Joining\u2026";
  session = {
    joinName: name.value,
    name: name.value,
    privates: []
  };
  resetModel();
  start(false);
}
function resetModel() {
  model.conversations.clear();
  model.lastLive = void 0;
  model.current = roomConversationKey(LOBBY);
  welcome = void 0;
}
function joinError(error, reason) {
  switch (error?.code) {
    case "password_required":
      byId("join-password-row").hidden = false;
      return password ? "That password is not right: try again" : "This server is private: give its password";
    case "name_taken":
    case "bad_name":
      return `${error.message}`;
    case "banned":
      return `You are banned from this server: ${error.message}`;
    case "server_full":
      return `The server is full right now: try again later (${error.message})`;
    default:
      return reason;
  }
}
function showStatus(status) {
  const line = byId("status");
  document.body.classList.toggle("offline", status.state === "offline" || status.state === "connecting");
  switch (status.state) {
    case "connecting":
      line.hidden = welcome === void 0;
      line.textContent = "Connecting\u2026";
      return;
    case "online":
      line.hidden = true;
      line.textContent = "";
      return;
    case "offline": {
      const waiting = pendingCount();
      line.hidden = false;
      line.textContent = `Offline (${status.reason}): trying again in ${Math.ceil(status.retryInMs / 1e3)} s.` + (waiting ? ` ${waiting} ${waiting === 1 ? "message waits" : "messages wait"} to be sent.` : " What you send waits.");
      return;
    }
    case "ended": {
      const wasIn = welcome !== void 0;
      endSession();
      link = void 0;
      const why = status.error ? `Disconnected: ${status.reason}` : status.reason;
      showJoin(wasIn ? why : joinError(status.error, status.reason));
    }
  }
}
function pendingCount() {
  let count = 0;
  for (const c of model.conversations.values()) {
    count += c.entries.filter((e) => e.kind === "pending").length;
  }
  return count;
}
function receive(frame) {
  handle(frame);
  restoreViewOnce();
}
function handle(frame) {
  switch (frame.type) {
    case "welcome":
      return welcomed(frame);
    case "room":
      return enteredRoom(frame);
    case "message":
    case "private":
      return messageArrived(frame);
    case "history": {
      const conversation = frame.room !== void 0 ? model.room(frame.room) : [
        ...model.conversations.values()
      ].find((c) => c.peerId === frame.with);
      if (conversation) Object.assign(conversation, {
        more: frame.more,
        loading: false
      });
      break;
    }
    case "joined":
      model.arrived(frame.room ?? LOBBY, frame.name, frame.id);
      notice2(frame, [
        model.room(frame.room ?? LOBBY)
      ]);
      break;
    case "left":
      if (model.isMine(frame.name, frame.id) && frame.room !== void 0) {
        model.leave(frame.room);
        notice2(frame, [
          model.room(LOBBY)
        ]);
      } else {
        notice2(frame, model.departed(frame.room, frame.name));
      }
      break;
    case "renamed": {
      const mine = model.isMine(frame.from, frame.id);
      const where = model.renamed(frame.from, frame.to, frame.id);
      if (mine && session) session.name = frame.to;
      notice2(frame, mine ? [
        ...model.conversations.values()
      ].filter((c) => c.kind === "room") : where);
      break;
    }
    case "presence":
      notice2(frame, model.presence(frame.name, frame.away !== void 0));
      break;
    case "topic": {
      const room = model.room(frame.room);
      room.topic = frame.topic;
      notice2(frame, [
        room
      ]);
      break;
    }
    case "users": {
      const room = frame.room === void 0 ? void 0 : model.conversations.get(roomKey(frame.room));
      if (room) model.setPeople(room, frame);
      if (frame.room !== void 0 && quietWho.delete(roomKey(frame.room))) break;
      notice2(frame);
      break;
    }
    case "error":
      if (!welcome) return;
      if (frame.code === "rate_limited") {
        for (const c of model.conversations.values()) c.loading = false;
      }
      if (frame.ref === void 0 || !model.failPending(frame.ref, frame.message)) notice2(frame);
      break;
    case "challenge":
    case "ping":
    case "pong":
      return;
    default:
      notice2(frame);
  }
  saveSession();
  draw();
}
function restoreViewOnce() {
  if (restoreView === void 0 || !model.conversations.has(restoreView)) return;
  model.show(restoreView);
  restoreView = void 0;
  jumpToEnd = true;
}
function welcomed(frame) {
  const first = welcome === void 0;
  welcome = frame;
  model.me = frame.name;
  model.myId = frame.id;
  if (frame.last !== void 0) model.seen(frame.last);
  if (session) {
    session.name = frame.name;
    session.resume = frame.resume;
  }
  byId("me-name").textContent = frame.name;
  byId("me-role").textContent = frame.operator ? "operator" : "";
  byId("input").placeholder = "Message (/help for commands)";
  if (!frame.resumed) {
    model.lastLive = frame.last;
    const lobby = model.room(frame.room ?? LOBBY);
    model.setPeople(lobby, frame);
    askWho(lobby.title);
    if (first) notice2(frame, [
      lobby
    ]);
    for (const c of model.conversations.values()) {
      if (c.kind === "room" && c !== lobby) sendFrame({
        type: "join",
        room: c.title
      });
    }
  }
  if (first) {
    for (const p of session?.privates ?? []) requestHistory(model.privateWith(p.name, p.id));
    showChat();
  }
  saveSession();
  draw(first);
}
function enteredRoom(frame) {
  const room = model.room(frame.room);
  room.topic = frame.topic;
  model.setPeople(room, frame);
  askWho(frame.room);
  const key = roomKey(frame.room);
  if (joining.delete(key)) {
    model.show(key);
    jumpToEnd = true;
  } else if (!room.entries.some((e) => e.kind === "message")) {
    requestHistory(room);
  }
  saveSession();
  draw();
}
function messageArrived(frame) {
  const from = frame.fromId ?? nameKey(frame.from);
  if (ignored().includes(from) && !model.isMine(frame.from, frame.fromId)) return;
  const added = model.addMessage(frame);
  const { conversation } = added;
  if (frame.type === "private" && session && !session.privates.some((p) => conversation.peerId === p.id)) {
    session.privates = session.privates.filter((p) => nameKey(p.name) !== nameKey(conversation.title));
    session.privates.push({
      name: conversation.title,
      id: conversation.peerId
    });
  }
  if (frame.type === "private" && !added.mine) lastPrivate = {
    name: frame.from,
    id: frame.fromId
  };
  if (added.fresh && !frame.history && !added.mine) {
    const where = conversation.kind === "private" ? "privately" : `in ${conversation.title}`;
    if (conversation.key === model.current || added.mention) {
      byId("announce").textContent = `${frame.from} ${where}: ${frame.text}`;
    }
    if (added.mention) notify(`${frame.from} ${where}`, frame.text, conversation.key);
  }
  saveSession();
  draw();
}
function notice2(frame, where) {
  const lines = renderFrame(frame, {
    me: model.me,
    color: false,
    time: false,
    skipOwn: false
  }).map((line) => line.replace(/^-!- /, ""));
  if (lines.length === 0) return;
  const targets = where ?? [
    model.shown ?? model.room(LOBBY)
  ];
  for (const c of targets) {
    model.addNotice(c, lines.join("\n"), frame.type === "error" ? "error" : "info");
  }
}
function say(text, tone = "info") {
  model.addNotice(model.shown ?? model.room(LOBBY), text, tone);
  draw();
}
function askWho(room) {
  if (sendFrame({
    type: "who",
    room
  })) quietWho.add(roomKey(room));
}
function requestHistory(conversation) {
  if (conversation.loading) return;
  const where = conversation.kind === "room" ? {
    room: conversation.title
  } : {
    with: conversation.peerId ?? conversation.title
  };
  const before = conversation.oldest === void 0 ? {} : {
    before: conversation.oldest
  };
  if (sendFrame({
    type: "history",
    ...where,
    ...before,
    limit: HISTORY_PAGE
  })) {
    conversation.loading = true;
  }
}
function sendFrame(frame) {
  return link?.send(frame) ?? false;
}
function sendMessage(frame) {
  const ref = `${pageId}.${nextRef++}`;
  const conversation = frame.type === "say" ? model.room(frame.room ?? lastRoom) : model.privateWith(frame.to, frame.toId ?? idOf(frame.to));
  const toId = frame.type === "msg" ? conversation.peerId : void 0;
  model.addPending(conversation, ref, frame.text, frame.action === true);
  if (conversation.kind === "private" && model.current !== conversation.key) {
    model.show(conversation.key);
  }
  jumpToEnd = true;
  link?.send({
    ...frame,
    ...toId ? {
      toId
    } : {},
    ref,
    cid: ref
  });
  saveSession();
  draw();
}
function idOf(name) {
  for (const c of model.conversations.values()) {
    const found = c.people.find((p) => nameKey(p.name) === nameKey(name));
    if (found?.id) return found.id;
  }
  return void 0;
}
function sendText(text, action = false) {
  const shown = model.shown;
  const chars = Array.from(text);
  for (let i = 0; i < chars.length; i += MAX_TEXT_LENGTH) {
    const checked = checkText(chars.slice(i, i + MAX_TEXT_LENGTH).join(""));
    if (!checked.ok) return say(checked.error, "error");
    const piece = checked.value;
    if (shown?.kind === "private") {
      sendMessage({
        type: "msg",
        to: shown.title,
        ...shown.peerId ? {
          toId: shown.peerId
        } : {},
        text: piece,
        action
      });
    } else {
      sendMessage({
        type: "say",
        room: shown?.title ?? LOBBY,
        text: piece,
        action
      });
    }
  }
}
function submitLine(line, wasPasted) {
  if (line.trim() === "") return;
  const command = wasPasted ? void 0 : parseCommand(line);
  if (!command) return sendText(line.startsWith("//") && !wasPasted ? line.slice(1) : line);
  const name = findCommand(CHAT_COMMANDS, command.name);
  if (name === void 0 || OPERATOR_ONLY.has(name) && !welcome?.operator) {
    return say(unknownCommand(command.name), "error");
  }
  const context = {
    room: lastRoom,
    lastPrivate,
    oldest: model.conversations.get(roomKey(lastRoom))?.oldest
  };
  handlers[name](command.args, context);
}
function sendBuilt(result) {
  if (!result.ok) return say(result.error, "error");
  const frame = result.value;
  if (frame.type === "say" || frame.type === "msg") return sendMessage(frame);
  if (frame.type === "join") joining.add(roomKey(frame.room));
  if (frame.type === "history" && frame.room !== void 0) {
    model.room(frame.room).loading = true;
  }
  if (!sendFrame(frame)) say("Not connected: try again once back online", "error");
}
var handlers = {
  ...frameCommandHandlers((build) => (args, context) => sendBuilt(build(args, context))),
  help: (args) => {
    const names = commandNames(CHAT_COMMANDS).filter((n) => welcome?.operator || !OPERATOR_ONLY.has(n));
    const lines = commandHelp(CHAT_COMMANDS, {
      names,
      ...args.trim() ? {
        name: args.trim()
      } : {}
    });
    say((args.trim() ? [] : [
      "Commands (Enter sends, Shift+Enter adds a line, Tab completes):"
    ]).concat(lines).join("\n"));
  },
  me: (args) => args.trim() ? sendText(args, true) : say("Usage: /me <action>", "error"),
  switch: (args) => {
    const target = args.trim();
    const key = target.startsWith("#") ? roomKey(target) : `@${idOf(target) ?? nameKey(target)}`;
    if (!model.conversations.has(key)) {
      return say(`You are not in ${target || "that room"}: /join it first`, "error");
    }
    pick(key);
  },
  ignore: (args) => {
    const name = args.trim();
    if (!name) {
      return say(ignored().length ? `Ignoring: ${ignored().join(", ")}` : "You ignore nobody");
    }
    setIgnored([
      ...ignored(),
      idOf(name) ?? nameKey(name)
    ]);
    say(`Ignoring ${name}: their messages are hidden from you`);
  },
  unignore: (args) => {
    const name = args.trim();
    setIgnored(ignored().filter((key) => key !== (idOf(name) ?? nameKey(name)) && key !== nameKey(name)));
    say(`${name} is no longer ignored`);
  },
  bell: (args) => {
    const off = args.trim().toLowerCase() === "off";
    localStorage.setItem(BELL_KEY, off ? "off" : "on");
    if (!off) globalThis.Notification?.requestPermission().catch(() => {
    });
    say(off ? "No notifications" : "Notifications for mentions and private messages while the page is hidden");
  },
  connect: () => {
    const encrypted = location.protocol === "https:" ? "encrypted (https)" : "not encrypted (http)";
    say(`Connected to ${location.host}, ${encrypted}, as ${model.me}. To use another server, open its page.`);
  },
  quit: (args) => {
    link?.close(args.trim() ? {
      type: "bye",
      message: args.trim()
    } : {
      type: "bye"
    });
  }
};
function ignored() {
  try {
    return JSON.parse(localStorage.getItem(IGNORE_KEY) ?? "[]");
  } catch {
    return [];
  }
}
function setIgnored(keys) {
  localStorage.setItem(IGNORE_KEY, JSON.stringify([
    ...new Set(keys)
  ]));
}
function notify(title, body, key) {
  if (model.visible || localStorage.getItem(BELL_KEY) === "off") return;
  if (globalThis.Notification?.permission !== "granted") return;
  const shown = new Notification(title, {
    body: body.slice(0, 200),
    tag: key
  });
  shown.onclick = () => {
    globalThis.focus();
    pick(key);
  };
}
function draw(jump = false) {
  jumpToEnd ||= jump;
  if (drawPending) return;
  drawPending = true;
  setTimeout(() => {
    drawPending = false;
    const shown = model.shown;
    if (shown?.kind === "room") lastRoom = shown.title;
    drawList(model, pick);
    drawConversation(shown, jumpToEnd);
    jumpToEnd = false;
    const unread = model.unread;
    byId("side-unread").hidden = unread === 0;
    byId("side-unread").textContent = String(unread);
    document.title = `${unread ? `(${unread}) ` : ""}${shown?.title ?? "Chat"} \xB7 ${welcome?.server.name ?? "chat"}`;
    fillView();
  }, 0);
}
function fillView() {
  const log = byId("log");
  const shown = model.shown;
  if (shown?.more && !shown.loading && log.scrollHeight <= log.clientHeight && link?.online) {
    requestHistory(shown);
  }
}
function pick(key) {
  model.show(key);
  closeDrawers();
  saveSession();
  draw(true);
  byId("input").focus();
}
var completion;
function complete(input) {
  const end = input.selectionStart;
  if (!completion) {
    const start2 = input.value.slice(0, end).search(/\S*$/);
    const word = input.value.slice(start2, end).toLowerCase();
    if (word === "") return false;
    const people = model.shown?.kind === "room" ? model.shown.people.map((p) => p.name) : [];
    const words = word.startsWith("/") && start2 === 0 ? commandWords(CHAT_COMMANDS).filter((w) => welcome?.operator || !OPERATOR_ONLY.has(w.slice(1))) : word.startsWith("#") ? model.list().filter((c) => c.kind === "room").map((c) => c.title) : [
      ...people,
      ...model.list().filter((c) => c.kind === "private").map((c) => c.title)
    ];
    const choices = [
      ...new Set(words)
    ].filter((w) => w.toLowerCase().startsWith(word) && w.toLowerCase() !== word);
    if (choices.length === 0) return word.length > 0;
    completion = {
      start: start2,
      choices,
      index: -1
    };
  }
  completion.index = (completion.index + 1) % completion.choices.length;
  const choice = `${completion.choices[completion.index]} `;
  const wordEnd = input.value.slice(completion.start).search(/\s|$/) + completion.start;
  input.value = input.value.slice(0, completion.start) + choice + input.value.slice(wordEnd + 1);
  input.selectionStart = input.selectionEnd = completion.start + choice.length;
  return true;
}
function onKey(event) {
  const input = event.target;
  if (event.key === "Tab" && !event.shiftKey && !event.ctrlKey && !event.altKey) {
    if (complete(input)) event.preventDefault();
    return;
  }
  completion = void 0;
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    byId("composer").requestSubmit();
  } else if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
    event.preventDefault();
    const keys = model.list().map((c) => c.key);
    const at = keys.indexOf(model.current) + (event.key === "ArrowUp" ? -1 : 1);
    if (keys.length) pick(keys[(at + keys.length) % keys.length]);
  }
}
function submitComposer(event) {
  event.preventDefault();
  const input = byId("input");
  const line = input.value;
  input.value = "";
  submitLine(line, pasted);
  pasted = false;
  fitInput(input);
}
function fitInput(input) {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}
function onScroll() {
  const shown = model.shown;
  if (shown?.more && !shown.loading && byId("log").scrollTop < 80) {
    requestHistory(shown);
    draw();
  }
}
function closeDrawers() {
  document.body.classList.remove("side-open", "people-open");
  byId("toggle-side").setAttribute("aria-expanded", "false");
  byId("toggle-people").setAttribute("aria-expanded", "false");
}
function toggle(which) {
  const open = document.body.classList.toggle(`${which}-open`);
  byId(`toggle-${which}`).setAttribute("aria-expanded", String(open));
  if (open) byId(which).querySelector("button, [tabindex]")?.focus();
}
function joinRoomForm(event) {
  event.preventDefault();
  const field = byId("new-room-name");
  const typed = field.value.trim();
  const room = checkRoom(typed.startsWith("#") ? typed : `#${typed}`);
  if (!room.ok) return say(room.error, "error");
  field.value = "";
  sendBuilt({
    ok: true,
    value: {
      type: "join",
      room: room.value
    }
  });
}
function setUp() {
  byId("join-host").textContent = location.host;
  byId("join-name").value = localStorage.getItem(NAME_KEY) ?? "";
  byId("join-form").addEventListener("submit", submitJoin);
  byId("composer").addEventListener("submit", submitComposer);
  byId("new-room").addEventListener("submit", joinRoomForm);
  const input = byId("input");
  input.addEventListener("keydown", onKey);
  input.addEventListener("paste", () => pasted ||= input.value === "");
  input.addEventListener("input", () => {
    completion = void 0;
    if (input.value === "") pasted = false;
    fitInput(input);
  });
  byId("log").addEventListener("scroll", onScroll, {
    passive: true
  });
  byId("log").addEventListener("click", closeDrawers);
  byId("log-top").addEventListener("click", (event) => {
    if (event.target.id === "earlier" && model.shown) requestHistory(model.shown);
    draw();
  });
  byId("toggle-side").addEventListener("click", () => toggle("side"));
  byId("toggle-people").addEventListener("click", () => toggle("people"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeDrawers();
  });
  document.addEventListener("visibilitychange", () => {
    model.visible = !document.hidden;
    model.markRead();
    draw();
  });
  globalThis.addEventListener("pagehide", saveSession);
  model.visible = !document.hidden;
  session = loadSession();
  restoreView = session?.view;
  if (session) start(true);
  else showJoin();
}
setUp();
