/**
 * The plain-text face against a real server, byte for byte as `telnet` and `nc` send and read
 * them: telnet's Ctrl+C and the answer it waits for, telnet's character mode (CR NUL), the day
 * and the time zone of the times shown, day lines, the last line before the server closes, a
 * paste cut short by the person's side closing, and human mistakes that never end a connection.
 *
 * @module
 */

import assert from "node:assert/strict";
import { joinChunks, writeAll } from "./net/outbox.ts";
import {
  connect,
  freePort,
  reap,
  type ServerProcess,
  startServerProcess,
  until,
  within,
  withServer,
} from "./test_util.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const IAC = 0xff;
const WILL = 0xfb;
const DO = 0xfd;
const IP = 0xf4;
const TIMING_MARK = 0x06;
/** What telnet sends for Ctrl+C (inetutils telnet, seen on the wire): IAC IP, IAC DO TIMING-MARK. */
const CTRL_C = [IAC, IP, IAC, DO, TIMING_MARK];

/** Where `needle` is in `haystack` from `from`, or -1. */
function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

/**
 * A person at `nc` or `telnet`, on a bare socket: writes bytes as those programs send them and
 * reads every byte back, telnet's commands included.
 */
class Typist {
  #conn: Deno.TcpConn;
  #received: Uint8Array = new Uint8Array(0);
  /** Where the next {@linkcode until} starts looking. */
  #seen = 0;
  #ended = false;
  #changed = Promise.withResolvers<void>();
  #pump: Promise<void>;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    this.#pump = this.#read();
  }

  /** Connects to a server's port on 127.0.0.1. */
  static async open(port: number): Promise<Typist> {
    return new Typist(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Writes text and byte values, as one write. */
  async write(...parts: (string | number[])[]): Promise<void> {
    const chunks = parts.map((p) => typeof p === "string" ? encoder.encode(p) : new Uint8Array(p));
    await writeAll(this.#conn, joinChunks(chunks));
  }

  /**
   * Waits until what arrived since the last match contains `marker` (text or bytes); returns
   * what arrived up to its end, as text.
   */
  async until(marker: string | readonly number[]): Promise<string> {
    const needle = typeof marker === "string" ? encoder.encode(marker) : new Uint8Array(marker);
    return await within(
      (async () => {
        while (true) {
          const at = indexOfBytes(this.#received, needle, this.#seen);
          if (at !== -1) {
            const text = decoder.decode(this.#received.subarray(this.#seen, at + needle.length));
            this.#seen = at + needle.length;
            return text;
          }
          if (this.#ended) {
            throw new Error(`Closed without ${JSON.stringify(marker)}: ${this.#rest()}`);
          }
          await this.#changed.promise;
        }
      })(),
      `${JSON.stringify(marker)}; so far: ${this.#rest()}`,
    );
  }

  /** Waits until the server has closed the connection; returns what arrived before, as text. */
  async ended(): Promise<string> {
    await within(
      (async () => {
        while (!this.#ended) await this.#changed.promise;
      })(),
      `the server to close; so far: ${this.#rest()}`,
    );
    const rest = this.#rest();
    this.#seen = this.#received.length;
    return rest;
  }

  /** Shuts the sending half, as `nc -N` does at the end of its input. */
  async closeWrite(): Promise<void> {
    await this.#conn.closeWrite();
  }

  /** Closes the socket and waits for the reader to stop. */
  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // Closed already.
    }
    await this.#pump;
  }

  #rest(): string {
    return decoder.decode(this.#received.subarray(this.#seen));
  }

  async #read(): Promise<void> {
    const buffer = new Uint8Array(4096);
    try {
      while (true) {
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        this.#received = joinChunks([this.#received, buffer.subarray(0, n)]);
        this.#wake();
      }
    } catch {
      // Reset or closed by us: the connection is over either way.
    } finally {
      this.#ended = true;
      this.#wake();
    }
  }

  #wake(): void {
    this.#changed.resolve();
    this.#changed = Promise.withResolvers<void>();
  }
}

/** Connects a typist and gives the name; resolves once welcomed. */
async function typistNamed(port: number, name: string, enter = "\r\n"): Promise<Typist> {
  const typist = await Typist.open(port);
  await typist.until("Type your name");
  await typist.write(`${name}${enter}`);
  await typist.until("type to talk");
  return typist;
}

const FAST_PROMPT = { promptDelayMs: 20, serverName: "test" } as const;

// ==== telnet ====

Deno.test("after Ctrl+C in telnet the server answers the timing mark, so telnet shows output again", async () => {
  await withServer(async (server) => {
    const dave = await connect(server, "dave");
    const carol = await typistNamed(server.addr.port, "carol");
    try {
      // A line half typed in character mode, then Ctrl+C: telnet shows nothing until it is
      // answered WILL TIMING-MARK (RFC 860).
      await carol.write("half a li");
      await carol.write("ne", CTRL_C);
      await carol.until([IAC, WILL, TIMING_MARK]);
      const told = await carol.until("type quit).");
      assert.match(told, /Interrupted/);
      await carol.write("hello dave\r\n");
      const heard = await until(dave, "message", (m) => m.from === "carol");
      assert.equal(heard.text, "hello dave", "the interrupted line was dropped");
      await carol.until("#lobby carol: hello dave");
    } finally {
      await carol.close();
      await dave.close();
    }
  }, FAST_PROMPT);
});

Deno.test("telnet in character mode ends lines with CR NUL: the name and each line complete", async () => {
  await withServer(async (server) => {
    const dave = await connect(server, "dave");
    const carol = await Typist.open(server.addr.port);
    try {
      await carol.until("Type your name");
      // Character mode: one write per key, Enter as CR NUL (RFC 854), after DO SGA and DO ECHO.
      await carol.write([IAC, DO, 0x03, IAC, DO, 0x01]);
      for (const key of "carol") await carol.write(key);
      await carol.write([0x0d, 0x00]);
      await carol.until("type to talk");
      for (const key of "hi dave") await carol.write(key);
      await carol.write([0x0d], [0x00]);
      assert.equal((await until(dave, "message", (m) => m.from === "carol")).text, "hi dave");
      // A CR alone, at the end of what arrives, ends a line too.
      await carol.write("and a lone CR\r");
      const lone = await until(dave, "message", (m) => m.from === "carol");
      assert.equal(lone.text, "and a lone CR");
    } finally {
      await carol.close();
      await dave.close();
    }
  }, FAST_PROMPT);
});

// ==== Times ====

/** Starts `server.ts` as a process in the time zone `tz`. */
function startServerIn(tz: string): Promise<ServerProcess> {
  return startServerProcess("none", freePort(), [], { env: { TZ: tz } });
}

Deno.test("people on nc are told the day and the server's time zone their times are in", async () => {
  // India has had no summer time since 1945: UTC+05:30 all year, whatever the date.
  const server = await startServerIn("Asia/Kolkata");
  let carol: Typist | undefined;
  try {
    carol = await Typist.open(server.port);
    await carol.until("Type your name");
    await carol.write("carol\r\n");
    const welcome = await carol.until("type to talk");
    assert.match(
      welcome,
      /Today is \w+day \d{1,2} \w+ \d{4}; times shown are UTC\+05:30 \(Asia\/(Kolkata|Calcutta)\)\./,
    );
    await carol.write("what time is it\r\n");
    const line = (await carol.until("what time is it")).split("\r\n").at(-1)!;
    const kolkata = new Date(Date.now() + 330 * 60_000);
    const shown = line.slice(1, 6);
    const expected = [kolkata, new Date(kolkata.getTime() - 60_000)].map((d) =>
      `${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}`
    );
    assert.ok(expected.includes(shown), `${line} is not Kolkata time (${expected})`);
  } finally {
    await carol?.close();
    await reap(server);
  }
});

Deno.test("a day line comes before the first message of each day, in history and live", async () => {
  let clock = new Date(2026, 0, 1, 23, 59).getTime();
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    let carol: Typist | undefined;
    try {
      await ann.say("late on the first");
      clock = new Date(2026, 0, 2, 0, 1).getTime();
      await ann.say("early on the second");
      carol = await Typist.open(server.addr.port);
      await carol.until("Type your name");
      await carol.write("carol\r\n");
      const history = await carol.until("early on the second");
      const lines = history.split("\r\n").filter((l) => l.startsWith("---") || l.includes("ann:"));
      assert.deepEqual(lines.map((l) => l.replace(/^\[[^\]]*\] /, "")), [
        "--- Thursday 1 January 2026 ---",
        "#lobby ann: late on the first",
        "--- Friday 2 January 2026 ---",
        "#lobby ann: early on the second",
      ]);
      await carol.until("/help for commands.\r\n");
      // Midnight passes while carol is here: the first message of the new day has its line.
      clock = new Date(2026, 0, 3, 0, 0, 30).getTime();
      await ann.say("on the third");
      await ann.say("still the third");
      const live = (await carol.until("still the third")).split("\r\n").filter((l) => l !== "");
      assert.deepEqual(live.map((l) => l.replace(/^\[[^\]]*\] /, "")), [
        "--- Saturday 3 January 2026 ---",
        "#lobby ann: on the third",
        "#lobby ann: still the third",
      ]);
    } finally {
      await carol?.close();
      await ann.close();
    }
  }, { ...FAST_PROMPT, now: () => clock });
});

// ==== The end of a connection ====

Deno.test("the server's last line says the connection is closed, then it closes it", async () => {
  await withServer(async (server) => {
    const carol = await typistNamed(server.addr.port, "carol");
    const erin = await typistNamed(server.addr.port, "erin");
    const late = await Typist.open(server.addr.port);
    try {
      await carol.write("/quit\r\n");
      assert.match(await carol.ended(), /^-!- Connection closed\. .*press Ctrl\+C/m);
      // Nobody named in time.
      await late.until("Type your name");
      assert.match(await late.ended(), /No hello received in time\r\n-!- Connection closed/);
      // The server stops: it says why, then the closing line, then the socket closes.
      const closing = server.close();
      const last = (await erin.ended()).split("\r\n").slice(-3);
      assert.deepEqual(last.slice(0, 1), ["! The server is shutting down"]);
      assert.match(
        last[1]!,
        /^-!- Connection closed\. If nc does not exit by itself, press Ctrl\+C/,
      );
      assert.equal(last[2], "", "the closing line is the last");
      await closing;
    } finally {
      await carol.close();
      await erin.close();
      await late.close();
    }
  }, { ...FAST_PROMPT, nameTimeoutMs: 200 });
});

Deno.test("lines still waiting when the person's side closes are not sent, and they are told", async () => {
  await withServer(async (server) => {
    const dave = await connect(server, "dave");
    const carol = await typistNamed(server.addr.port, "carol");
    try {
      // Twelve lines with a burst of ten, then the end of input (`nc -N` after a pipe).
      await carol.write(Array.from({ length: 12 }, (_, i) => `line ${i + 1}\n`).join(""));
      await carol.closeWrite();
      const rest = await carol.ended();
      assert.match(
        rest,
        /! 2 waiting lines were not sent: the connection was closed from your side/,
      );
      assert.match(rest, /-!- Connection closed/);
      const left = await until(dave, "left", (f) => f.name === "carol");
      assert.equal(left.reason, "disconnected");
    } finally {
      await carol.close();
      await dave.close();
    }
  }, { ...FAST_PROMPT, rate: 0.5, burst: 10 });
});

Deno.test("Ctrl+C in telnet drops the pasted lines still waiting", async () => {
  await withServer(async (server) => {
    const dave = await connect(server, "dave");
    const carol = await typistNamed(server.addr.port, "carol");
    try {
      await carol.write(Array.from({ length: 20 }, (_, i) => `pasted ${i + 1}\r\n`).join(""));
      await carol.until("pasted 10\r\n");
      await carol.write(CTRL_C);
      await carol.until("type quit).");
      await carol.write("after the interrupt\r\n");
      const heard: string[] = [];
      while (heard.at(-1) !== "after the interrupt") {
        heard.push((await until(dave, "message", (m) => m.from === "carol")).text);
      }
      assert.deepEqual(heard.slice(0, 10), Array.from({ length: 10 }, (_, i) => `pasted ${i + 1}`));
      assert.equal(heard.length, 11, `the waiting lines went out: ${heard}`);
    } finally {
      await carol.close();
      await dave.close();
    }
  }, { ...FAST_PROMPT, rate: 0.5, burst: 10 });
});

// ==== Human mistakes ====

Deno.test("refused names and client-only commands never disconnect a person", async () => {
  await withServer(async (server) => {
    const dave = await connect(server, "dave");
    const carol = await Typist.open(server.addr.port);
    try {
      await carol.until("Type your name");
      // Six names refused in a row: more than the five bad frames that end a program's connection.
      for (const name of ["a b", "!!", "x".repeat(30), "dave", "DAVE", "#room"]) {
        await carol.write(`${name}\r\n`);
        await carol.until("Type your name and press Enter:");
      }
      await carol.write("carol\r\n");
      const welcome = await carol.until("type to talk");
      assert.match(welcome, /Joined test as carol\. 2 people in #lobby/);
      for (let i = 0; i < 6; i++) {
        await carol.write("/ignore dave\r\n");
        await carol.until("needs the chat client");
      }
      for (let i = 0; i < 6; i++) {
        await carol.write("/nosuchcommand\r\n");
        await carol.until("Unknown command");
      }
      await carol.write("still here\r\n");
      assert.equal((await until(dave, "message", (m) => m.from === "carol")).text, "still here");
    } finally {
      await carol.close();
      await dave.close();
    }
  }, FAST_PROMPT);
});

Deno.test("alone in a room, a person on nc reads 1 person, not 1 people", async () => {
  await withServer(async (server) => {
    const carol = await typistNamed(server.addr.port, "carol");
    try {
      await carol.write("/who\r\n");
      const who = await carol.until("carol\r\n");
      assert.match(who, /-!- 1 person (here|in #lobby): carol/);
      assert.doesNotMatch(who, /\b1 people\b/);
    } finally {
      await carol.close();
    }
  }, FAST_PROMPT);
});

// ==== The end of input, and Backspace ====

Deno.test("a last line without its newline is carried out when the input ends", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    const nina = await Typist.open(server.addr.port);
    try {
      await nina.write("nina\n");
      await nina.until("type to talk");
      await nina.write("goodbye, no newline");
      await nina.closeWrite();
      const said = await until(ann, "message", (m) => m.from === "nina");
      assert.equal(said.text, "goodbye, no newline");
    } finally {
      await nina.close();
      await ann.close();
    }
  });
});

Deno.test("Backspace typed in telnet's character mode takes back the character before it", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    const nina = await Typist.open(server.addr.port);
    try {
      await nina.until("Type your name"); // telnet waits for the server to speak first
      await nina.write("nina\r\0");
      await nina.until("type to talk");
      await nina.write("helo\x7flo\r\0");
      const said = await until(ann, "message", (m) => m.from === "nina");
      assert.equal(said.text, "hello");
    } finally {
      await nina.close();
      await ann.close();
    }
  });
});
