/**
 * TCP, the first {@linkcode Transport}: the server's plain listener (what `nc` and `telnet`
 * reach) and the client's connection.
 *
 * @module
 */

import { fail, ok, type Result, type ServerAddress } from "../protocol.ts";
import { closeQuietly, errorText, type Transport, type TransportListener } from "./conn.ts";

/** A TCP connection as a {@linkcode Transport}: no Nagle delay, keepalive on. */
class TcpTransport implements Transport {
  readonly kind = "tcp";
  readonly remoteAddress: string;
  #conn: Deno.TcpConn;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    this.remoteAddress = displayAddress(conn.remoteAddr);
    conn.setNoDelay(true);
    conn.setKeepAlive(true);
  }

  read(buffer: Uint8Array): Promise<number | null> {
    return this.#conn.read(buffer);
  }

  write(bytes: Uint8Array): Promise<number> {
    return this.#conn.write(bytes);
  }

  close(): void {
    closeQuietly(this.#conn);
  }
}

/**
 * Listens for TCP connections.
 * @throws the errors of `Deno.listen` (`AddrInUse`, `AddrNotAvailable`, `PermissionDenied`).
 */
export function listenTcp(options: { hostname: string; port: number }): TransportListener {
  const listener = Deno.listen(options);
  return {
    kind: "tcp",
    addr: { hostname: listener.addr.hostname, port: listener.addr.port },
    async accept(): Promise<Transport | undefined> {
      try {
        return new TcpTransport(await listener.accept());
      } catch (error) {
        if (error instanceof Deno.errors.BadResource) return undefined; // the listener was closed
        throw error;
      }
    },
    close: () => closeQuietly(listener),
  };
}

/**
 * Connects to a server over TCP, giving up after `timeoutMs`. Fails with one line that says what
 * went wrong and what to try (`Cannot connect to 10.0.0.5:5050: connection refused (is the server
 * running on that port?)`).
 */
export async function dialTcp(
  address: ServerAddress,
  timeoutMs: number,
): Promise<Result<Transport>> {
  const { hostname, port } = address;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    return ok(new TcpTransport(await Deno.connect({ hostname, port, signal: abort.signal })));
  } catch (error) {
    return fail(dialErrorText(error, address, abort.signal));
  } finally {
    clearTimeout(timer);
  }
}

/** `host:port`, with brackets around an IPv6 address. */
export function formatAddress(address: ServerAddress): string {
  const { hostname, port } = address;
  return `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
}

function dialErrorText(error: unknown, address: ServerAddress, signal: AbortSignal): string {
  const where = formatAddress(address);
  if (signal.aborted) {
    return `Cannot connect to ${where}: no answer in time (wrong address, or a firewall?)`;
  }
  if (error instanceof Deno.errors.ConnectionRefused) {
    return `Cannot connect to ${where}: connection refused (is the server running on that port?)`;
  }
  const text = errorText(error);
  if (/lookup|resolve|name or service|no address/i.test(text)) {
    return `Cannot find host "${address.hostname}": check the spelling, or use its IP address`;
  }
  return `Cannot connect to ${where}: ${text}`;
}

/** An address as people write it: `10.0.0.5` rather than `::ffff:10.0.0.5`. */
export function displayAddress(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") return addr.transport;
  return addr.hostname.startsWith("::ffff:") ? addr.hostname.slice(7) : addr.hostname;
}
