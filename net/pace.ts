/**
 * Pacing and liveness, shared by the server and the client: the token bucket that limits (on the
 * server) or paces (in the client) what a connection sends, the heartbeat rule both ends follow,
 * and the client's reconnection backoff.
 *
 * @module
 */

/** Options for {@linkcode TokenBucket}. */
export interface TokenBucketOptions {
  /** Tokens added per second; 0 means no limit at all. */
  rate: number;
  /** The most tokens held, which is the largest burst allowed after a quiet spell. */
  burst: number;
  /**
   * The clock, in milliseconds.
   * @default {performance.now}
   */
  now?: () => number;
}

/**
 * A token bucket: each action takes a token, tokens come back at `rate` a second, and at most
 * `burst` are saved up. The server uses one per connection to refuse floods; the client uses one
 * to pace what it sends so that the server never has to.
 */
export class TokenBucket {
  #rate: number;
  #burst: number;
  #now: () => number;
  #tokens: number;
  #at: number;

  constructor(options: TokenBucketOptions) {
    this.#rate = options.rate;
    this.#burst = Math.max(1, options.burst);
    this.#now = options.now ?? (() => performance.now());
    this.#tokens = this.#burst;
    this.#at = this.#now();
  }

  /**
   * Takes `cost` tokens (at most the burst: anything costs at most a full bucket) if they are
   * there; returns whether it did.
   */
  take(cost = 1): boolean {
    if (this.#rate === 0) return true;
    this.#refill();
    const needed = Math.min(cost, this.#burst);
    if (this.#tokens < needed) return false;
    this.#tokens -= needed;
    return true;
  }

  /** How long until `cost` tokens are there, in milliseconds (0 when they are there now). */
  wait(cost = 1): number {
    if (this.#rate === 0) return 0;
    this.#refill();
    const needed = Math.min(cost, this.#burst);
    return this.#tokens >= needed ? 0 : Math.ceil((needed - this.#tokens) * 1000 / this.#rate);
  }

  /** Whether the bucket is full: nothing was taken for a while (such buckets can be dropped). */
  get full(): boolean {
    if (this.#rate === 0) return true;
    this.#refill();
    return this.#tokens >= this.#burst;
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#rate / 1000);
    this.#at = now;
  }
}

/** What a heartbeat check decides about a peer: nothing yet, ping it, or give it up. */
export type HeartbeatVerdict = "fine" | "ping" | "give_up";

/**
 * The heartbeat rule both sides follow: after `heartbeatMs` of silence ping the peer (once),
 * and after twice that, with still no word, give the connection up.
 */
export function heartbeat(
  silentMs: number,
  heartbeatMs: number,
  pinged: boolean,
): HeartbeatVerdict {
  if (silentMs >= 2 * heartbeatMs) return "give_up";
  return silentMs >= heartbeatMs && !pinged ? "ping" : "fine";
}

/**
 * The wait before reconnection attempt `attempt` (from 1): `minMs` doubling up to `maxMs`, with
 * jitter (between half and all of it) so that many clients dropped at once do not return at once.
 */
export function backoff(attempt: number, minMs: number, maxMs: number): number {
  const full = Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(full / 2 + Math.random() * full / 2);
}
