/**
 * The terminal client's own files, in its configuration folder: its identity (an Ed25519 key pair,
 * made on first run) and, beside it, what it last saw on each server, so that after a crash or a
 * restart it comes back with exactly the messages it missed.
 *
 * The folder is `$XDG_CONFIG_HOME/chat` (or `~/.config/chat`) on Linux and macOS and
 * `%APPDATA%\chat` on Windows. Files are written readable by their owner only (mode 0600), and
 * replaced whole (written beside, then renamed), so a crash never leaves half a file.
 *
 * @module
 */

import {
  generateIdentity,
  type Identity,
  type KeyFacts,
  keyFacts,
  loadIdentity,
} from "../net/identity.ts";
import { errorText } from "../net/conn.ts";
import { isFingerprint } from "../protocol.ts";

/** The folder name inside the user's configuration folder. */
export const APP_FOLDER = "chat";
/** The identity's file name inside that folder. */
export const IDENTITY_FILE = "identity.json";

/** A configuration file that cannot be read or written: the message says what to do. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * The client's configuration folder, from the environment: `%APPDATA%\chat` on Windows,
 * `$XDG_CONFIG_HOME/chat` when that is set to an absolute path, else `$HOME/.config/chat`
 * (the XDG Base Directory rule). `undefined` when none of those is known.
 */
export function configFolder(
  env: (name: string) => string | undefined,
  os: typeof Deno.build.os,
): string | undefined {
  if (os === "windows") {
    const appData = env("APPDATA");
    return appData ? `${appData}\\${APP_FOLDER}` : undefined;
  }
  const xdg = env("XDG_CONFIG_HOME");
  if (xdg && xdg.startsWith("/")) return `${xdg}/${APP_FOLDER}`;
  const home = env("HOME");
  return home ? `${home}/.config/${APP_FOLDER}` : undefined;
}

/** Reads an environment variable the client may read, or `undefined`. */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** The default identity file: `identity.json` in the configuration folder. */
export function defaultIdentityPath(): string | undefined {
  const folder = configFolder(readEnv, Deno.build.os);
  return folder && `${folder}${Deno.build.os === "windows" ? "\\" : "/"}${IDENTITY_FILE}`;
}

/** An identity ready to use, with its fingerprint, and whether it was made just now. */
export interface LoadedIdentity {
  identity: Identity;
  facts: KeyFacts;
  path: string;
  created: boolean;
}

/** The identity file's contents. */
interface IdentityFile {
  version: 1;
  type: "ed25519";
  publicKey: string;
  privateKey: string;
}

/**
 * Loads the identity kept at `path`, or makes one there (and its folder, mode 0700) when there is
 * none. A file readable by others is made private again.
 * @throws {ConfigError} when the file cannot be read, written or understood.
 */
export async function loadOrCreateIdentity(path: string): Promise<LoadedIdentity> {
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new ConfigError(`Cannot read the identity ${path}: ${fileError(error)}`);
    }
  }
  if (text === undefined) {
    const { identity, stored } = await generateIdentity();
    const file: IdentityFile = { version: 1, type: "ed25519", ...stored };
    try {
      writePrivateFile(path, JSON.stringify(file, null, 2) + "\n");
    } catch (error) {
      throw new ConfigError(`Cannot save a new identity in ${path}: ${fileError(error)}`);
    }
    return { identity, facts: await keyFacts(identity.publicKey), path, created: true };
  }
  const identity = await parseIdentity(path, text);
  keepPrivate(path);
  return { identity, facts: await keyFacts(identity.publicKey), path, created: false };
}

async function parseIdentity(path: string, text: string): Promise<Identity> {
  const broken = (why: string) =>
    new ConfigError(
      `The identity ${path} cannot be used: ${why} (move it away to make a new one, or use ` +
        "--anonymous)",
    );
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch {
    throw broken("it is not JSON");
  }
  if (
    typeof file !== "object" || file === null || !("publicKey" in file) ||
    !("privateKey" in file) || typeof file.publicKey !== "string" ||
    typeof file.privateKey !== "string"
  ) {
    throw broken("it has no publicKey and privateKey");
  }
  try {
    return await loadIdentity({ publicKey: file.publicKey, privateKey: file.privateKey });
  } catch (error) {
    throw broken(errorText(error));
  }
}

/** Makes a file readable and writable by its owner only (not on Windows, which has no modes). */
function keepPrivate(path: string): void {
  if (Deno.build.os === "windows") return;
  try {
    if ((Deno.statSync(path).mode ?? 0) & 0o077) Deno.chmodSync(path, 0o600);
  } catch {
    // A file we could read but not change stays as it is.
  }
}

/**
 * Writes a whole file readable by its owner only: into a file beside it, then renamed over it,
 * so a reader never sees half of it. Makes the folder (mode 0700) when it is missing.
 */
export function writePrivateFile(path: string, text: string): void {
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  if (slash > 0) Deno.mkdirSync(path.slice(0, slash), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  Deno.writeTextFileSync(temporary, text, { mode: 0o600 });
  Deno.renameSync(temporary, path);
}

function fileError(error: unknown): string {
  if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable) {
    return "permission denied";
  }
  return errorText(error);
}

// ==== What was seen ====

/** What the seen file holds: the newest id per server id, and which server an address was. */
interface Seen {
  servers: Record<string, number>;
  addresses: Record<string, string>;
}

/**
 * The newest message id seen on each server (by the server's id, and the addresses it was
 * reached at), kept beside the identity (`identity.json` -> `identity.seen.json`): where a
 * restarted client resumes.
 */
export class SeenFile {
  #path: string;
  #seen: Seen;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failed = false;

  private constructor(path: string, seen: Seen) {
    this.#path = path;
    this.#seen = seen;
  }

  /** Opens the file that goes with an identity file (an empty one when it does not exist). */
  static open(identityPath: string): SeenFile {
    const path = identityPath.replace(/(\.json)?$/, ".seen.json");
    const seen: Seen = { servers: {}, addresses: {} };
    try {
      const parsed: unknown = JSON.parse(Deno.readTextFileSync(path));
      if (typeof parsed === "object" && parsed !== null) {
        const { servers, addresses } = parsed as Partial<Record<keyof Seen, unknown>>;
        for (const [server, last] of Object.entries(servers ?? {})) {
          if (Number.isSafeInteger(last)) seen.servers[server] = last as number;
        }
        for (const [address, server] of Object.entries(addresses ?? {})) {
          if (typeof server === "string") seen.addresses[address] = server;
        }
      }
    } catch {
      // No file yet, or a broken one: start again.
    }
    return new SeenFile(path, seen);
  }

  /** The newest message id seen on the server last reached at this address, if any. */
  lastAt(address: string): number | undefined {
    const server = this.#seen.addresses[address];
    return server === undefined ? undefined : this.#seen.servers[server];
  }

  /**
   * Notes the newest message id seen on a server, reached at `address`; written at the end of
   * the turn, so a burst of messages costs one write.
   */
  note(address: string, serverId: string, last: number): void {
    if (this.#seen.servers[serverId] === last && this.#seen.addresses[address] === serverId) {
      return;
    }
    this.#seen.servers[serverId] = last;
    this.#seen.addresses[address] = serverId;
    this.#timer ??= setTimeout(() => this.flush(), 0);
  }

  /** Writes what was noted now. A failure is told once; the chat goes on without it. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#failed) return;
    try {
      writePrivateFile(this.#path, JSON.stringify(this.#seen) + "\n");
    } catch (error) {
      this.#failed = true;
      console.error(`client: cannot keep what was seen in ${this.#path}: ${fileError(error)}`);
    }
  }
}

// ==== Known servers ====

/** The file of the servers trusted, beside the identity: `known_servers.json`. */
export const KNOWN_SERVERS_FILE = "known_servers.json";

/**
 * Reads the known-servers file (`{"servers": {"SHA256:...": ["host:port", ...]}}`); `undefined`
 * when it is not that shape. Entries that are not a fingerprint with addresses are skipped.
 */
function parseKnownServers(text: string): Map<string, string[]> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const servers = (parsed as { servers?: unknown }).servers;
  if (typeof servers !== "object" || servers === null || Array.isArray(servers)) return undefined;
  const map = new Map<string, string[]>();
  for (const [fingerprint, addresses] of Object.entries(servers)) {
    if (!isFingerprint(fingerprint) || !Array.isArray(addresses)) continue;
    const kept = addresses.filter((a): a is string => typeof a === "string");
    if (kept.length > 0) map.set(fingerprint, kept);
  }
  return map;
}

/**
 * The servers the client trusts, as OpenSSH's `known_hosts` does for SSH: each key fingerprint
 * (`SHA256:...`, of the server's TLS key) with the addresses (`host:port`) it was reached at.
 * Trust is in the key: a trusted key at a new address is the same server; another key at a
 * known address is a stop. Kept beside the identity, readable by its owner only; without a
 * folder to keep it in, it lasts as long as the program.
 */
export class KnownServers {
  #path: string | undefined;
  /** Fingerprint → the addresses it was reached at. */
  #servers = new Map<string, string[]>();

  private constructor(path: string | undefined) {
    this.#path = path;
  }

  /**
   * Opens the file beside `identityPath` (or in the configuration folder); a missing file is an
   * empty list, and `undefined` keeps the list in memory only.
   * @throws {ConfigError} when the file cannot be read or is not such a list: writing over it
   * would silently forget every key trusted before, so the person is told what to do instead.
   */
  static open(path: string | undefined): KnownServers {
    const known = new KnownServers(path);
    if (path === undefined) return known;
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch (error) {
      // Nothing there yet (a folder on the way may be missing, or be a file: saving will say).
      if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
        return known;
      }
      throw new ConfigError(`Cannot read the trusted servers in ${path}: ${fileError(error)}`);
    }
    const servers = parseKnownServers(text);
    if (servers === undefined) {
      throw new ConfigError(
        `${path} is not a list of trusted servers (not the JSON this program writes): ` +
          "fix it, or delete it to trust servers afresh",
      );
    }
    known.#servers = servers;
    return known;
  }

  /** Where the list beside an identity file lives. */
  static pathBeside(identityPath: string): string {
    const slash = Math.max(identityPath.lastIndexOf("/"), identityPath.lastIndexOf("\\"));
    return `${identityPath.slice(0, slash + 1)}${KNOWN_SERVERS_FILE}`;
  }

  /** The fingerprint trusted at an address (`host:port`), if any. */
  at(address: string): string | undefined {
    for (const [fingerprint, addresses] of this.#servers) {
      if (addresses.includes(address)) return fingerprint;
    }
    return undefined;
  }

  /** Whether a key is trusted, at whatever address. */
  trusts(fingerprint: string): boolean {
    return this.#servers.has(fingerprint);
  }

  /** Trusts a key at an address (instead of whatever key was trusted there), and saves. */
  trust(address: string, fingerprint: string): void {
    if (this.#servers.get(fingerprint)?.includes(address)) return;
    for (const [other, addresses] of this.#servers) {
      const kept = addresses.filter((a) => a !== address);
      if (kept.length === 0) this.#servers.delete(other);
      else this.#servers.set(other, kept);
    }
    this.#servers.set(fingerprint, [...(this.#servers.get(fingerprint) ?? []), address]);
    this.#save();
  }

  #save(): void {
    if (this.#path === undefined) return;
    try {
      writePrivateFile(
        this.#path,
        JSON.stringify({ servers: Object.fromEntries(this.#servers) }, null, 2) + "\n",
      );
    } catch (error) {
      console.error(
        `client: cannot keep the trusted servers in ${this.#path}: ${fileError(error)}`,
      );
      this.#path = undefined;
    }
  }
}
