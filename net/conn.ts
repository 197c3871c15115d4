/**
 * The transport seam: one interface for a connection, whatever carries it. TCP
 * (`net/tcp.ts`) is the first implementation; TLS and WebSocket plug in as further ones, and
 * everything above `net/` sees only a {@linkcode Transport}.
 *
 * A transport is a byte stream of newline-ended frames, because that is what TCP and TLS are. A
 * message-based carrier maps one message to one line: it hands each message it receives to
 * `read` followed by a `\n`, and sends each line given to `write` as one message.
 *
 * @module
 */

/** One connection to a peer. */
export interface Transport {
  /**
   * What carries it, for the operator's log: `tcp`, and later `tls` or `websocket`.
   */
  readonly kind: string;
  /**
   * The peer's IP address as people write it (`10.0.0.5` rather than `::ffff:10.0.0.5`), for the
   * log, the per-address limits and bans.
   */
  readonly remoteAddress: string;
  /**
   * Whether only programs speak over it (a browser's WebSocket): such a connection never gets
   * the plain-text face, however it starts.
   */
  readonly jsonOnly?: boolean;
  /** Reads into `buffer`; resolves to how many bytes arrived, or `null` once the peer closed. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes some of `bytes` (at least one byte); resolves to how many were taken. */
  write(bytes: Uint8Array): Promise<number>;
  /** Closes now; a pending read then ends. Closing twice is harmless. */
  close(): void;
}

/**
 * Why a dialer would not go on with a server that answered: its key is not the one trusted
 * (`key_changed`), or it is a server nobody said to trust (`not_trusted`). Trying again would
 * not help, unlike a connection refused.
 */
export class DialRefusal {
  constructor(readonly code: "key_changed" | "not_trusted", readonly message: string) {}
}

/** Where a server's connections come from: a listening socket of some kind. */
export interface TransportListener {
  /** What it listens for, as {@linkcode Transport.kind}. */
  readonly kind: string;
  /** Where it listens, with the real port when 0 was asked for. */
  readonly addr: { hostname: string; port: number };
  /**
   * The next connection, or `undefined` once the listener is closed.
   * @throws the operating system's accept errors (running out of file descriptors...).
   */
  accept(): Promise<Transport | undefined>;
  /** Stops listening; a pending `accept` then resolves to `undefined`. */
  close(): void;
}

/**
 * Whether an error only means the peer went away (closed, reset, or our own close interrupting a
 * pending read or write). Such errors end a connection quietly.
 */
export function isDisconnectError(error: unknown): boolean {
  return error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.NotConnected;
}

/**
 * An error as one line for a person or the log: the first sentence of its message (`parseArgs`
 * explains at length), without a closing period or the operating system's `(os error 98)`.
 */
export function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split(/\.\s/)[0]!.replace(/ \(os error \d+\)$/, "").replace(/\.$/, "");
}

/** Closes a socket, listener or file that may be closed already (which Deno reports as `BadResource`). */
export function closeQuietly(closable: { close(): void }): void {
  try {
    closable.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}
