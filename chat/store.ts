/**
 * Where the chat keeps what outlives a connection: messages, sessions, registered names,
 * operators, bans, topics and settings, in SQLite through Deno's built-in `node:sqlite`.
 *
 * Nothing stored lets anyone act as somebody else: identities are public keys, and resume tokens
 * are kept as SHA-256 hashes. The file and its companions are created readable by their owner
 * only (mode 0600).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import {
  type BanInfo,
  isPersonId,
  LOBBY,
  type MessageFrame,
  type PrivateFrame,
  roomKey,
} from "../protocol.ts";

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
  // People, not names: messages keep person ids in sender_key and recipient_key from here on
  // (older rows keep name keys, which match no person, so nobody inherits them). Sessions keep
  // a hash of their token, never the token; the old sessions, with tokens in clear, go.
  `DROP TABLE sessions;
   CREATE TABLE sessions (
     token_hash TEXT PRIMARY KEY,
     person TEXT NOT NULL,
     public_key TEXT,
     fingerprint TEXT,
     name TEXT NOT NULL,
     rooms TEXT NOT NULL,
     since INTEGER NOT NULL,
     left_at INTEGER
   );
   CREATE INDEX sessions_by_person ON sessions (person);
   CREATE INDEX messages_private ON messages (sender_key, recipient_key, id)
     WHERE room_key IS NULL;
   CREATE TABLE names (
     key TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     owner TEXT NOT NULL,
     at INTEGER NOT NULL
   );
   CREATE TABLE operators (
     fingerprint TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     by TEXT NOT NULL,
     at INTEGER NOT NULL
   );
   CREATE TABLE bans (
     kind TEXT NOT NULL,
     key TEXT NOT NULL,
     target TEXT NOT NULL,
     until INTEGER,
     by TEXT NOT NULL,
     reason TEXT NOT NULL,
     at INTEGER NOT NULL,
     PRIMARY KEY (kind, key)
   );
   CREATE TABLE topics (
     room_key TEXT PRIMARY KEY,
     room TEXT NOT NULL,
     topic TEXT NOT NULL,
     by TEXT NOT NULL,
     at INTEGER NOT NULL
   );
   CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // Room moderation: each room's owner, moderators, invitations and settings, as JSON.
  `CREATE TABLE room_rules (
     room_key TEXT PRIMARY KEY,
     room TEXT NOT NULL,
     rules TEXT NOT NULL,
     at INTEGER NOT NULL
   );`,
];

/**
 * The most let-go sessions kept (those of people present are always kept): enough for everyone
 * who came and went in a day on a busy server, and a bound on what logins can pile up.
 */
export const MAX_STORED_SESSIONS = 100_000;
/**
 * The most room topics kept. The hub forgets the topic set longest ago when a new one would pass
 * it; the store trims to it when it hands the topics over.
 */
export const MAX_STORED_TOPICS = 10_000;

/**
 * How much message text one transaction gathers before it is committed without waiting for the
 * end of the turn: its messages then reach every recipient's queue together.
 */
const MAX_BATCH_TEXT = 16 * 1024;

/** A stored message: a room message (with `room`) or a private one (with `to`). */
export type StoredFrame = MessageFrame | PrivateFrame;

/**
 * A session as stored: whose it is (the person, and their key when they have one), its name and
 * rooms (the current one last), when it began, and when it ended.
 */
export interface StoredSession {
  /** The SHA-256 of the resume token ({@linkcode tokenHash}). */
  tokenHash: string;
  /** The person id. */
  person: string;
  /** The person's verified public key and its fingerprint, or `null` for a keyless person. */
  publicKey: string | null;
  fingerprint: string | null;
  name: string;
  rooms: string[];
  /** When the session began, in milliseconds since the epoch. */
  since: number;
  /** When the person was last let go after losing the connection; `null` while present. */
  leftAt: number | null;
}

/** A registered name: its key (the form names are compared in), as written, and its owner. */
export interface StoredName {
  key: string;
  name: string;
  /** The fingerprint of the owner's key. */
  owner: string;
}

/** An operator by identity. */
export interface StoredOperator {
  fingerprint: string;
  /** The name the person had when made an operator, for the operator's lists. */
  name: string;
}

/** A ban as stored: {@linkcode BanInfo} with the key it matches by. */
export interface StoredBan extends BanInfo {
  /** What a ban of this kind is compared by: a name key, a fingerprint, an address network. */
  key: string;
}

/** A room's topic, kept while the room is empty and across restarts. */
export interface StoredTopic {
  room: string;
  topic: string;
}

interface MessageRow {
  id: number;
  ts: number;
  room: string | null;
  sender: string;
  sender_key: string;
  recipient: string | null;
  recipient_key: string | null;
  text: string;
  action: number;
}

/** About what a message frame adds to its text, in bytes, for reading no more than fits. */
const MESSAGE_OVERHEAD_BYTES = 100;

/** The columns every message query selects, for {@linkcode frameFromRow}. */
const MESSAGE_COLUMNS = "id, ts, room, sender, sender_key, recipient, recipient_key, text, action";

/**
 * The form a resume token is kept and looked up in: its SHA-256, base64url. The token itself is
 * a secret that only the client keeps.
 */
export function tokenHash(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
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
      if (path !== ":memory:") createPrivate(path);
      db = new DatabaseSync(path);
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      const store = new ChatStore(db, options);
      store.#migrate();
      if (path !== ":memory:") keepPrivate(path);
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

  /** The message a sender (a person id) stored under a `cid`, if any. */
  messageByCid(senderKey: string, cid: string): StoredFrame | undefined {
    const row = this.#get(
      `SELECT ${MESSAGE_COLUMNS} FROM messages
       WHERE sender_key = ? AND cid = ?`,
      senderKey,
      cid,
    ) as MessageRow | undefined;
    return row && frameFromRow(row);
  }

  /** Up to `limit` messages of a room older than id `before`, oldest first. */
  history(room: string, before: number, limit: number): MessageFrame[] {
    const rows = this.#all(
      `SELECT ${MESSAGE_COLUMNS} FROM messages
       WHERE room_key = ? AND id < ? ORDER BY id DESC LIMIT ?`,
      roomKey(room),
      before,
      limit,
    ) as MessageRow[];
    return rows.reverse().map((row) => ({ ...frameFromRow(row), history: true }) as MessageFrame);
  }

  /**
   * Up to `limit` private messages between two people (person ids) older than id `before`,
   * oldest first.
   */
  privateHistory(me: string, them: string, before: number, limit: number): PrivateFrame[] {
    const rows = this.#all(
      `SELECT ${MESSAGE_COLUMNS} FROM messages
       WHERE room_key IS NULL AND id < ? AND (
         (sender_key = ? AND recipient_key = ?) OR (sender_key = ? AND recipient_key = ?))
       ORDER BY id DESC LIMIT ?`,
      before,
      me,
      them,
      them,
      me,
      limit,
    ) as MessageRow[];
    return rows.reverse().map((row) => ({ ...frameFromRow(row), history: true }) as PrivateFrame);
  }

  /**
   * The newest messages after id `after` that a person (a person id) missed: those of their rooms
   * and those to or from them privately, oldest first, at most `limit` of them and about `bytes`
   * of text from each room and each direction; and how many there are as far as was looked
   * (`limit + 1` when there are more).
   */
  missed(
    rooms: string[],
    person: string,
    after: number,
    options: { limit: number; bytes: number },
  ): { frames: StoredFrame[]; total: number } {
    const { limit, bytes } = options;
    // Each query walks one index backwards from the newest row and stops after `limit + 1` rows
    // or `bytes` of text, so the cost is bounded by what may be sent, however old `after` is (a
    // resume from 0 on a big database included).
    const queries: [string, ...SQLInputValue[]][] = [
      ...rooms.map((room): [string, ...SQLInputValue[]] => [
        "room_key = ? AND id > ?",
        roomKey(room),
        after,
      ]),
      ["recipient_key = ? AND room_key IS NULL AND id > ?", person, after],
      ["sender_key = ? AND room_key IS NULL AND id > ?", person, after],
    ];
    const found = new Map<number, MessageRow>();
    for (const [where, ...args] of queries) {
      const rows = this.#statement(
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE ${where} ORDER BY id DESC LIMIT ?`,
      ).iterate(...args, limit + 1) as IterableIterator<MessageRow>;
      let text = 0;
      for (const row of rows) {
        found.set(row.id, row);
        text += row.text.length + MESSAGE_OVERHEAD_BYTES;
        if (text > bytes) break;
      }
    }
    const newest = [...found.values()].sort((a, b) => b.id - a.id);
    // Past the limit the exact count would cost a scan: "more than the limit" is what is known.
    const total = newest.length;
    return { frames: newest.slice(0, limit).reverse().map(frameFromRow), total };
  }

  /** Records a session as present (not let go), with its person, name and rooms. */
  saveSession(session: Omit<StoredSession, "leftAt">): void {
    this.#write(
      `INSERT OR REPLACE INTO sessions
       (token_hash, person, public_key, fingerprint, name, rooms, since, left_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, NULL)`,
      session.tokenHash,
      session.person,
      session.publicKey,
      session.fingerprint,
      session.name,
      JSON.stringify(session.rooms),
      session.since,
    );
  }

  /** Marks a session as let go at `at`: it can still be resumed for a while. */
  sessionLeft(tokenHash: string, at: number): void {
    this.#write("UPDATE sessions SET left_at = ? WHERE token_hash = ?", at, tokenHash);
  }

  /** Forgets a session: its person left on purpose, or was removed. */
  dropSession(tokenHash: string): void {
    this.#write("DELETE FROM sessions WHERE token_hash = ?", tokenHash);
  }

  /** The session with that token hash, if stored. */
  session(tokenHash: string): StoredSession | undefined {
    const row = this.#get(
      `SELECT ${SESSION_COLUMNS} FROM sessions WHERE token_hash = ?`,
      tokenHash,
    ) as SessionRow | undefined;
    return row && sessionFromRow(row);
  }

  /** A person's newest stored session, if any. */
  sessionOfPerson(person: string): StoredSession | undefined {
    const row = this.#get(
      `SELECT ${SESSION_COLUMNS} FROM sessions WHERE person = ? ORDER BY since DESC LIMIT 1`,
      person,
    ) as SessionRow | undefined;
    return row && sessionFromRow(row);
  }

  /**
   * The sessions of people who were present when the server stopped (not let go), to be held
   * again: the newest `limit` of them (by when they began); the others count as let go at `now`.
   * Sessions let go before `expired`, and the oldest let-go ones beyond
   * {@linkcode MAX_STORED_SESSIONS}, are deleted first. Let-go sessions stay on disk, to be looked
   * up by token or key, and are not loaded.
   */
  presentSessions(expired: number, limit: number, now: number): StoredSession[] {
    this.pruneSessions(expired, MAX_STORED_SESSIONS);
    // Beyond the newest `limit`, present sessions count as let go now: resumable, not held.
    this.#write(
      `UPDATE sessions SET left_at = ? WHERE left_at IS NULL AND token_hash NOT IN (
         SELECT token_hash FROM sessions WHERE left_at IS NULL ORDER BY since DESC LIMIT ?)`,
      now,
      limit,
    );
    this.commit();
    const rows = this.#all(
      `SELECT ${SESSION_COLUMNS} FROM sessions WHERE left_at IS NULL`,
    ) as SessionRow[];
    return rows.map(sessionFromRow);
  }

  /**
   * Deletes the sessions let go before `expired`, and the oldest let-go sessions beyond `keep`,
   * so stored sessions stay bounded while the server runs. Returns how many went.
   */
  pruneSessions(expired: number, keep: number): number {
    const old = this.#write("DELETE FROM sessions WHERE left_at < ?", expired).changes;
    const extra = this.#write(
      `DELETE FROM sessions WHERE token_hash IN (
         SELECT token_hash FROM sessions WHERE left_at IS NOT NULL
         ORDER BY left_at DESC LIMIT -1 OFFSET ?)`,
      keep,
    ).changes;
    return Number(old) + Number(extra);
  }

  /**
   * Deletes the oldest messages, keeping the newest `keep` (by id, which only grows). Returns
   * how many went.
   */
  pruneMessages(keep: number): number {
    const last = this.lastId();
    if (last <= keep) return 0;
    return Number(this.#write("DELETE FROM messages WHERE id <= ?", last - keep).changes);
  }

  /** How many sessions are stored. */
  sessionCount(): number {
    return (this.#get("SELECT count(*) AS n FROM sessions") as { n: number }).n;
  }

  // ==== Names, operators, bans, topics, settings ====

  /** Every registered name. */
  names(): StoredName[] {
    return (this.#all("SELECT key, name, owner FROM names") as StoredName[]).map((r) => ({ ...r }));
  }

  /** Registers a name (by its key) to the owner's fingerprint. */
  saveName(name: StoredName, at: number): void {
    this.#write(
      "INSERT OR REPLACE INTO names (key, name, owner, at) VALUES (?, ?, ?, ?)",
      name.key,
      name.name,
      name.owner,
      at,
    );
  }

  /** Frees a registered name. */
  deleteName(key: string): void {
    this.#write("DELETE FROM names WHERE key = ?", key);
  }

  /** Every operator made on the console (those of `--op` are not stored). */
  operators(): StoredOperator[] {
    return (this.#all("SELECT fingerprint, name FROM operators") as StoredOperator[])
      .map((r) => ({ ...r }));
  }

  /** Records an operator, and who made them one. */
  saveOperator(operator: StoredOperator, by: string, at: number): void {
    this.#write(
      "INSERT OR REPLACE INTO operators (fingerprint, name, by, at) VALUES (?, ?, ?, ?)",
      operator.fingerprint,
      operator.name,
      by,
      at,
    );
  }

  /** Forgets an operator. */
  deleteOperator(fingerprint: string): void {
    this.#write("DELETE FROM operators WHERE fingerprint = ?", fingerprint);
  }

  /** Every ban; those that ended before `now` are deleted first. */
  bans(now: number): StoredBan[] {
    this.#write("DELETE FROM bans WHERE until IS NOT NULL AND until <= ?", now);
    const rows = this.#all("SELECT kind, key, target, until, by, reason FROM bans") as {
      kind: StoredBan["kind"];
      key: string;
      target: string;
      until: number | null;
      by: string;
      reason: string;
    }[];
    return rows.map((row) => ({
      kind: row.kind,
      key: row.key,
      target: row.target,
      ...(row.until === null ? {} : { until: row.until }),
      by: row.by,
      ...(row.reason ? { reason: row.reason } : {}),
    }));
  }

  /** Records a ban (replacing one of the same kind and key). */
  saveBan(ban: StoredBan, at: number): void {
    this.#write(
      `INSERT OR REPLACE INTO bans (kind, key, target, until, by, reason, at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ban.kind,
      ban.key,
      ban.target,
      ban.until ?? null,
      ban.by ?? "",
      ban.reason ?? "",
      at,
    );
  }

  /** Lifts a ban. */
  deleteBan(kind: StoredBan["kind"], key: string): void {
    this.#write("DELETE FROM bans WHERE kind = ? AND key = ?", kind, key);
  }

  /**
   * Every room's kept topic, those set longest ago first; beyond {@linkcode MAX_STORED_TOPICS},
   * only the latest (the rest are deleted).
   */
  topics(): StoredTopic[] {
    this.#write(
      `DELETE FROM topics WHERE room_key IN (
         SELECT room_key FROM topics ORDER BY at DESC LIMIT -1 OFFSET ?)`,
      MAX_STORED_TOPICS,
    );
    const rows = this.#all("SELECT room, topic FROM topics ORDER BY at") as StoredTopic[];
    return rows.map((r) => ({ ...r }));
  }

  /** Keeps a room's topic; an empty topic forgets it. */
  saveTopic(topic: StoredTopic & { by: string }, at: number): void {
    if (topic.topic === "") {
      this.#write("DELETE FROM topics WHERE room_key = ?", roomKey(topic.room));
      return;
    }
    this.#write(
      "INSERT OR REPLACE INTO topics (room_key, room, topic, by, at) VALUES (?, ?, ?, ?, ?)",
      roomKey(topic.room),
      topic.room,
      topic.topic,
      topic.by,
      at,
    );
  }

  /** Every room's rules (as `chat/rooms.ts` writes them), those changed longest ago first. */
  roomRules(): { room: string; rules: string }[] {
    const rows = this.#all("SELECT room, rules FROM room_rules ORDER BY at") as {
      room: string;
      rules: string;
    }[];
    return rows.map((r) => ({ room: r.room, rules: r.rules }));
  }

  /** Keeps a room's rules. */
  saveRoomRules(room: string, rules: string, at: number): void {
    this.#write(
      "INSERT OR REPLACE INTO room_rules (room_key, room, rules, at) VALUES (?, ?, ?, ?)",
      roomKey(room),
      room,
      rules,
      at,
    );
  }

  /** Forgets a room's rules. */
  deleteRoomRules(room: string): void {
    this.#write("DELETE FROM room_rules WHERE room_key = ?", roomKey(room));
  }

  /** A setting (`motd`, `server_id`), if set. */
  setting(key: string): string | undefined {
    const row = this.#get("SELECT value FROM settings WHERE key = ?", key) as
      | { value: string }
      | undefined;
    return row?.value;
  }

  /** Sets a setting. */
  saveSetting(key: string, value: string): void {
    this.#write("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", key, value);
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

const SESSION_COLUMNS = "token_hash, person, public_key, fingerprint, name, rooms, since, left_at";

interface SessionRow {
  token_hash: string;
  person: string;
  public_key: string | null;
  fingerprint: string | null;
  name: string;
  rooms: string;
  since: number;
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
    tokenHash: row.token_hash,
    person: row.person,
    publicKey: row.public_key,
    fingerprint: row.fingerprint,
    name: row.name,
    rooms: Array.isArray(rooms) ? rooms.filter((r) => typeof r === "string") : [],
    since: row.since,
    leftAt: row.left_at,
  };
}

function frameFromRow(row: MessageRow): StoredFrame {
  const action = row.action ? { action: true } : {};
  // Rows from before person ids keep a name key there, which is no person's id.
  const fromId = isPersonId(row.sender_key) ? { fromId: row.sender_key } : {};
  return row.room === null
    ? {
      type: "private",
      id: row.id,
      ts: row.ts,
      from: row.sender,
      ...fromId,
      to: row.recipient ?? "",
      ...(row.recipient_key && isPersonId(row.recipient_key) ? { toId: row.recipient_key } : {}),
      text: row.text,
      ...action,
    }
    : {
      type: "message",
      id: row.id,
      ts: row.ts,
      from: row.sender,
      ...fromId,
      text: row.text,
      room: row.room,
      ...action,
    };
}

/**
 * Creates the database file readable and writable by its owner only (mode 0600), before SQLite
 * opens it; SQLite gives the companions it creates (`-wal`, `-shm`) the database file's mode.
 * (Only before: closing any descriptor of a file drops the process's POSIX locks on it, SQLite's
 * included.)
 */
function createPrivate(path: string): void {
  if (Deno.build.os === "windows") return;
  Deno.openSync(path, { create: true, write: true, mode: 0o600 }).close();
  keepPrivate(path);
}

/** Makes the database file and its companions, where they exist, mode 0600 (by chmod alone). */
function keepPrivate(path: string): void {
  if (Deno.build.os === "windows") return;
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      Deno.chmodSync(file, 0o600);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
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
