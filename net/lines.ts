/**
 * Line framing for every connection and for piped input: a byte stream split into lines, with a
 * limit on how long a line may grow before its newline arrives.
 *
 * @module
 */

import { MAX_FRAME_BYTES } from "../protocol.ts";
import { joinChunks } from "./outbox.ts";

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

/**
 * Splits a byte stream into lines. Splitting happens on bytes, so a UTF-8 character cut across two
 * chunks is decoded whole; only the unfinished tail is kept between chunks, and it is never allowed
 * to grow past the limit. A trailing `\r` is dropped (CRLF is accepted) and blank lines are skipped.
 * Invalid UTF-8 becomes U+FFFD.
 */
export class LineSplitter {
  #maxLineBytes: number;
  #tail: Uint8Array[] = [];
  #tailBytes = 0;

  constructor(options: LineOptions = {}) {
    this.#maxLineBytes = options.maxLineBytes ?? MAX_FRAME_BYTES;
  }

  /** How many bytes of an unfinished line are held. */
  get pendingBytes(): number {
    return this.#tailBytes;
  }

  /**
   * Feeds one chunk and calls `onLine` for each line it completes.
   * @throws {FrameTooLargeError} when a line passes the limit; the splitter is then unusable.
   */
  push(chunk: Uint8Array, onLine: (line: string) => void): void {
    let start = 0;
    let end: number;
    while ((end = chunk.indexOf(NEWLINE, start)) !== -1) {
      this.#checkLength(this.#tailBytes + end - start + 1);
      const bytes = this.#tailBytes === 0
        ? chunk.subarray(start, end)
        : this.#takeTail(chunk.subarray(start, end));
      this.#emit(bytes, onLine);
      start = end + 1;
    }
    if (start < chunk.length) {
      // The newline still to come counts towards the limit too.
      this.#checkLength(this.#tailBytes + chunk.length - start + 1);
      this.#tail.push(chunk.slice(start));
      this.#tailBytes += chunk.length - start;
    }
  }

  #checkLength(bytes: number): void {
    if (bytes > this.#maxLineBytes) {
      this.#tail = [];
      this.#tailBytes = 0;
      throw new FrameTooLargeError(this.#maxLineBytes);
    }
  }

  #takeTail(last: Uint8Array): Uint8Array {
    this.#tail.push(last);
    const joined = joinChunks(this.#tail);
    this.#tail = [];
    this.#tailBytes = 0;
    return joined;
  }

  #emit(bytes: Uint8Array, onLine: (line: string) => void): void {
    const length = bytes.length > 0 && bytes[bytes.length - 1] === CARRIAGE_RETURN
      ? bytes.length - 1
      : bytes.length;
    if (length === 0) return;
    const line = lineDecoder.decode(bytes.subarray(0, length));
    if (line.trim() !== "") onLine(line);
  }
}

/** The size of the buffer each connection reads into. */
export const READ_BUFFER_BYTES = 8 * 1024;

/** Something bytes can be read from, like a `Deno.Conn`. */
export interface ByteReader {
  read(buffer: Uint8Array): Promise<number | null>;
}

/**
 * Yields the lines read from a connection until it closes. Reads go into one small reused buffer.
 * @throws {FrameTooLargeError} when a line passes the limit.
 */
export async function* readLines(
  reader: ByteReader,
  options: LineOptions = {},
): AsyncGenerator<string> {
  const splitter = new LineSplitter(options);
  const buffer = new Uint8Array(READ_BUFFER_BYTES);
  const lines: string[] = [];
  const collect = (line: string) => lines.push(line);
  while (true) {
    const n = await reader.read(buffer);
    if (n === null) return;
    try {
      splitter.push(buffer.subarray(0, n), collect);
    } catch (error) {
      // Lines completed before the over-long one are still good: hand them out first.
      yield* lines;
      throw error;
    }
    yield* lines;
    lines.length = 0;
  }
}
