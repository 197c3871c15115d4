/**
 * The network side of the server: accepts connections from any number of listeners (TCP today;
 * TLS and WebSocket later, each a {@linkcode TransportListener}), enforces the connection caps,
 * pings silent clients, and shuts everything down in order.
 *
 * @module
 */

import { Outgoing } from "../chat/directory.ts";
import type { Hub } from "../chat/hub.ts";
import { errorFrame } from "../protocol.ts";
import { errorText, type TransportListener } from "./conn.ts";
import { Connection, type ConnectionSettings, serveConnection } from "./connection.ts";
import { heartbeat } from "./pace.ts";

/** Options for {@linkcode Gateway}: every connection's settings, and the caps. */
export interface GatewayOptions extends ConnectionSettings {
  /** The most connections at once; 0 for no limit. */
  maxClients: number;
  /** The most connections at once from one IP address; 0 for no limit. */
  maxClientsPerAddress: number;
}

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
  #connections = new Set<Connection>();
  #perAddress = new Map<string, number>();
  #handlers = new Set<Promise<void>>();
  #listeners = new Set<TransportListener>();
  #accepting = new Set<Promise<void>>();
  #heartbeatTimer: ReturnType<typeof setInterval>;
  #closing = false;
  #wakeAccept = new Set<() => void>();

  constructor(hub: Hub, options: GatewayOptions) {
    this.#hub = hub;
    this.#options = options;
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
      this.#admit(new Connection(transport, this.#options));
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

  /** Serves a new connection, or turns it away when a cap is reached. */
  #admit(connection: Connection): void {
    const { maxClients, maxClientsPerAddress: maxPerAddress, log } = this.#options;
    const fromAddress = this.#perAddress.get(connection.address) ?? 0;
    let refusal: string | undefined;
    if (maxClients > 0 && this.#connections.size >= maxClients) {
      refusal = `The server is full (${maxClients} connections): try again later`;
    } else if (maxPerAddress > 0 && fromAddress >= maxPerAddress) {
      refusal = `Too many connections from your address (${maxPerAddress}): close one first`;
    }
    if (refusal !== undefined) {
      log(`${connection.address} ! refused: ${refusal}`);
      connection.fail("server_full", refusal, "refused");
      return;
    }
    this.#connections.add(connection);
    this.#perAddress.set(connection.address, fromAddress + 1);
    const handler = serveConnection(connection, this.#hub).finally(() => {
      this.#connections.delete(connection);
      const left = (this.#perAddress.get(connection.address) ?? 1) - 1;
      if (left === 0) this.#perAddress.delete(connection.address);
      else this.#perAddress.set(connection.address, left);
      this.#handlers.delete(handler);
    });
    this.#handlers.add(handler);
  }

  /**
   * Pings every joined JSON client that has been silent for the heartbeat interval, and closes
   * those still silent one interval after the ping.
   */
  #checkHeartbeats(): void {
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
