/**
 * Frames as lines of text for a person to read: in the terminal client, in a transcript, and (with
 * no colour) for people on `nc` or `telnet`. Pure: no I/O, so the browser page can use it too.
 *
 * @module
 */

import type { ChatEvent } from "../net/chat_client.ts";
import {
  type BanInfo,
  LOBBY,
  MAX_NAME_INPUT,
  type MessageFrame,
  nameKey,
  type PrivateFrame,
  type RoomInfoFrame,
  sanitizeForTerminal,
  type ServerFrame,
  type WhoisInfoFrame,
} from "../protocol.ts";

/** How frames are turned into lines of text for a person to read. */
export interface RenderOptions {
  /** The reader's own name: their messages show as `You`. Empty for a shared rendering. */
  me: string;
  /** Whether to use ANSI colours. */
  color: boolean;
  /** Whether lines start with the time, `[14:02]`. */
  time: boolean;
  /** Whether the reader's own messages are left out (scripts know what they sent). */
  skipOwn: boolean;
  /** The room the reader is looking at: its messages show without the room's name. */
  room?: string;
  /**
   * The reader's width in columns: a message's lines are wrapped to it, each row after the first
   * marked as part of the message. Without it, lines are not wrapped.
   * @default {no wrapping}
   */
  width?: number;
  /**
   * The most rows one message may take; the rest is left out with a note saying how many.
   * @default {40}
   */
  maxRows?: number;
}

/** How many rows one message takes at most, unless told otherwise. */
export const MAX_MESSAGE_ROWS = 40;
/**
 * What starts every row of a message after its first: it ties the row to the message above it,
 * so that no text can pass for a line of its own (another person's message, a notice).
 */
export const GUTTER = "│ ";
/**
 * What starts a notice from the server or the client: nothing a person sends can start a line
 * with it, since their lines start with their name (or, for an emote, `*` and their name).
 */
export const NOTICE_MARK = "-!-";

const NAME_COLORS = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];
// deno-lint-ignore no-control-regex -- matching the escape character is the point
const ANSI_REGEXP = /\x1b\[[0-9;]*m/g;
/** East Asian wide and full-width characters, and emoji shown as pictures: two columns each. */
const WIDE_REGEXP =
  /[\u1100-\u115F\u2E80-\uA4CF\uAC00-\uD7A3\uF900-\uFAFF\uFE30-\uFE4F\uFF00-\uFF60\uFFE0-\uFFE6\u{20000}-\u{3FFFD}]|\p{Emoji_Presentation}|\uFE0F/u;
/** Marks and format characters that take no column of their own. */
const ZERO_WIDTH_REGEXP = /^[\p{Mn}\p{Me}\p{Cf}]+$/u;
const graphemes = new Intl.Segmenter();

/** Removes the colour codes {@linkcode paint} adds, for a plain-text copy of what was shown. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI_REGEXP, "");
}

/** Wraps text in an ANSI style (`1` bold, `2` dim, `31` red...) when colour is on. */
export function paint(text: string, style: number | string, color: boolean): string {
  return color ? `\x1b[${style}m${text}\x1b[0m` : text;
}

/** A colour for a name that stays the same across runs and computers. */
export function nameColor(name: string): number {
  let hash = 0;
  for (const char of nameKey(name)) hash = (hash * 31 + char.codePointAt(0)!) >>> 0;
  return NAME_COLORS[hash % NAME_COLORS.length]!;
}

/**
 * How many terminal columns text takes, counted per grapheme (what a person sees as one
 * character): wide East Asian characters and emoji take two, combining marks none.
 */
export function displayWidth(text: string): number {
  let width = 0;
  for (const { segment } of graphemes.segment(text.replace(ANSI_REGEXP, ""))) {
    width += ZERO_WIDTH_REGEXP.test(segment) ? 0 : WIDE_REGEXP.test(segment) ? 2 : 1;
  }
  return width;
}

/** Whether text mentions a name as a word of its own, ignoring case: `hi @ann!` mentions ann. */
export function mentions(text: string, name: string): boolean {
  if (name === "") return false;
  const key = nameKey(name);
  // Word by word, and only words short enough to be a name: normalising is quadratic in long
  // runs of combining marks, so a whole message is never normalised at once.
  return text.split(/[^\p{L}\p{M}\p{N}_-]+/u).some((word) =>
    word.length <= MAX_NAME_INPUT && nameKey(word) === key
  );
}

/** A span of milliseconds as people say it: `45s`, `12m`, `3h 5m`, `2d 4h`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/**
 * A moment as the server's log writes it, in local time: `2026-11-21 14:02:05` (or without the
 * seconds). Bans, `/whois` and the log all use it.
 */
export function formatDateTime(ts: number, options: { seconds?: boolean } = {}): string {
  const date = new Date(ts);
  const pad = (n: number) => String(n).padStart(2, "0");
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  return `${day} ${time}${options.seconds ? `:${pad(date.getSeconds())}` : ""}`;
}

/**
 * The line shown where the day changes: `--- Tuesday 1 December 2026 ---`, in local time.
 */
export function dayLine(ts: number): string {
  const day = new Date(ts).toLocaleDateString("en-GB", {
    weekday: "long",
    day: "numeric",
    month: "long",
    year: "numeric",
  }).replace(",", "");
  return `--- ${day} ---`;
}

/** Whether two moments fall on the same local day. */
export function sameDay(a: number, b: number): boolean {
  return new Date(a).toDateString() === new Date(b).toDateString();
}

function clock(ts: number): string {
  const date = new Date(ts);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `[${pad(date.getHours())}:${pad(date.getMinutes())}]`;
}

/** `[14:02]` for today, `[Nov 20 14:02]` for an earlier day: history can be days old. */
function dayClock(ts: number): string {
  const date = new Date(ts);
  if (date.toDateString() === new Date().toDateString()) return clock(ts);
  const day = date.toLocaleString("en", { month: "short", day: "numeric" });
  return `[${day} ${clock(ts).slice(1)}`;
}

function stamp(ts: number | undefined, options: RenderOptions): string {
  return options.time && ts !== undefined ? `${paint(clock(ts), 2, options.color)} ` : "";
}

/**
 * Joins a prefix and a message's text. The text's lines (runs of blank lines shown as one) are
 * wrapped to the reader's width; every row after the first starts with a {@linkcode GUTTER} under
 * the prefix, so it reads as part of this message. At most `maxRows` rows, then a note.
 */
function speech(prefix: string, text: string, options: RenderOptions, style?: string): string[] {
  const indent = Math.max(0, displayWidth(prefix) - GUTTER.length);
  const gutter = " ".repeat(indent) + paint(GUTTER, 2, options.color);
  const body = (line: string) => style ? paint(line, style, true) : line;
  const columns = options.width === undefined ? Infinity : Math.max(20, options.width);
  const lines = text.replace(/\n(\s*\n)+/g, "\n\n").split("\n").map(sanitizeForTerminal);
  const pieces = lines.flatMap((line, i) =>
    wrap(line, columns - (i === 0 ? displayWidth(prefix) : indent + GUTTER.length))
  );
  const maxRows = Math.max(2, options.maxRows ?? MAX_MESSAGE_ROWS);
  const shown = pieces.length > maxRows ? pieces.slice(0, maxRows - 1) : pieces;
  const rows = shown.map((piece, i) =>
    i === 0 ? `${prefix}${body(piece)}` : `${gutter}${body(piece)}`
  );
  if (shown.length < pieces.length) {
    const left = pieces.length - shown.length;
    rows.push(`${gutter}${paint(`(${left} more rows not shown)`, 2, options.color)}`);
  }
  return rows;
}

/**
 * Splits a line into rows of at most `columns` columns, counted per grapheme, breaking after a
 * space when there is one in the second half of the row.
 */
function wrap(line: string, columns: number): string[] {
  if (columns === Infinity || displayWidth(line) <= columns) return [line];
  const limit = Math.max(1, columns);
  const rows: string[] = [];
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

function notice(text: string, ts: number | undefined, options: RenderOptions): string[] {
  const line = `${NOTICE_MARK} ${sanitizeForTerminal(text)}`;
  return [`${stamp(ts, options)}${paint(line, 2, options.color)}`];
}

function speaker(name: string, options: RenderOptions): string {
  if (options.me !== "" && nameKey(name) === nameKey(options.me)) {
    return paint("You", 1, options.color);
  }
  const clean = sanitizeForTerminal(name);
  return paint(clean, nameColor(clean), options.color);
}

function listUsers(users: string[], count: number | undefined, where: string): string {
  const total = count ?? users.length;
  const names = users.map(sanitizeForTerminal).sort((a, b) => a.localeCompare(b)).join(", ");
  const more = total > users.length ? ` and ${total - users.length} more` : "";
  return `${total} ${total === 1 ? "person" : "people"} ${where}: ${names}${more}`;
}

function renderMessage(frame: MessageFrame, options: RenderOptions): string[] {
  const mine = options.me !== "" && nameKey(frame.from) === nameKey(options.me);
  if (mine && options.skipOwn) return [];
  const room = frame.room !== undefined && frame.room !== options.room
    ? `${paint(sanitizeForTerminal(frame.room), 36, options.color)} `
    : "";
  const highlight = !mine && options.color && mentions(frame.text, options.me) ? "1;33" : undefined;
  const who = speaker(frame.from, options);
  const time = frame.history && options.time
    ? `${paint(dayClock(frame.ts), 2, options.color)} `
    : stamp(frame.ts, options);
  // An emote reads with the name, one's own too: "* ann waves", never "* You waves".
  const actor = mine ? paint(sanitizeForTerminal(frame.from), 1, options.color) : who;
  const prefix = frame.action ? `${time}${room}* ${actor} ` : `${time}${room}${who}: `;
  // Earlier messages read dimmer than live ones.
  return speech(
    prefix,
    frame.text,
    options,
    highlight ?? (frame.history && options.color ? "2" : undefined),
  );
}

function renderPrivate(frame: PrivateFrame, options: RenderOptions): string[] {
  const mine = options.me !== "" && nameKey(frame.from) === nameKey(options.me);
  if (mine && options.skipOwn) return [];
  const tag = paint("(private)", 35, options.color);
  const who = speaker(frame.from, options);
  const to = options.me !== "" && !mine ? "" : ` → ${speaker(frame.to, options)}`;
  const time = frame.history && options.time
    ? `${paint(dayClock(frame.ts), 2, options.color)} `
    : stamp(frame.ts, options);
  const actor = mine ? paint(sanitizeForTerminal(frame.from), 1, options.color) : who;
  const prefix = frame.action ? `${time}${tag} * ${actor}${to} ` : `${time}${tag} ${who}${to}: `;
  return speech(prefix, frame.text, options, frame.history && options.color ? "2" : undefined);
}

function renderWhois(frame: WhoisInfoFrame): string[] {
  const client = frame.client ?? {};
  const parts = [
    `in ${frame.rooms.join(" ") || "no room"}`,
    `idle ${formatDuration(frame.idle)}`,
    `here since ${
      sameDay(frame.since, Date.now())
        ? clock(frame.since).slice(1, -1)
        : formatDateTime(frame.since)
    }`,
    ...(frame.away === undefined ? [] : [`away: ${frame.away}`]),
    ...(client.app ? [`using ${client.app}${client.os ? ` on ${client.os}` : ""}`] : []),
    ...(client.host ? [`host ${client.host}`] : []),
    ...(frame.operator ? ["an operator"] : []),
  ];
  const key = frame.fingerprint === undefined
    ? "no key: known only by this session"
    : `key ${frame.fingerprint}${frame.registered ? "; the name is registered to this key" : ""}`;
  return [`${frame.name}: ${parts.join("; ")}`, `${frame.name}: ${key}`];
}

/** How a ban reads in one line: `10.0.0.0/24 (address) for good, by console: spam`. */
export function describeBan(ban: BanInfo): string {
  const span = ban.until === undefined ? "for good" : `until ${formatDateTime(ban.until)}`;
  return `${ban.target} (${ban.kind}) ${span}${ban.by ? `, by ${ban.by}` : ""}${
    ban.reason ? `: ${ban.reason}` : ""
  }`;
}

/** Who runs a room and how, in one line: `#dev: owned by ann; moderators: bob; topic locked`. */
export function describeRoom(info: RoomInfoFrame): string {
  const owner = info.owner !== undefined
    ? `owned by ${info.owner}`
    : info.room === LOBBY
    ? "run by the server's operators"
    : "no owner";
  const parts = [
    owner,
    ...(info.moderators.length > 0 ? [`moderators: ${info.moderators.join(", ")}`] : []),
    info.topicLocked ? "topic locked" : "anyone may set the topic",
    info.inviteOnly ? "invite-only" : "open to everyone",
  ];
  return `${info.room}: ${parts.join("; ")}`;
}

/**
 * The lines to show a person for a frame, already sanitised; an empty array for frames that show
 * nothing. Everything a server or another person wrote passes through
 * {@linkcode sanitizeForTerminal}, so no escape sequence reaches the terminal.
 */
export function renderFrame(frame: ServerFrame, options: RenderOptions): string[] {
  switch (frame.type) {
    case "message":
      return renderMessage(frame, options);
    case "private":
      return renderPrivate(frame, options);
    case "joined":
      return notice(`${frame.name} joined${frame.room ? ` ${frame.room}` : ""}`, frame.ts, options);
    case "left":
      return notice(
        `${frame.name} left${frame.room ? ` ${frame.room}` : ""} (${frame.reason})`,
        frame.ts,
        options,
      );
    case "renamed":
      return notice(`${frame.from} is now known as ${frame.to}`, frame.ts, options);
    case "users": {
      const away = new Set(frame.away ?? []);
      const users = frame.users.map((name) => away.has(name) ? `${name} (away)` : name);
      return notice(
        listUsers(users, frame.count, frame.room ? `in ${frame.room}` : "on the server"),
        undefined,
        options,
      );
    }
    case "room":
      return notice(
        `You are in ${frame.room}${frame.topic ? ` (topic: ${frame.topic})` : ""}. ` +
          listUsers(frame.users, frame.count, "here"),
        undefined,
        options,
      );
    case "room_list": {
      const total = frame.count ?? frame.rooms.length;
      const shown = total > frame.rooms.length ? ` (the ${frame.rooms.length} biggest shown)` : "";
      return [
        ...notice(`${total} ${total === 1 ? "room" : "rooms"}${shown}:`, undefined, options),
        ...frame.rooms.map((r) =>
          `  ${sanitizeForTerminal(r.room)} (${r.count})${
            r.topic ? ` ${sanitizeForTerminal(r.topic)}` : ""
          }`
        ),
      ];
    }
    case "topic":
      return notice(
        frame.by !== undefined
          ? `${frame.by} set the topic of ${frame.room}: ${frame.topic}`
          : frame.topic
          ? `Topic of ${frame.room}: ${frame.topic}`
          : `${frame.room} has no topic`,
        frame.ts,
        options,
      );
    case "whois":
      return renderWhois(frame).flatMap((line) => notice(line, undefined, options));
    case "notice":
      return notice(frame.text, undefined, options);
    case "history": {
      const where = frame.room ?? "your private conversation";
      return notice(
        frame.count === 0
          ? `No earlier messages in ${where}`
          : `${frame.count} earlier ${frame.count === 1 ? "message" : "messages"} in ${where}` +
            (frame.more ? " (/history for more):" : ":"),
        undefined,
        options,
      );
    }
    case "presence":
      return notice(
        frame.away === undefined ? `${frame.name} is back` : `${frame.name} is away: ${frame.away}`,
        frame.ts,
        options,
      );
    case "announce":
      return speech(
        `${stamp(frame.ts, options)}${paint("** server:", "1;35", options.color)} `,
        frame.text,
        options,
      );
    case "welcome":
      return [
        ...notice(
          frame.resumed
            ? `Back on ${frame.server.name} as ${frame.name}, in your rooms: anything you ` +
              "missed follows"
            : `Joined ${frame.server.name} as ${frame.name}. ` +
              listUsers(frame.users, frame.count, `in ${frame.room ?? LOBBY}`),
          undefined,
          options,
        ),
        ...(frame.motd ? notice(`Message of the day: ${frame.motd}`, undefined, options) : []),
      ];
    case "error":
      return [paint(`! ${sanitizeForTerminal(frame.message)}`, 31, options.color)];
    case "ban_list":
      return frame.bans.length === 0 ? notice("No bans", undefined, options) : [
        ...notice(
          `${frame.bans.length} ${frame.bans.length === 1 ? "ban" : "bans"}:`,
          undefined,
          options,
        ),
        ...frame.bans.map((ban) => `  ${sanitizeForTerminal(describeBan(ban))}`),
      ];
    case "room_info":
      return notice(describeRoom(frame), undefined, options);
    case "challenge":
    case "ping":
    case "pong":
      return [];
    default: {
      const unexpected: never = frame;
      return unexpected;
    }
  }
}

/** The lines to show for a frame, or for one of the client's own connection events. */
export function renderEvent(event: ChatEvent, view: RenderOptions): string[] {
  switch (event.type) {
    case "reconnecting": {
      const seconds = (event.delayMs / 1000).toFixed(1);
      const text = event.attempt === 1
        ? `! ${sanitizeForTerminal(event.reason)}: reconnecting in ${seconds} s ` +
          "(what you type is kept and sent once back; /quit to give up)"
        : `! Still offline (${sanitizeForTerminal(event.reason)}): next try in ${seconds} s`;
      return [paint(text, 33, view.color)];
    }
    case "reconnected":
      return [
        paint(
          event.resumed
            ? `* Reconnected as ${event.welcome.name}: anything you missed follows`
            : `* Reconnected as ${event.welcome.name}, as a new arrival (the server forgot ` +
              "the session): rejoining your rooms",
          32,
          view.color,
        ),
      ];
    default:
      return renderFrame(event, view);
  }
}
