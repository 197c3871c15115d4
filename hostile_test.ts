/**
 * Attacks on a real server process with its default limits, one kind of fault per test (the
 * kinds of the README's threat model): each runs an attack from `bench/attacks.ts` or its own,
 * measures what it cost the server (CPU seconds and memory from `/proc`, bytes and lines sent,
 * rows kept) against a bound, and checks that a bystander kept chatting with normal latency all
 * the while.
 *
 * Attackers and bystanders connect from loopback addresses of their own (`bench/loopback.ts`),
 * as separate computers would, so the server's per-address limits apply to them as to people.
 * The bounds are far above what the server needs and far below what each fault used to cost:
 * they catch a fault's return, not a few percent of drift (the benchmark measures that).
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { MAX_HELD } from "./chat/sessions.ts";
import { ChatStore, MAX_STORED_SESSIONS } from "./chat/store.ts";
import { ChatClient } from "./net/chat_client.ts";
import { type AttackName, type AttackReport, runAttack } from "./bench/attacks.ts";
import { dialFrom, loopbackAddress } from "./bench/loopback.ts";
import { sampleProcess } from "./bench/run.ts";
import { MAX_LISTED_ROOMS, type ServerAddress } from "./protocol.ts";
import { displayWidth, GUTTER } from "./ui/render.ts";
import {
  connect,
  freePort,
  joinRoom,
  RawClient,
  reap,
  type ServerProcess,
  startServerProcess,
  stopServerProcess,
  until,
  within,
  withServer,
  withTempDir,
} from "./test_util.ts";

// ==== Measuring ====

/** The slowest a bystander's message may be acknowledged, in milliseconds, while under attack. */
const LATENCY_BOUND_MS = 2000;
/** The loopback group bystanders come from; attackers use others. */
const BYSTANDERS = 1;

/** What a process has used: CPU seconds (user + system), memory now and at its peak. */
interface Usage {
  cpuSeconds: number;
  rssBytes: number;
  peakBytes: number;
}

/** Reads a process's CPU time and memory from `/proc` (as the benchmark does). */
async function usage(pid: number): Promise<Usage> {
  const sample = await sampleProcess(pid);
  return {
    cpuSeconds: sample.cpuSeconds,
    rssBytes: sample.rssKiB * 1024,
    peakBytes: sample.peakRssKiB * 1024,
  };
}

const MIB = 1024 * 1024;

/** Prints what an attack cost, when `HOSTILE_REPORT` is set (for the benchmark notes). */
function note(what: string, figures: unknown): void {
  if (Deno.env.get("HOSTILE_REPORT")) console.log(what, JSON.stringify(figures));
}
const encoder = new TextEncoder();

/** A bystander who says something every quarter second and times each acknowledgement. */
class Chatter {
  readonly latencies: number[] = [];
  #client: ChatClient;
  #stopped = false;
  #loop: Promise<void> | undefined;

  constructor(client: ChatClient) {
    this.#client = client;
  }

  start(): void {
    this.#loop = (async () => {
      for (let i = 0; !this.#stopped; i++) {
        const started = performance.now();
        await this.#client.say(`still here ${i}`);
        this.latencies.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();
  }

  /** Stops and checks every message was acknowledged in time. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await within(this.#loop!, "the bystander's last message", LATENCY_BOUND_MS * 2);
    assert.ok(this.latencies.length > 0, "the bystander said something");
    const slowest = Math.max(...this.latencies);
    assert.ok(
      slowest < LATENCY_BOUND_MS,
      `a bystander waited ${Math.round(slowest)} ms for a message (${this.latencies.length} sent)`,
    );
  }
}

/** What each test gets: the server process, where it listens, and a chatting bystander. */
interface Hostile {
  server: ServerProcess;
  target: ServerAddress;
  /** A joined bystander (`ann`), chatting while `chatting` runs. */
  ann: ChatClient;
  /** Runs `fn` while ann chats, then checks ann's latency. */
  chatting<T>(fn: () => Promise<T>): Promise<T>;
  /** Connects a client from the bystanders' `index`-th address. */
  bystander(name: string, index: number): Promise<ChatClient>;
  /** Runs an attack from the attackers' addresses (`group`, `count` of them). */
  attack(name: AttackName, options: AttackRun): Promise<AttackReport>;
}

/** How long and from where an attack runs. */
interface AttackRun {
  /** Stops after this many milliseconds. */
  ms: number;
  /** Stops after this many rounds. */
  rounds?: number;
  /** How many addresses the attack comes from. */
  addresses?: number;
  /** The loopback group of those addresses. */
  group?: number;
}

/**
 * Starts a server process on a fresh database in its default configuration (`extraArgs` aside),
 * joins bystander `ann`, runs `fn`, then stops the server and checks it ends cleanly.
 */
async function withHostileServer(
  fn: (hostile: Hostile) => Promise<void>,
  options: {
    extraArgs?: string[];
    /** Prepares the database file before the server starts. */
    prepare?: (db: string) => void | Promise<void>;
    /** Looks at the database file once the server has stopped. */
    inspect?: (db: string) => void | Promise<void>;
  } = {},
): Promise<void> {
  await withTempDir(async (dir) => {
    const db = `${dir}/chat.db`;
    await options.prepare?.(db);
    const clients: ChatClient[] = [];
    let server: ServerProcess | undefined;
    try {
      server = await startServerProcess(db, freePort(), options.extraArgs ?? []);
      const target = { hostname: "127.0.0.1", port: server.port };
      const bystander = async (name: string, index: number) => {
        const client = await ChatClient.connect({
          ...target,
          name,
          dial: dialFrom(loopbackAddress(BYSTANDERS, index)),
        });
        clients.push(client);
        return client;
      };
      const ann = await bystander("ann", 0);
      await fn({
        server,
        target,
        ann,
        bystander,
        async chatting(work) {
          const chatter = new Chatter(ann);
          chatter.start();
          try {
            return await work();
          } finally {
            await chatter.stop();
          }
        },
        attack(name, run) {
          const addresses = Array.from(
            { length: run.addresses ?? 1 },
            (_, i) => loopbackAddress(run.group ?? 2, i),
          );
          return runAttack(name, {
            target,
            addresses,
            signal: AbortSignal.timeout(run.ms),
            ...(run.rounds === undefined ? {} : { rounds: run.rounds }),
          });
        },
      });
      await Promise.all(clients.map((client) => client.close()));
      const exit = await stopServerProcess(server, "SIGTERM");
      server = undefined;
      assert.equal(exit.status.code, 0, `the server exited badly:\n${exit.stderr}`);
      assert.doesNotMatch(exit.stderr, /Uncaught|panicked/, "the server never crashed");
      await options.inspect?.(db);
    } finally {
      await Promise.all(clients.map((client) => client.close()));
      await reap(server);
    }
  });
}

// ==== 1. CPU ====

Deno.test("combining-mark floods in every field cost the server little CPU", async () => {
  await withHostileServer(async ({ server, chatting, attack }) => {
    const before = await usage(server.child.pid);
    const report = await chatting(() => attack("marks", { ms: 20_000, rounds: 20, addresses: 2 }));

    const after = await usage(server.child.pid);
    const cpu = after.cpuSeconds - before.cpuSeconds;
    note("marks", { ...report, cpu });
    assert.equal(report.rounds, 20);
    // Each round is 12 frames of up to 60 KB: once a second of CPU for each such name.
    assert.ok(report.bytesSent > 10 * MIB, `sent ${report.bytesSent} bytes`);
    assert.ok(cpu < 2, `${cpu} s of CPU for ${report.bytesSent} bytes of combining marks`);
  });
});

// ==== 2. Memory ====

Deno.test("lines dripped a byte at a time cost the server memory in proportion", async () => {
  await withHostileServer(async ({ server, chatting, attack }) => {
    const before = await usage(server.child.pid);
    // 6,000 rounds of a byte on each of 60 connections: 360 KB, however fast the machine is.
    const report = await chatting(() =>
      attack("drip", { ms: 30_000, rounds: 6000, addresses: 15 })
    );
    const after = await usage(server.child.pid);
    const growth = after.rssBytes - before.rssBytes;
    note("drip", { ...report, growthMiB: growth / MIB });
    // 60 connections, a few thousand bytes each: a few hundred KiB is what the server holds. The
    // rest is V8 growing its young generation under a high allocation rate (once, to ~60 MiB).
    // At the old cost of ~500 bytes a byte dripped, this would be 180 MiB.
    assert.ok(report.bytesSent > 300_000, `dripped ${report.bytesSent} bytes`);
    assert.ok(
      growth < 128 * MIB,
      `${Math.round(growth / MIB)} MiB more memory for ${report.bytesSent} bytes dripped`,
    );
  });
});

// ==== 3. Rates ====

Deno.test("logins, held sessions, requests, blank lines and bad frames all spend a budget", async () => {
  await withHostileServer(async ({ ann, chatting, attack }) => {
    const [logins, requests, alternate] = await chatting(() =>
      Promise.all([
        attack("logins", { ms: 3000, group: 2 }),
        attack("requests", { ms: 3000, group: 3 }),
        attack("alternate", { ms: 3000, group: 4 }),
      ])
    );
    note("rates", { logins, requests, alternate });
    // One address logs in 20 times at once, then once every 3 s.
    assert.ok(logins.welcomes <= 22, `${logins.welcomes} logins from one address in 3 s`);
    assert.ok(logins.rounds > 100, `the login storm tried ${logins.rounds} times`);
    // Of those who dropped, at most 10 are held for the address: the rest are gone.
    ann.who();
    const users = await until(ann, "users");
    const present = users.count ?? users.users.length;
    assert.ok(present <= 1 + 10 + 2, `${present} present after the storm`);
    // Requests with large answers cost more; pings, pongs and blank lines cost too: one
    // connection gets little for all it sends, and is cut off for flooding.
    assert.ok(requests.errors.flooding! >= 1, `requests: ${JSON.stringify(requests.errors)}`);
    assert.ok(
      requests.bytesReceived < 2 * MIB,
      `${requests.bytesReceived} bytes answered ${requests.bytesSent} bytes of requests`,
    );
    // A good frame between bad ones does not start the count again.
    assert.ok(alternate.errors.too_many_errors! >= 1, JSON.stringify(alternate.errors));
    assert.ok(
      alternate.errors.bad_frame! <= 7 * alternate.welcomes,
      `${alternate.errors.bad_frame} bad frames answered over ${alternate.welcomes} logins`,
    );
  });
});

// ==== 4. Stored state ====

/** Sessions in a database before the server starts: long expired, and present at a crash. */
const EXPIRED_SESSIONS = 200_000;
const PRESENT_SESSIONS = 20_000;

/** Fills a new database with {@linkcode EXPIRED_SESSIONS} and {@linkcode PRESENT_SESSIONS}. */
function fillSessions(path: string): void {
  ChatStore.open(path).close();
  const db = new DatabaseSync(path);
  const insert = db.prepare(
    `INSERT INTO sessions (token_hash, person, public_key, fingerprint, name, rooms, since, left_at)
     VALUES (?, ?, NULL, NULL, ?, '["#lobby"]', ?, ?)`,
  );
  const now = Date.now();
  const monthAgo = now - 30 * 24 * 3_600_000;
  db.exec("BEGIN");
  for (let i = 0; i < EXPIRED_SESSIONS + PRESENT_SESSIONS; i++) {
    const present = i >= EXPIRED_SESSIONS;
    insert.run(
      `h${i}`,
      `s:p${i}`,
      `p${i}`,
      present ? now - i : monthAgo,
      present ? null : monthAgo,
    );
  }
  db.exec("COMMIT");
  db.close();
}

Deno.test("stored sessions are bounded: expired ones go, and a restart holds only so many", async () => {
  let db = "";
  await withHostileServer(async ({ server, ann, chatting }) => {
    const started = await usage(server.child.pid);
    note("stored sessions: starting", started);
    // Starting took little: the expired sessions were deleted, not loaded.
    assert.ok(started.cpuSeconds < 5, `${started.cpuSeconds} s of CPU to start`);
    assert.ok(started.peakBytes < 300 * MIB, `${started.peakBytes / MIB} MiB at most to start`);
    await chatting(async () => {
      ann.who();
      const users = await until(ann, "users");
      const present = users.count ?? users.users.length;
      assert.equal(present, 1 + MAX_HELD, "ann, and the newest sessions held again");
    });
  }, {
    prepare: (path) => {
      db = path;
      fillSessions(path);
    },
    inspect: () => {
      const store = new DatabaseSync(db);
      try {
        const count = (where: string) =>
          (store.prepare(`SELECT count(*) AS n FROM sessions WHERE ${where}`).get() as {
            n: number;
          }).n;
        assert.equal(count("left_at < " + (Date.now() - 25 * 3_600_000)), 0, "expired are gone");
        assert.ok(count("left_at IS NULL") <= MAX_HELD + 1, "present: those held, and ann");
        assert.ok(count("1") <= MAX_STORED_SESSIONS + MAX_HELD + 1);
      } finally {
        store.close();
      }
    },
  });
});

// ==== 5. Output ====

Deno.test("what a hello, a resume, a room list or a flapping person costs others is bounded", async () => {
  await withHostileServer(async ({ target, ann, bystander, chatting, attack }) => {
    // History worth 400 KB: 50 messages of 2,000 emoji, from ten people.
    const talkers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => bystander(`talker${i}`, 1 + i)),
    );
    await Promise.all(talkers.map(async (talker) => {
      for (let i = 0; i < 5; i++) await talker.say("\u{1F600}".repeat(2000));
    }));
    // A hello of a few dozen bytes brings 64 KiB of it at most, and so does a resume from 0.
    const newcomer = await RawClient.open(target.port, loopbackAddress(2, 0));
    try {
      // Everything before the pong is the hello's answer.
      const hello = '{"type":"hello","name":"newcomer"}\n';
      await newcomer.write(hello + '{"type":"ping"}\n');
      const arrival = await newcomer.linesUntil((line) => line === '{"type":"pong"}');
      const welcome = JSON.parse(arrival.find((line) => line.includes('"welcome"'))!);
      const bytes = encoder.encode(arrival.join("\n")).length;
      assert.ok(bytes < 80 * 1024, `${bytes} bytes for a ${hello.length}-byte hello`);
      note("hello", { bytes });
      newcomer.close();
      const back = await RawClient.open(target.port, loopbackAddress(2, 0));
      try {
        await back.write(
          JSON.stringify({ type: "hello", name: "x", resume: welcome.resume, last: 0 }) + "\n",
        );
        await back.write('{"type":"ping"}\n');
        const replay = await back.linesUntil((line) => line === '{"type":"pong"}');
        const replayed = encoder.encode(replay.join("\n")).length;
        assert.ok(replayed < 80 * 1024, `${replayed} bytes for a resume from 0`);
      } finally {
        back.close();
      }
    } finally {
      newcomer.close();
    }

    // Many rooms (211): the list names the 200 biggest, and says how many there are.
    await Promise.all(talkers.map(async (talker, t) => {
      for (let r = 0; r < 21; r++) {
        talker.send({ type: "join", room: `#r${t}_${r}` });
        await until(talker, "room", (f) => f.room === `#r${t}_${r}`);
      }
    }));
    ann.send({ type: "rooms" });
    const list = await until(ann, "room_list");
    assert.equal(list.rooms.length, MAX_LISTED_ROOMS);
    assert.equal(list.count, 1 + 10 * 21);

    // Somebody dropping and resuming over and over is news to nobody.
    const presence: string[] = [];
    const watching = (async () => {
      for await (const event of ann) {
        if (event.type === "presence") presence.push(event.name);
        if (event.type === "message" && event.text === "enough") return;
      }
    })();
    const flap = await chatting(() => attack("flap", { ms: 3000, group: 3 }));
    await ann.say("enough");
    await watching;
    assert.ok(flap.welcomes >= 10, `the flapping person came back ${flap.welcomes} times`);
    assert.ok(presence.length <= 2, `ann was told of ${presence.length} drops and returns`);
  });
});

// ==== 6 and 11. The plain-text face, and lines that pass for others ====

/** A person on `nc`: types a name, then reads lines of text. */
async function ncUser(target: ServerAddress, name: string, index: number): Promise<RawClient> {
  const user = await RawClient.open(target.port, loopbackAddress(BYSTANDERS, index));
  await user.write(`${name}\n`);
  await user.linesUntil((line) => line.includes("type to talk"));
  return user;
}

/** Reads an `nc` user's lines up to one containing `marker`; all of them, and their bytes. */
async function ncLinesUntil(
  user: RawClient,
  marker: string,
): Promise<{ lines: string[]; bytes: number }> {
  const lines = await user.linesUntil((line) => line.includes(marker));
  return { lines, bytes: encoder.encode(lines.join("\r\n")).length };
}

/** What starts a row that begins an entry: a time (if any), then a name, `*`, or the notice mark. */
const ENTRY_REGEXP =
  /^(\[\d\d:\d\d\] )?(#[\p{L}\p{N}_-]+ )?(-!- |\* [\p{L}\p{N}_-]+ |[\p{L}\p{N}_-]+: )/u;

Deno.test("blank-line, padded and look-alike messages cannot flood or fool nc users", async () => {
  await withHostileServer(async ({ target, ann, chatting, attack }) => {
    const carl = await ncUser(target, "carl", 20);
    try {
      // One round is within the sending allowance: every message is judged, none refused for rate.
      const blank = await chatting(() => attack("blank", { ms: 10_000, rounds: 1 }));
      // Five messages: four shown (blank lines, spaced lines, padding, a look-alike notice), one
      // (invisible characters only) refused.
      assert.deepEqual(blank.errors, { bad_text: 1 });
      await ann.say("end of the storm");
      const seen = await ncLinesUntil(carl, "end of the storm");
      // 4 messages of up to 20 rows each, and the notices: not 2,000 blank lines each.
      assert.ok(seen.lines.length < 4 * 21 + 10, `carl got ${seen.lines.length} lines`);
      assert.ok(seen.bytes < 20 * 1024, `carl got ${seen.bytes} bytes`);
      for (const line of seen.lines) {
        // Every row is an entry of its own or visibly part of the one above; none is wider
        // than the 80 columns it is wrapped to.
        assert.ok(
          ENTRY_REGEXP.test(line) || line.startsWith(" ") && line.includes(GUTTER) ||
            /^--- .+ ---$/.test(line), // a day line, should the run cross midnight
          `a row that could pass for a line of its own: ${JSON.stringify(line)}`,
        );
        assert.ok(displayWidth(line) <= 80, `a row wider than 80 columns: ${line.length}`);
        // No row of someone else's message starts as a line from "bob" would.
        assert.ok(!/^(\[\d\d:\d\d\] )?(#lobby )?bob: /.test(line), line);
      }
      // An emote that reads like a notice still shows who sent it, without the notice mark.
      const emote = seen.lines.find((line) =>
        line.includes("joined #lobby") && line.includes("* ")
      );
      assert.match(emote ?? "", /^\[\d\d:\d\d\] #lobby \* blank\d+ joined #lobby$/);

      // Someone arriving later gets the history without being flooded or cut off.
      const dora = await ncUser(target, "dora", 21);
      try {
        await dora.write("still with you\n");
        const message = await until(ann, "message", (m) => m.from === "dora");
        assert.equal(message.text, "still with you");
      } finally {
        dora.close();
      }
    } finally {
      carl.close();
    }
  });
});

// ==== 7. The operator's log ====

Deno.test("a flood of log lines, a paused reader or a vanished one never hurt the chat", async () => {
  await withHostileServer(async ({ server, ann, bystander, chatting, attack }) => {
    // Nobody reads the server's output while it is attacked: the pipe fills up.
    server.stdout.pause();
    await chatting(() =>
      Promise.all([
        attack("alternate", { ms: 3000, addresses: 10, group: 2 }),
        attack("marks", { ms: 3000, addresses: 10, group: 3 }),
      ])
    );
    server.stdout.resume();
    // Each address logged a little, then a summary of the rest.
    await within(
      server.stdout.waitFor("more lines (log limit)"),
      "a summary of the lines left out",
      15_000,
    );
    const lines = server.stdout.text.split("\n").length;
    assert.ok(lines < 3000, `${lines} lines of log for the attacks`);
    note("log", { lines });
    // The reader goes away: the next lines meet a broken pipe, and the chat goes on.
    await server.stdout.cancel();
    const late = await bystander("late", 30);
    const said = await late.say("after the log went away");
    assert.equal((await until(ann, "message", (m) => m.from === "late")).id, said.id);
  });
});

// ==== 8. Connection slots ====

Deno.test("connections that never say hello cannot keep people out", async () => {
  await withHostileServer(async ({ target, bystander, chatting }) => {
    const stop = new AbortController();
    let filled: () => void;
    const started = new Promise<void>((resolve) => filled = resolve);
    // 20 silent connections from each of 50 addresses: as many as there are places for people.
    const squat = runAttack("squat", {
      target,
      addresses: Array.from({ length: 50 }, (_, i) => loopbackAddress(2, i)),
      signal: stop.signal,
      onRound: () => filled(),
    });
    try {
      await within(started, "the squatters to connect");
      await chatting(async () => {
        for (let i = 0; i < 5; i++) {
          const arrived = performance.now();
          const newcomer = await bystander(`newcomer${i}`, 40 + i);
          const waited = performance.now() - arrived;
          assert.ok(waited < LATENCY_BOUND_MS, `newcomer${i} waited ${Math.round(waited)} ms`);
          assert.ok(newcomer.connected);
        }
      });
    } finally {
      stop.abort();
    }
    const report = await squat;
    note("squat", report);
    assert.ok(report.connections >= 1000, `${report.connections} squatting connections`);
  });
});

// ==== 10. Names ====

Deno.test("names that look like someone present, or like the server, are refused", async () => {
  await withHostileServer(async ({ target, ann, bystander }) => {
    await bystander("ace", 1);
    const mallory = await RawClient.open(target.port, loopbackAddress(2, 0));
    try {
      const tries: [string, string][] = [
        ["\u0430nn", "bad_name"], // a Cyrillic а with Latin nn: two scripts
        ["\u0391\u039d\u039d", "name_taken"], // Greek capitals: ΑΝΝ reads as ANN
        ["\u0430\u0441\u0435", "name_taken"], // all Cyrillic: асе reads as ace
        ["\ua731erver", "bad_name"], // a small capital S: reads as the server
        ["ann\u3164", "bad_name"], // padded with a Hangul filler, which shows nothing
        ["\u3164", "bad_name"],
        ["a\u200bnn", "bad_name"], // a zero-width space
      ];
      for (const [name, code] of tries) {
        await mallory.write(JSON.stringify({ type: "hello", name }) + "\n");
        const answer = await mallory.next();
        assert.equal(answer?.type === "error" && answer.code, code, `${JSON.stringify(name)}`);
      }
      // A name in one script that looks like nobody else's is welcome.
      await mallory.write(
        JSON.stringify({ type: "hello", name: "\u0410\u043d\u043d\u0430" }) + "\n",
      );
      assert.equal((await mallory.next())?.type, "welcome");
      ann.who();
      assert.deepEqual((await until(ann, "users")).users, [
        "ann",
        "ace",
        "\u0410\u043d\u043d\u0430",
      ]);
    } finally {
      mallory.close();
    }
  });
});

// ==== 9. Dead network paths ====

Deno.test("an nc user whose connection died silently gets their name back from the same address", async () => {
  // In-process, with no silence needed before a takeover: the default (30 s) is for the clock.
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    await joinRoom(ann, "#dev");
    const stale = await RawClient.open(server);
    const other = await RawClient.open(server, loopbackAddress(2, 0));
    const back = await RawClient.open(server);
    try {
      await stale.write("nick\n");
      await stale.linesUntil((line) => line.includes("type to talk"));
      await stale.write("/join #dev\n");
      await stale.linesUntil((line) => line.includes("#dev"));
      // From another address, the name stays taken.
      await other.write("nick\n");
      await other.linesUntil((line) => /taken/i.test(line));
      // From the same address, the returning person takes over: name, rooms and all.
      await back.write("nick\n");
      const welcome = await back.linesUntil((line) => line.includes("type to talk"));
      assert.ok(welcome.some((line) => line.includes("#dev")), welcome.join("\n"));
      const replaced = await stale.linesUntil((line) => /connected again/i.test(line));
      assert.ok(replaced.length > 0);
      await back.write("I am back\n");
      const message = await until(ann, "message", (m) => m.from === "nick");
      assert.equal(message.text, "I am back");
      ann.who();
      assert.deepEqual((await until(ann, "users")).users, ["ann", "nick"]);
    } finally {
      stale.close();
      other.close();
      back.close();
      await ann.close();
    }
  }, { takeoverSilenceMs: 0 });
});
