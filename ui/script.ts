/**
 * Pipe mode: each line of standard input becomes a message, and what others say is printed as
 * plain lines, so the client can be used from scripts (`echo "build finished" | client ...`).
 *
 * @module
 */

import { type ChatClient, disconnectText } from "../net/chat_client.ts";
import { FrameTooLargeError, readLines } from "../net/lines.ts";
import { checkText, FATAL_ERROR_CODES, LOBBY } from "../protocol.ts";
import { renderEvent, type RenderOptions } from "./render.ts";
import type { SeenFile } from "./config.ts";
import type { Transcript } from "./transcript.ts";

/** How many messages a script may have waiting for acknowledgement before reading more input. */
const SCRIPT_WINDOW = 100;

/**
 * Sends each line of standard input as a message and prints what others say as plain lines.
 * Resolves to the exit code once every message sent was acknowledged, or as soon as the
 * connection ends.
 */
export async function runScript(
  client: ChatClient,
  options: {
    transcript: Transcript | undefined;
    /** Where to note the newest message seen (with `--identity`), and the server's address. */
    seen?: { file: SeenFile; where: string } | undefined;
  },
): Promise<number> {
  const { transcript, seen } = options;
  const view: RenderOptions = {
    me: client.name,
    color: false,
    time: false,
    skipOwn: true,
    room: client.welcome.room ?? LOBBY,
  };
  const printing = (async () => {
    for await (const event of client) {
      // A fatal error is told once, as the reason for the disconnection.
      if (event.type === "error" && FATAL_ERROR_CODES.has(event.code)) continue;
      const lines = renderEvent(event, view);
      transcript?.write(lines);
      if (event.type === "error") console.error(lines.join("\n"));
      else if (lines.length > 0) console.log(lines.join("\n"));
      const serverId = client.welcome.server.id;
      if (seen && serverId !== undefined && client.lastSeen !== undefined) {
        seen.file.note(seen.where, serverId, client.lastSeen);
      }
    }
    seen?.file.flush();
  })();
  let ok = await sendInput(client);
  if (client.connected) {
    await client.close();
  } else {
    console.error(`client: ${disconnectText(await client.closed)}`);
    ok = false;
  }
  await printing;
  return ok ? 0 : 1;
}

/**
 * Sends every line of standard input, stopping early if the connection ends. At most
 * {@linkcode SCRIPT_WINDOW} messages wait for acknowledgement at a time, so a long input is read
 * as fast as the server takes it. Resolves to whether every line was sent and accepted.
 */
async function sendInput(client: ChatClient): Promise<boolean> {
  const lines = readLines(Deno.stdin);
  const disconnected = client.closed.then(() => "disconnected" as const);
  // Each outcome is settled as it happens, so no refusal is ever an unhandled rejection.
  const outcomes: Promise<boolean>[] = [];
  let settled = 0;
  let ok = true;
  try {
    while (true) {
      if (outcomes.length - settled >= SCRIPT_WINDOW) {
        await Promise.race([outcomes[settled], disconnected]);
        settled++;
      }
      const next = await Promise.race([lines.next(), disconnected]);
      if (next === "disconnected" || next.done) break;
      const checked = checkText(next.value);
      if (!checked.ok) {
        console.error(`client: skipped a line: ${checked.error}`);
        ok = false;
        continue;
      }
      outcomes.push(client.say(checked.value).then(() => true, () => false));
    }
  } catch (error) {
    if (!(error instanceof FrameTooLargeError)) throw error;
    console.error("client: an input line is longer than 64 KiB: stopped reading input");
    ok = false;
  }
  const accepted = await Promise.all(outcomes);
  return ok && accepted.every((a) => a);
}
