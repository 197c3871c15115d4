/**
 * Connections from any loopback address, so that one machine can play many: on Linux every
 * address in 127.0.0.0/8 is this computer, and a connection bound to `127.1.0.7` reaches a
 * server on `127.0.0.1` looking as if it came from another computer. The benchmark's hostile
 * scenario and the attack tests use it to give bystanders and attackers addresses of their own,
 * as the server's per-address limits expect of separate people.
 *
 * `Deno.connect` cannot choose its local address; `node:net` can, so these connections are
 * `node:net` sockets behind the {@linkcode Transport} seam (`net/node_socket.ts`).
 *
 * @module
 */

import net from "node:net";
import { fail, ok, type Result, type ServerAddress } from "../protocol.ts";
import type { Transport } from "../net/conn.ts";
import { SocketTransport } from "../net/node_socket.ts";

/**
 * The `index`-th address of a `group` of loopback addresses: `127.<group>.<i / 250>.<i % 250 + 1>`.
 * Groups keep kinds of clients apart (bystanders in one, attackers in another); group 0 starts
 * at `127.0.0.1`, the usual loopback address.
 * @throws {RangeError} for a group outside 0-255 or an index past 62,499.
 */
export function loopbackAddress(group: number, index: number): string {
  if (!Number.isInteger(group) || group < 0 || group > 255) {
    throw new RangeError(`No loopback group ${group}: use 0-255`);
  }
  if (!Number.isInteger(index) || index < 0 || index >= 250 * 250) {
    throw new RangeError(`No loopback address ${index} in a group: use 0-62499`);
  }
  return `127.${group}.${Math.floor(index / 250)}.${(index % 250) + 1}`;
}

/**
 * A dialer (as `ChatClientOptions.dial` takes) whose connections come from `localAddress`.
 * Fails with one line when the connection cannot be made within `timeoutMs`.
 */
export function dialFrom(
  localAddress: string,
): (address: ServerAddress, timeoutMs: number) => Promise<Result<Transport>> {
  return (address, timeoutMs) => connectFrom(localAddress, address, timeoutMs);
}

/** Connects to `address` from `localAddress`; see {@linkcode dialFrom}. */
export function connectFrom(
  localAddress: string,
  address: ServerAddress,
  timeoutMs = 10_000,
): Promise<Result<Transport>> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address.hostname, port: address.port, localAddress });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(fail(`Cannot connect from ${localAddress}: timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("error", (error) => {
      clearTimeout(timer);
      resolve(fail(`Cannot connect from ${localAddress}: ${error.message}`));
    });
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      socket.setNoDelay(true);
      resolve(ok(new SocketTransport(socket, address.hostname)));
    });
  });
}
