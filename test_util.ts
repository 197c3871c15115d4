/**
 * Helpers shared by the test files: a deadline for waits, and a real server on a free loopback
 * port with clients connected to it.
 *
 * @module
 */

import { ChatClient } from "./client.ts";
import type { ClientInfo } from "./protocol.ts";
import { type ChatServer, type ServerOptions, startServer } from "./server.ts";

/** The longest any single wait in the tests may take, in milliseconds: a guard, not a sleep. */
export const WAIT_MS = 10_000;

/** Resolves like `promise`, or rejects once `ms` have passed without an answer. */
export async function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts a server on a free loopback port, runs `fn`, and always closes the server. */
export async function withServer(
  fn: (server: ChatServer) => Promise<void>,
  options: ServerOptions = {},
): Promise<void> {
  const server = startServer({ hostname: "127.0.0.1", port: 0, ...options });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

/** Connects a client to a test server under `name`. */
export function connect(server: ChatServer, name: string, info?: ClientInfo): Promise<ChatClient> {
  return ChatClient.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
    name,
    ...(info ? { info } : {}),
  });
}
