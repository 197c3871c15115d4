/**
 * The transcript (`--log FILE`): every line the client shows, appended to a file without colours.
 *
 * @module
 */

import { writeLinesSync } from "../net/outbox.ts";
import type { ServerAddress } from "../protocol.ts";
import { errorText } from "../net/conn.ts";
import { stripAnsi } from "./render.ts";

/** A transcript file: every line shown is appended to it, without colours. */
export class Transcript {
  #file: Deno.FsFile | undefined;
  #path: string;

  private constructor(file: Deno.FsFile, path: string) {
    this.#file = file;
    this.#path = path;
  }

  /**
   * Opens (creating) a file to append to.
   * @throws {TranscriptError} when it cannot be opened for writing.
   */
  static open(path: string): Transcript {
    try {
      return new Transcript(Deno.openSync(path, { append: true, create: true }), path);
    } catch (error) {
      const why = error instanceof Deno.errors.PermissionDenied
        ? "permission denied"
        : error instanceof Deno.errors.NotFound
        ? "its folder does not exist"
        : errorText(error);
      throw new TranscriptError(`Cannot write the log ${path}: ${why}`);
    }
  }

  /** Appends lines; after a failed write (disk full...) it says so once and stops. */
  write(lines: readonly string[]): void {
    if (!this.#file || lines.length === 0) return;
    try {
      writeLinesSync(this.#file, lines.map(stripAnsi));
    } catch (error) {
      console.error(`client: stopped writing the log ${this.#path}: ${errorText(error)}`);
      this.close();
    }
  }

  /** Closes the file; later writes do nothing. */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }
}

/** The line a transcript starts each session with: when, and which server. */
export function transcriptHeader(address: ServerAddress): string {
  return `--- ${new Date().toString()}: ${address.hostname}:${address.port} ---`;
}

/** A log file that cannot be opened. */
export class TranscriptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TranscriptError";
  }
}
