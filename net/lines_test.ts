/**
 * Tests for line framing: the splitter that turns a byte stream into lines under a limit, and
 * `readLines()` over a reader.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type ByteReader,
  FrameTooLargeError,
  LineSplitter,
  READ_BUFFER_BYTES,
  readLines,
} from "./lines.ts";
import { type ClientFrame, encodeFrame, MAX_FRAME_BYTES } from "../protocol.ts";
import { bytesOf, splitAt, splitLines } from "../test_util.ts";
import { joinChunks } from "./outbox.ts";

/** A reader that hands out the given chunks, in pieces when the caller's buffer is smaller. */
function fakeReader(chunks: Uint8Array[]): ByteReader & { reads: number } {
  const queue = chunks.map((c) => c.slice());
  return {
    reads: 0,
    read(buffer: Uint8Array): Promise<number | null> {
      this.reads++;
      const chunk = queue.shift();
      if (chunk === undefined) return Promise.resolve(null);
      const n = Math.min(buffer.length, chunk.length);
      buffer.set(chunk.subarray(0, n));
      if (n < chunk.length) queue.unshift(chunk.subarray(n));
      return Promise.resolve(n);
    },
  };
}

async function collect(lines: AsyncIterable<string>): Promise<string[]> {
  const all: string[] = [];
  for await (const line of lines) all.push(line);
  return all;
}

// ==== Line framing ====

Deno.test("LineSplitter splits many frames in one chunk", () => {
  const frames: ClientFrame[] = [
    { type: "hello", name: "Ann" },
    { type: "say", text: "one\ntwo" },
    { type: "who" },
  ];
  const splitter = new LineSplitter();
  const lines: string[] = [];
  splitter.push(joinChunks(frames.map(encodeFrame)), (line) => lines.push(line));
  assert.deepStrictEqual(lines, frames.map((f) => JSON.stringify(f)));
  assert.equal(splitter.pendingBytes, 0);
});

Deno.test("LineSplitter joins one frame split at every byte position", () => {
  const frame: ClientFrame = { type: "say", text: "Zoë 李雷 😀", ref: "r-1" };
  const bytes = encodeFrame(frame);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const lines = splitLines([bytes.subarray(0, cut), bytes.subarray(cut)]);
    assert.deepStrictEqual(lines, [JSON.stringify(frame)], `cut at ${cut}`);
  }
});

Deno.test("LineSplitter keeps a multibyte character split across chunks whole", () => {
  for (const char of ["é", "李", "😀"]) {
    const bytes = bytesOf(`x${char}y\n`);
    for (let cut = 2; cut < bytes.length - 2; cut++) {
      assert.deepStrictEqual(splitLines(splitAt(bytes, [cut])), [`x${char}y`]);
    }
    const oneByteChunks = [...bytes].map((b) => Uint8Array.of(b));
    assert.deepStrictEqual(splitLines(oneByteChunks), [`x${char}y`]);
  }
});

Deno.test("LineSplitter accepts CRLF, even with the CR and LF in different chunks", () => {
  assert.deepStrictEqual(splitLines([bytesOf("a\r\nb\r\n")]), ["a", "b"]);
  assert.deepStrictEqual(splitLines([bytesOf("a\r"), bytesOf("\nb\n")]), ["a", "b"]);
  // Only a CR right before the LF is dropped.
  assert.deepStrictEqual(splitLines([bytesOf("a\rb\n")]), ["a\rb"]);
});

Deno.test("LineSplitter skips blank and whitespace-only lines", () => {
  assert.deepStrictEqual(splitLines([bytesOf("\n\n  \n\t\r\n\r\na\n \n"), bytesOf("\n")]), ["a"]);
});

Deno.test("LineSplitter turns invalid UTF-8 into U+FFFD without losing the newline", () => {
  const chunk = Uint8Array.of(0x61, 0xff, 0x62, 0x0a, 0xe6, 0x9d, 0x0a, 0xc3, 0x0a, 0x63, 0x0a);
  assert.deepStrictEqual(splitLines([chunk]), ["a\uFFFDb", "\uFFFD", "\uFFFD", "c"]);
});

Deno.test("LineSplitter accepts a line of exactly maxLineBytes and throws at one more", () => {
  for (const max of [16, MAX_FRAME_BYTES]) {
    const limit = max === MAX_FRAME_BYTES ? undefined : max;
    const exact = bytesOf("x".repeat(max - 1) + "\n");
    assert.deepStrictEqual(splitLines([exact], limit), ["x".repeat(max - 1)]);
    assert.deepStrictEqual(splitLines(splitAt(exact, [max / 2]), limit), ["x".repeat(max - 1)]);
    const over = bytesOf("x".repeat(max) + "\n");
    assert.throws(() => splitLines([over], limit), FrameTooLargeError);
    assert.throws(() => splitLines(splitAt(over, [max / 2]), limit), FrameTooLargeError);
    assert.throws(() => splitLines(splitAt(over, [max]), limit), FrameTooLargeError);
  }
});

Deno.test("LineSplitter delivers the lines before an over-long line in the same chunk", () => {
  const lines: string[] = [];
  const splitter = new LineSplitter({ maxLineBytes: 16 });
  assert.throws(
    () => splitter.push(bytesOf(`ok\n${"x".repeat(20)}\n`), (line) => lines.push(line)),
    (error: unknown) => error instanceof FrameTooLargeError && /16 bytes/.test(error.message),
  );
  assert.deepStrictEqual(lines, ["ok"]);
});

Deno.test("LineSplitter rejects a line over the limit without buffering it", () => {
  const cases = [
    { maxLineBytes: MAX_FRAME_BYTES, throwsAt: 63 }, // 64 KiB pending + the newline to come
    { maxLineBytes: 4000, throwsAt: 3 },
  ];
  for (const { maxLineBytes, throwsAt } of cases) {
    const splitter = new LineSplitter({ maxLineBytes });
    const chunk = new Uint8Array(1024).fill(0x78);
    let thrownAt = -1;
    for (let i = 0; i < 100; i++) {
      try {
        splitter.push(chunk, () => assert.fail("No line was complete"));
      } catch (error) {
        assert.ok(error instanceof FrameTooLargeError);
        thrownAt = i;
        break;
      }
      assert.ok(splitter.pendingBytes < maxLineBytes);
      assert.equal(splitter.pendingBytes, (i + 1) * 1024);
    }
    assert.equal(thrownAt, throwsAt);
    assert.equal(splitter.pendingBytes, 0);
  }
});

Deno.test("LineSplitter rejects a newline-less line as soon as it cannot fit", () => {
  const splitter = new LineSplitter({ maxLineBytes: 16 });
  splitter.push(bytesOf("x".repeat(15)), () => {});
  assert.equal(splitter.pendingBytes, 15);
  assert.throws(() => splitter.push(bytesOf("x"), () => {}), FrameTooLargeError);
});

Deno.test("readLines() yields every line from a reader, an unterminated last one too", async () => {
  const reader = fakeReader([bytesOf("a\nb"), bytesOf("c\n\nd\n"), bytesOf("e")]);
  assert.deepStrictEqual(await collect(readLines(reader)), ["a", "bc", "d", "e"]);
  assert.deepStrictEqual(await collect(readLines(fakeReader([bytesOf("done")]))), ["done"]);
  assert.deepStrictEqual(await collect(readLines(fakeReader([bytesOf("x\r")]))), ["x"]);
});

Deno.test("LineSplitter.end() hands out an unfinished last line", () => {
  const splitter = new LineSplitter();
  const lines: string[] = [];
  splitter.push(bytesOf("one\ntw"), (line) => lines.push(line));
  splitter.push(bytesOf("o"), (line) => lines.push(line));
  splitter.end((line) => lines.push(line));
  assert.deepEqual(lines, ["one", "two"]);
  splitter.end((line) => lines.push(line));
  assert.deepEqual(lines, ["one", "two"], "nothing twice");
});

Deno.test("readLines() yields every line when chunks are larger than its buffer", async () => {
  const many = Array.from({ length: 2000 }, (_, i) => `line ${i} é😀`);
  const long = "李".repeat(10_000); // 30 000 bytes, several reads long
  const chunk = bytesOf([...many, long, "end"].join("\n") + "\n");
  assert.ok(chunk.length > 4 * READ_BUFFER_BYTES);
  const reader = fakeReader([chunk]);
  assert.deepStrictEqual(await collect(readLines(reader)), [...many, long, "end"]);
  assert.ok(reader.reads > 4);
});

Deno.test("readLines() throws FrameTooLargeError for an over-long line", async () => {
  const reader = fakeReader([bytesOf("x".repeat(70 * 1024) + "\n")]);
  await assert.rejects(collect(readLines(reader)), FrameTooLargeError);
  const small = fakeReader([bytesOf("1234567\n123456789\n")]);
  await assert.rejects(collect(readLines(small, { maxLineBytes: 8 })), FrameTooLargeError);
});

Deno.test("readLines() hands out the good lines read before an over-long one", async () => {
  const lines: string[] = [];
  const reader = fakeReader([bytesOf("ok\nfine\n" + "x".repeat(200))]);
  await assert.rejects(async () => {
    for await (const line of readLines(reader, { maxLineBytes: 100 })) lines.push(line);
  }, FrameTooLargeError);
  assert.deepStrictEqual(lines, ["ok", "fine"]);
});

Deno.test("LineSplitter never holds a line past its limit, whatever the bytes", () => {
  const BYTES = fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    fc.array(fc.constantFrom(0x0a, 0x0d, 0x20, 0x78, 0xc3, 0xa9), { maxLength: 40 })
      .map((bytes) => Uint8Array.from(bytes)),
  );
  const CHUNKS = fc.array(BYTES, { maxLength: 20 });
  fc.assert(
    fc.property(CHUNKS, fc.integer({ min: 2, max: 64 }), (chunks, maxLineBytes) => {
      const splitter = new LineSplitter({ maxLineBytes });
      for (const chunk of chunks) {
        try {
          splitter.push(chunk, () => {});
        } catch (error) {
          assert.ok(error instanceof FrameTooLargeError);
          return;
        }
        assert.ok(splitter.pendingBytes < maxLineBytes);
      }
    }),
    { numRuns: 200 },
  );
});

Deno.test("LineSplitter holds at most twice the bytes of a line dripped one byte at a time", () => {
  const splitter = new LineSplitter();
  const byte = new Uint8Array([0x61]);
  for (let i = 1; i <= 40_000; i++) {
    splitter.push(byte, () => assert.fail("no line yet"));
    assert.equal(splitter.pendingBytes, i);
    assert.ok(splitter.heldBytes <= Math.max(64, 2 * i), `${splitter.heldBytes} held for ${i}`);
  }
  // Once the line ends, a large buffer is let go.
  const lines: string[] = [];
  splitter.push(new Uint8Array([0x0a]), (line) => lines.push(line));
  assert.equal(lines[0]!.length, 40_000);
  assert.equal(splitter.heldBytes, 0);
});

Deno.test("LineSplitter tells each blank line it skips", () => {
  const splitter = new LineSplitter();
  let blanks = 0;
  const lines: string[] = [];
  splitter.push(bytesOf("\n\r\n  \nhi\n\n"), (line) => lines.push(line), () => blanks++);
  assert.deepEqual(lines, ["hi"]);
  assert.equal(blanks, 4);
});
