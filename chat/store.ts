/**
 * Where the chat keeps its messages and sessions: SQLite through Deno's built-in `node:sqlite`.
 *
 * @module
 */

import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { LOBBY, type MessageFrame, type PrivateFrame, roomKey } from "../protocol.ts";

/**
 * The database's schema, one step per version: a database at version N gets steps N+1 onwards,
 * each in its own transaction, and `PRAGMA user_version` records how far it got.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE messages (
     id INTEGER PRIMARY KEY,
     ts INTEGER NOT NULL,
     room_key TEXT,
     room TEXT,
     sender TEXT NOT NULL,
     sender_key TEXT NOT NULL,
     recipient TEXT,
     recipient_key TEXT,
     text TEXT NOT NULL,
     action INTEGER NOT NULL DEFAULT 0,
     cid TEXT
   );
   CREATE INDEX messages_by_room ON messages (room_key, id) WHERE room_key IS NOT NULL;
   CREATE INDEX messages_by_recipient ON messages (recipient_key, id)
     WHERE recipient_key IS NOT NULL;
   CREATE UNIQUE INDEX messages_by_cid ON messages (sender_key, cid) WHERE cid IS NOT NULL;
   CREATE TABLE sessions (
     token TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     rooms TEXT NOT NULL,
     left_at INTEGER
   );`,
];

/**
 * How much message text one transaction gathers before it is committed without waiting for the
 * end of the turn: its messages then reach every recipient's queue together.
 */
const MAX_BATCH_TEXT = 16 * 1024;

/** A stored message: a room message (with `room`) or a private one (with `to`). */
export type StoredFrame = MessageFrame | PrivateFrame;

/** A session as stored: whose it is, its rooms (the current one last), and when it ended. */
export interface StoredSession {
  token: string;
  name: string;
  rooms: string[];
  /** When the person was last let go after losing the connection; `null` while present. */
  leftAt: number | null;
}

interface MessageRow {
  id: number;
  ts: number;
  room: string | null;
  sender: string;
  recipient: string | null;
  text: string;
  action: number;
}

/**
 * What happened to a message given to {@linkcode ChatStore.addMessage}: added to the open
 * transaction; a `duplicate` of one its sender already stored under the same `cid`; or `failed`,
 * with the database's reason (`database or disk is full`).
 */
export type AddResult = { kind: "added" } | { kind: "duplicate" } | {
  kind: "failed";
  cause: string;
};

/** Options for {@linkcode ChatStore.open}. */
export interface StoreOptions {
  /**
   * Receives a line for the operator when a commit fails, with the database's reason.
   * @default {no logging}
   */
  log?: (line: string) => void;
}

/** A database file that cannot be opened or is already in use. */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreError";
  }
}

/**
 * Messages and sessions in SQLite (Deno's built-in `node:sqlite`), in WAL mode. Writes are
 * grouped: the first write opens a transaction and it is committed at the end of the current
 * turn of the event loop (or sooner, by {@linkcode ChatStore.commit}), after which the callbacks
 * waiting on it run. So a message is acknowledged only once it is on disk, and a burst of
 * messages costs one commit. A committed message survives the server being killed; a power cut
 * may lose the last moments (`synchronous=NORMAL`).
 */
export class ChatStore {
  #db: DatabaseSync;
  #log: (line: string) => void;
  #statements: Map<string, StatementSync> = new Map();
  #inTransaction = false;
  #commitTimer: ReturnType<typeof setImmediate> | undefined;
  #batchBytes = 0;
  #waiting: ((ok: boolean) => void)[] = [];

  private constructor(db: DatabaseSync, options: StoreOptions) {
    this.#db = db;
    this.#log = options.log ?? (() => {});
  }

  /**
   * Opens (creating and migrating as needed) the database at `path`; `:memory:` for one that
   * lives only as long as the server. The server holds it exclusively.
   * @throws {StoreError} when the file cannot be opened, is in use or is not a chat database.
   */
  static open(path: string, options: StoreOptions = {}): ChatStore {
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path);
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      const store = new ChatStore(db, options);
      store.#migrate();
      return store;
    } catch (error) {
      db?.close();
      throw new StoreError(storeErrorText(path, error));
    }
  }

  /** The highest message id stored, 0 for none. */
  lastId(): number {
    const row = this.#get("SELECT max(id) AS id FROM messages") as { id: number | null };
    return row.id ?? 0;
  }

  /**
   * Adds a message to the current transaction; `done` runs once it is committed (`true`) or the
   * commit failed (`false`). Adds nothing when its sender already stored a message with the same
   * `cid` (`duplicate`) or the database refused it (`failed`, with why: a full disk...).
   */
  addMessage(
    frame: StoredFrame,
    keys: { sender: string; recipient?: string; cid?: string | undefined },
    done: (ok: boolean) => void,
  ): AddResult {
    const room = frame.type === "message" ? frame.room ?? LOBBY : null;
    let result: { changes: number | bigint };
    try {
      result = this.#write(
        `INSERT INTO messages
         (id, ts, room_key, room, sender, sender_key, recipient, recipient_key, text, action, cid)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        frame.id,
        frame.ts,
        room === null ? null : roomKey(room),
        room,
        frame.from,
        keys.sender,
        frame.type === "private" ? frame.to : null,
        keys.recipient ?? null,
        frame.text,
        frame.action ? 1 : 0,
        keys.cid ?? null,
      );
    } catch (error) {
      return { kind: "failed", cause: databaseReason(error) };
    }
    if (result.changes === 0) return { kind: "duplicate" };
    this.#waiting.push(done);
    this.#batchBytes += frame.text.length;
    // A big batch goes out at once rather than piling up in the clients' queues.
    if (this.#batchBytes >= MAX_BATCH_TEXT) this.commit();
    return { kind: "added" };
  }

  /** Runs `fn` once everything written so far is committed (at once when nothing is pending). */
  afterCommit(fn: () => void): void {
    if (this.#inTransaction) this.#waiting.push((ok) => ok && fn());
    else fn();
  }

  /** The message a sender stored under a `cid`, if any. */
  messageByCid(senderKey: string, cid: string): StoredFrame | undefined {
    const row = this.#get(
      `SELECT id, ts, room, sender, recipient, text, action FROM messages
       WHERE sender_key = ? AND cid = ?`,
      senderKey,
      cid,
    ) as MessageRow | undefined;
    return row && frameFromRow(row);
  }

  /** Up to `limit` messages of a room older than id `before`, oldest first. */
  history(room: string, before: number, limit: number): MessageFrame[] {
    const rows = this.#all(
      `SELECT id, ts, room, sender, recipient, text, action FROM messages
       WHERE room_key = ? AND id < ? ORDER BY id DESC LIMIT ?`,
      roomKey(room),
      before,
      limit,
    ) as MessageRow[];
    return rows.reverse().map((row) => ({ ...frameFromRow(row), history: true }) as MessageFrame);
  }

  /**
   * The newest (up to `limit`) messages after id `after` that a person missed: those of their
   * rooms and those to or from them privately, oldest first; and how many there are in all.
   */
  missed(
    rooms: string[],
    nameKey: string,
    after: number,
    limit: number,
  ): { frames: StoredFrame[]; total: number } {
    const where = `id > ? AND (room_key IN (SELECT value FROM json_each(?))
       OR recipient_key = ? OR (room_key IS NULL AND sender_key = ?))`;
    const args = [after, JSON.stringify(rooms.map(roomKey)), nameKey, nameKey];
    const rows = this.#all(
      `SELECT id, ts, room, sender, recipient, text, action FROM messages
       WHERE ${where} ORDER BY id DESC LIMIT ?`,
      ...args,
      limit,
    ) as MessageRow[];
    const total = rows.length < limit
      ? rows.length
      : (this.#get(`SELECT count(*) AS n FROM messages WHERE ${where}`, ...args) as { n: number })
        .n;
    return { frames: rows.reverse().map(frameFromRow), total };
  }

  /** Records a session as present, with its name and rooms (the current one last). */
  saveSession(token: string, name: string, rooms: string[]): void {
    this.#write(
      "INSERT OR REPLACE INTO sessions (token, name, rooms, left_at) VALUES (?, ?, ?, NULL)",
      token,
      name,
      JSON.stringify(rooms),
    );
  }

  /** Marks a session as let go at `at`: it can still be resumed for a while. */
  sessionLeft(token: string, at: number): void {
    this.#write("UPDATE sessions SET left_at = ? WHERE token = ?", at, token);
  }

  /** Forgets a session: its person left on purpose, or was removed. */
  dropSession(token: string): void {
    this.#write("DELETE FROM sessions WHERE token = ?", token);
  }

  /** The session with that token, if stored. */
  session(token: string): StoredSession | undefined {
    const row = this.#get(
      "SELECT token, name, rooms, left_at FROM sessions WHERE token = ?",
      token,
    ) as SessionRow | undefined;
    return row && sessionFromRow(row);
  }

  /** Every stored session; those let go before `expired` are deleted first. */
  sessions(expired: number): StoredSession[] {
    this.#write("DELETE FROM sessions WHERE left_at < ?", expired);
    this.commit();
    const rows = this.#all("SELECT token, name, rooms, left_at FROM sessions") as SessionRow[];
    return rows.map(sessionFromRow);
  }

  /**
   * Commits the open transaction, then runs what waited for it. When the commit fails, every
   * write since the last commit is undone and the callbacks hear `false`.
   */
  commit(): void {
    if (!this.#inTransaction) return;
    this.#inTransaction = false;
    this.#batchBytes = 0;
    clearImmediate(this.#commitTimer);
    let ok = true;
    try {
      this.#db.exec("COMMIT");
    } catch (error) {
      ok = false;
      const count = this.#waiting.length;
      this.#log(
        `! could not commit ${count} ${count === 1 ? "message" : "messages"}: ` +
          databaseReason(error),
      );
      try {
        this.#db.exec("ROLLBACK");
      } catch {
        // The transaction is already gone.
      }
    }
    for (const done of this.#waiting.splice(0)) done(ok);
  }

  /** Commits what is pending and closes the database. */
  close(): void {
    this.commit();
    this.#db.close();
  }

  #write(sql: string, ...args: SQLInputValue[]): { changes: number | bigint } {
    if (!this.#inTransaction) {
      this.#db.exec("BEGIN");
      this.#inTransaction = true;
      // Committing once the event loop has polled again (its check phase, right after the
      // reads it found ready) lets the messages that other connections brought in meanwhile share
      // the transaction. A timer would wait its ~1-2 ms clamp first, and every message with it.
      this.#commitTimer = setImmediate(() => this.commit());
    }
    return this.#statement(sql).run(...args);
  }

  #get(sql: string, ...args: SQLInputValue[]): unknown {
    return this.#statement(sql).get(...args);
  }

  #all(sql: string, ...args: SQLInputValue[]): unknown[] {
    return this.#statement(sql).all(...args);
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #migrate(): void {
    const { user_version: version } = this.#get("PRAGMA user_version") as { user_version: number };
    if (version > MIGRATIONS.length) {
      throw new Error(`it was written by a newer server (schema ${version})`);
    }
    for (let step = version; step < MIGRATIONS.length; step++) {
      this.#db.exec("BEGIN");
      this.#db.exec(MIGRATIONS[step]!);
      this.#db.exec(`PRAGMA user_version = ${step + 1}`);
      this.#db.exec("COMMIT");
    }
  }
}

interface SessionRow {
  token: string;
  name: string;
  rooms: string;
  left_at: number | null;
}

function sessionFromRow(row: SessionRow): StoredSession {
  let rooms: unknown;
  try {
    rooms = JSON.parse(row.rooms);
  } catch {
    rooms = [];
  }
  return {
    token: row.token,
    name: row.name,
    rooms: Array.isArray(rooms) ? rooms.filter((r) => typeof r === "string") : [],
    leftAt: row.left_at,
  };
}

function frameFromRow(row: MessageRow): StoredFrame {
  const action = row.action ? { action: true } : {};
  return row.room === null
    ? {
      type: "private",
      id: row.id,
      ts: row.ts,
      from: row.sender,
      to: row.recipient ?? "",
      text: row.text,
      ...action,
    }
    : {
      type: "message",
      id: row.id,
      ts: row.ts,
      from: row.sender,
      text: row.text,
      room: row.room,
      ...action,
    };
}

/** The database's own words for a failure, e.g. `database or disk is full`. */
function databaseReason(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\.$/, "");
}

function storeErrorText(path: string, error: unknown): string {
  const text = databaseReason(error);
  if (error instanceof Deno.errors.PermissionDenied) {
    return `Cannot open ${path}: permission denied (the server needs --allow-read --allow-write)`;
  }
  if (/locked|busy/i.test(text)) {
    return `Cannot open ${path}: another server is using it (stop it, or use another --db)`;
  }
  if (/not a database|malformed/i.test(text)) {
    return `Cannot open ${path}: it is not a chat database (use another --db)`;
  }
  return `Cannot open ${path}: ${text}`;
}
