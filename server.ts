#!/usr/bin/env -S deno run --allow-net --allow-read --allow-write --allow-sys=hostname,networkInterfaces --allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE
/**
 * The chat server: accepts connections, lets people pick a unique name and relays their messages
 * to everyone present; people on `nc` or `telnet` get a plain-text face.
 *
 * ```sh
 * deno task server                 # listen on 0.0.0.0:5050
 * deno task server --port 6000     # another port
 * ```
 *
 * It is also a library: {@linkcode startServer} runs a server in-process (tests and benchmarks use
 * it). This file composes the server (store, hub, gateway and listeners, console) and reads its
 * command line; the chat itself lives in `chat/`, the network in `net/`, the faces in `ui/`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Bans } from "./chat/bans.ts";
import { People } from "./chat/people.ts";
import type { Member, Peer } from "./chat/directory.ts";
import { ANNOUNCE_LIMIT } from "./chat/directory.ts";
import { HISTORY_LIMIT, Hub, type HubOptions, KEEP_MESSAGES } from "./chat/hub.ts";
import { GRACE_MS, RESUME_WINDOW_MS } from "./chat/sessions.ts";
import { ChatStore, StoreError } from "./chat/store.ts";
import { DEFAULT_GATEWAY_LIMITS, Gateway } from "./net/listener.ts";
import { listenTcp } from "./net/tcp.ts";
import type { StoppingListener } from "./net/node_socket.ts";
import { listenTls } from "./net/tls.ts";
import { listenWeb, type WebAssets } from "./net/websocket.ts";
import PAGE_HTML from "./web/index.html" with { type: "text" };
import PAGE_SCRIPT from "./web/app.js" with { type: "text" };
import PAGE_STYLE from "./web/style.css" with { type: "text" };
import type { TransportListener } from "./net/conn.ts";
import {
  loadCertificateFiles,
  loadOrMakeCertificate,
  makeCertificate,
  type ServerCertificate,
} from "./net/certs.ts";
import { Access } from "./chat/access.ts";
import {
  checkHost,
  cleanLine,
  DEFAULT_PORT,
  DEFAULT_TLS_PORT,
  DEFAULT_WEB_PORT,
  fail,
  formatInvite,
  HEARTBEAT_MS,
  HELLO_TIMEOUT_MS,
  isFingerprint,
  MAX_FRAME_BYTES,
  MAX_HISTORY_PAGE,
  ok,
  parsePort,
  type Result,
  sanitizeForTerminal,
  VERSION,
} from "./protocol.ts";
import { errorText } from "./net/conn.ts";
import { numberFlag, readCommandLine, UsageError } from "./ui/cli.ts";
import { limitLog, logOutput, type OperatorScreen, startConsole, timestamp } from "./ui/console.ts";
import { PLAIN_TEXT_FACE } from "./ui/plain_text.ts";

// ==== Constants ====

/** The address the CLI listens on unless told otherwise: every IPv4 interface. */
export const DEFAULT_HOST = "0.0.0.0";
/** How many bytes may wait for one slow client before it is disconnected. */
export const DEFAULT_MAX_QUEUE_BYTES = 1024 * 1024;
/** The database file the command line uses unless told otherwise. */
export const DEFAULT_DB = "chat.db";
/** How long after connecting a silent client is asked for a name, in milliseconds. */
export const PROMPT_DELAY_MS = 1000;
/**
 * How long a person asked for a name has to give one, in milliseconds: a minute to type a name,
 * while a connection that says nothing holds a place among those still to say hello no longer.
 */
export const NAME_TIMEOUT_MS = 60_000;
/** The limits a server starts with unless told otherwise. */
export const DEFAULT_LIMITS = {
  rate: 5,
  burst: 10,
  maxClients: 1000,
  maxClientsPerAddress: 20,
  ...DEFAULT_GATEWAY_LIMITS,
} as const;

// ==== The server ====

/** Options for {@linkcode startServer}. */
export interface ServerOptions extends HubOptions {
  /**
   * The address to listen on.
   * @default {"0.0.0.0"}
   */
  hostname?: string;
  /**
   * The TCP port; 0 picks a free one (see {@linkcode ChatServer.addr}).
   * @default {5050}
   */
  port?: number;
  /**
   * TLS: the port and the certificate to listen with. Without it, no TLS listener (the command
   * line always gives one, unless `--no-tls`).
   */
  tls?: { port?: number; certificate: ServerCertificate } | undefined;
  /**
   * Whether to listen on the plain (unencrypted) port too, for `nc`, `telnet` and old clients.
   * @default {true}
   */
  plain?: boolean;
  /**
   * The web page and its WebSocket (`/ws`): the HTTP port (0 for any free one), with TLS also an
   * HTTPS port (`httpsPort`, 0 for any; absent: none), and the other origins whose pages may
   * connect. Without it, no web listener (the command line always gives one, unless `--no-web`).
   */
  web?: { port?: number; httpsPort?: number; origins?: readonly string[] } | undefined;
  /** A private server's password (see `chat/access.ts`). */
  password?: string | undefined;
  /** Fingerprints of the identities a private server admits without a password. */
  allowed?: readonly string[] | undefined;
  /**
   * How long a new connection has to say hello (or start typing a name), in milliseconds.
   * @default {10000}
   */
  helloTimeoutMs?: number;
  /**
   * How long after connecting a silent client is taken for a person on `nc` or `telnet` and
   * asked for a name, in milliseconds.
   * @default {1000}
   */
  promptDelayMs?: number;
  /**
   * How long a person asked for a name has to give one, in milliseconds.
   * @default {120000}
   */
  nameTimeoutMs?: number;
  /**
   * How many bytes may wait for one client before it counts as too slow and is disconnected.
   * @default {1048576}
   */
  maxQueueBytes?: number;
  /**
   * The longest line a client may send, in bytes, newline included.
   * @default {65536}
   */
  maxFrameBytes?: number;
  /**
   * The database file for messages and sessions; `":memory:"` for one that lasts as long as the
   * server; `false` for no store at all (no history, nothing survives a restart).
   * @default {":memory:"}
   */
  db?: string | false;
  /**
   * How long a connection may be silent before it is pinged, and then how long it has to answer
   * before it is closed, in milliseconds. Plain-text clients are not pinged (TCP keepalive
   * watches them).
   * @default {30000}
   */
  heartbeatMs?: number;
  /**
   * Frames a second each client may send after a burst of `burst`; 0 for no limit.
   * @default {5}
   */
  rate?: number;
  /**
   * Frames a client may send at once before `rate` applies.
   * @default {10}
   */
  burst?: number;
  /**
   * The most people (connections past their hello) at once; 0 for no limit.
   * @default {1000}
   */
  maxClients?: number;
  /**
   * The most people at once from one IP address; 0 for no limit.
   * @default {20}
   */
  maxClientsPerAddress?: number;
  /**
   * The most connections still to say hello at once; when full, the oldest is closed to make
   * room; 0 for no limit.
   * @default {64}
   */
  maxPending?: number;
  /**
   * The most connections still to say hello from one IP address; more are refused; 0 for no
   * limit.
   * @default {4}
   */
  maxPendingPerAddress?: number;
  /**
   * Connections (each one login, resumes included) a minute from one IP address, after a burst
   * of as many; 0 for no limit.
   * @default {20}
   */
  loginsPerAddress?: number;
  /**
   * Logins a second in all, after a burst of ten times as many; 0 for no limit.
   * @default {100}
   */
  logins?: number;
  /**
   * Key fingerprints (`SHA256:...`, as `/whois` shows them) of people who are operators for as
   * long as the server runs: they can use the operator commands from their own client.
   * @default {[]}
   */
  operators?: readonly string[];
}

/** The page's files, served by the web listener; embedded in the program by `deno compile`. */
const WEB_ASSETS: WebAssets = {
  "/": { body: PAGE_HTML, type: "text/html; charset=utf-8" },
  "/app.js": { body: PAGE_SCRIPT, type: "text/javascript; charset=utf-8" },
  "/style.css": { body: PAGE_STYLE, type: "text/css; charset=utf-8" },
};

/**
 * The listeners that bind asynchronously: TLS (`options.tls`), and the web page's HTTP and, with
 * TLS, HTTPS (`options.web`). If one cannot listen, those started are closed and the error names
 * its port and flag.
 */
async function listenLater(hostname: string, options: ServerOptions): Promise<StoppingListener[]> {
  const { web, tls } = options;
  const credentials = tls && { certPem: tls.certificate.certPem, keyPem: tls.certificate.keyPem };
  const origins = web?.origins ?? [];
  const wanted: {
    flag: string;
    port: number;
    listen: (port: number) => Promise<StoppingListener>;
  }[] = [];
  if (credentials) {
    wanted.push({
      flag: "--tls-port",
      port: tls.port ?? DEFAULT_TLS_PORT,
      listen: (port) => listenTls({ hostname, port, ...credentials }),
    });
  }
  if (web) {
    wanted.push({
      flag: "--web-port",
      port: web.port ?? DEFAULT_WEB_PORT,
      listen: (port) => listenWeb({ hostname, port, assets: WEB_ASSETS, origins }),
    });
  }
  if (web && credentials && web.httpsPort !== undefined) {
    wanted.push({
      flag: "--https-port",
      port: web.httpsPort,
      listen: (port) =>
        listenWeb({ hostname, port, tls: credentials, assets: WEB_ASSETS, origins }),
    });
  }
  const started: StoppingListener[] = [];
  for (const { flag, port, listen } of wanted) {
    try {
      started.push(await listen(port));
    } catch (error) {
      for (const listener of started) listener.close();
      throw new ListenError(flag, port, error);
    }
  }
  return started;
}

/** A listener that could not listen: which port (and its flag) it was, and why. */
export class ListenError extends Error {
  constructor(readonly flag: string, readonly port: number, override readonly cause: unknown) {
    super(`Cannot listen on port ${port} (${flag}): ${errorText(cause)}`);
    this.name = "ListenError";
  }
}

/** Starts a listener, naming its port and flag when it cannot. */
function listening<T>(flag: string, port: number, listen: () => T): T {
  try {
    return listen();
  } catch (error) {
    throw new ListenError(flag, port, error);
  }
}

/** A running server. */
export interface ChatServer {
  /**
   * Where it listens, with the real port when 0 was asked for: the plain port, or the TLS one
   * when there is no plain listener.
   */
  readonly addr: { hostname: string; port: number };
  /** Where it listens for TLS, if it does (once {@linkcode ChatServer.listening}). */
  readonly tlsAddr: { hostname: string; port: number } | undefined;
  /** The fingerprint of its TLS key (`SHA256:...`), if it listens for TLS. */
  readonly fingerprint: string | undefined;
  /** Where it serves the web page over HTTP, if it does. */
  readonly webAddr: { hostname: string; port: number } | undefined;
  /** Where it serves the web page over HTTPS, if it does. */
  readonly httpsAddr: { hostname: string; port: number } | undefined;
  /**
   * Resolves once every listener listens: the TLS and web ones bind asynchronously, so
   * `tlsAddr`, `webAddr` and `httpsAddr` are known (and `invites()` has addresses) only then.
   * @throws {ListenError} when a web port cannot be listened on.
   */
  readonly listening: Promise<void>;
  /** Who may come in (the password, the allowlist, one-time invites). */
  readonly access: Access;
  /**
   * Invites to this server, one for each address people can reach it on (`hosts`, or the
   * address it listens on): with `room`, to that room; with `oneTime`, each carrying a fresh
   * secret that admits one person once without the password. Empty without TLS.
   */
  invites(options?: { room?: string; oneTime?: boolean; hosts?: readonly string[] }): string[];
  /** The chat. */
  readonly hub: Hub;
  /** The names and addresses kept out. */
  readonly bans: Bans;
  /** Resolves once the server has shut down, whoever asked it to. */
  readonly closed: Promise<void>;
  /** Every connection, with its member once it has joined, for the operator. */
  connections(): Iterable<Peer & { readonly member: Member | undefined }>;
  /**
   * Tells every client the server is shutting down, gives them a moment to receive it, closes
   * every connection and the listener, and resolves when all of that is done.
   */
  close(reason?: string): Promise<void>;
}

/**
 * Starts a chat server; it is listening when this returns. Composition, in order: the store,
 * the listener, the hub (which restores held sessions from the store), then the gateway that
 * feeds the hub from the listener, with the plain-text face for `nc` and `telnet`.
 * @throws {StoreError} when the database cannot be opened; the errors of `Deno.listen`.
 */
export function startServer(options: ServerOptions = {}): ChatServer {
  const log = options.log ?? (() => {});
  const store = options.db === false
    ? undefined
    : ChatStore.open(options.db ?? ":memory:", { log });
  const hostname = options.hostname ?? DEFAULT_HOST;
  const listeners: TransportListener[] = [];
  try {
    if (options.plain !== false || !options.tls) {
      const port = options.port ?? DEFAULT_PORT;
      listeners.push(listening("--port", port, () => listenTcp({ hostname, port })));
    }
  } catch (error) {
    for (const listener of listeners) listener.close();
    store?.close();
    throw error;
  }
  const access = new Access({
    password: options.password,
    allowed: options.allowed,
    ...(options.now ? { now: options.now } : {}),
  });
  const now = options.now ?? Date.now;
  const bans = new Bans({ store, now });
  const people = new People({ store, now, operators: options.operators ?? [] });
  const rate = options.rate ?? DEFAULT_LIMITS.rate;
  const burst = options.burst ?? DEFAULT_LIMITS.burst;
  const maxQueueBytes = options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
  const hub = new Hub({
    ...options,
    ...(store ? { store } : {}),
    bans,
    people,
    access,
    replayBytes: Math.floor(maxQueueBytes / 4),
    limits: { rate, burst },
  });
  const gateway = new Gateway(hub, {
    helloTimeoutMs: options.helloTimeoutMs ?? HELLO_TIMEOUT_MS,
    promptDelayMs: options.promptDelayMs ?? PROMPT_DELAY_MS,
    nameTimeoutMs: options.nameTimeoutMs ?? NAME_TIMEOUT_MS,
    maxQueueBytes,
    maxFrameBytes: options.maxFrameBytes ?? MAX_FRAME_BYTES,
    heartbeatMs: options.heartbeatMs ?? HEARTBEAT_MS,
    rate,
    burst,
    maxClients: options.maxClients ?? DEFAULT_LIMITS.maxClients,
    maxClientsPerAddress: options.maxClientsPerAddress ?? DEFAULT_LIMITS.maxClientsPerAddress,
    maxPending: options.maxPending ?? DEFAULT_LIMITS.maxPending,
    maxPendingPerAddress: options.maxPendingPerAddress ?? DEFAULT_LIMITS.maxPendingPerAddress,
    loginsPerAddress: options.loginsPerAddress ?? DEFAULT_LIMITS.loginsPerAddress,
    logins: options.logins ?? DEFAULT_LIMITS.logins,
    serverName: options.serverName ?? "chat",
    log,
    face: PLAIN_TEXT_FACE,
    bans,
  });
  for (const listener of listeners) gateway.serve(listener);
  // The TLS and web listeners bind asynchronously (node:tls, node:http): they join the
  // gateway once listening.
  const laterListeners: StoppingListener[] = [];
  const allListening = listenLater(hostname, options).then((started) => {
    for (const listener of started) {
      laterListeners.push(listener);
      gateway.serve(listener);
    }
  });
  // Handled here too, so a caller that does not wait for it is not ended by the rejection.
  allListening.catch(() => {});

  const { promise: closed, resolve: markClosed } = Promise.withResolvers<void>();
  let closing: Promise<void> | undefined;
  async function close(reason = "The server is shutting down"): Promise<void> {
    await allListening.catch(() => {});
    await gateway.close(reason);
    await Promise.all(laterListeners.map((listener) => listener.finished));
    hub.close();
    store?.close();
    markClosed();
  }
  const fingerprint = options.tls?.certificate.fingerprint;
  function invites(
    wanted: { room?: string; oneTime?: boolean; hosts?: readonly string[] } = {},
  ): string[] {
    const tlsListener = laterListeners.find((l) => l.kind === "tls");
    if (!tlsListener || fingerprint === undefined) return [];
    const listening = tlsListener.addr.hostname;
    const wildcard = listening === "0.0.0.0" || listening === "::";
    const lan = wildcard ? lanAddresses() : [];
    const hosts = wanted.hosts ?? (wildcard ? (lan.length > 0 ? lan : ["localhost"]) : [listening]);
    // One secret for all the addresses: a one-time invite admits one person, whichever they use.
    const secret = wanted.oneTime ? access.makeInvite() : undefined;
    return hosts.map((host) =>
      formatInvite({
        address: { hostname: host, port: tlsListener.addr.port },
        fingerprint,
        ...(wanted.room ? { room: wanted.room } : {}),
        ...(secret === undefined ? {} : { secret }),
      })
    );
  }
  return {
    get addr() {
      // Without a plain listener, the TLS one (known once listening).
      return listeners[0]?.addr ?? laterListeners[0]?.addr ?? { hostname, port: 0 };
    },
    get tlsAddr() {
      return laterListeners.find((l) => l.kind === "tls")?.addr;
    },
    fingerprint,
    get webAddr() {
      return laterListeners.find((l) => l.kind === "http")?.addr;
    },
    get httpsAddr() {
      return laterListeners.find((l) => l.kind === "https")?.addr;
    },
    listening: allListening,
    access,
    invites,
    hub,
    bans,
    closed,
    connections: () => gateway.connections(),
    close: (reason) => closing ??= close(reason),
  };
}

// ==== Command line ====

const USAGE = `Chat server ${VERSION}: people join with the chat client, or with nc or telnet.

USAGE:
  deno task server [OPTIONS]

OPTIONS:
      --host HOST      Address to listen on: 0.0.0.0 for every IPv4 interface,
                       :: for IPv6 and IPv4, 127.0.0.1 for this computer only
                                                       (default: ${DEFAULT_HOST})
  -p, --port PORT      Plain TCP port (nc, telnet, old clients)
                                                       (default: ${DEFAULT_PORT})
      --tls-port PORT  TLS port                        (default: the plain port + 1)
      --no-tls         Do not listen for TLS
      --no-plain       Do not listen on the plain port (for a server on the
                       internet: everything encrypted)
      --cert FILE      A certificate (PEM, a chain from a public CA say) to use
                       instead of the one the server makes; needs --key
      --key FILE       Its private key (PEM)   (default: made on first start,
                       kept beside the database as chat-key.pem, mode 0600)
      --web-port PORT  The web page's HTTP port: people open
                       http://HOST:PORT in a browser (default: ${DEFAULT_WEB_PORT})
      --https-port PORT
                       The page over HTTPS, with the server's TLS key
                                                       (default: the web port + 1)
      --no-web         Serve no web page
      --web-origin ORIGIN
                       Also let pages from ORIGIN (https://chat.example.org)
                       use the chat's WebSocket; repeat for more
                                                       (default: the page's own only)
      --password-file FILE
                       A private server: people must give the password in
                       FILE's first line (or use an invite, or an --allow key)
      --allow FILE     A private server: FILE lists the key fingerprints
                       (SHA256:..., one a line) admitted without a password
      --name NAME      Server name shown to people who join
                                                       (default: this computer's name)
      --motd TEXT      Message of the day, shown to everyone who joins; kept
                       in the database until changed
      --op FINGERPRINT The person whose key has this fingerprint (SHA256:...,
                       as /whois shows it) is an operator; repeat for more
                                                       (default: none)
      --console MODE   The operator console: auto (on when run in a terminal),
                       on (read commands from standard input), or off
                                                       (default: auto)
      --db PATH        Database file for messages and sessions; :memory: keeps
                       nothing after the server stops; none keeps no history
                       at all                          (default: ${DEFAULT_DB})

LIMITS (0 turns a limit off where noted):
      --history N      Earlier messages shown on joining a room (0: none)
                                                       (default: ${HISTORY_LIMIT})
      --keep-messages N
                       Messages kept in the database; older ones are deleted
                       (0: keep all)                   (default: ${KEEP_MESSAGES})
      --announce-limit N
                       Largest room in which arrivals and leaves are
                       announced                       (default: ${ANNOUNCE_LIMIT})
      --grace SECONDS  How long a dropped connection keeps its name and rooms,
                       shown as away, waiting to resume (default: ${GRACE_MS / 1000})
      --resume-hours H How long after that a session can still be resumed
                       with what it missed             (default: ${RESUME_WINDOW_MS / 3_600_000})
      --heartbeat SECONDS
                       Silence before a client is pinged, and then before it
                       is dropped                      (default: ${HEARTBEAT_MS / 1000})
      --hello-timeout SECONDS
                       Time a new program has to say hello (people on nc or
                       telnet are asked for a name and get ${NAME_TIMEOUT_MS / 1000} s)
                                                       (default: ${HELLO_TIMEOUT_MS / 1000})
      --rate N         Frames a second per client, after a burst (0: no limit)
                                                       (default: ${DEFAULT_LIMITS.rate})
      --burst N        Frames a client may send at once (default: ${DEFAULT_LIMITS.burst})
      --max-clients N  People connected at once (0: no limit)
                                                       (default: ${DEFAULT_LIMITS.maxClients})
      --max-per-ip N   People connected at once from one IP address (0: no
                       limit)                          (default: ${DEFAULT_LIMITS.maxClientsPerAddress})
      --max-pending N  Connections still to say hello, at once; when full the
                       oldest is closed (0: no limit)  (default: ${DEFAULT_LIMITS.maxPending})
      --max-pending-per-ip N
                       The same from one IP address; more are refused (0: no
                       limit)                          (default: ${DEFAULT_LIMITS.maxPendingPerAddress})
      --logins-per-ip N
                       Connections (logins) a minute from one IP address,
                       after a burst of as many (0: no limit)
                                                       (default: ${DEFAULT_LIMITS.loginsPerAddress})
      --logins N       Logins a second in all, after a burst of ten times as
                       many (0: no limit)              (default: ${DEFAULT_LIMITS.logins})
      --max-queue BYTES
                       Bytes waiting for a client before it counts as too
                       slow and is dropped             (default: ${DEFAULT_MAX_QUEUE_BYTES})
      --max-frame BYTES
                       Longest line a client may send  (default: ${MAX_FRAME_BYTES})

  -h, --help           Show this help and exit
  -V, --version        Show the version and exit

In the console, plain text is announced to everyone; /help lists the commands.
Stop it with Ctrl+C or /shutdown: everyone connected is told first.`;

interface CliOptions {
  help: boolean;
  version: boolean;
  hostname: string;
  port: number;
  /** The TLS port, or `false` for no TLS. */
  tlsPort: number | false;
  /** The web page's HTTP port and HTTPS port (with TLS), or `false` for `--no-web`. */
  web: { port: number; httpsPort: number | undefined; origins: string[] } | false;
  plain: boolean;
  /** A certificate and key to load, instead of the made one. */
  certFiles: { cert: string; key: string } | undefined;
  passwordFile: string | undefined;
  allowFile: string | undefined;
  serverName: string | undefined;
  motd: string | undefined;
  operators: string[];
  console: "auto" | "on" | "off";
  db: string | false;
  limits: Required<
    Pick<
      ServerOptions,
      | "announceLimit"
      | "historyLimit"
      | "keepMessages"
      | "graceMs"
      | "resumeWindowMs"
      | "heartbeatMs"
      | "helloTimeoutMs"
      | "rate"
      | "burst"
      | "maxClients"
      | "maxClientsPerAddress"
      | "maxPending"
      | "maxPendingPerAddress"
      | "loginsPerAddress"
      | "logins"
      | "maxQueueBytes"
      | "maxFrameBytes"
    >
  >;
}

/** Reads a numeric flag: a number within `min` and `max` (whole unless `fraction`). */

/**
 * Reads `--web-port`, `--https-port`, `--no-web` and `--web-origin`: the page on its port, and
 * over HTTPS on the next one when TLS is on; none of the ports may be another listener's.
 */
function parseWebFlags(
  values: {
    "web-port"?: string | undefined;
    "https-port"?: string | undefined;
    "no-web": boolean;
    "web-origin": string[];
  },
  taken: { port: number; tlsPort: number | false },
): CliOptions["web"] {
  if (values["no-web"]) {
    if (values["web-port"] !== undefined || values["https-port"] !== undefined) {
      throw new UsageError("Use --web-port/--https-port or --no-web, not both");
    }
    return false;
  }
  const port = parsePort(values["web-port"] ?? String(DEFAULT_WEB_PORT));
  if (!port.ok) throw new UsageError(port.error.replace("port", "--web-port"));
  let httpsPort: number | undefined;
  if (taken.tlsPort !== false) {
    const https = parsePort(values["https-port"] ?? String(Math.min(port.value + 1, 65535)));
    if (!https.ok) throw new UsageError(https.error.replace("port", "--https-port"));
    httpsPort = https.value;
  } else if (values["https-port"] !== undefined) {
    throw new UsageError("--https-port needs TLS: drop --no-tls");
  }
  const used = [taken.port, taken.tlsPort, port.value, httpsPort].filter((p) => p !== false);
  if (new Set(used).size !== used.length) {
    throw new UsageError(
      `The ports must differ: --port ${taken.port}, --tls-port ${taken.tlsPort}, ` +
        `--web-port ${port.value}, --https-port ${httpsPort ?? "none"}`,
    );
  }
  const origins = values["web-origin"].map((origin) => {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new UsageError(
        `--web-origin needs an origin like https://chat.example.org, not "${origin}"`,
      );
    }
    if (!/^https?:$/.test(url.protocol) || url.origin !== origin.replace(/\/$/, "")) {
      throw new UsageError(
        `--web-origin needs an origin like https://chat.example.org, not "${origin}"`,
      );
    }
    return url.origin;
  });
  return { port: port.value, httpsPort, origins };
}

/** Checks an `--op` value: a key fingerprint as `/whois` shows it. */
function checkFingerprint(text: string): string {
  if (!isFingerprint(text)) {
    throw new UsageError(
      `--op needs a key fingerprint like SHA256:uNiVztks... (as /whois shows it), not "${text}"`,
    );
  }
  return text;
}

function parseCli(args: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        host: { type: "string", default: DEFAULT_HOST },
        port: { type: "string", short: "p", default: String(DEFAULT_PORT) },
        name: { type: "string" },
        motd: { type: "string" },
        op: { type: "string", multiple: true, default: [] },
        console: { type: "string", default: "auto" },
        db: { type: "string", default: DEFAULT_DB },
        "tls-port": { type: "string" },
        "no-tls": { type: "boolean", default: false },
        "no-plain": { type: "boolean", default: false },
        "web-port": { type: "string" },
        "https-port": { type: "string" },
        "no-web": { type: "boolean", default: false },
        "web-origin": { type: "string", multiple: true, default: [] },
        cert: { type: "string" },
        key: { type: "string" },
        "password-file": { type: "string" },
        allow: { type: "string" },
        history: { type: "string" },
        "keep-messages": { type: "string" },
        "announce-limit": { type: "string" },
        grace: { type: "string" },
        "resume-hours": { type: "string" },
        heartbeat: { type: "string" },
        "hello-timeout": { type: "string" },
        rate: { type: "string" },
        burst: { type: "string" },
        "max-clients": { type: "string" },
        "max-per-ip": { type: "string" },
        "max-pending": { type: "string" },
        "max-pending-per-ip": { type: "string" },
        "logins-per-ip": { type: "string" },
        logins: { type: "string" },
        "max-queue": { type: "string" },
        "max-frame": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "V", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError(errorText(error));
  }
  const { values } = parsed;
  const host = checkHost(values.host);
  if (!host.ok) throw new UsageError(host.error);
  const port = parsePort(values.port);
  if (!port.ok) throw new UsageError(port.error);
  const consoleMode = values.console;
  if (consoleMode !== "auto" && consoleMode !== "on" && consoleMode !== "off") {
    throw new UsageError(
      `Invalid --console "${consoleMode}": use auto, on or off`,
    );
  }
  if (values.db.trim() === "") throw new UsageError("--db needs a file name (or :memory:)");
  let tlsPort: number | false = false;
  if (!values["no-tls"]) {
    const parsedTls = values["tls-port"] === undefined
      ? parsePort(String(port.value === 65535 ? 65534 : port.value + 1))
      : parsePort(values["tls-port"]);
    if (!parsedTls.ok) throw new UsageError(parsedTls.error.replace("port", "--tls-port"));
    if (parsedTls.value === port.value && !values["no-plain"]) {
      throw new UsageError(`--tls-port ${parsedTls.value} is the plain port too: pick another`);
    }
    tlsPort = parsedTls.value;
  } else if (values["tls-port"] !== undefined) {
    throw new UsageError("Use --tls-port PORT or --no-tls, not both");
  }
  if (values["no-tls"] && values["no-plain"]) {
    throw new UsageError("--no-tls and --no-plain together leave nothing to listen on");
  }
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError("--cert FILE and --key FILE go together");
  }
  if (values["no-tls"] && values.cert !== undefined) {
    throw new UsageError("--cert and --key are for TLS: drop --no-tls");
  }
  const web = parseWebFlags(values, { port: port.value, tlsPort });
  const seconds = (flag: string, fallback: number, min: number) =>
    numberFlag(values, flag, fallback / 1000, { min, max: 86_400, fraction: true }) * 1000;
  return {
    help: values.help,
    version: values.version,
    hostname: values.host.replace(/^\[(.*)\]$/, "$1"),
    port: port.value,
    tlsPort,
    web,
    plain: !values["no-plain"],
    certFiles: values.cert !== undefined && values.key !== undefined
      ? { cert: values.cert, key: values.key }
      : undefined,
    passwordFile: values["password-file"],
    allowFile: values.allow,
    serverName: values.name,
    motd: values.motd === undefined ? undefined : cleanLine(values.motd),
    operators: values.op.map(checkFingerprint),
    console: consoleMode,
    db: values.db === "none" ? false : values.db,
    limits: {
      historyLimit: numberFlag(values, "history", HISTORY_LIMIT, { max: MAX_HISTORY_PAGE }),
      keepMessages: numberFlag(values, "keep-messages", KEEP_MESSAGES),
      announceLimit: numberFlag(values, "announce-limit", ANNOUNCE_LIMIT),
      graceMs: seconds("grace", GRACE_MS, 0),
      resumeWindowMs: numberFlag(values, "resume-hours", RESUME_WINDOW_MS / 3_600_000, {
        max: 24 * 365,
        fraction: true,
      }) * 3_600_000,
      heartbeatMs: seconds("heartbeat", HEARTBEAT_MS, 1),
      helloTimeoutMs: seconds("hello-timeout", HELLO_TIMEOUT_MS, 1),
      rate: numberFlag(values, "rate", DEFAULT_LIMITS.rate, { fraction: true, max: 1_000_000 }),
      burst: numberFlag(values, "burst", DEFAULT_LIMITS.burst, { min: 1, max: 1_000_000 }),
      maxClients: numberFlag(values, "max-clients", DEFAULT_LIMITS.maxClients),
      maxClientsPerAddress: numberFlag(
        values,
        "max-per-ip",
        DEFAULT_LIMITS.maxClientsPerAddress,
      ),
      maxPending: numberFlag(values, "max-pending", DEFAULT_LIMITS.maxPending),
      maxPendingPerAddress: numberFlag(
        values,
        "max-pending-per-ip",
        DEFAULT_LIMITS.maxPendingPerAddress,
      ),
      loginsPerAddress: numberFlag(values, "logins-per-ip", DEFAULT_LIMITS.loginsPerAddress),
      logins: numberFlag(values, "logins", DEFAULT_LIMITS.logins),
      maxQueueBytes: numberFlag(values, "max-queue", DEFAULT_MAX_QUEUE_BYTES, {
        min: MAX_FRAME_BYTES,
      }),
      maxFrameBytes: numberFlag(values, "max-frame", MAX_FRAME_BYTES, {
        min: 1024,
        max: 16 * 1024 * 1024,
      }),
    },
  };
}

function localHostname(): string | undefined {
  try {
    return Deno.hostname();
  } catch {
    return undefined;
  }
}

/** The addresses other computers can reach this one on: IPv4, not loopback or link-local. */
function lanAddresses(): string[] {
  try {
    return Deno.networkInterfaces()
      .filter((i) =>
        i.family === "IPv4" && !i.address.startsWith("127.") && !i.address.startsWith("169.254.")
      )
      .map((i) => i.address);
  } catch {
    return [];
  }
}

/** What {@linkcode bannerLines} tells about a running server. */
export interface BannerFacts {
  /** The plain listener's address, if there is one. */
  plain?: { hostname: string; port: number } | undefined;
  /** The TLS listener's address and key fingerprint, if there is one. */
  tls?: { hostname: string; port: number; fingerprint: string } | undefined;
  /** Invites for these host names or addresses (empty without TLS). */
  invites: (hosts: readonly string[]) => string[];
  /** The addresses other computers reach this one at. @default {the LAN addresses} */
  lan?: readonly string[];
  /** The web page's HTTP port, if it is served. */
  webPort?: number | undefined;
  /** The web page's HTTPS port, if it is served over TLS too. */
  httpsPort?: number | undefined;
}

/**
 * What the server says when it starts: where it listens, its key's fingerprint, and how others
 * join: an invite to paste (TLS, the key pinned), or plain `nc` for the plain port.
 */
export function bannerLines(facts: BannerFacts): string[] {
  const first = facts.plain ?? facts.tls!;
  const where = (addr: { hostname: string; port: number }) =>
    `${addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname}:${addr.port}`;
  const lines = [
    facts.plain && facts.tls
      ? `Chat server ${VERSION} listening on ${where(facts.plain)} (plain: nc, telnet) and ` +
        `${where(facts.tls)} (TLS)`
      : `Chat server ${VERSION} listening on ${where(first)}${facts.tls ? " (TLS)" : " (plain)"}`,
  ];
  if (facts.tls) lines.push(`The server's key: ${facts.tls.fingerprint}`);
  const wildcard = first.hostname === "0.0.0.0" || first.hostname === "::";
  const loopback = first.hostname.startsWith("127.") || first.hostname === "::1";
  const others = loopback ? [] : wildcard ? [...(facts.lan ?? lanAddresses())] : [first.hostname];
  if (loopback) {
    lines.push("Only this computer can connect (use --host 0.0.0.0 to let others in).");
  } else if (others.length > 0) {
    lines.push(
      facts.tls
        ? "People on other computers join with its invite (paste it into the client):"
        : "People on other computers join with (unencrypted):",
    );
    const invites = facts.invites(others);
    for (const [i, other] of others.entries()) {
      const invite = invites[i];
      lines.push(
        `  deno task client ${invite ? `'${invite}'` : plainClientArgs(other, first.port)}`,
      );
    }
    if (facts.plain) lines.push(`  or, unencrypted: nc ${others[0]} ${facts.plain.port}`);
    if (facts.webPort !== undefined) {
      lines.push(`  or in a browser: ${pageUrls(others[0]!, facts)}`);
    }
  }
  // A server on ::1 alone is not reached by "localhost" where that means 127.0.0.1.
  const local = first.hostname === "::1" ? "::1" : "localhost";
  const invite = facts.invites([local])[0];
  lines.push(
    `On this computer: deno task client ${
      invite ? `'${invite}'` : plainClientArgs(local, first.port)
    }`,
  );
  if (facts.webPort !== undefined) lines.push(`  or in a browser: ${pageUrls(local, facts)}`);
  return lines;
}

/** `http://HOST:PORT`, and its HTTPS twin when there is one. */
function pageUrls(host: string, facts: BannerFacts): string {
  const bracketed = host.includes(":") ? `[${host}]` : host;
  const http = `http://${bracketed}:${facts.webPort}`;
  return facts.httpsPort === undefined
    ? http
    : `${http} (or https://${bracketed}:${facts.httpsPort}, encrypted with the key above)`;
}

/**
 * The client's arguments for a plain server: `--plain host`, with `:port` for another port than
 * 5050 (without `--plain` the client would try TLS).
 */
function plainClientArgs(host: string, port: number): string {
  const bracketed = host.includes(":") ? `[${host}]` : host;
  return `--plain ${port === DEFAULT_PORT ? bracketed : `${bracketed}:${port}`}`;
}

/** One line for a listener that could not start (which port, which flag moves it). */
function listenErrorText(failure: unknown, hostname: string): string {
  const { flag, port, cause: error } = failure instanceof ListenError
    ? failure
    : { flag: "--port", port: DEFAULT_PORT, cause: failure };
  const where = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  // Deno's listeners throw Deno.errors; node:http (the web page) errors with a code.
  const code = (error as { code?: unknown } | null)?.code;
  if (error instanceof Deno.errors.AddrInUse || code === "EADDRINUSE") {
    return `Cannot listen on ${where}: the port is in use (another server running? try ${flag} ${
      port + 2
    })`;
  }
  if (error instanceof Deno.errors.AddrNotAvailable || code === "EADDRNOTAVAIL") {
    return `Cannot listen on ${where}: this computer has no such address (try --host 0.0.0.0)`;
  }
  if (error instanceof Deno.errors.PermissionDenied || code === "EACCES") {
    return `Cannot listen on ${where}: permission denied (ports below 1024 need privileges; try --port ${DEFAULT_PORT})`;
  }
  return `Cannot listen on ${where}: ${errorText(error)}`;
}

/** Whether a file exists (anything but "not found" counts as yes: it is there, unreadable). */
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    return !(error instanceof Deno.errors.NotFound);
  }
}

/** What a server is secured with, read from the command line's files. */
interface Security {
  /** The TLS certificate, unless `--no-tls`. */
  certificate: ServerCertificate | undefined;
  /** One line about where the key is kept, for the banner. */
  certificateNote: string | undefined;
  password: string | undefined;
  allowed: string[];
}

/**
 * Reads what the command line points at: the certificate (`--cert`/`--key`, the one kept beside
 * the database, made on first start, or one for this run only without a database file), the
 * password file's first line and the allowlist. Errors say which file and what is wrong.
 */
async function securityFromFiles(options: CliOptions): Promise<Result<Security>> {
  let certificate: ServerCertificate | undefined;
  let certificateNote: string | undefined;
  if (options.tlsPort !== false) {
    if (options.certFiles) {
      const loaded = await loadCertificateFiles(options.certFiles.cert, options.certFiles.key);
      if (!loaded.ok) return loaded;
      certificate = loaded.value;
    } else {
      const names = {
        dns: [...new Set([localHostname(), "localhost"].filter((n) => n !== undefined))],
        ips: [...lanAddresses(), "127.0.0.1", "::1"],
      };
      if (options.db === false || options.db === ":memory:") {
        certificate = await makeCertificate(names);
        certificateNote = "A new TLS key for this run only (no database file to keep it beside): " +
          "invites last as long as the server runs.";
      } else {
        const dir = options.db.includes("/")
          ? options.db.slice(0, options.db.lastIndexOf("/"))
          : ".";
        const paths = { key: `${dir}/chat-key.pem`, cert: `${dir}/chat-cert.pem` };
        // A database without its key: people who came before trusted a key that is gone.
        const databaseExisted = await exists(options.db);
        const kept = await loadOrMakeCertificate(paths, names);
        if (!kept.ok) return kept;
        certificate = kept.value.certificate;
        certificateNote = kept.value.origin === "made" && databaseExisted
          ? `Made a NEW TLS key, kept in ${paths.key}: ${options.db} is from before, so everyone ` +
            "who joined earlier will be told this server's key changed. If the old " +
            "chat-key.pem exists, stop the server and put it back."
          : kept.value.origin === "made"
          ? `Made a TLS key, kept in ${paths.key} (keep it: it is how people know this server).`
          : kept.value.origin === "renewed"
          ? `Renewed the certificate of the key in ${paths.key}: its fingerprint is the same.`
          : undefined;
      }
    }
  }
  let password: string | undefined;
  if (options.passwordFile !== undefined) {
    const read = await readFirstLine(options.passwordFile);
    if (!read.ok) return read;
    if (read.value === "") {
      return fail(`${options.passwordFile} holds no password on its first line`);
    }
    password = read.value;
  }
  let allowed: string[] = [];
  if (options.allowFile !== undefined) {
    const read = await readAllowlist(options.allowFile);
    if (!read.ok) return read;
    allowed = read.value;
  }
  return ok({ certificate, certificateNote, password, allowed });
}

/** The first line of a file, trimmed. */
async function readFirstLine(path: string): Promise<Result<string>> {
  try {
    return ok((await Deno.readTextFile(path)).split(/\r?\n/)[0]!.trim());
  } catch (error) {
    return fail(`Cannot read ${path}: ${errorText(error)}`);
  }
}

/**
 * The fingerprints an allowlist file names: one a line (`SHA256:...`, as `/whois` shows them),
 * with blank lines and `#` comments (and anything after a fingerprint) ignored.
 */
export async function readAllowlist(path: string): Promise<Result<string[]>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    return fail(`Cannot read the allowlist ${path}: ${errorText(error)}`);
  }
  const fingerprints: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") continue;
    const [first = ""] = line.split(/\s+/);
    if (!isFingerprint(first)) {
      return fail(
        `${path}, line ${i + 1}: "${
          sanitizeForTerminal(first).slice(0, 60)
        }" is not a key fingerprint (SHA256:..., as /whois shows it)`,
      );
    }
    fingerprints.push(first);
  }
  return ok(fingerprints);
}

/**
 * Waits for Ctrl+C (SIGINT), SIGTERM or SIGHUP (the terminal went away); a second one exits at
 * once.
 */
function untilSignal(): Promise<string> {
  const { promise, resolve } = Promise.withResolvers<string>();
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM", "SIGHUP"];
  let received = false;
  for (const signal of signals) {
    Deno.addSignalListener(signal, () => {
      if (received) Deno.exit(1);
      received = true;
      resolve(`${signal}: shutting down`);
    });
  }
  return promise;
}

/** Where the operator reads: the log, and (with the console on) command replies. */

export async function main(args: string[]): Promise<number> {
  const options = readCommandLine(args, { program: "server", parse: parseCli, usage: USAGE });
  if (typeof options === "number") return options;
  const output = logOutput();
  let screen: OperatorScreen = output;
  const log = limitLog((line) => screen.print([`${timestamp()} ${sanitizeForTerminal(line)}`]));
  const secured = await securityFromFiles(options);
  if (!secured.ok) {
    console.error(`server: ${secured.error}`);
    log.close();
    return 1;
  }
  const { certificate, certificateNote, password, allowed } = secured.value;
  let server: ChatServer;
  try {
    server = startServer({
      hostname: options.hostname,
      port: options.port,
      plain: options.plain,
      ...(certificate && options.tlsPort !== false
        ? { tls: { port: options.tlsPort, certificate } }
        : {}),
      ...(options.web
        ? {
          web: {
            port: options.web.port,
            origins: options.web.origins,
            ...(options.web.httpsPort === undefined ? {} : { httpsPort: options.web.httpsPort }),
          },
        }
        : {}),
      password,
      allowed,
      serverName: options.serverName ?? localHostname() ?? "chat",
      ...(options.motd === undefined ? {} : { motd: options.motd }),
      operators: options.operators,
      db: options.db,
      ...options.limits,
      log,
    });
  } catch (error) {
    const text = error instanceof StoreError
      ? error.message
      : listenErrorText(error, options.hostname);
    console.error(`server: ${text}`);
    log.close();
    return 1;
  }
  try {
    await server.listening;
  } catch (error) {
    await server.close();
    console.error(`server: ${listenErrorText(error, options.hostname)}`);
    log.close();
    return 1;
  }
  const plainAddr = options.plain ? server.addr : undefined;
  output.print(bannerLines({
    plain: plainAddr,
    tls: server.tlsAddr && server.fingerprint
      ? { ...server.tlsAddr, fingerprint: server.fingerprint }
      : undefined,
    invites: (hosts) => server.invites({ hosts }),
    webPort: server.webAddr?.port,
    httpsPort: server.httpsAddr?.port,
  }));
  if (certificateNote) output.print([certificateNote]);
  if (server.access.isPrivate) {
    output.print([
      `Private: ${
        [
          ...(password !== undefined ? ["a password"] : []),
          ...(allowed.length > 0 ? [`${allowed.length} allowed keys`] : []),
        ].join(" or ")
      } needed to join (/invite in the console makes a one-time invite).`,
    ]);
  }
  output.print([
    options.db === false
      ? "No messages are kept (--db none): no history, and no resuming after a restart."
      : options.db === ":memory:"
      ? "Messages are kept in memory only (--db :memory:)."
      : `Messages are kept in ${options.db}.`,
  ]);
  const consoleOn = options.console === "on" ||
    (options.console === "auto" && Deno.stdin.isTerminal());
  const stop = Promise.withResolvers<string>();
  let operatorConsole: ReturnType<typeof startConsole> | undefined;
  if (consoleOn) {
    output.print([
      "Console on: /help for commands, /announce to speak to everyone, Ctrl+C to stop.",
    ]);
    await output.flush();
    operatorConsole = startConsole(server, { onShutdown: stop.resolve, output });
    screen = operatorConsole;
  } else {
    output.print(["Press Ctrl+C to stop."]);
  }
  const reason = await Promise.race([untilSignal(), stop.promise]);
  const size = server.hub.size;
  log(`${reason}; telling ${size} ${size === 1 ? "person" : "people"}`);
  await server.close(reason.startsWith("SIG") ? undefined : reason);
  operatorConsole?.close();
  screen = output;
  log.close();
  log("stopped");
  await output.flush();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
