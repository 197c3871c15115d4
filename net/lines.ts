/**
 * Line framing for every connection and for piped input: a byte stream split into lines, with a
 * limit on how long a line may grow before its newline arrives.
 *
 * @module
 */

import { MAX_FRAME_BYTES } from "../protocol.ts";

/** A line went past the frame limit before its newline arrived. */
export class FrameTooLargeError extends Error {
  constructor(limit: number) {
    super(`Line is longer than ${limit} bytes`);
    this.name = "FrameTooLargeError";
  }
}

/** Options for {@linkcode LineSplitter} and {@linkcode readLines}. */
export interface LineOptions {
  /**
   * The longest line accepted, in bytes, including its `\n`.
   * @default {MAX_FRAME_BYTES}
   */
  maxLineBytes?: number;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
/** Decodes whole lines only (never a part of a character), so every splitter can share it. */
const lineDecoder = new TextDecoder();

/** The smallest buffer an unfinished line is kept in, in bytes. */
const MIN_TAIL_BYTES = 64;
/** A tail buffer larger than this is let go once its line is done, so idle connections stay small. */
const KEPT_TAIL_BYTES = 4096;
const EMPTY = new Uint8Array(0);

/**
 * Splits a byte stream into lines. Splitting happens on bytes, so a UTF-8 character cut across two
 * chunks is decoded whole; only the unfinished tail is kept between chunks, and it is never allowed
 * to grow past the limit. The tail lives in one buffer that doubles as it fills, so however the
 * bytes trickle in (one a read, even), it holds at most twice the bytes of the line so far. A
 * trailing `\r` is dropped (CRLF is accepted) and blank lines are skipped (but told, so they can be
 * counted). Invalid UTF-8 becomes U+FFFD.
 */
export class LineSplitter {
  #maxLineBytes: number;
  #tail: Uint8Array = EMPTY;
  #tailBytes = 0;

  constructor(options: LineOptions = {}) {
    this.#maxLineBytes = options.maxLineBytes ?? MAX_FRAME_BYTES;
  }

  /** How many bytes of an unfinished line are held. */
  get pendingBytes(): number {
    return this.#tailBytes;
  }

  /** How many bytes the splitter holds for the unfinished line: its buffer, not just the bytes. */
  get heldBytes(): number {
    return this.#tail.length;
  }

  /**
   * Feeds one chunk and calls `onLine` for each line it completes (and `onBlank`, when given, for
   * each blank one it skips).
   * @throws {FrameTooLargeError} when a line passes the limit; the splitter is then unusable.
   */
  push(chunk: Uint8Array, onLine: (line: string) => void, onBlank?: () => void): void {
    let start = 0;
    let end: number;
    while ((end = chunk.indexOf(NEWLINE, start)) !== -1) {
      this.#checkLength(this.#tailBytes + end - start + 1);
      const bytes = this.#tailBytes === 0
        ? chunk.subarray(start, end)
        : this.#takeTail(chunk.subarray(start, end));
      this.#emit(bytes, onLine, onBlank);
      start = end + 1;
    }
    if (start < chunk.length) {
      // The newline still to come counts towards the limit too.
      this.#checkLength(this.#tailBytes + chunk.length - start + 1);
      this.#append(chunk.subarray(start));
    }
  }

  /**
   * Ends the input: an unfinished last line (one the input ended without a newline) is a line
   * too, and is handed to `onLine` (or `onBlank`) like any other.
   */
  end(onLine: (line: string) => void, onBlank?: () => void): void {
    if (this.#tailBytes === 0) return;
    this.#emit(this.#takeTail(EMPTY), onLine, onBlank);
  }

  #checkLength(bytes: number): void {
    if (bytes > this.#maxLineBytes) {
      this.#tail = EMPTY;
      this.#tailBytes = 0;
      throw new FrameTooLargeError(this.#maxLineBytes);
    }
  }

  /** Copies bytes after the tail, doubling its buffer (up to the limit) when they do not fit. */
  #append(bytes: Uint8Array): void {
    const needed = this.#tailBytes + bytes.length;
    if (needed > this.#tail.length) {
      let size = Math.max(MIN_TAIL_BYTES, this.#tail.length);
      while (size < needed) size *= 2;
      const grown = new Uint8Array(Math.min(size, Math.max(needed, this.#maxLineBytes)));
      grown.set(this.#tail.subarray(0, this.#tailBytes));
      this.#tail = grown;
    }
    this.#tail.set(bytes, this.#tailBytes);
    this.#tailBytes = needed;
  }

  /** The tail with `last` after it, as one line; the tail is then empty. */
  #takeTail(last: Uint8Array): Uint8Array {
    this.#append(last);
    const line = this.#tail.slice(0, this.#tailBytes);
    this.#tailBytes = 0;
    if (this.#tail.length > KEPT_TAIL_BYTES) this.#tail = EMPTY;
    return line;
  }

  #emit(bytes: Uint8Array, onLine: (line: string) => void, onBlank?: () => void): void {
    const length = bytes.length > 0 && bytes[bytes.length - 1] === CARRIAGE_RETURN
      ? bytes.length - 1
      : bytes.length;
    const line = length === 0 ? "" : lineDecoder.decode(bytes.subarray(0, length));
    if (line.trim() !== "") onLine(line);
    else onBlank?.();
  }
}

/** The size of the buffer each connection reads into. */
export const READ_BUFFER_BYTES = 8 * 1024;

/** Something bytes can be read from, like a `Deno.Conn`. */
export interface ByteReader {
  read(buffer: Uint8Array): Promise<number | null>;
}

/**
 * Yields the lines read from a connection until it closes, the last one too when the input ends
 * without a newline. Reads go into one small reused buffer.
 * @throws {FrameTooLargeError} when a line passes the limit.
 */
export async function* readLines(
  reader: ByteReader,
  options: LineOptions = {},
): AsyncGenerator<string> {
  for await (const batch of readLineBatches(reader, options)) yield* batch;
}

/**
 * Like {@linkcode readLines}, but yields the lines that arrived together (in one read) as one
 * batch, so that a caller can tell a paste or a burst of output from lines typed one by one.
 * With `keepBlank`, blank lines are kept too, as empty strings.
 * @throws {FrameTooLargeError} when a line passes the limit, after the batch of good lines before.
 */
export async function* readLineBatches(
  reader: ByteReader,
  options: LineOptions & { keepBlank?: boolean } = {},
): AsyncGenerator<string[]> {
  const splitter = new LineSplitter(options);
  const buffer = new Uint8Array(READ_BUFFER_BYTES);
  let lines: string[] = [];
  const collect = (line: string) => lines.push(line);
  const blank = options.keepBlank ? () => lines.push("") : undefined;
  while (true) {
    const n = await reader.read(buffer);
    if (n === null) {
      splitter.end(collect, blank);
      if (lines.length > 0) yield lines;
      return;
    }
    try {
      splitter.push(buffer.subarray(0, n), collect, blank);
    } catch (error) {
      // Lines completed before the over-long one are still good: hand them out first.
      if (lines.length > 0) yield lines;
      throw error;
    }
    if (lines.length > 0) yield lines;
    lines = [];
  }
}
