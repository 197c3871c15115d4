#!/usr/bin/env -S deno run --allow-net --allow-write --allow-env=USER,USERNAME,LOGNAME --allow-sys=hostname
/**
 * The chat client: a terminal chat for people, and a line-per-message pipe for scripts.
 *
 * ```sh
 * deno task client                          # asks for the server and your name
 * deno task client 192.168.1.20 --name ann  # joins straight away
 * echo "build finished" | deno task client chat.lan --name ci
 * ```
 *
 * It is also a library: {@linkcode ChatClient} connects, sends and receives frames, and is what
 * the command line and the tests use. This file is the command line; the client itself lives in
 * `net/chat_client.ts`, the terminal chat in `ui/`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ChatClient, ChatError } from "./net/chat_client.ts";
import {
  checkName,
  DEFAULT_PORT,
  MAX_NAME_LENGTH,
  parseAddress,
  sanitizeForTerminal,
  type ServerAddress,
  VERSION,
} from "./protocol.ts";
import { errorText } from "./net/conn.ts";
import { readCommandLine, UsageError } from "./ui/cli.ts";
import { clientInfo, osUserName, runInteractive, suggestName } from "./ui/interactive.ts";
import { runScript } from "./ui/script.ts";
import { Transcript, TranscriptError, transcriptHeader } from "./ui/transcript.ts";

export {
  ChatClient,
  type ChatClientOptions,
  ChatError,
  type ChatErrorCode,
  type ChatEvent,
  type CloseInfo,
  type ConnectionEvent,
  type SayOptions,
} from "./net/chat_client.ts";
export { suggestName } from "./ui/interactive.ts";

const USAGE = `Chat client ${VERSION}: talk with everyone on a chat server.

USAGE:
  deno task client [HOST[:PORT]] [OPTIONS]

  On a terminal it asks for what is not given. With input from a pipe or file
  it sends each line as a message, prints what others say, and exits when the
  server has acknowledged the last line.

ARGUMENTS:
  HOST[:PORT]        The server: a name, an IPv4 address, or [IPv6]:PORT
                                              (default: localhost:${DEFAULT_PORT})
OPTIONS:
  -n, --name NAME    Your name: 1-${MAX_NAME_LENGTH} letters, digits, _ or -
                                              (default: your user name)
      --log FILE     Append every line shown to FILE, as plain text
  -h, --help         Show this help and exit
  -V, --version      Show the version and exit

On a terminal, a lost connection is re-established on its own and the session
resumed, with what you missed. In the chat, type /help for commands.`;

interface CliOptions {
  help: boolean;
  version: boolean;
  address: ServerAddress | undefined;
  name: string | undefined;
  log: string | undefined;
}

function parseCli(args: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        name: { type: "string", short: "n" },
        log: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "V", default: false },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError(errorText(error));
  }
  const { values, positionals } = parsed;
  if (positionals.length > 1) {
    throw new UsageError(`Expected one server address, got ${positionals.length}`);
  }
  let address: ServerAddress | undefined;
  if (positionals[0] !== undefined) {
    const parsedAddress = parseAddress(positionals[0]);
    if (!parsedAddress.ok) throw new UsageError(parsedAddress.error);
    address = parsedAddress.value;
  }
  let name: string | undefined;
  if (values.name !== undefined) {
    const checked = checkName(values.name);
    if (!checked.ok) throw new UsageError(checked.error);
    name = checked.value;
  }
  if (values.log !== undefined && values.log.trim() === "") {
    throw new UsageError("--log needs a file name");
  }
  return { help: values.help, version: values.version, address, name, log: values.log };
}

/** Runs the client's command line; resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  const options = readCommandLine(args, { program: "client", parse: parseCli, usage: USAGE });
  if (typeof options === "number") return options;
  let transcript: Transcript | undefined;
  try {
    if (options.log !== undefined) transcript = Transcript.open(options.log);
    if (Deno.stdin.isTerminal()) {
      return await runInteractive(options.address, { name: options.name, transcript });
    }
    const address = options.address ?? { hostname: "localhost", port: DEFAULT_PORT };
    const client = await ChatClient.connect({
      ...address,
      name: options.name ?? suggestName(osUserName() ?? "guest"),
      info: clientInfo(),
    });
    transcript?.write([transcriptHeader(address)]);
    return await runScript(client, transcript);
  } catch (error) {
    if (!(error instanceof ChatError || error instanceof TranscriptError)) throw error;
    console.error(`client: ${sanitizeForTerminal(error.message)}`);
    return 1;
  } finally {
    transcript?.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
