/**
 * Tests for the plain-text face: a person on `nc` or `telnet` is asked for a name and chats in
 * readable lines.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ChatClient } from "../net/chat_client.ts";
import { joinChunks } from "../net/outbox.ts";
import {
  bytesOf,
  connect,
  framesBeforePong,
  joinRoom,
  RawClient,
  splitLines,
  until,
  withServer,
} from "../test_util.ts";
import {
  dayName,
  encodeText,
  INTERRUPTED_LINES,
  localDay,
  PLAIN_TEXT_FACE,
  shownTime,
  TelnetFilter,
  timeZoneText,
} from "./plain_text.ts";

Deno.test("a person on nc or telnet is asked for a name and chats in readable lines", async () => {
  await withServer(async (server) => {
    const carol = await RawClient.open(server);
    let dave: ChatClient | undefined;
    try {
      const prompt = await carol.linesUntil((l) => l.startsWith("Type your name"));
      assert.match(prompt[0]!, /^Welcome to test/);
      // Telnet's option negotiation (IAC WILL ECHO, IAC DO SUPPRESS-GO-AHEAD), then the name.
      await carol.write([0xff, 0xfb, 0x01, 0xff, 0xfd, 0x03], "carol\r\n");
      const greeting = await carol.linesUntil((l) => l.startsWith("Hello carol"));
      assert.ok(greeting.some((l) => l.includes("Joined test as carol")), greeting.join("\n"));
      assert.ok(greeting.every((l) => !l.trimStart().startsWith("{")), "no JSON for people");

      dave = await connect(server, "dave");
      await carol.linesUntil((l) => l.includes("dave joined #lobby"));
      await dave.say("hi carol");
      const heard = (await carol.linesUntil((l) => l.includes("hi carol"))).at(-1)!;
      assert.match(heard, /^\[\d\d:\d\d\] #lobby dave: hi carol$/);

      await carol.write("hello dave\r\n");
      const hello = await until(dave, "message", (m) => m.from === "carol");
      assert.equal(hello.text, "hello dave");
      assert.equal(hello.room, "#lobby");

      await joinRoom(dave, "#x");
      await carol.write("/join #x\r\n");
      await carol.linesUntil((l) => l.includes("You are in #x"));
      await carol.write("bad ", [0x80], " byte\r\n");
      const bad = await until(dave, "message", (m) => m.from === "carol");
      assert.equal(bad.text, "bad \uFFFD byte");
      assert.equal(bad.room, "#x");

      await carol.write("/msg dave psst\r\n");
      const secret = await until(dave, "private");
      assert.deepEqual([secret.from, secret.to, secret.text], ["carol", "dave", "psst"]);
      await carol.linesUntil((l) => l.includes("psst"));

      await carol.write("/foo\r\n/switch #lobby\r\n");
      const answer = await carol.linesUntil((l) => l.includes("You are in #lobby"));
      assert.equal(answer.length, 2, answer.join("\n"));
      assert.match(answer[0]!, /^! Unknown command \/foo/);
      const daveSaw = await framesBeforePong(dave);
      assert.ok(!daveSaw.some((f) => f.type === "message" || f.type === "private"));
    } finally {
      carol.close();
      await dave?.close();
    }
  }, { promptDelayMs: 20, serverName: "test" });
});

// ==== The telnet filter, on its own ====

const IAC = 0xff;
const WILL = 0xfb;
const WONT = 0xfc;
const DO = 0xfd;
const DONT = 0xfe;
const IP = 0xf4;
const EL = 0xf8;
const AYT = 0xf6;
const TIMING_MARK = 0x06;
const ECHO = 0x01;
const NAWS = 0x1f;

/** What a filter did with some chunks: the bytes it let through, what it answered, what it asked. */
interface Filtered {
  text: string;
  replies: number[];
  repliedText: string;
  dropped: number;
  interrupted: number;
}

/** Runs chunks (text, or byte values) through one filter of a connection taken for a person. */
function filterChunks(chunks: readonly (string | number[])[], person = true): Filtered {
  const replies: number[] = [];
  const seen = { dropped: 0, interrupted: 0 };
  const filter = new TelnetFilter({
    person,
    reply: (bytes) => replies.push(...bytes),
    dropLine: () => seen.dropped++,
    interrupt: () => seen.interrupted++,
  });
  const out = chunks.map((chunk) =>
    filter.filter(typeof chunk === "string" ? bytesOf(chunk) : new Uint8Array(chunk))
  );
  const text = new TextDecoder().decode(joinChunks(out));
  return { text, replies, repliedText: withoutCommands(replies), ...seen };
}

Deno.test("TelnetFilter ends a line at CR LF, CR NUL (telnet's Enter) and a lone CR", () => {
  assert.equal(filterChunks(["ann\r\n", "hi\r\0", "there\r", "x\n"]).text, "ann\nhi\nthere\nx\n");
  // The CR ends the line at once; the LF or NUL that follows in the next read is skipped.
  assert.equal(filterChunks(["hi\r", "\nnext\r", [0], "more\r\n"]).text, "hi\nnext\nmore\n");
  assert.deepEqual(splitLines([filterChunks(["a\r", "\r\n", "b\r"]).text].map(bytesOf)), [
    "a",
    "b",
  ]);
  // A chunk with nothing to change comes back as it is.
  const clean = bytesOf("plain line\n");
  assert.equal(new TelnetFilter().filter(clean), clean);
});

Deno.test("TelnetFilter answers DO TIMING-MARK with WILL TIMING-MARK (RFC 860)", () => {
  const answered = filterChunks(["hi\r\n", [IAC, DO, TIMING_MARK], "more\r\n"]);
  assert.equal(answered.text, "hi\nmore\n");
  assert.deepEqual(answered.replies, [IAC, WILL, TIMING_MARK]);
  // Asked again (each Ctrl+C), answered again.
  const twice = filterChunks([[IAC, DO, TIMING_MARK], [IAC, DO, TIMING_MARK]]);
  assert.deepEqual(twice.replies, [IAC, WILL, TIMING_MARK, IAC, WILL, TIMING_MARK]);
});

Deno.test("TelnetFilter on Ctrl+C (IAC IP) drops what was not sent, then says how to leave", () => {
  // What telnet sends for Ctrl+C: IAC IP, IAC DO TIMING-MARK, in one write.
  const ctrlC = filterChunks(["half a li", [0x6e, 0x65, IAC, IP, IAC, DO, TIMING_MARK], "new\r\n"]);
  // The read before the interrupt passed as it was: dropping it is the connection's part.
  assert.equal(ctrlC.text, "half a linew\n");
  assert.equal(ctrlC.interrupted, 1);
  // The answer telnet waits for comes first, then the notice it would otherwise have discarded.
  assert.deepEqual(ctrlC.replies.slice(0, 3), [IAC, WILL, TIMING_MARK]);
  assert.equal(ctrlC.repliedText, encodeTextString(INTERRUPTED_LINES));
  // Without a timing mark after it, the notice comes at the end of the read.
  const bare = filterChunks([[0x61, IAC, IP]]);
  assert.equal(bare.text, "");
  assert.equal(bare.repliedText, encodeTextString(INTERRUPTED_LINES));
});

Deno.test("TelnetFilter drops the line being typed on IAC EL, in this read and earlier ones", () => {
  const erased = filterChunks(["done\r\nerase th", [0x69, 0x73, IAC, EL], "kept\r\n"]);
  assert.equal(erased.text, "done\nerase thkept\n");
  assert.equal(erased.dropped, 1, "the bytes of an earlier read are the connection's to drop");
  const within = filterChunks([[0x6f, 0x6b, 0x0a, 0x78, IAC, EL, 0x79, 0x0a]]);
  assert.equal(within.text, "ok\ny\n");
  assert.equal(within.dropped, 0);
});

Deno.test("TelnetFilter refuses other options once each, and answers IAC AYT", () => {
  const negotiated = filterChunks([
    [IAC, DO, ECHO, IAC, WILL, NAWS, IAC, DO, ECHO, IAC, DONT, ECHO, IAC, WONT, NAWS],
    "x\r\n",
  ]);
  assert.equal(negotiated.text, "x\n");
  assert.deepEqual(negotiated.replies, [IAC, WONT, ECHO, IAC, DONT, NAWS]);
  const ayt = filterChunks([[IAC, AYT]]);
  assert.match(ayt.repliedText, /^-!- .+\r\n$/);
});

Deno.test("TelnetFilter keeps IAC IAC as a byte and skips subnegotiations across reads", () => {
  const filtered = filterChunks([[0x61, IAC, IAC, 0x62, IAC, 0xfa, 0x18], [0x00, 0x41, IAC], [
    0xf0,
    0x63,
    0x0a,
  ]]);
  assert.equal(filtered.text, "a\uFFFDbc\n");
});

Deno.test("TelnetFilter answers nothing and leaves CRs alone until the connection is a person's", () => {
  // A program's JSON must arrive untouched; telnet commands are still taken out.
  const program = filterChunks(['{"type":"ping"}\r\n', [IAC, DO, TIMING_MARK, IAC, IP]], false);
  assert.equal(program.text, '{"type":"ping"}\r\n');
  assert.deepEqual(program.replies, []);
});

Deno.test("days and the server's time zone read as people say them", () => {
  const noon = new Date(2026, 11, 1, 12, 0).getTime();
  const day = localDay(noon);
  assert.equal(day.start, new Date(2026, 11, 1).getTime());
  assert.equal(day.end, new Date(2026, 11, 2).getTime());
  assert.deepEqual(localDay(day.end - 1), day);
  assert.notDeepEqual(localDay(day.end), day);
  assert.equal(dayName(noon), "Tuesday 1 December 2026");
  assert.match(timeZoneText(noon), /^UTC([+-]\d\d:\d\d( \(.+\))?)?$/);
  const minutes = -new Date(noon).getTimezoneOffset();
  if (minutes !== 0) assert.ok(timeZoneText(noon).includes(":"), "an offset is shown");
  assert.equal(shownTime({ type: "notice", text: "x" }), undefined);
  assert.equal(shownTime({ type: "joined", name: "a", id: "s:1", ts: noon, room: "#lobby" }), noon);
});

/** The text of bytes the filter answered with, without the telnet commands among them. */
function withoutCommands(bytes: readonly number[]): string {
  const text: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === IAC) i += 2;
    else text.push(bytes[i]!);
  }
  return new TextDecoder().decode(new Uint8Array(text));
}

/** Lines as the face sends them, as one string. */
function encodeTextString(lines: readonly string[]): string {
  return new TextDecoder().decode(encodeText(lines));
}

Deno.test("/quit at the name or password question leaves, and is never a name or a password", () => {
  for (
    const [line, passwordFor] of [["/quit", undefined], ["/exit", "ann"], ["/quit bye", "ann"]]
  ) {
    assert.deepEqual(PLAIN_TEXT_FACE.read(line!, undefined, passwordFor), {
      kind: "frame",
      frame: { type: "bye" },
    });
  }
  const password = PLAIN_TEXT_FACE.read("sesame", undefined, "ann");
  assert.ok(password.kind === "frame" && password.frame.type === "hello");
  assert.equal(password.frame.password, "sesame");
});

Deno.test("a person made to wait after wrong passwords is asked for the password again, not a name", () =>
  withServer(async (server) => {
    const nc = await RawClient.open(server);
    try {
      await nc.linesUntil((line) => /name/i.test(line));
      await nc.write("ann\n");
      await nc.linesUntil((line) => line.startsWith("Password"));
      for (const guess of ["one", "two", "three"]) {
        await nc.write(`${guess}\n`);
        await nc.linesUntil((line) => line.startsWith("Password"));
      }
      // Now the address waits: the answer is refused, and the question is the password again.
      await nc.write("sesame\n");
      const lines = await nc.linesUntil((line) => /^Password|name/i.test(line));
      assert.match(lines.join("\n"), /Too many wrong passwords/);
      assert.match(lines.at(-1)!, /^Password/);
      assert.equal(server.hub.size, 0, "nobody joined under the password as a name");
    } finally {
      nc.close();
    }
  }, { db: false, password: "sesame", promptDelayMs: 10 }));
