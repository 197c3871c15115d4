/**
 * The outgoing side of a connection: a bounded queue of encoded frames drained by one writer, and
 * the loops that write every byte of a buffer.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Something bytes can be written to, like a `Deno.Conn`. */
export interface ByteWriter {
  write(bytes: Uint8Array): Promise<number>;
}

/** Options for {@linkcode Outbox}. */
export interface OutboxOptions {
  /**
   * How many queued bytes are allowed before {@linkcode Outbox.push} refuses more.
   * @default {1048576}
   */
  maxBytes?: number;
  /** Called once when a write fails; the outbox then discards everything. */
  onError?: (error: unknown) => void;
}

/**
 * A bounded per-connection queue of encoded frames, drained by one flusher that starts at the end
 * of the turn in which something was queued, joins whatever is queued into a single write and
 * loops until every byte is written. Pushing never waits; a peer
 * that stops reading makes `push` return `false` once the bound is passed, and is never waited for.
 */
export class Outbox {
  #writer: ByteWriter;
  #maxBytes: number;
  #onError: (error: unknown) => void;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #flushing: Promise<void> | undefined;
  #failed = false;

  constructor(writer: ByteWriter, options: OutboxOptions = {}) {
    this.#writer = writer;
    this.#maxBytes = options.maxBytes ?? 1024 * 1024;
    this.#onError = options.onError ?? (() => {});
  }

  /** Bytes queued and not yet handed to the socket. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Queues bytes to be written. Returns `false`, queuing nothing, when that would pass the bound
   * or a write has already failed.
   */
  push(bytes: Uint8Array): boolean {
    if (this.#failed || this.#queuedBytes + bytes.length > this.#maxBytes) return false;
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
    // Writing starts at the end of this turn, so everything queued during it goes in one write.
    this.#flushing ??= Promise.resolve().then(() => this.#flush());
    return true;
  }

  /** Resolves once everything queued so far is written (or writing failed). */
  async drained(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.length === 1 ? this.#queue[0]! : joinChunks(this.#queue);
        this.#queue = [];
        await writeAll(this.#writer, batch);
        this.#queuedBytes -= batch.length;
      }
    } catch (error) {
      this.#failed = true;
      this.#queue = [];
      this.#queuedBytes = 0;
      this.#onError(error);
    } finally {
      this.#flushing = undefined;
    }
  }
}

/** Joins chunks of bytes into one new buffer. */
export function joinChunks(chunks: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  return joined;
}

/** Something bytes can be written to synchronously, like `Deno.stdout` or a `Deno.FsFile`. */
export interface SyncByteWriter {
  writeSync(bytes: Uint8Array): number;
}

/** Writes lines (each with a `\n`) synchronously, looping until every byte is taken. */
export function writeLinesSync(writer: SyncByteWriter, lines: readonly string[]): void {
  const bytes = encoder.encode(lines.map((line) => `${line}\n`).join(""));
  let written = 0;
  while (written < bytes.length) written += writer.writeSync(bytes.subarray(written));
}

/** Writes every byte, looping because one `write` may take only part of the buffer. */
export async function writeAll(writer: ByteWriter, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await writer.write(bytes.subarray(offset));
}
