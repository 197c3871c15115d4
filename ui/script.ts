/**
 * Pipe mode: standard input becomes messages, and what others say is printed as plain lines, so
 * the client can be used from scripts (`echo "build finished" | client ...`). Lines that arrive
 * together (a file, a burst of output) travel together, as multi-line messages of up to 2,000
 * characters, as a paste does; lines that arrive one by one are a message each.
 *
 * @module
 */

import { type ChatClient, type ChatEvent, disconnectText } from "../net/chat_client.ts";
import { FrameTooLargeError, readLineBatches } from "../net/lines.ts";
import { checkText, FATAL_ERROR_CODES, LOBBY } from "../protocol.ts";
import { renderEvent, type RenderOptions } from "./render.ts";
import { splitMessage } from "./input.ts";
import type { SeenFile } from "./config.ts";
import type { Transcript } from "./transcript.ts";

/** How many messages a script may have waiting for acknowledgement before reading more input. */
const SCRIPT_WINDOW = 100;
/** How often progress is redrawn on a terminal, in milliseconds. */
const PROGRESS_MS = 200;

/** Where piped lines go: the room joined last (by default), a room, or one person privately. */
export type ScriptTarget = { room: string } | { to: string };

/** Options for {@linkcode runScript}. */
export interface ScriptOptions {
  transcript: Transcript | undefined;
  /** Where to note the newest message seen (with `--identity`), and the server's address. */
  seen?: { file: SeenFile; where: string } | undefined;
  /** Where the lines go; a room is joined first. @default {the room the welcome names} */
  target?: ScriptTarget | undefined;
  /** Whether to print the earlier messages the server sends on joining. @default {false} */
  history?: boolean;
  /**
   * Where to show progress (lines read, messages acknowledged), redrawn in place: standard error
   * when it is a terminal. @default {none}
   */
  progress?: ProgressWriter | undefined;
}

/** Where progress is written: one line, redrawn (`\r`) as it changes. */
export interface ProgressWriter {
  writeSync(bytes: Uint8Array): number;
}

/**
 * Sends standard input as messages and prints what others say as plain lines. Resolves to the
 * exit code once every message sent was acknowledged, or as soon as the connection ends.
 */
export async function runScript(client: ChatClient, options: ScriptOptions): Promise<number> {
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
      if (!options.history && isHistory(event)) continue;
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
  if (options.target && "room" in options.target) {
    // Frames are handled in order: the room is joined before the first message for it arrives.
    client.send({ type: "join", room: options.target.room });
  }
  const progress = new Progress(options.progress);
  let ok = await sendInput(client, options.target, progress);
  progress.done();
  if (client.connected) {
    await client.close();
  } else {
    console.error(`client: ${disconnectText(await client.closed)}`);
    ok = false;
  }
  await printing;
  return ok ? 0 : 1;
}

/** Whether an event is part of the history shown on joining (its header, or an earlier message). */
function isHistory(event: ChatEvent): boolean {
  return event.type === "history" ||
    ((event.type === "message" || event.type === "private") && event.history === true);
}

/**
 * Sends everything read from standard input, stopping early if the connection ends: the lines of
 * each read as messages of up to 2,000 characters ({@linkcode splitMessage}), at most
 * {@linkcode SCRIPT_WINDOW} of them waiting for acknowledgement at a time, so a long input is
 * read as fast as the server takes it. Resolves to whether everything was sent and accepted.
 */
async function sendInput(
  client: ChatClient,
  target: ScriptTarget | undefined,
  progress: Progress,
): Promise<boolean> {
  const batches = readLineBatches(Deno.stdin, { keepBlank: true });
  const disconnected = client.closed.then(() => "disconnected" as const);
  // Each outcome is settled as it happens, so no refusal is ever an unhandled rejection.
  const outcomes: Promise<boolean>[] = [];
  let settled = 0;
  let ok = true;
  const send = (text: string): Promise<boolean> => {
    const sent = target && "to" in target
      ? client.tell(target.to, text)
      : client.say(text, target ? { room: target.room } : {});
    return sent.then(() => {
      progress.acked++;
      return true;
    }, () => false);
  };
  try {
    while (true) {
      const next = await Promise.race([batches.next(), disconnected]);
      if (next === "disconnected" || next.done) break;
      progress.lines += next.value.length;
      for (const message of splitMessage(next.value.join("\n"))) {
        const checked = checkText(message);
        if (!checked.ok) {
          console.error(`client: skipped a message: ${checked.error}`);
          ok = false;
          continue;
        }
        while (outcomes.length - settled >= SCRIPT_WINDOW) {
          await Promise.race([outcomes[settled], disconnected]);
          settled++;
        }
        outcomes.push(send(checked.value));
        progress.sent++;
        progress.show();
      }
    }
  } catch (error) {
    if (!(error instanceof FrameTooLargeError)) throw error;
    console.error("client: an input line is longer than 64 KiB: stopped reading input");
    ok = false;
  }
  const accepted = await Promise.all(outcomes);
  return ok && accepted.every((a) => a);
}

/** Progress on a terminal: lines read, messages sent and acknowledged, redrawn in place. */
class Progress {
  lines = 0;
  sent = 0;
  acked = 0;
  #writer: ProgressWriter | undefined;
  #shownAt = -Infinity;
  #timer: ReturnType<typeof setInterval> | undefined;
  #encoder = new TextEncoder();

  constructor(writer: ProgressWriter | undefined) {
    this.#writer = writer;
    if (writer) this.#timer = setInterval(() => this.show(), PROGRESS_MS);
  }

  /** Redraws the line, at most every {@linkcode PROGRESS_MS}. */
  show(force = false): void {
    if (!this.#writer) return;
    const now = performance.now();
    if (!force && now - this.#shownAt < PROGRESS_MS) return;
    this.#shownAt = now;
    const text = `${this.lines} lines read, ${this.acked} of ${this.sent} messages sent`;
    this.#writer.writeSync(this.#encoder.encode(`\r${text}\x1b[K`));
  }

  /** Shows the final figures and ends the line. */
  done(): void {
    clearInterval(this.#timer);
    if (!this.#writer) return;
    this.show(true);
    this.#writer.writeSync(this.#encoder.encode("\n"));
  }
}
