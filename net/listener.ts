/**
 * The network side of the server: accepts connections from any number of listeners (TCP today;
 * TLS and WebSocket later, each a {@linkcode TransportListener}), enforces the connection caps
 * and the login allowances, pings silent clients, and shuts everything down in order.
 *
 * Connections that have not said hello yet are kept apart from those that have: they have a
 * small pool of their own (per address and in all), where the newest push the oldest out, so
 * sockets that never say anything cannot keep people who do say hello out.
 *
 * @module
 */

import { addressGroup, JSON_ENCODER, Outgoing } from "../chat/directory.ts";
import type { Hub } from "../chat/hub.ts";
import { type ErrorFrame, errorFrame } from "../protocol.ts";
import { errorText, type Transport, type TransportListener } from "./conn.ts";
import { Connection, type ConnectionSettings, serveConnection } from "./connection.ts";
import { heartbeat, TokenBucket } from "./pace.ts";

/** Options for {@linkcode Gateway}: every connection's settings, and the caps. */
export interface GatewayOptions extends Omit<ConnectionSettings, "admitLogin" | "onJoined"> {
  /** The most people (connections past their hello) at once; 0 for no limit. */
  maxClients: number;
  /** The most people at once from one IP address; 0 for no limit. */
  maxClientsPerAddress: number;
  /**
   * The most connections still without a hello at once; when full, the oldest is closed to
   * make room.
   * @default {64}
   */
  maxPending?: number;
  /**
   * The most connections still without a hello from one IP address; more are refused.
   * @default {4}
   */
  maxPendingPerAddress?: number;
  /**
   * Connections (each one login, resumes included, whether it says hello or not) one IP address
   * may make a minute, after a burst of as many; 0 for no limit.
   * @default {20}
   */
  loginsPerAddress?: number;
  /**
   * Logins the whole server takes a second, after a burst of ten times as many (a restart
   * brings everyone back at once); 0 for no limit.
   * @default {100}
   */
  logins?: number;
}

/** The limits on connections and logins a gateway starts with unless told otherwise. */
export const DEFAULT_GATEWAY_LIMITS = {
  maxPending: 64,
  maxPendingPerAddress: 4,
  loginsPerAddress: 20,
  logins: 100,
} as const;

/** After logging that an address was refused, how long its next refusals go unlogged, in ms. */
const REFUSAL_QUIET_MS = 1000;
/** How many addresses' login allowances are remembered at most (idle full ones are dropped). */
const MAX_LOGIN_ADDRESSES = 10_000;

/** The first wait after an accept fails, in milliseconds; it doubles on each failure in a row. */
export const ACCEPT_RETRY_MIN_MS = 5;
/** The longest wait between failing accepts, in milliseconds. */
export const ACCEPT_RETRY_MAX_MS = 1000;

/**
 * How long to wait before accepting again after `failures` failed accepts in a row: a few
 * milliseconds doubling to a second, so running out of file descriptors neither spins the CPU
 * nor floods the log, and serving resumes soon after descriptors free up.
 */
export function acceptRetryMs(failures: number): number {
  return Math.min(ACCEPT_RETRY_MAX_MS, ACCEPT_RETRY_MIN_MS * 2 ** Math.min(failures - 1, 20));
}

const PING = new Outgoing({ type: "ping" });

/**
 * Accepts connections into a hub. Each connection is served until it ends; the caps turn extra
 * ones away with `server_full`; a heartbeat pings joined JSON clients that fell silent and drops
 * those that stay so.
 */
export class Gateway {
  #hub: Hub;
  #options: GatewayOptions;
  #settings: ConnectionSettings;
  #connections = new Set<Connection>();
  /** Connections without a hello yet, oldest first. */
  #pending = new Set<Connection>();
  #pendingPerAddress = new Map<string, number>();
  #joinedPerAddress = new Map<string, number>();
  #joined = 0;
  #loginsByAddress = new Map<string, TokenBucket>();
  /** When each address group was last told it was refused. */
  #lastRefusal = new Map<string, number>();
  #logins: TokenBucket;
  #handlers = new Set<Promise<void>>();
  #listeners = new Set<TransportListener>();
  #accepting = new Set<Promise<void>>();
  #heartbeatTimer: ReturnType<typeof setInterval>;
  #closing = false;
  #wakeAccept = new Set<() => void>();

  constructor(hub: Hub, options: GatewayOptions) {
    this.#hub = hub;
    this.#options = options;
    this.#settings = {
      ...options,
      admitLogin: (connection) => this.#admitLogin(connection),
      onJoined: (connection) => this.#onJoined(connection),
    };
    const logins = options.logins ?? DEFAULT_GATEWAY_LIMITS.logins;
    this.#logins = new TokenBucket({ rate: logins, burst: logins * 10 });
    this.#heartbeatTimer = setInterval(
      () => this.#checkHeartbeats(),
      Math.max(10, Math.floor(options.heartbeatMs / 4)),
    );
  }

  /** Every connection, with its member once it has joined, for the operator. */
  connections(): Iterable<Connection> {
    return this.#connections;
  }

  /** Accepts connections from a listener until it or the gateway is closed. */
  serve(listener: TransportListener): void {
    this.#listeners.add(listener);
    const loop = this.#acceptLoop(listener);
    this.#accepting.add(loop);
  }

  /**
   * Stops accepting, tells every client the server is shutting down (with `reason`), gives them a
   * moment to receive it, closes every connection, and resolves when all of that is done.
   */
  async close(reason: string): Promise<void> {
    this.#closing = true;
    for (const listener of this.#listeners) listener.close();
    for (const wake of this.#wakeAccept) wake();
    await Promise.all(this.#accepting);
    this.#hub.quiet();
    const notice = new Outgoing(errorFrame("shutting_down", reason));
    for (const connection of this.#connections) {
      connection.send(notice);
      connection.closeAfterFlush("server shutting down");
    }
    await Promise.all(this.#handlers);
    clearInterval(this.#heartbeatTimer);
  }

  async #acceptLoop(listener: TransportListener): Promise<void> {
    let failures = 0;
    while (!this.#closing) {
      let transport;
      try {
        transport = await listener.accept();
      } catch (error) {
        // Running out of file descriptors and the like: say so, wait, and keep serving the
        // others; the wait grows while accepting keeps failing.
        failures++;
        const waitMs = acceptRetryMs(failures);
        this.#options.log(`! accept failed: ${errorText(error)}; trying again in ${waitMs} ms`);
        await this.#pause(waitMs);
        continue;
      }
      if (transport === undefined) return;
      failures = 0;
      this.#admit(transport);
    }
  }

  /** Waits `ms`, or less if the gateway closes meanwhile. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakeAccept.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakeAccept.add(wake);
    });
  }

  /**
   * Serves a new connection in the pool of those without a hello, or turns it away when its
   * address has spent its logins or has too many connections there already. When the pool is
   * full, its oldest connection goes. A refusal is decided on the bare transport, before anything
   * is set up for it: connecting over and over costs the server as little as can be.
   */
  #admit(transport: Transport): void {
    const group = addressGroup(transport.remoteAddress);
    const refusal = this.#spendLogin(group) ?? this.#pendingRefusal(group);
    if (refusal) {
      this.#refuse(transport, group, refusal);
      return;
    }
    const connection = new Connection(
      transport,
      transport.jsonOnly ? { ...this.#settings, face: undefined } : this.#settings,
    );
    const maxPending = this.#options.maxPending ?? DEFAULT_GATEWAY_LIMITS.maxPending;
    if (maxPending > 0 && this.#pending.size >= maxPending) {
      const oldest = this.#pending.values().next().value!;
      this.#options.log(
        `${oldest.address} ! closed a connection that never said hello, to make room`,
      );
      oldest.fail("timeout", "No hello in time, and others are waiting", "timed out");
      this.#leavePending(oldest);
    }
    this.#connections.add(connection);
    this.#pending.add(connection);
    count(this.#pendingPerAddress, connection.addressGroup, +1);
    const handler = serveConnection(connection, this.#hub).finally(() => {
      this.#connections.delete(connection);
      if (this.#pending.has(connection)) this.#leavePending(connection);
      else if (connection.member !== undefined || connection.counted) this.#leaveJoined(connection);
      this.#handlers.delete(handler);
    });
    this.#handlers.add(handler);
  }

  /** Why one more connection from an address may not wait for its hello, if it may not. */
  #pendingRefusal(group: string): ErrorFrame | undefined {
    const maxPerAddress = this.#options.maxPendingPerAddress ??
      DEFAULT_GATEWAY_LIMITS.maxPendingPerAddress;
    if (maxPerAddress <= 0 || (this.#pendingPerAddress.get(group) ?? 0) < maxPerAddress) {
      return undefined;
    }
    return errorFrame(
      "server_full",
      `Too many connections from your address are still to say hello (${maxPerAddress}): ` +
        "say hello on one first",
    );
  }

  /**
   * Turns a connection away with its refusal (as JSON: what the peer speaks is not known yet),
   * then closes it. Only the first refusal of an address in a second is logged, so a connection
   * storm does not cost a log line each.
   */
  #refuse(transport: Transport, group: string, refusal: ErrorFrame): void {
    const now = performance.now();
    if (now - (this.#lastRefusal.get(group) ?? -Infinity) >= REFUSAL_QUIET_MS) {
      if (this.#lastRefusal.size >= MAX_LOGIN_ADDRESSES) this.#lastRefusal.clear();
      this.#lastRefusal.set(group, now);
      this.#options.log(`${transport.remoteAddress} ! refused: ${refusal.message}`);
    }
    const told = transport.write(new Outgoing(refusal).bytes(JSON_ENCODER))
      .catch(() => 0)
      .finally(() => {
        transport.close();
        this.#handlers.delete(told);
      }).then(() => {});
    this.#handlers.add(told);
  }

  #leavePending(connection: Connection): void {
    if (!this.#pending.delete(connection)) return;
    count(this.#pendingPerAddress, connection.addressGroup, -1);
  }

  #leaveJoined(connection: Connection): void {
    if (!connection.counted) return;
    connection.counted = false;
    this.#joined--;
    count(this.#joinedPerAddress, connection.addressGroup, -1);
  }

  /**
   * Whether a connection may log in now: the caps on people (in all and per address) and the
   * login allowances (per address and in all). Returns the refusal otherwise.
   */
  #admitLogin(connection: Connection): ErrorFrame | undefined {
    const { maxClients, maxClientsPerAddress } = this.#options;
    const address = connection.addressGroup;
    if (!connection.counted) {
      if (maxClients > 0 && this.#joined >= maxClients) {
        return errorFrame(
          "server_full",
          `The server is full (${maxClients} connections): try again later`,
        );
      }
      const fromAddress = this.#joinedPerAddress.get(address) ?? 0;
      if (maxClientsPerAddress > 0 && fromAddress >= maxClientsPerAddress) {
        return errorFrame(
          "server_full",
          `Too many connections from your address (${maxClientsPerAddress}): close one first`,
        );
      }
    }
    if ((this.#options.logins ?? 1) > 0 && !this.#logins.take()) {
      return errorFrame("rate_limited", "Too many logins at once: try again in a few seconds");
    }
    return undefined;
  }

  /**
   * Spends one of the login allowance of a new connection's address: each connection is one
   * login, asked for or not, so connecting over and over (and never saying hello) is bounded as
   * a login storm is. Returns the refusal when the allowance is spent.
   */
  #spendLogin(address: string): ErrorFrame | undefined {
    const perAddress = this.#options.loginsPerAddress ?? DEFAULT_GATEWAY_LIMITS.loginsPerAddress;
    if (perAddress <= 0) return undefined;
    let bucket = this.#loginsByAddress.get(address);
    if (bucket === undefined) {
      if (this.#loginsByAddress.size >= MAX_LOGIN_ADDRESSES) this.#forgetIdleLogins();
      bucket = new TokenBucket({ rate: perAddress / 60, burst: perAddress });
      this.#loginsByAddress.set(address, bucket);
    }
    if (bucket.take()) return undefined;
    const seconds = Math.ceil(bucket.wait() / 1000);
    return errorFrame(
      "rate_limited",
      `Too many connections from your address: try again in ${seconds} s`,
    );
  }

  /** A connection said hello and joined: it leaves the pending pool and counts as a person. */
  #onJoined(connection: Connection): void {
    this.#leavePending(connection);
    if (connection.counted) return;
    connection.counted = true;
    this.#joined++;
    count(this.#joinedPerAddress, connection.addressGroup, +1);
  }

  /** Drops the login allowances of addresses that have not logged in for a while. */
  #forgetIdleLogins(): void {
    for (const [address, bucket] of this.#loginsByAddress) {
      if (bucket.full) this.#loginsByAddress.delete(address);
    }
  }

  /**
   * Pings every joined JSON client that has been silent for the heartbeat interval, and closes
   * those still silent one interval after the ping.
   */
  #checkHeartbeats(): void {
    if (this.#loginsByAddress.size > 0) this.#forgetIdleLogins();
    const { heartbeatMs } = this.#options;
    const now = performance.now();
    for (const connection of this.#connections) {
      if (connection.face !== "json" || !connection.member || connection.ending) continue;
      const verdict = heartbeat(now - connection.lastHeard, heartbeatMs, connection.pinged);
      if (verdict === "give_up") {
        connection.fail(
          "timeout",
          `No answer to a ping for ${Math.round(heartbeatMs / 1000)} s: closing`,
          "no answer",
        );
      } else if (verdict === "ping") {
        connection.pinged = true;
        connection.send(PING);
      }
    }
  }
}

/** Adds `delta` to an address's count, forgetting addresses that reach zero. */
function count(counts: Map<string, number>, address: string, delta: number): void {
  const next = (counts.get(address) ?? 0) + delta;
  if (next <= 0) counts.delete(address);
  else counts.set(address, next);
}
