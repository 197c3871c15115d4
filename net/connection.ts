/**
 * One client connection on the server, over any {@linkcode Transport}: its bounded outbox, its
 * deadlines, its sending allowance, the face it speaks (JSON, or the plain text the entry script
 * handed over), and the loop that reads its lines into the hub. A connection is the hub's
 * {@linkcode Peer}.
 *
 * @module
 */

import type { Bans } from "../chat/bans.ts";
import {
  addressGroup,
  type FrameEncoder,
  JSON_ENCODER,
  type Member,
  Outgoing,
  type Peer,
} from "../chat/directory.ts";
import type { Hub, VerifiedKey } from "../chat/hub.ts";
import {
  cleanLine,
  type ClientFrame,
  decodeClientFrame,
  type ErrorCode,
  type ErrorFrame,
  errorFrame,
  FATAL_ERROR_CODES,
  frameCost,
  type HelloFrame,
  isKeyText,
  type ProofFrame,
  type ServerFrame,
} from "../protocol.ts";
import { errorText, isDisconnectError, type Transport } from "./conn.ts";
import { keyFacts, newNonce, verifyProof } from "./identity.ts";
import { FrameTooLargeError, LineSplitter, READ_BUFFER_BYTES } from "./lines.ts";
import { Outbox } from "./outbox.ts";
import { TokenBucket } from "./pace.ts";

// ==== Faces ====

/**
 * What a line typed on a plain-text connection comes to: a frame to carry out as if a program
 * had sent it, an error to answer, lines to show the person, or a move to another of their rooms.
 */
export type TextInput =
  | { kind: "frame"; frame: ClientFrame }
  | { kind: "error"; error: ErrorFrame }
  | { kind: "reply"; lines: string[] }
  | { kind: "switch"; room: string };

/**
 * What a text face's input filter may ask of its connection, besides cleaning the bytes that
 * pass through it (see {@linkcode TextFace.inputFilter}).
 */
export interface TextLink {
  /**
   * Whether the connection is taken for a person's (`nc`, `telnet`). Until then it may still be
   * a program's, whose JSON must pass untouched and get no answer.
   */
  readonly person: boolean;
  /** Sends bytes as they are, after what is queued: an answer to telnet (RFC 854), or a line. */
  reply(bytes: Uint8Array): void;
  /**
   * Drops the unfinished line read before the chunk being filtered (the person erased it). The
   * filter leaves that chunk's own bytes of it out.
   */
  dropLine(): void;
  /**
   * Drops everything typed and not carried out yet (Ctrl+C): the unfinished line read before the
   * chunk being filtered and the lines still waiting for the sending allowance. The filter leaves
   * that chunk's bytes before the interrupt out.
   */
  interrupt(): void;
}

/** A local day: its first millisecond and the first of the next, since the epoch. */
export interface DaySpan {
  /** The day's first millisecond. */
  readonly start: number;
  /** The next day's first millisecond (a day of 23 or 25 hours when the clocks change). */
  readonly end: number;
}

/**
 * How people without a chat program (`nc`, `telnet`) speak to the server: given to the gateway
 * by the entry script, so the network layer knows only "a face I was given", never a renderer.
 */
export interface TextFace {
  /** How frames look to its clients. */
  readonly encoder: FrameEncoder;
  /** Encodes lines of text for its clients. */
  lines(lines: readonly string[]): Uint8Array;
  /**
   * A fresh filter for one connection's incoming bytes, applied before they are split into lines
   * (telnet's commands are taken out and answered there, through `link`).
   */
  inputFilter(link: TextLink): (chunk: Uint8Array) => Uint8Array;
  /** What a silent new connection is told: a greeting and the question for a name. */
  greeting(serverName: string): string[];
  /** What a person is asked after a refused name. */
  readonly askAgain: readonly string[];
  /**
   * What a person is asked when the server wants its password after their name; `encrypted`
   * when the connection is TLS (`openssl s_client`), not plain `nc`.
   */
  askPassword(encrypted: boolean): readonly string[];
  /**
   * What a person is told right after the welcome, before any earlier message: the day and the
   * time zone of the times shown, `now` being when (milliseconds since the epoch).
   */
  todayLines(now: number): string[];
  /** What a person is told once their name is accepted, after everything joining brings. */
  welcomed(name: string): string[];
  /**
   * The time a frame is shown with, in milliseconds since the epoch; `undefined` for frames
   * shown without one. A frame of another day than the last one shown gets a day line first.
   */
  timeOf(frame: ServerFrame): number | undefined;
  /** The local day `ts` (milliseconds since the epoch) falls on, as its faces show times. */
  dayOf(ts: number): DaySpan;
  /** The lines that say a new day begins, shown before the first frame of the day of `ts`. */
  dayLines(ts: number): string[];
  /** The last lines a person gets before the server closes the connection. */
  readonly closing: readonly string[];
  /**
   * Reads a typed line: before joining it is the name (a hello), or, with `passwordFor` (the
   * name the server asked a password for), the password; after joining, a message for the
   * current room or a command.
   */
  read(line: string, member: Member | undefined, passwordFor?: string): TextInput;
}

/** How a connection speaks: JSON frames (programs), or the text face (people). */
export type FaceKind = "json" | "text";

/**
 * The key part of a hello: nothing yet, a challenge sent (with the hello waiting for the proof),
 * or the proof being checked.
 */
export type Handshake =
  | { state: "none" }
  | { state: "challenged"; hello: HelloFrame; key: string; nonce: string }
  | { state: "verifying" };

// ==== Settings ====

/** Protocol errors a connection may make at once; the next one ends it. */
export const PROTOCOL_ERROR_BURST = 5;
/** After that burst, one more protocol error is allowed per this many seconds. */
export const PROTOCOL_ERROR_SECONDS = 5;
/**
 * Frames refused for going over the rate, at once, at which a client is disconnected for
 * flooding; after that burst, one refusal a second is forgiven. (Counting refusals in a row would
 * never catch a client that sends at full speed, as every refill lets one frame through.)
 */
export const FLOOD_STRIKES = 20;
/** How long a closing connection gets to receive its last frames, in milliseconds. */
const CLOSE_GRACE_MS = 1000;
/** Why a connection may end without its member leaving: the client may come back and resume. */
const RESUMABLE_REASONS: ReadonlySet<string> = new Set(["disconnected", "too slow", "no answer"]);
/**
 * Reads that do not fill the buffer a connection may make a second (after a burst of as many).
 * A person or a program sends far fewer (lines arrive whole, bulk data fills the buffer); a
 * connection that drips bytes one at a time gets them read together instead.
 */
export const SMALL_READS_PER_SECOND = 100;
/** The read buffer a connection starts with; it grows to `READ_BUFFER_BYTES` once a read fills it. */
const IDLE_READ_BYTES = 256;
/**
 * The most lines a person on `nc` or `telnet` may have waiting for their sending allowance (a
 * paste): they go out as it refills; lines past this are refused.
 */
export const TEXT_QUEUE_LINES = 50;
/**
 * The most characters (UTF-16 units: at most twice as many bytes of memory) the waiting lines
 * of one connection may hold in all.
 */
export const TEXT_QUEUE_CHARS = 32 * 1024;
/**
 * Lines a person's connection may have refused (past the waiting lines) or send blank, per
 * flood strike ({@linkcode FLOOD_STRIKES}): a paste of a few hundred lines is refused in part,
 * a stream of them ends the connection like any flood.
 */
export const TEXT_LINES_PER_STRIKE = 20;

/** What every connection of a gateway is held to. */
export interface ConnectionSettings {
  /** How long a new connection has to say hello, in milliseconds. */
  helloTimeoutMs: number;
  /** How long a silent new connection waits before it is taken for a person and asked a name. */
  promptDelayMs: number;
  /** How long a person asked for a name has to give one, in milliseconds. */
  nameTimeoutMs: number;
  /** Bytes that may wait for one client before it counts as too slow. */
  maxQueueBytes: number;
  /** The longest line a client may send, in bytes, newline included. */
  maxFrameBytes: number;
  /** Silence before a ping, and then before giving up, in milliseconds. */
  heartbeatMs: number;
  /** Frames a second after a burst; 0 for no limit. */
  rate: number;
  /** Frames at once before `rate` applies. */
  burst: number;
  /** The server's name, in the greeting. */
  serverName: string;
  /** Lines for the operator. */
  log: (line: string) => void;
  /** The plain-text face, if people without a chat program are served. */
  face: TextFace | undefined;
  /** The bans to check arrivals against. */
  bans: Pick<Bans, "find">;
  /**
   * Whether a connection may log in (a hello, or a resume) now: the caps on people, and the
   * login allowances of its address and of the server. Returns the refusal otherwise.
   */
  admitLogin(connection: Connection): ErrorFrame | undefined;
  /** Told when a connection's hello was accepted. */
  onJoined(connection: Connection): void;
}

// ==== Connection ====

/**
 * One client connection: its transport, its bounded outbox, its hello deadline, its face, and
 * how it ends. This is the hub's {@linkcode Peer}.
 */
export class Connection implements Peer {
  readonly address: string;
  /** What the address counts as for the per-address limits: itself, or its IPv6 /64. */
  readonly addressGroup: string;
  /** Set once the hello is accepted. */
  member: Member | undefined;
  /** `json` for programs, `text` for people on `nc` or `telnet`; unknown until the first line. */
  face: FaceKind | undefined;
  /**
   * How many protocol errors the connection may still make: {@linkcode PROTOCOL_ERROR_BURST} at
   * once, then one per {@linkcode PROTOCOL_ERROR_SECONDS}. Good frames in between do not refill
   * it, so bad and good frames in turn cannot go on for ever.
   */
  readonly errorBudget = new TokenBucket({
    rate: 1 / PROTOCOL_ERROR_SECONDS,
    burst: PROTOCOL_ERROR_BURST,
  });
  /** What refusals for going over the rate the connection may still have before it is cut off. */
  readonly refusalBudget = new TokenBucket({ rate: 1, burst: FLOOD_STRIKES - 1 });
  /** Whether the gateway counts this connection among the people (its hello was accepted). */
  counted = false;
  /** Where a hello with a key stands: challenged (waiting for the proof), or checking it. */
  handshake: Handshake = { state: "none" };
  /** When anything last arrived, on the `performance.now()` clock. */
  lastHeard = performance.now();
  /** The name a person on the text face was asked a password for: their next line is it. */
  passwordFor: string | undefined;
  /** Whether a ping went out since anything last arrived. */
  pinged = false;
  /** The client's sending allowance. */
  readonly bucket: TokenBucket;
  /**
   * The allowance before the hello is accepted (names tried, blank lines): separate, so that a
   * client starts with the whole burst its welcome announces.
   */
  readonly helloBucket: TokenBucket;
  /** Why the connection is ending, once it is; also the reason given in `left`. */
  endReason: string | undefined;
  /** Resolves when the transport is closed. */
  readonly closed: Promise<void>;
  readonly settings: ConnectionSettings;
  readonly transport: Transport;
  #outbox: Outbox;
  #encoder: FrameEncoder = JSON_ENCODER;
  #helloTimer: ReturnType<typeof setTimeout>;
  #promptTimer: ReturnType<typeof setTimeout> | undefined;
  #markClosed: () => void;
  /** For a person: the local day of the last frame shown with a time. */
  #day: DaySpan | undefined;

  constructor(transport: Transport, settings: ConnectionSettings) {
    this.transport = transport;
    this.settings = settings;
    this.address = transport.remoteAddress;
    this.addressGroup = addressGroup(this.address);
    this.bucket = new TokenBucket({ rate: settings.rate, burst: settings.burst });
    this.helloBucket = new TokenBucket({ rate: settings.rate, burst: settings.burst });
    this.#outbox = new Outbox(transport, {
      maxBytes: settings.maxQueueBytes,
      onError: () => this.close("disconnected"),
    });
    const { promise, resolve } = Promise.withResolvers<void>();
    this.closed = promise;
    this.#markClosed = resolve;
    this.#helloTimer = this.#deadline(settings.helloTimeoutMs);
    if (settings.face) {
      this.#promptTimer = setTimeout(() => this.#askName(), settings.promptDelayMs);
    }
  }

  /** How frames are encoded for this connection: JSON, or its text face's lines. */
  get encoder(): FrameEncoder {
    return this.#encoder;
  }

  /** How long a text-face connection has sent no line, in milliseconds; JSON ones have pings. */
  silentMs(): number | undefined {
    return this.face === "text" ? performance.now() - this.lastHeard : undefined;
  }

  /** Whether the connection is ending and should take no more frames. */
  get ending(): boolean {
    return this.endReason !== undefined;
  }

  /**
   * Settles the face on the first line: a JSON object means a program, anything else a person.
   * A person asked for a name (the face guessed from silence) may still turn out to be a program
   * whose hello came late.
   */
  settleFace(line: string): void {
    clearTimeout(this.#promptTimer);
    const json = line.trimStart().startsWith("{") || this.settings.face === undefined;
    if (this.face === undefined || json) this.#useFace(json ? "json" : "text");
  }

  /** Records the accepted hello and stops the hello deadline. */
  joined(member: Member): void {
    this.member = member;
    clearTimeout(this.#helloTimer);
    this.settings.onJoined(this);
  }

  /**
   * Queues a frame. A person (the text face) also gets a day line before the first frame of a
   * new day, and the day and time zone after the welcome: the frame's bytes are shared by
   * everyone with the face, these lines are this connection's.
   */
  send(out: Outgoing): void {
    if (this.ending) return;
    const bytes = out.bytes(this.#encoder);
    if (bytes.length === 0) return;
    const face = this.#textFace();
    if (face) this.#markDay(face, out.frame);
    if (this.ending) return;
    if (!this.#outbox.push(bytes)) {
      this.close("too slow");
      return;
    }
    if (face && out.frame.type === "welcome") {
      const now = Date.now();
      this.#day = face.dayOf(now);
      this.sendText(face.todayLines(now));
    }
  }

  /** Sends lines of text to a plain-text client. */
  sendText(lines: readonly string[]): void {
    const face = this.settings.face;
    if (!face || this.ending) return;
    this.sendBytes(face.lines(lines));
  }

  /** Sends bytes as they are (an answer to telnet, lines of text); nothing once ending. */
  sendBytes(bytes: Uint8Array): void {
    if (this.ending) return;
    if (!this.#outbox.push(bytes)) this.close("too slow");
  }

  end(error: ErrorFrame, reason: string): void {
    if (this.ending) return;
    this.send(new Outgoing(error));
    this.closeAfterFlush(reason);
  }

  /** Sends a fatal error, then closes once it is delivered (or the grace time is over). */
  fail(code: ErrorCode, message: string, reason: string): void {
    this.end(errorFrame(code, message), reason);
  }

  /**
   * Closes once everything queued is written, or after {@linkcode CLOSE_GRACE_MS}. A person gets
   * the face's closing lines last, so the end is never silent.
   */
  closeAfterFlush(reason: string): void {
    if (this.ending) return;
    const face = this.#textFace();
    if (face) this.sendText(face.closing);
    if (this.ending) return;
    this.endReason = reason;
    const timer = setTimeout(() => this.close(reason), CLOSE_GRACE_MS);
    this.#outbox.drained().then(() => {
      clearTimeout(timer);
      this.close(reason);
    });
  }

  /** Closes the transport now; a pending read then ends the read loop. Closing twice is harmless. */
  close(reason: string): void {
    this.endReason ??= reason;
    clearTimeout(this.#helloTimer);
    clearTimeout(this.#promptTimer);
    this.transport.close();
    this.#markClosed();
  }

  /** The text face, when this connection is a person's. */
  #textFace(): TextFace | undefined {
    return this.face === "text" ? this.settings.face : undefined;
  }

  /** Before a frame of another day than the last one shown, the line that says which day. */
  #markDay(face: TextFace, frame: ServerFrame): void {
    const ts = face.timeOf(frame);
    if (ts === undefined) return;
    const day = this.#day;
    if (day !== undefined && ts >= day.start && ts < day.end) return;
    this.#day = face.dayOf(ts);
    this.sendText(face.dayLines(ts));
  }

  #useFace(face: FaceKind): void {
    this.face = face;
    this.#encoder = face === "text" && this.settings.face
      ? this.settings.face.encoder
      : JSON_ENCODER;
  }

  #deadline(ms: number): ReturnType<typeof setTimeout> {
    return setTimeout(() => {
      this.settings.log(`${this.address} ! no hello within ${ms} ms`);
      this.fail("timeout", "No hello received in time", "timed out");
    }, ms);
  }

  /** A silent client is probably a person on `nc` or `telnet`: greet it and ask for a name. */
  #askName(): void {
    this.#promptTimer = undefined;
    const face = this.settings.face;
    if (this.face !== undefined || this.ending || !face) return;
    this.#useFace("text");
    clearTimeout(this.#helloTimer);
    this.#helloTimer = this.#deadline(this.settings.nameTimeoutMs);
    this.sendText(face.greeting(this.settings.serverName));
  }
}

// ==== Reading ====

/** Reads lines from one connection and feeds them to the hub until the connection ends. */
export async function serveConnection(connection: Connection, hub: Hub): Promise<void> {
  const { log, bans, maxFrameBytes, face } = connection.settings;
  const ban = bans.find({ address: connection.address });
  if (ban) {
    log(`${connection.address} ! refused: banned address (${ban.target})`);
    connection.fail("banned", "This address is banned from the server", "banned");
  }
  const newSplitter = () => new LineSplitter({ maxLineBytes: maxFrameBytes });
  let splitter = newSplitter();
  /** A person's lines waiting for the sending allowance; made on the first one. */
  let typed: TextQueue | undefined;
  const filter = face?.inputFilter({
    get person() {
      return connection.face === "text";
    },
    reply: (bytes) => {
      if (connection.face === "text") connection.sendBytes(bytes);
    },
    dropLine: () => splitter = newSplitter(),
    interrupt: () => {
      splitter = newSplitter();
      typed?.clear();
    },
  });
  // Idle connections are most of them: each starts with a small buffer, grown once it fills.
  let buffer = new Uint8Array(IDLE_READ_BYTES);
  const onLine = (line: string) => {
    // Only whole lines count as hearing from the peer: bytes dripped one at a time do not.
    connection.lastHeard = performance.now();
    connection.pinged = false;
    if (connection.ending) return;
    if (
      connection.face === undefined ||
      (connection.member === undefined && connection.face === "text")
    ) {
      connection.settleFace(line);
    }
    if (connection.face === "text") {
      (typed ??= new TextQueue(connection, hub)).push(line);
    } else {
      typed?.clear();
      handleFrameLine(connection, hub, line);
    }
  };
  // A blank line costs like any frame: a stream of them is no free way to keep the server busy.
  // A person's blank lines are only counted towards flooding, never answered.
  const onBlank = () => {
    if (connection.ending) return;
    if (connection.face === "text") strike(connection, 1 / TEXT_LINES_PER_STRIKE);
    else spend(connection, 1, undefined);
  };
  const reads = new TokenBucket({ rate: SMALL_READS_PER_SECOND, burst: SMALL_READS_PER_SECOND });
  try {
    while (!connection.ending) {
      // Past its allowance of small reads, a connection is read less often: what it sends waits
      // in the kernel and comes in one larger read, so dripping bytes costs no more reads.
      const wait = reads.wait();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (connection.ending) break;
      const n = await connection.transport.read(buffer);
      if (n === null) {
        splitter.end(onLine, onBlank); // a last line the peer sent without its newline
        break;
      }
      const chunk = buffer.subarray(0, n);
      // Filtered first: the filter may start a new splitter (a line erased or interrupted).
      const data = connection.face === "json" || !filter ? chunk : filter(chunk);
      splitter.push(data, onLine, onBlank);
      if (n < buffer.length) reads.take();
      if (n === buffer.length && buffer.length < READ_BUFFER_BYTES) {
        buffer = new Uint8Array(READ_BUFFER_BYTES);
      }
    }
  } catch (error) {
    if (error instanceof FrameTooLargeError) {
      log(`${connection.address} ! too_large: line over ${maxFrameBytes} bytes`);
      connection.fail("too_large", `Line is longer than ${maxFrameBytes} bytes`, "sent too much");
    } else if (!isDisconnectError(error)) {
      log(`${connection.address} ! read failed: ${errorText(error)}`);
    }
  } finally {
    // Lines still waiting when the person's side closed are not carried out: they left.
    const dropped = typed?.clear() ?? 0;
    if (dropped > 0) {
      connection.send(
        new Outgoing(errorFrame(
          "rate_limited",
          `${countOf(dropped, "waiting line was", "waiting lines were")} not sent: ` +
            "the connection was closed from your side",
        )),
      );
    }
    connection.closeAfterFlush("disconnected");
    if (connection.member) {
      const reason = connection.endReason ?? "disconnected";
      const hold = connection.face === "json" && RESUMABLE_REASONS.has(reason);
      hub.disconnect(connection.member, connection, reason, { hold });
    }
  }
  await connection.closed;
}

/** `1 line was`, `2 lines were`: a count with the words for one or for several. */
function countOf(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

/**
 * Acts on one line of a program (JSON). Over the rate it is refused; a refusal is answered; a
 * frame the program got wrong (bad JSON, a malformed frame, anything before the hello) also
 * spends from the connection's error allowance, and when that is gone the connection ends.
 */
function handleFrameLine(connection: Connection, hub: Hub, line: string): void {
  const frame = decodeLine(line);
  if ("code" in frame) {
    answer(connection, frame);
    return;
  }
  if (overRate(connection, frame)) return;
  const error = dispatchFrame(connection, hub, frame);
  if (error !== undefined) answer(connection, error);
}

/**
 * Answers a refused line with its error; a person without a name yet is asked again. Protocol
 * violations (a program's) spend from the error allowance; what a person types wrong never
 * counts as such.
 */
function answer(connection: Connection, error: ErrorFrame): void {
  connection.settings.log(`${connection.address} ! ${error.code}: ${error.message}`);
  connection.send(new Outgoing(error));
  const face = connection.settings.face;
  if (face && connection.face === "text" && connection.member === undefined) {
    connection.sendText(face.askAgain);
  }
  if (isViolation(connection, error) && !connection.errorBudget.take()) {
    connection.fail("too_many_errors", "Too many bad frames: closing", "too many bad frames");
  }
}

/** Whether an error says a program broke the protocol (as opposed to a refused request). */
function isViolation(connection: Connection, error: ErrorFrame): boolean {
  return connection.face === "json" &&
    (error.code === "bad_frame" || error.code === "hello_first" || error.code === "too_large");
}

/**
 * Spends a connection's allowance on a frame ({@linkcode frameCost}; a `bye` is free), hellos
 * included, so names tried over and over cost like anything else. Over the rate the frame is
 * refused with `rate_limited`; {@linkcode FLOOD_STRIKES} refusals at once disconnect. Returns
 * whether the frame was refused.
 */
function overRate(connection: Connection, frame: ClientFrame): boolean {
  const cost = frameCost(frame);
  return cost > 0 && spend(connection, cost, "ref" in frame ? frame.ref : undefined);
}

/** The allowance a connection's frames spend: its own once joined, the hello's before. */
function allowance(connection: Connection): TokenBucket {
  return connection.member ? connection.bucket : connection.helloBucket;
}

/** Takes `cost` from the allowance; refuses (and counts a strike) when it is not there. */
function spend(connection: Connection, cost: number, ref: string | undefined): boolean {
  if (allowance(connection).take(cost)) return false;
  if (!strike(connection, 1)) return true;
  const { rate, burst } = connection.settings;
  const error = errorFrame(
    "rate_limited",
    `Too fast: at most ${rate} a second after a burst of ${burst}; this was not sent`,
  );
  connection.send(new Outgoing(ref === undefined ? error : { ...error, ref }));
  return true;
}

/**
 * Counts `strikes` (a refusal is one) against the connection's flood allowance; once that is
 * gone the connection is disconnected for flooding. Returns whether it may go on.
 */
function strike(connection: Connection, strikes: number): boolean {
  if (connection.refusalBudget.take(strikes)) return true;
  const who = connection.member?.name ?? "(no name)";
  connection.settings.log(`${connection.address} ! flooding: ${who} kept going over the rate`);
  connection.fail("flooding", "You kept sending too fast: disconnected", "flooding");
  return false;
}

function decodeLine(line: string): ClientFrame | ErrorFrame {
  const decoded = decodeClientFrame(line);
  if (decoded.ok) return decoded.value;
  return errorFrame(
    decoded.error.kind === "too_large" ? "too_large" : "bad_frame",
    decoded.error.message,
  );
}

// ==== A person's lines ====

/**
 * What a line a person typed costs against the sending allowance: a command's frame what that
 * frame costs (`/quit` nothing), anything else (help, a switch, a mistake) one.
 */
function inputCost(input: TextInput): number {
  return input.kind === "frame" ? frameCost(input.frame) : 1;
}

/**
 * The lines a person typed or pasted on `nc` or `telnet`, carried out in order as the sending
 * allowance allows. A person cannot pace themselves the way a program does: a line typed while
 * the allowance is there is carried out at once, and the lines of a paste wait their turn (at
 * most {@linkcode TEXT_QUEUE_LINES} lines and {@linkcode TEXT_QUEUE_CHARS} characters), so the
 * connection never goes over the rate and nothing it sends is refused for speed. Lines past
 * that bound are refused, and the person is told once; each counts a fraction of a flood
 * strike ({@linkcode TEXT_LINES_PER_STRIKE}).
 */
class TextQueue {
  readonly #connection: Connection;
  readonly #hub: Hub;
  #lines: string[] = [];
  #chars = 0;
  /** Set while the first waiting line waits for the allowance. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Whether the person was told lines were refused, since the queue was last empty. */
  #toldFull = false;

  constructor(connection: Connection, hub: Hub) {
    this.#connection = connection;
    this.#hub = hub;
  }

  /** Takes a typed line: carried out now when nothing waits and the allowance is there. */
  push(line: string): void {
    if (this.#lines.length >= TEXT_QUEUE_LINES || this.#chars + line.length > TEXT_QUEUE_CHARS) {
      this.#refuse();
      return;
    }
    this.#lines.push(line);
    this.#chars += line.length;
    if (this.#timer === undefined) this.#release();
  }

  /** Drops every waiting line (and the timer); returns how many there were. */
  clear(): number {
    const dropped = this.#lines.length;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#lines = [];
    this.#chars = 0;
    this.#toldFull = false;
    return dropped;
  }

  /** Carries out waiting lines while the allowance lasts; then waits for it to refill. */
  #release(): void {
    this.#timer = undefined;
    const connection = this.#connection;
    const face = connection.settings.face!;
    while (this.#lines.length > 0) {
      if (connection.ending) {
        this.clear();
        return;
      }
      const line = this.#lines[0]!;
      // Read anew each time: what a line means (a name, a room) may change with the line before.
      const input = face.read(line, connection.member, connection.passwordFor);
      const cost = inputCost(input);
      const bucket = allowance(connection);
      const wait = bucket.wait(cost);
      if (wait > 0) {
        this.#timer = setTimeout(() => this.#release(), wait);
        return;
      }
      bucket.take(cost);
      this.#lines.shift();
      this.#chars -= line.length;
      actOnText(connection, this.#hub, input);
    }
    this.#toldFull = false;
  }

  /** A line past the bound: refused, the person told once, a fraction of a strike counted. */
  #refuse(): void {
    const connection = this.#connection;
    if (!this.#toldFull) {
      this.#toldFull = true;
      const { rate, log } = connection.settings;
      const who = connection.member?.name ?? "(no name)";
      log(`${connection.address} ! rate_limited: ${who} pasted too much at once`);
      const waiting = countOf(this.#lines.length, "line waits", "lines wait");
      connection.send(
        new Outgoing(errorFrame(
          "rate_limited",
          `Too much at once: ${waiting} to go out, ${rate} a second; the lines after ` +
            "them were not sent",
        )),
      );
    }
    strike(connection, 1 / TEXT_LINES_PER_STRIKE);
  }
}

/** Carries out what a typed line came to; what the face answers directly is done here. */
function actOnText(connection: Connection, hub: Hub, input: TextInput): void {
  let error: ErrorFrame | undefined;
  switch (input.kind) {
    case "frame":
      error = dispatchFrame(connection, hub, input.frame);
      if (input.frame.type === "hello") {
        // A private server's password comes on the next line; any other answer ends that. A
        // person made to wait after wrong passwords is asked for the password again, never
        // for a name: the next line would be the password, shown to everyone as a name.
        const asked = error?.code === "password_required" ||
          (error?.code === "rate_limited" && connection.passwordFor !== undefined);
        connection.passwordFor = asked ? input.frame.name : undefined;
        if (asked) {
          connection.send(new Outgoing(error!));
          const encrypted = connection.transport.kind !== "tcp";
          connection.sendText(connection.settings.face!.askPassword(encrypted));
          return;
        }
      }
      break;
    case "error":
      error = input.error;
      break;
    case "reply":
      connection.sendText(input.lines);
      return;
    case "switch":
      error = connection.member ? hub.switchRoom(connection.member, input.room) : undefined;
      break;
  }
  if (error !== undefined) answer(connection, error);
}

// ==== Frames ====

/** Carries out a decoded frame; returns the error to answer with, if any. */
function dispatchFrame(
  connection: Connection,
  hub: Hub,
  frame: ClientFrame,
): ErrorFrame | undefined {
  if (frame.type === "bye") {
    const reason = frame.message ? `quit: ${cleanLine(frame.message)}` : "quit";
    connection.closeAfterFlush(reason);
    return undefined;
  }
  if (connection.member) return hub.receive(connection.member, frame);
  if (connection.handshake.state === "verifying") {
    return errorFrame("hello_first", "Wait for the welcome: the proof is being checked");
  }
  if (frame.type === "proof") return checkProof(connection, hub, frame);
  if (connection.handshake.state === "challenged") {
    return errorFrame("hello_first", "Answer the challenge with a proof first");
  }
  if (frame.type !== "hello") {
    return errorFrame("hello_first", 'The first frame must be {"type":"hello","name":"..."}');
  }
  const refusal = connection.settings.admitLogin(connection);
  if (refusal !== undefined) {
    connection.settings.log(`${connection.address} ! refused a hello: ${refusal.message}`);
    connection.end(refusal, refusal.code === "server_full" ? "refused" : "too many logins");
    return undefined;
  }
  if (frame.key === undefined) return join(connection, hub, frame, undefined);
  if (!isKeyText(frame.key)) {
    return errorFrame(
      "bad_frame",
      'Field "key" must be an Ed25519 public key: 32 bytes, base64url',
    );
  }
  // Nothing about the key is trusted until the client signs a nonce that was never used before.
  const nonce = newNonce();
  connection.handshake = { state: "challenged", hello: frame, key: frame.key, nonce };
  connection.send(new Outgoing({ type: "challenge", nonce }));
  return undefined;
}

/**
 * Checks a proof against the challenge; a good one joins with the verified key, a bad one (or
 * one with no challenge) ends the connection with `bad_signature`.
 */
function checkProof(connection: Connection, hub: Hub, proof: ProofFrame): ErrorFrame | undefined {
  const handshake = connection.handshake;
  if (handshake.state !== "challenged") {
    return errorFrame("hello_first", "A proof answers a challenge: send a hello with a key first");
  }
  connection.handshake = { state: "verifying" };
  verifyKey(handshake.key, handshake.nonce, proof.signature).then((key) => {
    if (connection.ending) return;
    if (key === undefined) {
      connection.settings.log(`${connection.address} ! bad_signature: the proof does not match`);
      connection.fail(
        "bad_signature",
        "The signature does not match the key of the hello: nothing was trusted",
        "bad signature",
      );
      return;
    }
    connection.handshake = { state: "none" };
    const error = join(connection, hub, handshake.hello, key);
    if (error) connection.send(new Outgoing(error));
  });
  return undefined;
}

/** The facts of a key whose proof is good, or `undefined` for a bad proof. */
async function verifyKey(
  publicKey: string,
  nonce: string,
  signature: string,
): Promise<VerifiedKey | undefined> {
  if (!await verifyProof(publicKey, nonce, signature)) return undefined;
  return await keyFacts(publicKey);
}

/** Hands a hello (with its verified key, if any) to the hub; a fatal refusal ends the connection. */
function join(
  connection: Connection,
  hub: Hub,
  hello: HelloFrame,
  key: VerifiedKey | undefined,
): ErrorFrame | undefined {
  const joined = hub.join(connection, hello, key);
  if (!joined.ok) {
    if (!FATAL_ERROR_CODES.has(joined.error.code)) return joined.error;
    connection.end(joined.error, joined.error.code);
    return undefined;
  }
  connection.joined(joined.value);
  const face = connection.settings.face;
  if (face && connection.face === "text") connection.sendText(face.welcomed(joined.value.name));
  return undefined;
}
