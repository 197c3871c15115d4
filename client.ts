#!/usr/bin/env -S deno run --allow-net --allow-read --allow-write --allow-env=USER,USERNAME,LOGNAME,HOME,XDG_CONFIG_HOME,APPDATA --allow-sys=hostname
/**
 * The chat client: a terminal chat for people, and a line-per-message pipe for scripts.
 *
 * ```sh
 * deno task client                          # asks for the server and your name
 * deno task client 'chat://192.168.1.20:5051/#lobby?fp=...'  # an invite: TLS, key pinned
 * deno task client 192.168.1.20 --name ann  # joins straight away (TLS, key asked about once)
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
  checkRoom,
  DEFAULT_PORT,
  DEFAULT_TLS_PORT,
  isFingerprint,
  MAX_NAME_LENGTH,
  sanitizeForTerminal,
  VERSION,
} from "./protocol.ts";
import { errorText } from "./net/conn.ts";
import { formatAddress } from "./net/tcp.ts";
import { readCommandLine, UsageError } from "./ui/cli.ts";
import {
  ConfigError,
  defaultIdentityPath,
  KnownServers,
  loadOrCreateIdentity,
  SeenFile,
} from "./ui/config.ts";
import {
  type ConnectionFacts,
  dialerFor,
  type DialSettings,
  parseTarget,
  type ServerTarget,
} from "./ui/target.ts";
import {
  clientInfo,
  osUserName,
  runInteractive,
  type Self,
  suggestName,
} from "./ui/interactive.ts";
import { runScript, type ScriptTarget } from "./ui/script.ts";
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
  deno task client [INVITE | HOST[:PORT]] [OPTIONS]

  On a terminal it asks for what is not given. With input from a pipe or file
  it sends what it reads as messages (lines that arrive together go together,
  up to 2000 characters a message), prints what others say, and exits when the
  server has acknowledged the last one.

ARGUMENTS:
  INVITE             What the server prints as "invite": chat://HOST:PORT/...
                     It carries the server's key, so the connection is
                     encrypted and checked from the first byte, no question
  HOST[:PORT]        The server: a name, an IPv4 address, or [IPv6]:PORT
                                              (default: localhost:${DEFAULT_TLS_PORT},
                                               with --plain localhost:${DEFAULT_PORT})
SECURITY:
  Connections use TLS, and the server's key is pinned: the first time a server
  is met without an invite, its key fingerprint is shown to be confirmed, then
  remembered in known_servers.json beside the identity. A server whose key
  changed is refused.
      --fingerprint FP
                     Expect this server key (SHA256:..., as the server shows it)
      --tofu         From a pipe: trust a server met for the first time
                     (without it, a script needs an invite or --fingerprint)
      --plain        Connect without TLS, to the plain port: not encrypted
      --password-file FILE
                     A private server's password, on the file's first line
                     (on a terminal it is asked for when needed)
OPTIONS:
  -n, --name NAME    Your name: 1-${MAX_NAME_LENGTH} letters, digits, _ or -
                                              (default: your user name)
      --log FILE     Append every line shown to FILE, as plain text
      --identity FILE
                     The key pair that proves who you are (made on first
                     use)  (default: on a terminal, identity.json in
                     $XDG_CONFIG_HOME/chat, ~/.config/chat or %APPDATA%\\chat;
                     from a pipe, none)
      --anonymous    Use no identity: you are known only by this session

PIPED INPUT:
      --room ROOM    Send the lines to ROOM (joined first)
                                              (default: #lobby)
      --to NAME      Send the lines to NAME as private messages
      --history      Print the room's earlier messages first (default: not)
  Progress shows on standard error when it is a terminal.

  -h, --help         Show this help and exit
  -V, --version      Show the version and exit

On a terminal, a lost connection is re-established on its own and the session
resumed, with what you missed; started again (even after a crash) with the
same identity, you get your name and what you missed back at once. In the
chat, type /help for commands.`;

interface CliOptions {
  help: boolean;
  version: boolean;
  /** The server: an invite or an address. */
  server: ServerTarget | undefined;
  plain: boolean;
  fingerprint: string | undefined;
  tofu: boolean;
  passwordFile: string | undefined;
  name: string | undefined;
  log: string | undefined;
  identity: string | undefined;
  anonymous: boolean;
  target: ScriptTarget | undefined;
  history: boolean;
}

function parseCli(args: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        name: { type: "string", short: "n" },
        log: { type: "string" },
        identity: { type: "string" },
        anonymous: { type: "boolean", default: false },
        room: { type: "string" },
        to: { type: "string" },
        history: { type: "boolean", default: false },
        plain: { type: "boolean", default: false },
        fingerprint: { type: "string" },
        tofu: { type: "boolean", default: false },
        "password-file": { type: "string" },
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
  let server: ServerTarget | undefined;
  if (positionals[0] !== undefined) {
    const parsedTarget = parseTarget(positionals[0], { plain: values.plain });
    if (!parsedTarget.ok) throw new UsageError(parsedTarget.error);
    server = parsedTarget.value;
  }
  if (values.fingerprint !== undefined && !isFingerprint(values.fingerprint)) {
    throw new UsageError(
      `--fingerprint needs a key fingerprint like SHA256:uNiVztks... (as the server shows it), ` +
        `not "${values.fingerprint}"`,
    );
  }
  if (values.plain && server?.invited) {
    throw new UsageError("An invite is for TLS (it names the server's key): drop --plain");
  }
  if (values.plain && (values.fingerprint !== undefined || values.tofu)) {
    throw new UsageError("--fingerprint and --tofu are for TLS: drop --plain");
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
  if (values.identity !== undefined && values.identity.trim() === "") {
    throw new UsageError("--identity needs a file name");
  }
  if (values.identity !== undefined && values.anonymous) {
    throw new UsageError("Use --identity FILE or --anonymous, not both");
  }
  if (values.room !== undefined && values.to !== undefined) {
    throw new UsageError("Use --room ROOM or --to NAME, not both");
  }
  let target: ScriptTarget | undefined;
  if (values.room !== undefined) {
    const room = checkRoom(values.room);
    if (!room.ok) throw new UsageError(room.error);
    target = { room: room.value };
  } else if (values.to !== undefined) {
    const to = checkName(values.to);
    if (!to.ok) throw new UsageError(to.error);
    target = { to: to.value };
  }
  return {
    help: values.help,
    version: values.version,
    server,
    plain: values.plain,
    fingerprint: values.fingerprint,
    tofu: values.tofu,
    passwordFile: values["password-file"],
    name,
    log: values.log,
    identity: values.identity,
    anonymous: values.anonymous,
    target,
    history: values.history,
  };
}

/**
 * Who to be: the identity of `--identity FILE`; on a terminal, the default one in the
 * configuration folder (made on first use); nobody with `--anonymous` or from a pipe without
 * `--identity`.
 * @throws {ConfigError} when the identity cannot be read or made.
 */
async function chooseSelf(options: CliOptions, terminal: boolean): Promise<Self> {
  if (options.anonymous) return { identity: undefined, seen: undefined };
  const path = options.identity ?? (terminal ? defaultIdentityPath() : undefined);
  if (path === undefined) {
    if (!terminal) return { identity: undefined, seen: undefined };
    throw new ConfigError(
      "Cannot find your configuration folder (HOME is not set): use --identity FILE or --anonymous",
    );
  }
  const identity = await loadOrCreateIdentity(path);
  return { identity, seen: SeenFile.open(path) };
}

/**
 * The known-servers file: beside `--identity FILE`, else in the configuration folder; none
 * (memory only) when there is no folder to keep it in.
 */
function knownServersPath(options: CliOptions): string | undefined {
  const identity = options.identity ?? defaultIdentityPath();
  return identity === undefined ? undefined : KnownServers.pathBeside(identity);
}

/**
 * The password in a file's first line.
 * @throws {ConfigError} when the file cannot be read or holds no password.
 */
async function readPassword(path: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError(`Cannot read the password file ${path}: ${errorText(error)}`);
  }
  const password = text.split(/\r?\n/)[0]!.trim();
  if (password === "") throw new ConfigError(`${path} holds no password on its first line`);
  return password;
}

/** Runs the client's command line; resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  const options = readCommandLine(args, { program: "client", parse: parseCli, usage: USAGE });
  if (typeof options === "number") return options;
  let transcript: Transcript | undefined;
  try {
    if (options.log !== undefined) transcript = Transcript.open(options.log);
    const terminal = Deno.stdin.isTerminal();
    if (terminal && (options.target || options.history)) {
      console.error(
        "client: --room, --to and --history are for piped input: in the chat, use /join, " +
          "/msg and /history",
      );
      return 2;
    }
    const self = await chooseSelf(options, terminal);
    const password = options.passwordFile === undefined
      ? undefined
      : await readPassword(options.passwordFile);
    const known = KnownServers.open(knownServersPath(options));
    const settings: DialSettings = {
      plain: options.plain,
      fingerprint: options.fingerprint,
      tofu: options.tofu,
      known,
    };
    if (terminal) {
      return await runInteractive(options.server, {
        name: options.name,
        transcript,
        self,
        dial: settings,
        ...(password === undefined ? {} : { password }),
      });
    }
    const server: ServerTarget = options.server ?? {
      address: { hostname: "localhost", port: options.plain ? DEFAULT_PORT : DEFAULT_TLS_PORT },
      invited: false,
    };
    const facts: ConnectionFacts = { security: "plain", fingerprint: undefined };
    const where = formatAddress(server.address);
    const last = self.seen?.lastAt(where);
    const client = await ChatClient.connect({
      ...server.address,
      name: options.name ?? suggestName(osUserName() ?? "guest"),
      info: clientInfo(),
      dial: dialerFor(server, settings, facts),
      ...(self.identity ? { identity: self.identity.identity } : {}),
      ...(last === undefined ? {} : { last }),
      ...(password === undefined ? {} : { password }),
      ...(server.secret === undefined ? {} : { invite: server.secret }),
    });
    transcript?.write([transcriptHeader(server.address)]);
    return await runScript(client, {
      transcript,
      seen: self.seen && { file: self.seen, where },
      target: options.target ?? (server.room ? { room: server.room } : undefined),
      history: options.history,
      progress: Deno.stderr.isTerminal() ? Deno.stderr : undefined,
    });
  } catch (error) {
    if (
      !(error instanceof ChatError || error instanceof TranscriptError ||
        error instanceof ConfigError)
    ) {
      throw error;
    }
    const hint = error instanceof ChatError && error.code === "password_required"
      ? " (--password-file FILE)"
      : "";
    console.error(`client: ${sanitizeForTerminal(error.message)}${hint}`);
    return 1;
  } finally {
    transcript?.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
