/**
 * Tests for how terminal input becomes keys: text, named keys, and bracketed pastes, however the
 * reads cut them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { KeyDecoder, type KeyEvent, MAX_PASTE_LENGTH } from "./keys.ts";

/** Decodes text fed in the given pieces, then flushes. */
function decode(...pieces: string[]): KeyEvent[] {
  const decoder = new KeyDecoder();
  return [...pieces.flatMap((piece) => decoder.feed(piece)), ...decoder.flush()];
}

Deno.test("KeyDecoder turns a run of printable characters into one text event", () => {
  assert.deepEqual(decode("hello 中文 é"), [{ type: "text", text: "hello 中文 é" }]);
});

Deno.test("KeyDecoder names Enter, Tab, Backspace and the control keys", () => {
  assert.deepEqual(decode("a\r\t\x7f\x03\x04\x15\x0b\x17\x01\x05"), [
    { type: "text", text: "a" },
    { type: "key", name: "enter" },
    { type: "key", name: "tab" },
    { type: "key", name: "backspace" },
    { type: "key", name: "interrupt" },
    { type: "key", name: "eof" },
    { type: "key", name: "kill-to-start" },
    { type: "key", name: "kill-to-end" },
    { type: "key", name: "delete-word-left" },
    { type: "key", name: "home" },
    { type: "key", name: "end" },
  ]);
});

Deno.test("KeyDecoder names arrows, Home, End and Delete in their CSI and SS3 forms", () => {
  const names = (text: string) =>
    decode(text).map((event) => event.type === "key" ? event.name : event.type);
  assert.deepEqual(names("\x1b[A\x1b[B\x1b[C\x1b[D"), ["up", "down", "right", "left"]);
  assert.deepEqual(names("\x1bOA\x1bOH\x1bOF"), ["up", "home", "end"]);
  assert.deepEqual(names("\x1b[H\x1b[F\x1b[1~\x1b[4~\x1b[3~"), [
    "home",
    "end",
    "home",
    "end",
    "delete",
  ]);
  assert.deepEqual(names("\x1b[1;5D\x1b[1;5C\x1bb\x1bf\x1b\x7f"), [
    "word-left",
    "word-right",
    "word-left",
    "word-right",
    "delete-word-left",
  ]);
});

Deno.test("KeyDecoder ignores sequences it does not know, whole", () => {
  assert.deepEqual(decode("a\x1b[15~b\x1b[?1;2cc\x1b[Id"), [{ type: "text", text: "abcd" }]);
});

Deno.test("KeyDecoder keeps a sequence cut between reads until it is whole", () => {
  const decoder = new KeyDecoder();
  assert.deepEqual(decoder.feed("x\x1b"), [{ type: "text", text: "x" }]);
  assert.ok(decoder.pending);
  assert.deepEqual(decoder.feed("[1;"), []);
  assert.deepEqual(decoder.feed("5C"), [{ type: "key", name: "word-right" }]);
  assert.ok(!decoder.pending);
});

Deno.test("KeyDecoder turns a lone ESC into the escape key once flushed", () => {
  const decoder = new KeyDecoder();
  assert.deepEqual(decoder.feed("\x1b"), []);
  assert.deepEqual(decoder.flush(), [{ type: "key", name: "escape" }]);
  assert.deepEqual(decoder.feed("a"), [{ type: "text", text: "a" }]);
});

Deno.test("KeyDecoder delivers a bracketed paste as one event, newlines and slashes kept", () => {
  assert.deepEqual(decode("a\x1b[200~one\r/quit\r\n//x\x1b[201~b\r"), [
    { type: "text", text: "a" },
    { type: "paste", text: "one\n/quit\n//x" },
    { type: "text", text: "b" },
    { type: "key", name: "enter" },
  ]);
});

Deno.test("KeyDecoder never reads keys inside a paste: escapes and controls are its text", () => {
  assert.deepEqual(decode("\x1b[200~\x03\x1b[A\t\x1b[201~"), [
    { type: "paste", text: "\x03\x1b[A\t" },
  ]);
});

Deno.test("KeyDecoder finds the end of a paste cut anywhere between reads", () => {
  const text = "\x1b[200~pasted text\x1b[201~!";
  for (let cut = 1; cut < text.length; cut++) {
    for (let second = cut + 1; second < text.length; second++) {
      assert.deepEqual(
        decode(text.slice(0, cut), text.slice(cut, second), text.slice(second)),
        [{ type: "paste", text: "pasted text" }, { type: "text", text: "!" }],
        `cut at ${cut} and ${second}`,
      );
    }
  }
});

Deno.test("KeyDecoder takes a long paste in many reads in linear time", () => {
  const decoder = new KeyDecoder();
  const piece = "x".repeat(1000);
  const started = performance.now();
  decoder.feed("\x1b[200~");
  for (let i = 0; i < 1000; i++) assert.deepEqual(decoder.feed(piece), []);
  const [event] = decoder.feed("\x1b[201~");
  assert.equal(event?.type === "paste" && event.text.length, 1_000_000);
  assert.ok(performance.now() - started < 2000, "a million characters in under 2 s");
});

Deno.test("KeyDecoder keeps at most MAX_PASTE_LENGTH characters of a paste", () => {
  const decoder = new KeyDecoder();
  const events = decoder.feed(`\x1b[200~${"y".repeat(MAX_PASTE_LENGTH + 10)}\x1b[201~z`);
  assert.equal(events[0]?.type === "paste" && events[0].text.length, MAX_PASTE_LENGTH);
  assert.deepEqual(events[1], { type: "text", text: "z" });
});
