/**
 * The chat wire protocol: the contract between the server, the terminal client and the browser
 * page.
 *
 * Newline-delimited JSON: one JSON object per line, UTF-8, `\n`-terminated, at most
 * {@linkcode MAX_FRAME_BYTES} per line including the newline (over WebSocket, one object per
 * text message). Every frame has a string `type`. This module holds every rule the ends must
 * agree on: the frame types and their validation, the error codes, the limits, and the name,
 * room, text and address rules.
 *
 * It is pure TypeScript: it imports nothing and touches no `Deno` API, so a browser can load it
 * as it is (a test holds it to that).
 *
 * @module
 */

// ==== Constants ====

/** The product's version, reported by both programs and in the server's welcome. */
export const VERSION = "0.1.0";
/** The TCP port the server listens on and the client connects to by default. */
export const DEFAULT_PORT = 5050;
/** The TLS port: next to the plain one. */
export const DEFAULT_TLS_PORT = 5051;
/** The server's HTTP port for the web page and its WebSocket (`/ws`); HTTPS is the next one. */
export const DEFAULT_WEB_PORT = 5080;
/** The longest line either side accepts, in bytes, including the `\n`. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** The longest name, in characters. */
export const MAX_NAME_LENGTH = 24;
/** The longest message text, in characters. */
export const MAX_TEXT_LENGTH = 2000;
/** The longest `client` info field in a hello (`app`, `os`, `host`), in characters. */
export const MAX_INFO_LENGTH = 64;
/** The longest `ref` a client may attach to a `say`. */
export const MAX_REF_LENGTH = 64;
/** The longest room name, in characters, not counting the `#`. */
export const MAX_ROOM_LENGTH = 32;
/** The longest topic or away message, in characters. */
export const MAX_TOPIC_LENGTH = 200;
/** The room everyone is in on arrival; it never disappears. */
export const LOBBY = "#lobby";
/** A `users` list names at most this many people; `count` gives the total. */
export const MAX_LISTED_USERS = 500;
/** The most rooms one person can be in at once, the lobby included. */
export const MAX_ROOMS_PER_MEMBER = 50;
/** A `room_list` names at most this many rooms (the biggest); `count` gives the total. */
export const MAX_LISTED_ROOMS = 200;
/** How long a new connection has to send its hello, in milliseconds. */
export const HELLO_TIMEOUT_MS = 10_000;
/** How long either side waits in silence before it pings, and then for an answer, in milliseconds. */
export const HEARTBEAT_MS = 30_000;
/** The most messages one `history` request returns. */
export const MAX_HISTORY_PAGE = 200;
/** How many messages `/history` asks for when not told. */
export const HISTORY_PAGE = 50;
/** Names nobody may take, compared case-insensitively. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  "server",
  "system",
  "admin",
  "operator",
  "you",
]);

/**
 * A person id: `k:` and 12 characters of the fingerprint of the person's key, or `s:` and 12 random
 * characters for a person without a key (their session), base64url. Stable across renames and
 * resumes; not a secret.
 */
const PERSON_ID_REGEXP = /^[ks]:[A-Za-z0-9_-]{12}$/;
/** An Ed25519 public key (32 bytes) or a nonce (32 bytes), base64url without padding. */
const KEY_REGEXP = /^[A-Za-z0-9_-]{43}$/;
/** An Ed25519 signature (64 bytes), base64url without padding. */
const SIGNATURE_REGEXP = /^[A-Za-z0-9_-]{86}$/;
/** A key fingerprint as shown to people: `SHA256:` and the hash in base64 (as OpenSSH shows it). */
const FINGERPRINT_REGEXP = /^SHA256:[A-Za-z0-9+/]{43}$/;
/**
 * The most UTF-16 code units a name is read in before it is normalised: 8 for each allowed
 * character leaves room for letters with combining marks, and keeps normalising (quadratic in
 * long runs of combining marks) cheap whatever arrives.
 */
export const MAX_NAME_INPUT = MAX_NAME_LENGTH * 8;
/** The same bound for a room name, `#` included. */
export const MAX_ROOM_INPUT = (MAX_ROOM_LENGTH + 1) * 8;
/**
 * Characters that show nothing: default-ignorable code points (Unicode UAX #44), such as U+3164
 * HANGUL FILLER (a letter) and U+200B ZERO WIDTH SPACE.
 */
const INVISIBLE_REGEXP = /\p{Default_Ignorable_Code_Point}/u;
/**
 * The scripts a name's letters are told apart by, for the single-script rule of Unicode TR39:
 * a name may not mix them, except in the combinations one language writes together.
 */
const SCRIPTS = [
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
  "Bopomofo",
] as const;
const SCRIPT_REGEXPS = SCRIPTS.map((name) =>
  [name, new RegExp(`^\\p{Script=${name}}$`, "u")] as const
);
/**
 * The mixes TR39's "highly restrictive" level allows as one script, each with Latin: Japanese (Han
 * with kana), Korean (Han with Hangul), Chinese (Han with Bopomofo).
 */
const SCRIPT_MIXES: readonly ReadonlySet<string>[] = [
  new Set(["Latin", "Han", "Hiragana", "Katakana"]),
  new Set(["Latin", "Han", "Hangul"]),
  new Set(["Latin", "Han", "Bopomofo"]),
];
/** Letters (any script), digits, `_` and `-`, one to {@linkcode MAX_NAME_LENGTH} of them. */
const NAME_REGEXP = /^[\p{L}\p{N}_-]{1,24}$/u;
/** `#` and then letters (any script), digits, `_` and `-`, one to {@linkcode MAX_ROOM_LENGTH}. */
const ROOM_REGEXP = /^#[\p{L}\p{N}_-]{1,32}$/u;

/**
 * A character that shows something: not white space, not invisible (default-ignorable, format),
 * not a combining mark alone, not the blank Braille pattern U+2800.
 */
const VISIBLE_REGEXP = /[^\s\p{Default_Ignorable_Code_Point}\p{M}\p{Cf}\u2800]/u;
/** What a `ref` may contain: short, printable, no spaces. */
const REF_REGEXP = /^[A-Za-z0-9_.:-]{1,64}$/;
/** C0 controls except tab and newline, DEL, and C1 controls. */
const CONTROL_REGEXP = /(?![\t\n])\p{Cc}/gu;
/**
 * Everything a terminal could act on: all C0/C1 controls (newline and tab included), DEL, and the
 * bidirectional overrides that can make text read differently from what it is.
 */
const TERMINAL_UNSAFE_REGEXP = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/gu;

// ==== Results ====

/**
 * The outcome of every check or parse that can fail: the value, or why not. `E` is a message for
 * a person unless a caller needs more (the decoders give a {@linkcode DecodeError}).
 */
export type Result<T, E = string> = { ok: true; value: T } | { ok: false; error: E };

/** A successful {@linkcode Result}. */
export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

/** A failed {@linkcode Result}. */
export function fail<E>(error: E): { ok: false; error: E } {
  return { ok: false, error };
}

// ==== Error codes ====

/**
 * Every error code the server sends, with what it means. The README's table is this table.
 * Codes marked fatal are followed by the server closing the connection.
 */
export const ERROR_CODES = {
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
  server_full:
    "The server, or its limit for your address, has no room for another connection (fatal)",
  replaced: "The same session connected again from elsewhere (fatal)",
  bad_signature: "The hello's key could not be verified: a bad or late proof (fatal)",
  storage_failed: "The server could not store the message: it was not sent; try again",
  password_required: "The server is private: give its password (or use an invite)",
  not_admitted: "The server is private and admits only the people it lists (fatal)",
} as const;

/** A stable error code, as sent in an `error` frame. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes after which the server closes the connection. */
export const FATAL_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
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
  "not_admitted",
]);

/**
 * The fatal codes that say nothing against trying again: a client that was cut off for one of
 * these reconnects (and resumes) on its own.
 */
export const RECONNECT_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "timeout",
  "too_slow",
  "shutting_down",
  "server_full",
]);

// ==== Frames ====

/** Facts a client chooses to report about itself in its hello. */
export interface ClientInfo {
  /** The client program and its version, e.g. `chat-client 0.1.0`. */
  app?: string;
  /** The operating system, e.g. `linux`. */
  os?: string;
  /** The computer's host name. */
  host?: string;
}

/**
 * Client → server: the first frame, claiming a name. After a disconnection a client sends the
 * `resume` token from its welcome and the id of the `last` message it saw: the server gives it its
 * name and rooms back and sends exactly the messages it missed.
 */
export interface HelloFrame {
  type: "hello";
  name: string;
  client?: ClientInfo;
  resume?: string;
  last?: number;
  /**
   * The client's identity: an Ed25519 public key (32 bytes, base64url). The server answers with a
   * `challenge` and trusts the key only once the `proof` signs it.
   */
  key?: string;
  /** A private server's password (send it over TLS only). */
  password?: string;
  /** A one-time invite's secret (the part after `#key=` of an invite), for a private server. */
  invite?: string;
}
/**
 * Client → server: the answer to a `challenge`: an Ed25519 signature (64 bytes, base64url) of
 * {@linkcode proofText} made with the key of the hello.
 */
export interface ProofFrame {
  type: "proof";
  signature: string;
}
/**
 * Client → server: a message for a room (by default the room the sender last joined or
 * switched to); `ref` comes back in the message as an acknowledgement, `action` makes it an emote.
 * `cid` is an id the client chose for this message: the server stores a message with a given
 * `cid` once per sender, so sending it again after an unclear failure only repeats the
 * acknowledgement.
 */
export interface SayFrame {
  type: "say";
  text: string;
  room?: string;
  ref?: string;
  cid?: string;
  action?: boolean;
}
/** Client → server: a private message to one person; `ref` and `cid` as in {@linkcode SayFrame}. */
export interface MsgFrame {
  type: "msg";
  to: string;
  /** The person's id: when given, the message goes to that person whatever name they use now. */
  toId?: string;
  text: string;
  ref?: string;
  cid?: string;
  action?: boolean;
}
/** Client → server: asks for the people in a room, or everyone present when `room` is absent. */
export interface WhoFrame {
  type: "who";
  room?: string;
}
/** Client → server: joins a room (creating it), or makes an already joined room current. */
export interface JoinFrame {
  type: "join";
  room: string;
}
/** Client → server: leaves a room (by default the current one). */
export interface LeaveFrame {
  type: "leave";
  room?: string;
}
/** Client → server: asks for the list of rooms. */
export interface RoomsFrame {
  type: "rooms";
}
/** Client → server: sets a room's topic, or asks for it when `topic` is absent. */
export interface TopicFrame {
  type: "topic";
  room: string;
  topic?: string;
}
/** Client → server: asks about one person. */
export interface WhoisFrame {
  type: "whois";
  name: string;
}
/** Client → server: changes one's name. */
export interface NickFrame {
  type: "nick";
  name: string;
}
/** Client → server: marks one away; the message is shown to whoever writes privately. */
export interface AwayFrame {
  type: "away";
  message: string;
}
/** Client → server: no longer away. */
export interface BackFrame {
  type: "back";
}
/** Either direction: asks the peer to answer with a pong. */
export interface PingFrame {
  type: "ping";
}
/** Either direction: the answer to a ping. */
export interface PongFrame {
  type: "pong";
}
/** Client → server: the client is leaving on purpose, with an optional goodbye. */
export interface ByeFrame {
  type: "bye";
  message?: string;
}
/**
 * Client → server: asks for a room's earlier messages (by default the current room's): at most
 * `limit` of them, all older than message id `before` (by default the newest).
 */
export interface HistoryFrame {
  type: "history";
  room?: string;
  /** Instead of a room: the private conversation with this person (a name or a person id). */
  with?: string;
  before?: number;
  limit?: number;
}
/** Client → server: binds the sender's current name to its identity, so only it can use the name. */
export interface RegisterFrame {
  type: "register";
}
/** Client → server: frees the sender's registered name. */
export interface UnregisterFrame {
  type: "unregister";
}
/** Client → server, operators only: disconnects someone (a held person too). */
export interface KickFrame {
  type: "kick";
  name: string;
  reason?: string;
}
/**
 * Client → server, operators only: keeps a name, an identity (`SHA256:...`), or an IP address or
 * network (`10.0.0.5`, `2001:db8::/32`) out, for `minutes` or for good.
 */
export interface BanFrame {
  type: "ban";
  target: string;
  minutes?: number;
  reason?: string;
}
/** Client → server, operators only: lifts a ban. */
export interface UnbanFrame {
  type: "unban";
  target: string;
}
/** Client → server, operators only: asks for the bans in force (answered with `ban_list`). */
export interface BansFrame {
  type: "bans";
}
/** Client → server: asks for the message of the day, or (operators only) sets it to `text`. */
export interface MotdFrame {
  type: "motd";
  text?: string;
}
/** Client → server, operators only: says something to everyone on the server. */
export interface AnnounceRequestFrame {
  type: "announce";
  text: string;
}
/** Client → server: asks who runs a room and how (answered with a `room_info`). */
export interface RoomInfoRequestFrame {
  type: "room_info";
  room: string;
}
/** Client → server, a room's owner: changes its settings (what is left out stays as it is). */
export interface RoomSetFrame {
  type: "room_set";
  room: string;
  /** Only the owner, moderators and the server's operators may set the topic. */
  topicLocked?: boolean;
  /** Only those invited (and the owner, moderators, operators) may join. */
  inviteOnly?: boolean;
}
/** The roles a room's owner gives: `owner` hands the room over, `member` takes a role back. */
export const ROOM_ROLES = ["owner", "moderator", "member"] as const;
/** A role in a room, as {@linkcode ROOM_ROLES} lists them. */
export type RoomRole = typeof ROOM_ROLES[number];
/** Client → server, a room's owner: gives someone present a role in the room. */
export interface RoomRoleFrame {
  type: "room_role";
  room: string;
  name: string;
  role: RoomRole;
}
/** Client → server, a room's owner or moderators: invites someone present to the room. */
export interface InviteFrame {
  type: "invite";
  room: string;
  name: string;
}
/** Client → server, a room's owner or moderators: takes someone out of the room. */
export interface RemoveFrame {
  type: "remove";
  room: string;
  name: string;
  reason?: string;
}

/** Server → client: who runs a room and how, the answer to a `room_info` request. */
export interface RoomInfoFrame {
  type: "room_info";
  room: string;
  /** The owner's name then, and person id; none for `#lobby` (the operators') or a room with none. */
  owner?: string;
  ownerId?: string;
  moderators: string[];
  topicLocked: boolean;
  inviteOnly: boolean;
}

/** Every frame a client may send. */
export type ClientFrame =
  | HelloFrame
  | SayFrame
  | MsgFrame
  | WhoFrame
  | JoinFrame
  | LeaveFrame
  | RoomsFrame
  | TopicFrame
  | WhoisFrame
  | NickFrame
  | AwayFrame
  | BackFrame
  | PingFrame
  | PongFrame
  | ByeFrame
  | HistoryFrame
  | ProofFrame
  | RegisterFrame
  | UnregisterFrame
  | KickFrame
  | BanFrame
  | UnbanFrame
  | BansFrame
  | MotdFrame
  | AnnounceRequestFrame
  | RoomInfoRequestFrame
  | RoomSetFrame
  | RoomRoleFrame
  | InviteFrame
  | RemoveFrame;

/** The server as a welcome describes it. */
export interface ServerInfo {
  name: string;
  version: string;
  /** A random id the server keeps for good: what a client remembers it by. */
  id?: string;
}
/** Server → client: the hello carried a key; sign {@linkcode proofText} with it and send `proof`. */
export interface ChallengeFrame {
  type: "challenge";
  /** 32 random bytes, base64url, never used twice. */
  nonce: string;
}
/** Server → client: the hello was accepted; the member is in {@linkcode LOBBY}. */
export interface WelcomeFrame {
  type: "welcome";
  name: string;
  /** Your person id, as others see it on your messages. */
  id?: string;
  /** Your key's fingerprint, when the hello carried a verified key. */
  fingerprint?: string;
  /** Whether you may use the operator commands. */
  operator?: boolean;
  /** The people in the lobby. */
  users: string[];
  /** Their person ids, in the same order as `users`. */
  ids?: string[];
  /** How many people are in the lobby; `users` may list only the first {@linkcode MAX_LISTED_USERS}. */
  count?: number;
  server: ServerInfo;
  /** The room the member starts in. */
  room?: string;
  /** The message of the day. */
  motd?: string;
  /** The token that lets this session resume after a disconnection; keep it secret. */
  resume?: string;
  /** Present and true when a `resume` in the hello gave back an earlier session. */
  resumed?: boolean;
  /** The newest message id when this welcome was sent: where "what I missed" starts. */
  last?: number;
  /** How fast the client may send: `rate` frames a second after a `burst`; 0 means no limit. */
  limits?: { rate: number; burst: number };
}
/**
 * Server → client: a message in a room, sent to the room's members, its sender included. Ids grow
 * with time across rooms and restarts. `history` marks an earlier message sent after a `history`
 * frame rather than live.
 */
export interface MessageFrame {
  type: "message";
  id: number;
  ts: number;
  from: string;
  /** The sender's person id (absent for the server and for messages from before ids). */
  fromId?: string;
  text: string;
  room?: string;
  ref?: string;
  action?: boolean;
  history?: boolean;
}
/** Server → client: a private message, sent to its recipient and (as acknowledgement) its sender. */
export interface PrivateFrame {
  type: "private";
  id: number;
  ts: number;
  from: string;
  fromId?: string;
  to: string;
  toId?: string;
  text: string;
  ref?: string;
  action?: boolean;
  /** Marks an earlier message of the conversation, sent after a `history` frame. */
  history?: boolean;
}
/** Server → client: somebody arrived in a room. */
export interface JoinedFrame {
  type: "joined";
  name: string;
  /** The person's id. */
  id?: string;
  ts: number;
  room?: string;
}
/** Server → client: somebody left a room (or the server), and why. */
export interface LeftFrame {
  type: "left";
  name: string;
  id?: string;
  ts: number;
  reason: string;
  room?: string;
}
/** Server → client: the answer to `who`. */
export interface UsersFrame {
  type: "users";
  users: string[];
  /** Their person ids, in the same order as `users`. */
  ids?: string[];
  count?: number;
  room?: string;
  /** Those of `users` who are away: marked so, or held after their connection dropped. */
  away?: string[];
}
/** Server → client: you are now in this room (after `join`, or a server-side switch). */
export interface RoomFrame {
  type: "room";
  room: string;
  topic: string;
  users: string[];
  ids?: string[];
  count: number;
}
/** One line of a room list. */
export interface RoomInfo {
  room: string;
  count: number;
  topic: string;
}
/** Server → client: the answer to `rooms`. */
export interface RoomListFrame {
  type: "room_list";
  rooms: RoomInfo[];
  /** How many rooms there are; `rooms` lists at most {@linkcode MAX_LISTED_ROOMS}. */
  count?: number;
}
/** Server → client: a room's topic, when asked or when somebody (`by`) changes it. */
export interface TopicInfoFrame {
  type: "topic";
  room: string;
  topic: string;
  by?: string;
  ts?: number;
}
/** Server → client: somebody who shares a room with you changed their name. */
export interface RenamedFrame {
  type: "renamed";
  from: string;
  to: string;
  /** The person's id, the same before and after. */
  id?: string;
  ts: number;
}
/** Server → client: the answer to `whois`. */
export interface WhoisInfoFrame {
  type: "whois";
  name: string;
  id?: string;
  /** The fingerprint of the person's verified key; absent for people without one. */
  fingerprint?: string;
  /** Whether the name is registered to that key. */
  registered?: boolean;
  /** Whether the person is one of the server's operators. */
  operator?: boolean;
  rooms: string[];
  /** Milliseconds since the person last said anything. */
  idle: number;
  /** When the person arrived. */
  since: number;
  away?: string;
  /** What the person's client reported; `host` only for operators. */
  client?: ClientInfo;
}
/** Server → client: a line for this person only (command replies, away notices). */
export interface NoticeFrame {
  type: "notice";
  text: string;
}
/** Server → client: the server's operator speaking to everyone. */
export interface AnnounceFrame {
  type: "announce";
  text: string;
  ts: number;
}
/**
 * Server → client: a page of a room's history follows: `count` messages marked `history`, oldest
 * first. `more` says whether earlier ones exist.
 */
export interface HistoryInfoFrame {
  type: "history";
  /** The room, or (for a private conversation) absent. */
  room?: string;
  /** The person of a private conversation's history: their id. */
  with?: string;
  count: number;
  more: boolean;
}
/**
 * Server → client: somebody who shares a room with you lost their connection and is `away` for
 * now (their name is held for them), or (no `away`) is back.
 */
export interface PresenceFrame {
  type: "presence";
  name: string;
  id?: string;
  ts: number;
  away?: string;
}
/** One ban as `ban_list` lists it. */
export interface BanInfo {
  /** What is banned, as written: a name, `SHA256:...`, an address or `10.0.0.0/24`. */
  target: string;
  kind: "name" | "identity" | "address";
  /** When the ban ends, in milliseconds since 1970; absent for good. */
  until?: number;
  /** Who banned it (a name, or `console`). */
  by?: string;
  reason?: string;
}
/** Server → client: the answer to `bans`. */
export interface BanListFrame {
  type: "ban_list";
  bans: BanInfo[];
}
/** Server → client: something the client did was refused, or the connection is about to close. */
export interface ErrorFrame {
  type: "error";
  code: ErrorCode;
  message: string;
  ref?: string;
}

/** Every frame the server may send. */
export type ServerFrame =
  | WelcomeFrame
  | MessageFrame
  | PrivateFrame
  | JoinedFrame
  | LeftFrame
  | UsersFrame
  | RoomFrame
  | RoomListFrame
  | TopicInfoFrame
  | RenamedFrame
  | WhoisInfoFrame
  | NoticeFrame
  | AnnounceFrame
  | HistoryInfoFrame
  | PresenceFrame
  | ChallengeFrame
  | BanListFrame
  | RoomInfoFrame
  | PingFrame
  | PongFrame
  | ErrorFrame;

/** Any frame, either direction. */
export type Frame = ClientFrame | ServerFrame;

// ==== Costs ====

/**
 * What a client frame costs against the sending allowance (`limits` in the welcome): 1, but for
 * those whose answer is large (a page of history, the room list, a list of people), which cost
 * more, so that what a client can make the server send stays in proportion to what it sends.
 * A `bye` is free. A client that paces itself by these costs is never refused.
 */
export const FRAME_COSTS: { readonly [K in ClientFrame["type"]]?: number } = {
  history: 5,
  rooms: 5,
  who: 2,
  bye: 0,
};

/** What a frame costs against the sending allowance ({@linkcode FRAME_COSTS}, else 1). */
export function frameCost(frame: ClientFrame): number {
  return FRAME_COSTS[frame.type] ?? 1;
}

// ==== Encoding and decoding ====

const encoder = new TextEncoder();

/** Serialises a frame to its wire form: JSON, a `\n`, UTF-8. */
export function encodeFrame(frame: Frame): Uint8Array {
  return encoder.encode(JSON.stringify(frame) + "\n");
}

/** Why a line could not be decoded into a frame. */
export type DecodeErrorKind = "bad_json" | "bad_field" | "unknown_type" | "too_large";

/** A line that is not a valid frame, with what is wrong with it. */
export class DecodeError extends Error {
  /** What kind of fault this is. */
  readonly kind: DecodeErrorKind;
  constructor(kind: DecodeErrorKind, message: string) {
    super(message);
    this.name = "DecodeError";
    this.kind = kind;
  }
}

/** The outcome of decoding one line: a typed frame, or a typed error. */
export type DecodeResult<F> = Result<F, DecodeError>;

type JsonObject = Record<string, unknown>;
type FrameReader<F> = (o: JsonObject) => F;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function badField(key: string, want: string): DecodeError {
  return new DecodeError("bad_field", `Field "${key}" must be ${want}`);
}

function readString(o: JsonObject, key: string): string {
  const value = o[key];
  if (typeof value !== "string") throw badField(key, "a string");
  return value;
}

function readInteger(o: JsonObject, key: string): number {
  const value = o[key];
  if (!Number.isSafeInteger(value)) throw badField(key, "an integer");
  return value as number;
}

function readStringArray(o: JsonObject, key: string): string[] {
  const value = o[key];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw badField(key, "an array of strings");
  }
  return value;
}

/** Copies `key` into a new object when present, so optional fields stay absent, never undefined. */
function optional<T>(
  o: JsonObject,
  key: string,
  read: (o: JsonObject, key: string) => T,
): Record<string, T> {
  return o[key] === undefined ? {} : { [key]: read(o, key) };
}

function readClientInfo(o: JsonObject, key: string): ClientInfo {
  const info = o[key];
  if (!isObject(info)) throw badField(key, "an object");
  return {
    ...optional(info, "app", readString),
    ...optional(info, "os", readString),
    ...optional(info, "host", readString),
  };
}

function readBoolean(o: JsonObject, key: string): boolean {
  const value = o[key];
  if (typeof value !== "boolean") throw badField(key, "true or false");
  return value;
}

function readRoomRole(o: JsonObject, key: string): RoomRole {
  const value = o[key];
  if (typeof value !== "string" || !(ROOM_ROLES as readonly string[]).includes(value)) {
    throw badField(key, `one of ${ROOM_ROLES.join(", ")}`);
  }
  return value as RoomRole;
}

function readLimits(o: JsonObject, key: string): { rate: number; burst: number } {
  const limits = o[key];
  if (!isObject(limits)) throw badField(key, "an object");
  return { rate: readNumber(limits, "rate"), burst: readNumber(limits, "burst") };
}

function readNumber(o: JsonObject, key: string): number {
  const value = o[key];
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw badField(key, "a number of at least 0");
  }
  return value;
}

function readServerInfo(o: JsonObject, key: string): ServerInfo {
  const info = o[key];
  if (!isObject(info)) throw badField(key, "an object");
  return {
    name: readString(info, "name"),
    version: readString(info, "version"),
    ...optional(info, "id", readString),
  };
}

function readBanInfos(o: JsonObject, key: string): BanInfo[] {
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
      ...optional(item, "reason", readString),
    };
  });
}

function readRoomInfos(o: JsonObject, key: string): RoomInfo[] {
  const value = o[key];
  if (!Array.isArray(value)) throw badField(key, "an array");
  return value.map((item) => {
    if (!isObject(item)) throw badField(key, "an array of objects");
    return {
      room: readString(item, "room"),
      count: readInteger(item, "count"),
      topic: readString(item, "topic"),
    };
  });
}

function readErrorCode(o: JsonObject, key: string): ErrorCode {
  const code = readString(o, key);
  // An unknown code from a newer server is still an error: keep it readable as `bad_frame`.
  return Object.hasOwn(ERROR_CODES, code) ? code as ErrorCode : "bad_frame";
}

const CLIENT_FRAME_READERS: { [K in ClientFrame["type"]]: FrameReader<ClientFrame> } = {
  hello: (o) => ({
    type: "hello",
    name: readString(o, "name"),
    ...optional(o, "client", readClientInfo),
    ...optional(o, "resume", readString),
    ...optional(o, "last", readInteger),
    ...optional(o, "key", readString),
    ...optional(o, "password", readString),
    ...optional(o, "invite", readString),
  }),
  proof: (o) => ({ type: "proof", signature: readString(o, "signature") }),
  register: () => ({ type: "register" }),
  unregister: () => ({ type: "unregister" }),
  kick: (o) => ({
    type: "kick",
    name: readString(o, "name"),
    ...optional(o, "reason", readString),
  }),
  ban: (o) => ({
    type: "ban",
    target: readString(o, "target"),
    ...optional(o, "minutes", readNumber),
    ...optional(o, "reason", readString),
  }),
  unban: (o) => ({ type: "unban", target: readString(o, "target") }),
  bans: () => ({ type: "bans" }),
  motd: (o) => ({ type: "motd", ...optional(o, "text", readString) }),
  announce: (o) => ({ type: "announce", text: readString(o, "text") }),
  room_info: (o) => ({ type: "room_info", room: readString(o, "room") }),
  room_set: (o) => ({
    type: "room_set",
    room: readString(o, "room"),
    ...optional(o, "topicLocked", readBoolean),
    ...optional(o, "inviteOnly", readBoolean),
  }),
  room_role: (o) => ({
    type: "room_role",
    room: readString(o, "room"),
    name: readString(o, "name"),
    role: readRoomRole(o, "role"),
  }),
  invite: (o) => ({ type: "invite", room: readString(o, "room"), name: readString(o, "name") }),
  remove: (o) => ({
    type: "remove",
    room: readString(o, "room"),
    name: readString(o, "name"),
    ...optional(o, "reason", readString),
  }),
  say: (o) => ({
    type: "say",
    text: readString(o, "text"),
    ...optional(o, "room", readString),
    ...optional(o, "ref", readString),
    ...optional(o, "cid", readString),
    ...optional(o, "action", readBoolean),
  }),
  msg: (o) => ({
    type: "msg",
    to: readString(o, "to"),
    ...optional(o, "toId", readString),
    text: readString(o, "text"),
    ...optional(o, "ref", readString),
    ...optional(o, "cid", readString),
    ...optional(o, "action", readBoolean),
  }),
  who: (o) => ({ type: "who", ...optional(o, "room", readString) }),
  join: (o) => ({ type: "join", room: readString(o, "room") }),
  leave: (o) => ({ type: "leave", ...optional(o, "room", readString) }),
  rooms: () => ({ type: "rooms" }),
  topic: (o) => ({
    type: "topic",
    room: readString(o, "room"),
    ...optional(o, "topic", readString),
  }),
  whois: (o) => ({ type: "whois", name: readString(o, "name") }),
  nick: (o) => ({ type: "nick", name: readString(o, "name") }),
  away: (o) => ({ type: "away", message: readString(o, "message") }),
  back: () => ({ type: "back" }),
  ping: () => ({ type: "ping" }),
  pong: () => ({ type: "pong" }),
  bye: (o) => ({ type: "bye", ...optional(o, "message", readString) }),
  history: (o) => ({
    type: "history",
    ...optional(o, "room", readString),
    ...optional(o, "with", readString),
    ...optional(o, "before", readInteger),
    ...optional(o, "limit", readInteger),
  }),
};

const SERVER_FRAME_READERS: { [K in ServerFrame["type"]]: FrameReader<ServerFrame> } = {
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
    ...optional(o, "limits", readLimits),
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
    ...optional(o, "history", readBoolean),
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
    ...optional(o, "history", readBoolean),
  }),
  joined: (o) => ({
    type: "joined",
    name: readString(o, "name"),
    ...optional(o, "id", readString),
    ts: readInteger(o, "ts"),
    ...optional(o, "room", readString),
  }),
  left: (o) => ({
    type: "left",
    name: readString(o, "name"),
    ...optional(o, "id", readString),
    ts: readInteger(o, "ts"),
    reason: readString(o, "reason"),
    ...optional(o, "room", readString),
  }),
  users: (o) => ({
    type: "users",
    users: readStringArray(o, "users"),
    ...optional(o, "ids", readStringArray),
    ...optional(o, "count", readInteger),
    ...optional(o, "room", readString),
    ...optional(o, "away", readStringArray),
  }),
  room: (o) => ({
    type: "room",
    room: readString(o, "room"),
    topic: readString(o, "topic"),
    users: readStringArray(o, "users"),
    ...optional(o, "ids", readStringArray),
    count: readInteger(o, "count"),
  }),
  room_list: (o) => ({
    type: "room_list",
    rooms: readRoomInfos(o, "rooms"),
    ...optional(o, "count", readInteger),
  }),
  topic: (o) => ({
    type: "topic",
    room: readString(o, "room"),
    topic: readString(o, "topic"),
    ...optional(o, "by", readString),
    ...optional(o, "ts", readInteger),
  }),
  renamed: (o) => ({
    type: "renamed",
    from: readString(o, "from"),
    to: readString(o, "to"),
    ...optional(o, "id", readString),
    ts: readInteger(o, "ts"),
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
    ...optional(o, "client", readClientInfo),
  }),
  notice: (o) => ({ type: "notice", text: readString(o, "text") }),
  announce: (o) => ({ type: "announce", text: readString(o, "text"), ts: readInteger(o, "ts") }),
  history: (o) => ({
    type: "history",
    // A page of a room, or (with `with`) of a private conversation: one of the two.
    ...(o.with === undefined ? { room: readString(o, "room") } : optional(o, "room", readString)),
    ...optional(o, "with", readString),
    count: readInteger(o, "count"),
    more: readBoolean(o, "more"),
  }),
  presence: (o) => ({
    type: "presence",
    name: readString(o, "name"),
    ...optional(o, "id", readString),
    ts: readInteger(o, "ts"),
    ...optional(o, "away", readString),
  }),
  challenge: (o) => ({ type: "challenge", nonce: readString(o, "nonce") }),
  ban_list: (o) => ({ type: "ban_list", bans: readBanInfos(o, "bans") }),
  room_info: (o) => ({
    type: "room_info",
    room: readString(o, "room"),
    ...optional(o, "owner", readString),
    ...optional(o, "ownerId", readString),
    moderators: readStringArray(o, "moderators"),
    topicLocked: readBoolean(o, "topicLocked"),
    inviteOnly: readBoolean(o, "inviteOnly"),
  }),
  ping: () => ({ type: "ping" }),
  pong: () => ({ type: "pong" }),
  error: (o) => ({
    type: "error",
    code: readErrorCode(o, "code"),
    message: readString(o, "message"),
    ...optional(o, "ref", readString),
  }),
};

function decodeWith<F>(
  line: string,
  readers: Readonly<Record<string, FrameReader<F>>>,
): DecodeResult<F> {
  // A UTF-16 unit takes one to three UTF-8 bytes, so only long strings need measuring.
  if (line.length * 3 >= MAX_FRAME_BYTES && encoder.encode(line).length >= MAX_FRAME_BYTES) {
    return fail(new DecodeError("too_large", "Frame is larger than 64 KiB"));
  }
  let value: unknown;
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
    return ok(readers[type]!(value));
  } catch (error) {
    if (error instanceof DecodeError) return fail(error);
    throw error;
  }
}

/**
 * Validates one line from a client into a {@linkcode ClientFrame}. Fields the frame type does not
 * define are dropped; a missing or wrongly typed field, an unknown type or bad JSON is an error.
 */
export function decodeClientFrame(line: string): DecodeResult<ClientFrame> {
  return decodeWith(line, CLIENT_FRAME_READERS);
}

/**
 * Validates one line from the server into a {@linkcode ServerFrame}. Clients ignore frames whose
 * error kind is `unknown_type`: newer servers may send types this version does not know.
 */
export function decodeServerFrame(line: string): DecodeResult<ServerFrame> {
  return decodeWith(line, SERVER_FRAME_READERS);
}

// ==== Names and text ====

/** Builds an `error` frame for a code, with an optional human-readable detail. */
export function errorFrame(code: ErrorCode, message: string = ERROR_CODES[code]): ErrorFrame {
  return { type: "error", code, message };
}

/**
 * The form two names are compared in: `Ann` and `ann` are the same person, and so are look-alikes
 * that compatibility normalisation (NFKC) and full case folding (`Straße`, `STRASSE`) make equal.
 * The server compares names further, by their confusable skeleton (`chat/names.ts`).
 */
export function nameKey(name: string): string {
  return foldCase(name.normalize("NFKC"));
}

/**
 * Full case folding as far as JavaScript offers it: upper case then lower case, so that `ß` and
 * `ss`, `ǅ` and `ǆ` meet (Unicode's CaseFolding.txt folds them so too).
 */
export function foldCase(text: string): string {
  return text.toUpperCase().toLowerCase();
}

/**
 * Checks a name against the name rules and returns it in normal form (NFC), or an error message
 * that says what to change. The rules: 1-{@linkcode MAX_NAME_LENGTH} letters, digits, `_` or `-`;
 * nothing invisible; letters of one script (TR39's single-script rule); not a reserved name. The
 * length is checked before anything else is done with the name.
 */
export function checkName(name: string): Result<string> {
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

/**
 * Why a name or room name (already matching its pattern) could pass for something it is not:
 * invisible characters, or letters of several scripts. `undefined` when it reads as what it is.
 */
function lookProblem(text: string): string | undefined {
  if (INVISIBLE_REGEXP.test(text)) return "it has characters that show nothing";
  const scripts = new Set<string>();
  for (const char of text) {
    if (!/\p{L}/u.test(char)) continue;
    scripts.add(SCRIPT_REGEXPS.find(([, pattern]) => pattern.test(char))?.[0] ?? "Other");
  }
  if (scripts.size <= 1 || SCRIPT_MIXES.some((mix) => [...scripts].every((s) => mix.has(s)))) {
    return undefined;
  }
  return `it mixes letters of ${[...scripts].join(" and ")}: use letters of one script`;
}

/** The form two room names are compared in, like {@linkcode nameKey}. */
export function roomKey(room: string): string {
  return foldCase(room.normalize("NFKC"));
}

/**
 * Checks a room name and returns it in normal form, `#` first (`dev` becomes `#dev`), or an
 * error message that says what to change.
 */
export function checkRoom(room: string): Result<string> {
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

/**
 * Cleans a topic or an away message: one line, no control characters, at most
 * {@linkcode MAX_TOPIC_LENGTH} characters (longer text is cut).
 */
export function cleanLine(text: string): string {
  return Array.from(sanitizeForTerminal(text).toWellFormed().trim()).slice(0, MAX_TOPIC_LENGTH)
    .join("");
}

/**
 * Checks a one-line text (a topic, an away message): cleaned as {@linkcode cleanLine} does, but
 * refused, not cut, when longer than {@linkcode MAX_TOPIC_LENGTH} characters. `what` names it in
 * the error (`Topic`, `Away message`).
 */
export function checkLine(text: string, what: string): Result<string> {
  const clean = sanitizeForTerminal(text).toWellFormed().trim();
  const length = countCharacters(clean);
  if (length > MAX_TOPIC_LENGTH) {
    return fail(`${what} is longer than ${MAX_TOPIC_LENGTH} characters (${length}): shorten it`);
  }
  return ok(clean);
}

/**
 * Text with its blank lines (lines that show nothing: white space, invisible characters) dropped
 * at either end and each run of them inside cut to one empty line.
 */
function dropBlankLines(text: string): string {
  if (!text.includes("\n")) return text;
  const lines: string[] = [];
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

/**
 * Cleans message text: control characters other than tab and newline are removed, lone
 * surrogates replaced, runs of blank lines cut to one, and blank lines at either end dropped. Returns the clean text, or an error
 * when it is empty (or only white space), shows nothing (only invisible characters), or is longer
 * than {@linkcode MAX_TEXT_LENGTH} characters. Over-long input is refused before any of that.
 */
export function checkText(text: string): Result<string> {
  // Bound the work before cleaning: no character takes more than two UTF-16 units, and twice that
  // leaves room for control characters that cleaning removes.
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

/** Cleans a client-info field: no control characters, at most {@linkcode MAX_INFO_LENGTH} long. */
export function cleanInfo(value: string): string {
  return Array.from(sanitizeForTerminal(value).toWellFormed()).slice(0, MAX_INFO_LENGTH).join("");
}

/** Whether a `ref` is acceptable: 1-64 characters of letters, digits and `_.:-`. */
export function isValidRef(ref: string): boolean {
  return REF_REGEXP.test(ref);
}

/** Whether text is a person id (`k:` or `s:` and 12 base64url characters). */
export function isPersonId(text: string): boolean {
  return PERSON_ID_REGEXP.test(text);
}

/** Whether text is an Ed25519 public key or a nonce: 32 bytes in base64url, no padding. */
export function isKeyText(text: string): boolean {
  return KEY_REGEXP.test(text);
}

/** Whether text is an Ed25519 signature: 64 bytes in base64url, no padding. */
export function isSignatureText(text: string): boolean {
  return SIGNATURE_REGEXP.test(text);
}

/** Whether text is a key fingerprint as people see it: `SHA256:` and 43 base64 characters. */
export function isFingerprint(text: string): boolean {
  return FINGERPRINT_REGEXP.test(text);
}

/**
 * What a client signs to prove it holds the key of its hello: the server's fresh `nonce` and
 * the key, under a label that no other use of the key can produce. A signature is good for one
 * connection only, since each gets a new nonce.
 */
export function proofText(nonce: string, key: string): string {
  return `chat-hello-proof-v1\n${nonce}\n${key}`;
}

/**
 * Makes untrusted text safe to print on a terminal: every control character (escape sequences
 * included) and bidirectional override is removed. Newlines and tabs become spaces; callers that
 * want multi-line output split on `\n` first.
 */
export function sanitizeForTerminal(text: string): string {
  return text.replace(TERMINAL_UNSAFE_REGEXP, (c) => c === "\n" || c === "\t" ? " " : "");
}

/** The longest piece of someone's input an error message repeats, in characters. */
const MAX_QUOTED = 40;

/**
 * Someone's input as an error message may repeat it: safe to print, and cut to
 * {@linkcode MAX_QUOTED} characters, so an answer is never much longer than a line.
 */
export function quoteInput(text: string): string {
  const chars = Array.from(sanitizeForTerminal(text));
  return chars.length > MAX_QUOTED ? `${chars.slice(0, MAX_QUOTED).join("")}...` : chars.join("");
}

function countCharacters(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

// ==== Addresses ====

const HOSTNAME_LABEL_REGEXP = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
const IPV4_LIKE_REGEXP = /^[0-9.]+$/;

/**
 * Checks a host name or IP address and returns it as it is, or a message saying what is wrong.
 * Dotted numbers must be a real IPv4 address (`999.1.1.1` is refused); IPv6 is accepted bare or in
 * brackets.
 */
export function checkHost(host: string): Result<string> {
  if (host === "") return fail("Host is empty");
  if (IPV4_LIKE_REGEXP.test(host)) {
    const parts = host.split(".");
    const valid = parts.length === 4 &&
      parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
    return valid
      ? ok(host)
      : fail(`Invalid IPv4 address "${host}": use four numbers from 0 to 255`);
  }
  if (host.includes(":")) {
    const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
    return isIpv6(bare) ? ok(host) : fail(`Invalid IPv6 address "${quoteInput(host)}"`);
  }
  const labels = host.endsWith(".") ? host.slice(0, -1).split(".") : host.split(".");
  if (host.length > 253 || !labels.every((l) => HOSTNAME_LABEL_REGEXP.test(l))) {
    return fail(`Invalid host name "${quoteInput(host)}"`);
  }
  return ok(host);
}

function isIpv6(text: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return false;
  // The URL parser implements the full IPv6 grammar and needs no permission.
  return URL.canParse(`http://[${text}]/`);
}

/** Parses a port number (1-65535) and returns it, or an error message. */
export function parsePort(text: string): Result<number> {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    return fail(`Invalid port "${quoteInput(text)}": use 1 to 65535`);
  }
  return ok(port);
}

/** A server address: a host name or IP address (IPv6 without brackets), and a port. */
export interface ServerAddress {
  hostname: string;
  port: number;
}

/**
 * An invite: where a server listens for TLS, the key it must have, and (optionally) the room to
 * go to and a one-time secret that admits one person to a private server. As text:
 * `chat://HOST:PORT/ROOM?fp=FINGERPRINT#key=SECRET`, the fingerprint in base64url. The secret is
 * in the fragment, the part after `#` that no web server ever receives (RFC 3986, 3.5).
 */
export interface Invite {
  address: ServerAddress;
  /** `SHA256:` and the base64 SHA-256 of the server's public key (SPKI). */
  fingerprint: string;
  /** A room (with its `#`) to join. */
  room?: string;
  /** A one-time secret for a private server. */
  secret?: string;
}

/** How an invite starts. */
export const INVITE_SCHEME = "chat://";

/** An invite as text: `chat://192.168.1.20:5051/lobby?fp=...`, and `#key=...` with a secret. */
export function formatInvite(invite: Invite): string {
  const { hostname, port } = invite.address;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const room = invite.room ? encodeURIComponent(invite.room.replace(/^#/, "")) : "";
  const fp = invite.fingerprint.replace(/^SHA256:/, "").replaceAll("+", "-").replaceAll("/", "_");
  const secret = invite.secret ? `#key=${invite.secret}` : "";
  return `${INVITE_SCHEME}${host}:${port}/${room}?fp=${fp}${secret}`;
}

/**
 * Reads an invite ({@linkcode formatInvite}); `undefined` when the text is not one at all (it does
 * not start with `chat://`), an error saying what is wrong when it is a broken one.
 */
export function parseInvite(text: string): Result<Invite> | undefined {
  const trimmed = text.trim();
  if (!trimmed.toLowerCase().startsWith(INVITE_SCHEME)) return undefined;
  const match =
    /^chat:\/\/(\[[^\]]*\]|[^/:?#]*)(?::(\d+))?(?:\/([^?#]*))?\?fp=([A-Za-z0-9_-]{43})(?:#key=([A-Za-z0-9_-]{16,64}))?$/i
      .exec(trimmed);
  if (!match) {
    return fail(
      `Invalid invite "${quoteInput(trimmed)}": it should look like ` +
        `${INVITE_SCHEME}host:${DEFAULT_TLS_PORT}/room?fp=... (paste all of it)`,
    );
  }
  const [, hostText = "", portText = String(DEFAULT_TLS_PORT), roomText = "", fp = "", secret] =
    match;
  const address = parseAddress(`${hostText}:${portText}`);
  if (!address.ok) return address;
  let room: string | undefined;
  if (roomText !== "") {
    let decoded: string;
    try {
      decoded = decodeURIComponent(roomText);
    } catch {
      return fail(`Invalid invite: its room "${quoteInput(roomText)}" is not readable`);
    }
    const checked = checkRoom(decoded);
    if (!checked.ok) return checked;
    room = checked.value;
  }
  const fingerprint = `SHA256:${fp.replaceAll("-", "+").replaceAll("_", "/")}`;
  return ok({
    address: address.value,
    fingerprint,
    ...(room === undefined ? {} : { room }),
    ...(secret === undefined ? {} : { secret }),
  });
}

/**
 * Parses `host`, `host:port`, `[ipv6]:port` or a bare IPv6 address, checking the host and the
 * port before any connection is tried. The port is {@linkcode DEFAULT_PORT} when not given.
 */
export function parseAddress(text: string): Result<ServerAddress> {
  const trimmed = text.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):\/\/([^/]*)/i.exec(trimmed);
  if (scheme) {
    return fail(
      `Invalid address "${quoteInput(trimmed)}": give host:port without ${scheme[1]}:// ` +
        `(${quoteInput(scheme[2]!) || "host:port"})`,
    );
  }
  const portLike = /^(.*:):?(\d{1,5})$/.exec(trimmed);
  if (
    !trimmed.startsWith("[") && portLike && trimmed.split(":").length > 2 &&
    checkHost(portLike[1]!.replace(/:$/, "")).ok
  ) {
    const host = portLike[1]!.replace(/:$/, "");
    return fail(
      `Ambiguous address "${quoteInput(trimmed)}": an IPv6 address with a port needs brackets, ` +
        `[${host}]:${portLike[2]} (or [${trimmed}] for that whole address)`,
    );
  }
  let hostname = trimmed;
  let portText = String(DEFAULT_PORT);
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(trimmed);
  if (bracketed) {
    hostname = bracketed[1]!;
    portText = bracketed[2] ?? portText;
  } else if (trimmed.split(":").length === 2) {
    [hostname, portText] = trimmed.split(":") as [string, string];
  }
  const host = checkHost(hostname);
  if (!host.ok) return host;
  const port = parsePort(portText);
  if (!port.ok) return port;
  return ok({ hostname, port: port.value });
}
