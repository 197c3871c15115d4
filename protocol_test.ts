/**
 * Tests for the wire protocol: frame decoding, the name and text rules, address checks, line
 * framing, the outgoing queue, and property-based round trips through encode, split and decode.
 *
 * Run with `deno test --sanitize-ops --sanitize-resources --allow-read protocol_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type ByteReader,
  type ByteWriter,
  CHAT_COMMANDS,
  checkHost,
  checkName,
  checkText,
  cleanInfo,
  type ClientFrame,
  type ClientInfo,
  decodeClientFrame,
  DecodeError,
  type DecodeErrorKind,
  type DecodeResult,
  decodeServerFrame,
  encodeFrame,
  ERROR_CODES,
  type ErrorCode,
  errorFrame,
  findCommand,
  FrameTooLargeError,
  heartbeat,
  HISTORY_PAGE,
  isValidRef,
  LineSplitter,
  MAX_FRAME_BYTES,
  MAX_TEXT_LENGTH,
  nameKey,
  Outbox,
  parsePort,
  READ_BUFFER_BYTES,
  readLines,
  renderFrame,
  sanitizeForTerminal,
  type ServerFrame,
  TokenBucket,
  writeAll,
  writeLinesSync,
} from "./protocol.ts";

// ==== Helpers ====

const encoder = new TextEncoder();

function bytesOf(text: string): Uint8Array {
  return encoder.encode(text);
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const joined = new Uint8Array(chunks.reduce((sum, c) => sum + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  return joined;
}

/** Feeds chunks to a fresh splitter and returns the lines it produced. */
function splitLines(chunks: Uint8Array[], maxLineBytes?: number): string[] {
  const splitter = new LineSplitter(maxLineBytes === undefined ? {} : { maxLineBytes });
  const lines: string[] = [];
  for (const chunk of chunks) splitter.push(chunk, (line) => lines.push(line));
  return lines;
}

/** Cuts bytes at the given positions (taken modulo the length); empty chunks are kept. */
function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  return chunks;
}

function frameOf<F>(result: DecodeResult<F>): F {
  if (!result.ok) {
    assert.fail(`Expected a frame, got ${result.error.kind}: ${result.error.message}`);
  }
  return result.frame;
}

function errorOf<F>(result: DecodeResult<F>): DecodeError {
  if (result.ok) assert.fail(`Expected an error, got ${JSON.stringify(result.frame)}`);
  assert.ok(result.error instanceof DecodeError);
  return result.error;
}

/** Adds unknown fields to a valid line, at the top level. */
function withExtraFields(line: string): string {
  return `{"extra":1,"nested":{"type":"bye","list":[null]},${line.slice(1)}`;
}

/** `base` as JSON with `key` removed, or set to the raw JSON text `raw` (e.g. `1e400`). */
function withRawField(base: Record<string, unknown>, key: string, raw?: string): string {
  const rest = { ...base };
  delete rest[key];
  const json = JSON.stringify(rest);
  return raw === undefined ? json : `${json.slice(0, -1)},${JSON.stringify(key)}:${raw}}`;
}

/** A ping line of exactly `byteLength` UTF-8 bytes, padded with `unit` then ASCII. */
function pingLineOfBytes(byteLength: number, unit: string): string {
  const head = '{"type":"ping","pad":"';
  const tail = '"}';
  const room = byteLength - bytesOf(head + tail).length;
  const units = Math.floor(room / bytesOf(unit).length);
  const line = head + unit.repeat(units) + "a".repeat(room - units * bytesOf(unit).length) + tail;
  assert.equal(bytesOf(line).length, byteLength);
  return line;
}

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

/**
 * A writer that records each call, accepts at most `maxPerCall` bytes per call, and can be held so
 * that writes stay pending until released.
 */
class FakeWriter implements ByteWriter {
  calls: Uint8Array[] = [];
  #maxPerCall: number;
  #gate: PromiseWithResolvers<void> | undefined;

  constructor(maxPerCall = Infinity) {
    this.#maxPerCall = maxPerCall;
  }

  get written(): Uint8Array {
    return concat(this.calls);
  }

  hold(): void {
    this.#gate = Promise.withResolvers();
  }

  release(): void {
    this.#gate?.resolve();
    this.#gate = undefined;
  }

  async write(bytes: Uint8Array): Promise<number> {
    const n = Math.min(bytes.length, this.#maxPerCall);
    this.calls.push(bytes.slice(0, n));
    if (this.#gate) await this.#gate.promise;
    return n;
  }
}

// ==== Decoding: valid frames ====

interface ValidCase<F> {
  what: string;
  line: string;
  frame: F;
}

const VALID_CLIENT_CASES: ValidCase<ClientFrame>[] = [
  {
    what: "a hello resuming a session",
    line: '{"type":"hello","name":"Ann","resume":"tok-1","last":42}',
    frame: { type: "hello", name: "Ann", resume: "tok-1", last: 42 },
  },
  {
    what: "a say with a cid",
    line: '{"type":"say","text":"hi","ref":"a.1","cid":"a.1"}',
    frame: { type: "say", text: "hi", ref: "a.1", cid: "a.1" },
  },
  {
    what: "a msg with a cid",
    line: '{"type":"msg","to":"Bob","text":"psst","cid":"a.2"}',
    frame: { type: "msg", to: "Bob", text: "psst", cid: "a.2" },
  },
  {
    what: "a history request with every field",
    line: '{"type":"history","room":"#dev","before":120,"limit":50}',
    frame: { type: "history", room: "#dev", before: 120, limit: 50 },
  },
  { what: "a bare history request", line: '{"type":"history"}', frame: { type: "history" } },
  {
    what: "a hello without client info",
    line: '{"type":"hello","name":"Ann"}',
    frame: { type: "hello", name: "Ann" },
  },
  {
    what: "a hello with full client info",
    line:
      '{"type":"hello","name":"Zoë","client":{"app":"chat-client 0.1.0","os":"linux","host":"box"}}',
    frame: {
      type: "hello",
      name: "Zoë",
      client: { app: "chat-client 0.1.0", os: "linux", host: "box" },
    },
  },
  {
    what: "a hello with partial client info, dropping unknown info fields",
    line: '{"type":"hello","name":"李雷","client":{"os":"darwin","pid":42,"app":"x"}}',
    frame: { type: "hello", name: "李雷", client: { os: "darwin", app: "x" } },
  },
  {
    what: "a hello with empty client info",
    line: '{"type":"hello","name":"Ann","client":{}}',
    frame: { type: "hello", name: "Ann", client: {} },
  },
  {
    what: "a say without ref",
    line: '{"type":"say","text":"hello, world"}',
    frame: { type: "say", text: "hello, world" },
  },
  {
    what: "a say with ref and escapes in its text",
    line: '{"type":"say","text":"a \\"quote\\" \\\\ and\\nnew line é 😀 \\u00e9","ref":"r-1"}',
    frame: { type: "say", text: 'a "quote" \\ and\nnew line é 😀 é', ref: "r-1" },
  },
  { what: "a who", line: '{"type":"who"}', frame: { type: "who" } },
  { what: "a ping", line: '{"type":"ping"}', frame: { type: "ping" } },
  { what: "a pong", line: '{"type":"pong"}', frame: { type: "pong" } },
  { what: "a bye", line: '{"type":"bye"}', frame: { type: "bye" } },
];

const VALID_SERVER_CASES: ValidCase<ServerFrame>[] = [
  {
    what: "a resumed welcome with its token and limits",
    line:
      '{"type":"welcome","name":"Ann","users":[],"server":{"name":"c","version":"1"},"resume":"t","resumed":true,"limits":{"rate":5,"burst":10}}',
    frame: {
      type: "welcome",
      name: "Ann",
      users: [],
      server: { name: "c", version: "1" },
      resume: "t",
      resumed: true,
      limits: { rate: 5, burst: 10 },
    },
  },
  {
    what: "a history message",
    line: '{"type":"message","id":3,"ts":1,"from":"Ann","text":"old","room":"#dev","history":true}',
    frame: { type: "message", id: 3, ts: 1, from: "Ann", text: "old", room: "#dev", history: true },
  },
  {
    what: "a history page header",
    line: '{"type":"history","room":"#dev","count":2,"more":true}',
    frame: { type: "history", room: "#dev", count: 2, more: true },
  },
  {
    what: "a presence going away",
    line: '{"type":"presence","name":"Ann","ts":5,"away":"connection lost"}',
    frame: { type: "presence", name: "Ann", ts: 5, away: "connection lost" },
  },
  {
    what: "a presence coming back",
    line: '{"type":"presence","name":"Ann","ts":6}',
    frame: { type: "presence", name: "Ann", ts: 6 },
  },
  {
    what: "a welcome with count",
    line:
      '{"type":"welcome","name":"Ann","users":["Ann","Bob"],"count":2,"server":{"name":"chat","version":"0.1.0"}}',
    frame: {
      type: "welcome",
      name: "Ann",
      users: ["Ann", "Bob"],
      count: 2,
      server: { name: "chat", version: "0.1.0" },
    },
  },
  {
    what: "a welcome without count, dropping unknown server info fields",
    line:
      '{"type":"welcome","name":"Ann","users":[],"server":{"name":"chat","version":"0.1.0","uptime":5}}',
    frame: { type: "welcome", name: "Ann", users: [], server: { name: "chat", version: "0.1.0" } },
  },
  {
    what: "a message with ref",
    line:
      '{"type":"message","id":7,"ts":1700000000000,"from":"Ann","text":"hi\\tthere","ref":"r-1"}',
    frame: {
      type: "message",
      id: 7,
      ts: 1700000000000,
      from: "Ann",
      text: "hi\tthere",
      ref: "r-1",
    },
  },
  {
    what: "a message without ref",
    line: '{"type":"message","id":0,"ts":1700000000000,"from":"Zoë","text":"😀"}',
    frame: { type: "message", id: 0, ts: 1700000000000, from: "Zoë", text: "😀" },
  },
  {
    what: "a joined",
    line: '{"type":"joined","name":"Bob","ts":1700000000001}',
    frame: { type: "joined", name: "Bob", ts: 1700000000001 },
  },
  {
    what: "a left",
    line: '{"type":"left","name":"Bob","ts":1700000000002,"reason":"quit"}',
    frame: { type: "left", name: "Bob", ts: 1700000000002, reason: "quit" },
  },
  {
    what: "a users list with count",
    line: '{"type":"users","users":["Ann","Bob"],"count":501}',
    frame: { type: "users", users: ["Ann", "Bob"], count: 501 },
  },
  {
    what: "a users list without count",
    line: '{"type":"users","users":["Ann"]}',
    frame: { type: "users", users: ["Ann"] },
  },
  { what: "a ping", line: '{"type":"ping"}', frame: { type: "ping" } },
  { what: "a pong", line: '{"type":"pong"}', frame: { type: "pong" } },
  {
    what: "an error with ref",
    line: '{"type":"error","code":"bad_text","message":"Message is empty","ref":"r-2"}',
    frame: { type: "error", code: "bad_text", message: "Message is empty", ref: "r-2" },
  },
  ...(Object.keys(ERROR_CODES) as ErrorCode[]).map((code): ValidCase<ServerFrame> => ({
    what: `an error with code ${code}`,
    line: JSON.stringify({ type: "error", code, message: ERROR_CODES[code] }),
    frame: { type: "error", code, message: ERROR_CODES[code] },
  })),
  ...["slow_down", "BAD_NAME", "", "toString", "__proto__"].map((code) => ({
    what: `an error with code ${JSON.stringify(code)}, unknown to this version, as bad_frame`,
    line: JSON.stringify({ type: "error", code, message: "Something new" }),
    frame: { type: "error", code: "bad_frame", message: "Something new" } as ServerFrame,
  })),
];

function assertDecodes<F>(decode: (line: string) => DecodeResult<F>, c: ValidCase<F>): void {
  const frame = frameOf(decode(c.line));
  assert.deepStrictEqual(frame, c.frame);
  // Absent optional fields are absent, not present with the value undefined.
  assert.ok(Object.values(frame as object).every((v) => v !== undefined));
  assert.deepStrictEqual(frameOf(decode(withExtraFields(c.line))), c.frame);
}

for (const c of VALID_CLIENT_CASES) {
  Deno.test(`decodeClientFrame() decodes ${c.what}, dropping unknown fields`, () => {
    assertDecodes(decodeClientFrame, c);
  });
}

for (const c of VALID_SERVER_CASES) {
  Deno.test(`decodeServerFrame() decodes ${c.what}, dropping unknown fields`, () => {
    assertDecodes(decodeServerFrame, c);
  });
}

Deno.test("decodeClientFrame() leaves absent optional fields absent rather than undefined", () => {
  const hello = frameOf(decodeClientFrame('{"type":"hello","name":"Ann","client":{}}'));
  assert.ok(hello.type === "hello" && hello.client !== undefined);
  assert.deepStrictEqual(Object.keys(hello.client), []);
  const say = frameOf(decodeClientFrame('{"type":"say","text":"hi"}'));
  assert.ok(!Object.hasOwn(say, "ref"));
});

Deno.test("decodeServerFrame() decodes what encodeFrame() makes of errorFrame()", () => {
  assert.deepStrictEqual(errorFrame("name_taken"), {
    type: "error",
    code: "name_taken",
    message: ERROR_CODES.name_taken,
  });
  const frame = errorFrame("bad_name", "Invalid name");
  const line = new TextDecoder().decode(encodeFrame(frame));
  assert.ok(line.endsWith("}\n") && !line.slice(0, -1).includes("\n"));
  assert.deepStrictEqual(frameOf(decodeServerFrame(line.slice(0, -1))), frame);
});

// ==== Decoding: errors ====

interface ErrorCase {
  what: string;
  line: string;
  kind: DecodeErrorKind;
}

/** Faults both decoders report the same way. */
const COMMON_ERROR_CASES: ErrorCase[] = [
  ...["", "{", "not json", "{'type':'ping'}", '{"type":"ping"', '{"type":"ping"}x', "NaN", "[1,"]
    .map((line): ErrorCase => ({
      what: `invalid JSON ${JSON.stringify(line)}`,
      line,
      kind: "bad_json",
    })),
  ...["[]", '[{"type":"ping"}]', "42", "null", '"ping"', "true"]
    .map((line): ErrorCase => ({ what: `non-object JSON ${line}`, line, kind: "bad_field" })),
  { what: "an object without type", line: '{"name":"Ann"}', kind: "bad_field" },
  { what: "an empty object", line: "{}", kind: "bad_field" },
  ...["1", "null", '["ping"]', '{"t":"ping"}', "true"].map((raw): ErrorCase => ({
    what: `a non-string type ${raw}`,
    line: `{"type":${raw}}`,
    kind: "bad_field",
  })),
  ...["shout", "", "PING", "__proto__", "toString", "constructor", "hasOwnProperty"].map(
    (type): ErrorCase => ({
      what: `the unknown type ${JSON.stringify(type)}`,
      line: JSON.stringify({ type }),
      kind: "unknown_type",
    }),
  ),
  {
    what: "an ASCII line of exactly 64 KiB",
    line: pingLineOfBytes(MAX_FRAME_BYTES, "a"),
    kind: "too_large",
  },
  {
    what: "an ASCII line over 64 KiB",
    line: pingLineOfBytes(MAX_FRAME_BYTES + 100, "a"),
    kind: "too_large",
  },
  ...["é", "李", "😀"].map((unit): ErrorCase => {
    const line = pingLineOfBytes(MAX_FRAME_BYTES, unit);
    assert.ok(line.length < MAX_FRAME_BYTES);
    return { what: `a 64 KiB line of "${unit}", shorter in UTF-16 units`, line, kind: "too_large" };
  }),
];

/** Each required field missing or of the wrong type, as raw JSON; `undefined` means missing. */
function fieldCases(
  base: Record<string, unknown>,
  fields: Record<string, (string | undefined)[]>,
): ErrorCase[] {
  return Object.entries(fields).flatMap(([key, raws]) =>
    raws.map((raw): ErrorCase => ({
      what: `a ${base.type} whose "${key}" is ${raw === undefined ? "missing" : raw}`,
      line: withRawField(base, key, raw),
      kind: "bad_field",
    }))
  );
}

const NOT_STRING = [undefined, "1", "null", '["x"]', '{"x":"y"}', "true"];
const NOT_OPTIONAL_STRING = ["1", "null", '["x"]', "{}"];
const NOT_INTEGER = [
  undefined,
  "1.5",
  '"1"',
  "null",
  "9007199254740992",
  "-9007199254740992",
  "1e400",
  "[1]",
];
const NOT_OPTIONAL_INTEGER = ["2.5", '"2"', "null", "9007199254740993", "-1e400"];
const NOT_STRING_ARRAY = [undefined, '"Ann"', '["Ann",1]', "[null]", '{"0":"Ann"}', "[[]]"];

const CLIENT_ERROR_CASES: ErrorCase[] = [
  ...["welcome", "message", "users", "error"].map((type): ErrorCase => ({
    what: `the server-only type "${type}"`,
    line: JSON.stringify({ type }),
    kind: "unknown_type",
  })),
  ...fieldCases({ type: "hello", name: "Ann" }, {
    name: NOT_STRING,
    client: ['"linux"', "[]", "null", "1"],
  }),
  ...fieldCases({ type: "hello", name: "Ann" }, { client: ['{"app":1}', '{"os":null}'] }),
  ...fieldCases({ type: "hello", name: "Ann" }, { client: ['{"host":["h"]}'] }),
  ...fieldCases({ type: "say", text: "hi" }, { text: NOT_STRING, ref: NOT_OPTIONAL_STRING }),
  ...fieldCases({ type: "say", text: "hi" }, { cid: NOT_OPTIONAL_STRING }),
  ...fieldCases({ type: "hello", name: "Ann" }, {
    resume: NOT_OPTIONAL_STRING,
    last: NOT_OPTIONAL_INTEGER,
  }),
  ...fieldCases({ type: "history" }, {
    room: NOT_OPTIONAL_STRING,
    before: NOT_OPTIONAL_INTEGER,
    limit: NOT_OPTIONAL_INTEGER,
  }),
];

const SERVER_ERROR_CASES: ErrorCase[] = [
  ...["hello", "say", "who", "bye"].map((type): ErrorCase => ({
    what: `the client-only type "${type}"`,
    line: JSON.stringify({ type }),
    kind: "unknown_type",
  })),
  ...fieldCases(
    { type: "welcome", name: "Ann", users: [], server: { name: "chat", version: "0.1.0" } },
    {
      name: NOT_STRING,
      users: NOT_STRING_ARRAY,
      count: NOT_OPTIONAL_INTEGER,
      server: [undefined, '"chat"', "[]", "null", '{"name":"chat"}', '{"name":1,"version":"0"}'],
    },
  ),
  ...fieldCases({ type: "message", id: 1, ts: 1, from: "Ann", text: "hi" }, {
    id: NOT_INTEGER,
    ts: NOT_INTEGER,
    from: NOT_STRING,
    text: NOT_STRING,
    ref: NOT_OPTIONAL_STRING,
  }),
  ...fieldCases({ type: "joined", name: "Ann", ts: 1 }, { name: NOT_STRING, ts: NOT_INTEGER }),
  ...fieldCases({ type: "left", name: "Ann", ts: 1, reason: "quit" }, {
    name: NOT_STRING,
    ts: NOT_INTEGER,
    reason: NOT_STRING,
  }),
  ...fieldCases({ type: "users", users: ["Ann"] }, {
    users: NOT_STRING_ARRAY,
    count: NOT_OPTIONAL_INTEGER,
  }),
  ...fieldCases({ type: "error", code: "bad_text", message: "Empty" }, {
    code: NOT_STRING,
    message: NOT_STRING,
    ref: NOT_OPTIONAL_STRING,
  }),
  ...fieldCases({ type: "history", room: "#dev", count: 1, more: false }, {
    room: NOT_STRING,
    count: NOT_INTEGER,
    more: [undefined, '"true"', "1", "null"],
  }),
  ...fieldCases({ type: "presence", name: "Ann", ts: 1 }, {
    name: NOT_STRING,
    ts: NOT_INTEGER,
    away: NOT_OPTIONAL_STRING,
  }),
  ...fieldCases(
    { type: "welcome", name: "Ann", users: [], server: { name: "chat", version: "0.1.0" } },
    {
      resumed: ['"yes"', "1"],
      limits: ["5", '{"rate":5}', '{"rate":-1,"burst":10}', '{"rate":"5","burst":10}'],
    },
  ),
];

for (const c of [...COMMON_ERROR_CASES, ...CLIENT_ERROR_CASES]) {
  Deno.test(`decodeClientFrame() rejects ${c.what} as ${c.kind}`, () => {
    const error = errorOf(decodeClientFrame(c.line));
    assert.equal(error.kind, c.kind, error.message);
    assert.equal(error.name, "DecodeError");
  });
}

for (const c of [...COMMON_ERROR_CASES, ...SERVER_ERROR_CASES]) {
  Deno.test(`decodeServerFrame() rejects ${c.what} as ${c.kind}`, () => {
    const error = errorOf(decodeServerFrame(c.line));
    assert.equal(error.kind, c.kind, error.message);
  });
}

Deno.test("decodeClientFrame() names the faulty field in its error message", () => {
  assert.match(errorOf(decodeClientFrame('{"type":"say"}')).message, /"text"/);
  assert.match(errorOf(decodeClientFrame('{"type":"say","text":"x","ref":1}')).message, /"ref"/);
});

Deno.test("decoders accept a line just under 64 KiB, multibyte or not", () => {
  for (const unit of ["a", "é", "李", "😀"]) {
    const line = pingLineOfBytes(MAX_FRAME_BYTES - 1, unit);
    assert.deepStrictEqual(frameOf(decodeClientFrame(line)), { type: "ping" });
    assert.deepStrictEqual(frameOf(decodeServerFrame(line)), { type: "ping" });
  }
});

Deno.test("LineSplitter and the decoders agree on the 64 KiB limit", () => {
  const longest = pingLineOfBytes(MAX_FRAME_BYTES - 1, "é");
  assert.deepStrictEqual(splitLines([bytesOf(longest + "\n")]), [longest]);
  assert.ok(decodeClientFrame(longest).ok);
  const tooLong = pingLineOfBytes(MAX_FRAME_BYTES, "é");
  assert.throws(() => splitLines([bytesOf(tooLong + "\n")]), FrameTooLargeError);
  assert.equal(errorOf(decodeClientFrame(tooLong)).kind, "too_large");
});

// ==== Names ====

const ACCEPTED_NAMES = [
  "Ann",
  "ann",
  "Ann_Lee-2",
  "José",
  "Zoë",
  "李雷",
  "Ωμέγα",
  "Дмитрий",
  "user123",
  "42",
  "_",
  "-",
  "a".repeat(24),
  "é".repeat(24),
  "servers",
  "you2",
];

for (const name of ACCEPTED_NAMES) {
  Deno.test(`checkName() accepts ${JSON.stringify(name)} unchanged`, () => {
    assert.deepStrictEqual(checkName(name), { ok: true, name });
  });
}

Deno.test("checkName() returns a decomposed (NFD) name in composed form (NFC)", () => {
  assert.deepStrictEqual(checkName("Jose\u0301"), { ok: true, name: "José" });
  assert.deepStrictEqual(checkName("Zoe\u0308"), { ok: true, name: "Zoë" });
  // 24 characters once composed, 48 code points before.
  assert.deepStrictEqual(checkName("e\u0301".repeat(24)), { ok: true, name: "é".repeat(24) });
});

const REJECTED_NAMES = [
  "",
  "a".repeat(25),
  "é".repeat(25),
  "Ann Lee",
  " Ann",
  "Ann ",
  "Ann!",
  "a.b",
  "a@b",
  "O'Brien",
  "😀",
  "Ann😀",
  "a\u0000b",
  "a\nb",
  "a\tb",
  "\u001b[31mAnn",
  "\u202EAnn",
  "Ann\u200B",
];

for (const name of REJECTED_NAMES) {
  Deno.test(`checkName() rejects ${JSON.stringify(name)}`, () => {
    const result = checkName(name);
    assert.equal(result.ok, false);
    if (!result.ok) assert.doesNotMatch(result.error, /\p{Cc}|\u202E/u);
  });
}

for (const name of ["Server", "SERVER", "server", "ADMIN", "Admin", "sYsTeM", "Operator", "You"]) {
  Deno.test(`checkName() rejects the reserved name ${JSON.stringify(name)}`, () => {
    const result = checkName(name);
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.error, /reserved/);
  });
}

Deno.test("nameKey() makes names that differ in case or normal form equal", () => {
  assert.equal(nameKey("Ann"), nameKey("ann"));
  assert.equal(nameKey("ANN"), nameKey("aNn"));
  assert.equal(nameKey("JOSÉ"), nameKey("Jose\u0301"));
  assert.notEqual(nameKey("Ann"), nameKey("Anne"));
});

Deno.test("nameKey() folds look-alike letters so nobody can pose as a reserved or taken name", () => {
  assert.equal(nameKey("Ａｎｎ"), nameKey("ann"));
  assert.equal(nameKey("ſerver"), "server");
  for (const name of ["Ｓｅｒｖｅｒ", "ſerver", "ＡＤＭＩＮ"]) {
    assert.equal(checkName(name).ok, false, name);
  }
});

// ==== Text ====

const CLEANED_TEXTS: [string, string, string][] = [
  ["plain text", "hello", "hello"],
  ["tab and newline", "a\tb\nc", "a\tb\nc"],
  ["C0 controls, CR and DEL", "a\u0000b\u0007c\u001b[0md\re\u007ff", "abc[0mdef"],
  ["C1 controls", "a\u0080b\u0085c\u009bd\u009fe", "abcde"],
  ["lone surrogates", "a\uD800b\uDFFFc", "a\uFFFDb\uFFFDc"],
  ["a lone surrogate alone", "\uDC00", "\uFFFD"],
  ["emoji and CJK", "😀 李雷 Zoë", "😀 李雷 Zoë"],
];

for (const [what, input, output] of CLEANED_TEXTS) {
  Deno.test(`checkText() cleans ${what}`, () => {
    assert.deepStrictEqual(checkText(input), { ok: true, text: output });
  });
}

for (const text of ["", " ", "  \n\t ", "\u3000", "\u0000\u001b\u007f", "\u0085\u009b", " \r\n"]) {
  Deno.test(`checkText() rejects the empty or blank text ${JSON.stringify(text)}`, () => {
    assert.deepStrictEqual(checkText(text), { ok: false, error: "Message is empty" });
  });
}

Deno.test("checkText() accepts exactly 2000 characters and rejects 2001", () => {
  for (const unit of ["a", "é", "李", "😀"]) {
    const longest = unit.repeat(MAX_TEXT_LENGTH);
    assert.deepStrictEqual(checkText(longest), { ok: true, text: longest }, unit);
    // Controls are removed before counting.
    assert.deepStrictEqual(checkText(longest + "\u0000"), { ok: true, text: longest }, unit);
    const result = checkText(unit.repeat(MAX_TEXT_LENGTH + 1));
    assert.equal(result.ok, false, unit);
    if (!result.ok) assert.match(result.error, /longer than 2000/);
  }
});

// ==== Terminal safety and small validators ====

const SANITIZED: [string, string, string][] = [
  [
    "the ESC of escape sequences",
    "\u001b[31mred\u001b[0m\u001b]0;title\u0007",
    "[31mred[0m]0;title",
  ],
  ["BEL", "ding\u0007", "ding"],
  ["C1 controls such as CSI", "a\u009b31mb\u0085c", "a31mbc"],
  ["DEL and NUL", "a\u007fb\u0000c", "abc"],
  ["bidirectional overrides", "abc\u202Edef\u202A\u2066x\u2069\u2067\u2068", "abcdefx"],
  ["newlines, tabs and carriage returns", "a\nb\tc\r\nd", "a b c d"],
  ["nothing from ordinary text", 'José 李雷 😀 "q" \\', 'José 李雷 😀 "q" \\'],
];

for (const [what, input, output] of SANITIZED) {
  Deno.test(`sanitizeForTerminal() removes ${what}`, () => {
    assert.equal(sanitizeForTerminal(input), output);
  });
}

Deno.test("cleanInfo() removes controls and cuts to 64 characters", () => {
  assert.equal(cleanInfo("linux\u001b[2J\n6.1"), "linux[2J 6.1");
  assert.equal(cleanInfo("a".repeat(100)), "a".repeat(64));
  assert.equal(cleanInfo("😀".repeat(40)), "😀".repeat(40));
  assert.equal(cleanInfo("😀".repeat(70)), "😀".repeat(64));
});

Deno.test("isValidRef() accepts short printable refs and refuses others", () => {
  for (const ref of ["r", "r-1", "a.b:c_d-e", "A".repeat(64)]) assert.ok(isValidRef(ref), ref);
  for (const ref of ["", "A".repeat(65), "a b", "é", "a\n", "a/b"]) {
    assert.ok(!isValidRef(ref), ref);
  }
});

// ==== Addresses ====

const ACCEPTED_HOSTS = [
  "localhost",
  "example.lan",
  "chat.example.com.",
  `${"a".repeat(63)}.example`,
  "192.168.1.20",
  "0.0.0.0",
  "255.255.255.255",
  "::1",
  "[::1]",
  "::",
  "fe80::1",
  "[2001:db8::5]",
  "::ffff:10.0.0.5",
];

for (const host of ACCEPTED_HOSTS) {
  Deno.test(`checkHost() accepts ${host}`, () => {
    assert.equal(checkHost(host), undefined);
  });
}

const REFUSED_HOSTS = [
  "",
  "999.1.1.1",
  "1.2.3.256",
  "1.2.3",
  "1.2.3.4.5",
  "1..2.3",
  "bad_host!",
  "-lead.example",
  "trail-.example",
  "exa mple.lan",
  "example..lan",
  `${"a".repeat(64)}.example`,
  `${`${"a".repeat(63)}.`.repeat(4)}com`,
  "[::1",
  "::g",
  "1:2:3:4:5:6:7:8:9",
  "fe80::1%eth0",
  "\u001b[2J",
];

for (const host of REFUSED_HOSTS) {
  Deno.test(`checkHost() refuses ${JSON.stringify(host)}`, () => {
    const error = checkHost(host);
    assert.equal(typeof error, "string");
    assert.doesNotMatch(error ?? "", /\p{Cc}/u);
  });
}

for (const [text, port] of [["1", 1], ["5050", 5050], ["65535", 65535]] as const) {
  Deno.test(`parsePort() accepts ${text}`, () => {
    assert.deepStrictEqual(parsePort(text), { ok: true, port });
  });
}

for (
  const text of ["0", "65536", "70000", "-1", "abc", "5050x", "", " 5050", "5e3", "1.5", "0x10"]
) {
  Deno.test(`parsePort() refuses ${JSON.stringify(text)}`, () => {
    assert.equal(parsePort(text).ok, false);
  });
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
  splitter.push(concat(frames.map(encodeFrame)), (line) => lines.push(line));
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

Deno.test("readLines() yields every line from a reader", async () => {
  const reader = fakeReader([bytesOf("a\nb"), bytesOf("c\n\nd\n"), bytesOf("e")]);
  assert.deepStrictEqual(await collect(readLines(reader)), ["a", "bc", "d"]);
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

// ==== Outgoing queue ====

Deno.test("Outbox writes everything in order through partial writes", async () => {
  const writer = new FakeWriter(3);
  const outbox = new Outbox(writer);
  const frames = ["one", "two é", "three 😀"].map((text) => encodeFrame({ type: "say", text }));
  for (const frame of frames.slice(0, 2)) assert.ok(outbox.push(frame));
  await Promise.resolve();
  assert.ok(outbox.push(frames[2]!));
  await outbox.drained();
  assert.deepStrictEqual(writer.written, concat(frames));
  assert.ok(writer.calls.every((c) => c.length <= 3));
  assert.equal(outbox.queuedBytes, 0);
});

Deno.test("Outbox writes what one turn queues in one write, and what queues meanwhile in the next", async () => {
  const writer = new FakeWriter();
  writer.hold();
  const outbox = new Outbox(writer);
  const [a, b, c, d] = ["a", "b", "c", "d"].map((text) => encodeFrame({ type: "say", text }));
  assert.ok(outbox.push(a!) && outbox.push(b!));
  assert.equal(writer.calls.length, 0, "nothing is written before the turn ends");
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(writer.calls.length, 1);
  assert.ok(outbox.push(c!) && outbox.push(d!));
  writer.release();
  await outbox.drained();
  assert.deepStrictEqual(writer.calls, [concat([a!, b!]), concat([c!, d!])]);
  assert.equal(outbox.queuedBytes, 0);
});

Deno.test("Outbox.push() refuses, queuing nothing, past maxBytes", async () => {
  const writer = new FakeWriter();
  writer.hold();
  const outbox = new Outbox(writer, { maxBytes: 10 });
  assert.equal(outbox.push(new Uint8Array(11)), false);
  assert.equal(outbox.queuedBytes, 0);
  assert.equal(outbox.push(new Uint8Array(6).fill(1)), true);
  assert.equal(outbox.push(new Uint8Array(5).fill(2)), false);
  assert.equal(outbox.queuedBytes, 6);
  assert.equal(outbox.push(new Uint8Array(4).fill(3)), true);
  assert.equal(outbox.queuedBytes, 10);
  assert.equal(outbox.push(new Uint8Array(1).fill(4)), false);
  writer.release();
  await outbox.drained();
  assert.equal(outbox.queuedBytes, 0);
  assert.deepStrictEqual(writer.written, Uint8Array.of(1, 1, 1, 1, 1, 1, 3, 3, 3, 3));
  assert.equal(outbox.push(new Uint8Array(10)), true);
  await outbox.drained();
  assert.equal(outbox.queuedBytes, 0);
});

Deno.test("Outbox reports a failed write once and refuses later pushes", async () => {
  const failure = new Error("Connection reset");
  let calls = 0;
  const errors: unknown[] = [];
  const writer: ByteWriter = {
    write(bytes: Uint8Array): Promise<number> {
      calls++;
      // The first call takes a few bytes; the next one fails with frames still queued.
      return calls === 1 ? Promise.resolve(Math.min(bytes.length, 4)) : Promise.reject(failure);
    },
  };
  const outbox = new Outbox(writer, { onError: (error) => errors.push(error) });
  assert.ok(outbox.push(encodeFrame({ type: "ping" })));
  assert.ok(outbox.push(encodeFrame({ type: "pong" })));
  await outbox.drained();
  assert.deepStrictEqual(errors, [failure]);
  assert.equal(outbox.queuedBytes, 0);
  assert.equal(outbox.push(encodeFrame({ type: "ping" })), false);
  await outbox.drained();
  assert.equal(outbox.queuedBytes, 0);
  assert.equal(errors.length, 1);
  assert.equal(calls, 2);
});

Deno.test("writeAll() loops until a partial writer has taken every byte", async () => {
  const writer = new FakeWriter(1);
  const bytes = bytesOf("héllo 😀");
  await writeAll(writer, bytes);
  assert.deepStrictEqual(writer.written, bytes);
  assert.equal(writer.calls.length, bytes.length);
  await writeAll(writer, new Uint8Array(0));
  assert.equal(writer.calls.length, bytes.length);
});

// ==== Properties ====

/**
 * Strings with every kind of character: printable graphemes, any code point, and the characters
 * JSON must escape. Lone surrogates are included too: `JSON.stringify` writes them as `\uD800`
 * escapes, so they survive the trip.
 */
const TEXT = fc.oneof(
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: "binary" }),
  fc.string({
    unit: fc.constantFrom('"', "\\", "\n", "\r", "\t", "\u0000", "\u2028", "é", "😀", "\uD800"),
  }),
);
const INTEGER = fc.maxSafeInteger();
const COUNT = fc.maxSafeNat();
const NAMES = fc.array(TEXT, { maxLength: 5 });
const RECORD = { noNullPrototype: true } as const;

const CLIENT_INFO: fc.Arbitrary<ClientInfo> = fc.record(
  { app: TEXT, os: TEXT, host: TEXT },
  { ...RECORD, requiredKeys: [] },
);

const CLIENT_FRAME: fc.Arbitrary<ClientFrame> = fc.oneof(
  fc.record({ type: fc.constant("hello" as const), name: TEXT, client: CLIENT_INFO }, {
    ...RECORD,
    requiredKeys: ["type", "name"],
  }),
  fc.record({ type: fc.constant("say" as const), text: TEXT, ref: TEXT }, {
    ...RECORD,
    requiredKeys: ["type", "text"],
  }),
  fc.constantFrom<ClientFrame>({ type: "who" }, { type: "ping" }, { type: "pong" }, {
    type: "bye",
  }),
);

const SERVER_FRAME: fc.Arbitrary<ServerFrame> = fc.oneof(
  fc.record({
    type: fc.constant("welcome" as const),
    name: TEXT,
    users: NAMES,
    count: COUNT,
    server: fc.record({ name: TEXT, version: TEXT }, RECORD),
  }, { ...RECORD, requiredKeys: ["type", "name", "users", "server"] }),
  fc.record({
    type: fc.constant("message" as const),
    id: INTEGER,
    ts: INTEGER,
    from: TEXT,
    text: TEXT,
    ref: TEXT,
  }, { ...RECORD, requiredKeys: ["type", "id", "ts", "from", "text"] }),
  fc.record({ type: fc.constant("joined" as const), name: TEXT, ts: INTEGER }, RECORD),
  fc.record({ type: fc.constant("left" as const), name: TEXT, ts: INTEGER, reason: TEXT }, RECORD),
  fc.record({ type: fc.constant("users" as const), users: NAMES, count: COUNT }, {
    ...RECORD,
    requiredKeys: ["type", "users"],
  }),
  fc.record({
    type: fc.constant("error" as const),
    code: fc.constantFrom(...Object.keys(ERROR_CODES) as ErrorCode[]),
    message: TEXT,
    ref: TEXT,
  }, { ...RECORD, requiredKeys: ["type", "code", "message"] }),
  fc.constantFrom<ServerFrame>({ type: "ping" }, { type: "pong" }),
);

function assertRoundTrip<F>(
  frames: F[],
  cuts: number[],
  decode: (line: string) => DecodeResult<F>,
): void {
  const bytes = concat(frames.map((f) => encodeFrame(f as ClientFrame | ServerFrame)));
  const splitter = new LineSplitter();
  const decoded: F[] = [];
  for (const chunk of splitAt(bytes, cuts)) {
    splitter.push(chunk, (line) => decoded.push(frameOf(decode(line))));
  }
  assert.equal(splitter.pendingBytes, 0);
  assert.deepStrictEqual(decoded, frames);
}

const CUTS = fc.array(fc.nat(), { maxLength: 12 });

Deno.test("client frames survive encode, arbitrary chunking, split and decode", () => {
  fc.assert(
    fc.property(fc.array(CLIENT_FRAME, { minLength: 1, maxLength: 8 }), CUTS, (frames, cuts) => {
      assertRoundTrip(frames, cuts, decodeClientFrame);
    }),
    { numRuns: 200 },
  );
});

Deno.test("server frames survive encode, arbitrary chunking, split and decode", () => {
  fc.assert(
    fc.property(fc.array(SERVER_FRAME, { minLength: 1, maxLength: 8 }), CUTS, (frames, cuts) => {
      assertRoundTrip(frames, cuts, decodeServerFrame);
    }),
    { numRuns: 200 },
  );
});

const FRAME_TYPES = [
  ...["hello", "say", "who", "ping", "pong", "bye", "welcome", "message", "joined"],
  ...["left", "users", "error", "nope"],
];
const FIELD_NAMES = [
  ...["name", "client", "text", "ref", "users", "count", "server", "id", "ts", "from"],
  ...["reason", "code", "message"],
];

/** Any string, any JSON, and JSON objects with a known type and fields of any JSON value. */
const ANY_LINE = fc.oneof(
  fc.string({ unit: "binary" }),
  fc.string(),
  fc.json(),
  fc.tuple(
    fc.constantFrom(...FRAME_TYPES),
    fc.dictionary(fc.constantFrom(...FIELD_NAMES), fc.jsonValue()),
  ).map(([type, fields]) => JSON.stringify({ ...fields, type })),
);

const KINDS: DecodeErrorKind[] = ["bad_json", "bad_field", "unknown_type", "too_large"];

Deno.test("decoders never throw and always return a frame or a typed error", () => {
  fc.assert(
    fc.property(ANY_LINE, (line) => {
      for (const result of [decodeClientFrame(line), decodeServerFrame(line)]) {
        if (result.ok) assert.equal(typeof result.frame.type, "string");
        else assert.ok(result.error instanceof DecodeError && KINDS.includes(result.error.kind));
      }
    }),
    { numRuns: 500 },
  );
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

// ==== TokenBucket ====

Deno.test("TokenBucket allows a burst, then one token per 1/rate seconds", () => {
  let now = 0;
  const bucket = new TokenBucket({ rate: 5, burst: 3, now: () => now });
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [
    true,
    true,
    true,
    false,
  ]);
  assert.equal(bucket.wait(), 200);
  now = 199;
  assert.equal(bucket.take(), false);
  now = 200;
  assert.equal(bucket.wait(), 0);
  assert.equal(bucket.take(), true);
  assert.equal(bucket.take(), false);
});

Deno.test("TokenBucket saves up no more than its burst after a quiet spell", () => {
  let now = 0;
  const bucket = new TokenBucket({ rate: 10, burst: 2, now: () => now });
  now = 60_000;
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take()], [true, true, false]);
});

Deno.test("TokenBucket with rate 0 never refuses and never waits", () => {
  const bucket = new TokenBucket({ rate: 0, burst: 1, now: () => 0 });
  for (let i = 0; i < 1000; i++) assert.equal(bucket.take(), true);
  assert.equal(bucket.wait(), 0);
});

// ==== /history ====

Deno.test("/history asks for 50 earlier messages of the current room, before the oldest seen", () => {
  const history = findCommand(CHAT_COMMANDS, "history")!;
  assert.deepEqual(history.frame!("", { room: "#dev" }), {
    type: "history",
    room: "#dev",
    limit: HISTORY_PAGE,
  });
  assert.deepEqual(history.frame!("20", { room: "#dev", oldest: 77 }), {
    type: "history",
    room: "#dev",
    limit: 20,
    before: 77,
  });
  for (const bad of ["0", "201", "x", "1.5", "-3"]) {
    assert.equal(typeof history.frame!(bad, { room: "#dev" }), "string", bad);
  }
});

Deno.test("a history page renders a header, and its messages with their day", () => {
  const view = { me: "ann", color: false, time: true, skipOwn: false, room: "#dev" };
  assert.deepEqual(renderFrame({ type: "history", room: "#dev", count: 2, more: true }, view), [
    "* 2 earlier messages in #dev (/history for more):",
  ]);
  assert.deepEqual(renderFrame({ type: "history", room: "#dev", count: 0, more: false }, view), [
    "* No earlier messages in #dev",
  ]);
  const old = new Date(2020, 0, 2, 9, 5).getTime();
  assert.deepEqual(
    renderFrame(
      { type: "message", id: 1, ts: old, from: "bob", text: "hi", room: "#dev", history: true },
      view,
    ),
    ["[Jan 2 09:05] bob: hi"],
  );
});

Deno.test("presence renders as away with the reason, then back", () => {
  const view = { me: "ann", color: false, time: false, skipOwn: false };
  assert.deepEqual(
    renderFrame({ type: "presence", name: "bob", ts: 1, away: "connection lost" }, view),
    ["* bob is away: connection lost"],
  );
  assert.deepEqual(renderFrame({ type: "presence", name: "bob", ts: 2 }, view), [
    "* bob is back",
  ]);
});

Deno.test("heartbeat() pings once after the interval and gives up after twice it", () => {
  assert.equal(heartbeat(29_999, 30_000, false), "fine");
  assert.equal(heartbeat(30_000, 30_000, false), "ping");
  assert.equal(heartbeat(45_000, 30_000, true), "fine", "already pinged: wait for the answer");
  assert.equal(heartbeat(60_000, 30_000, true), "give_up");
  assert.equal(heartbeat(60_000, 30_000, false), "give_up");
});

Deno.test("writeLinesSync() ends every line with a newline and loops through partial writes", () => {
  const taken: Uint8Array[] = [];
  const writer = {
    writeSync(bytes: Uint8Array): number {
      const n = Math.min(2, bytes.length);
      taken.push(bytes.slice(0, n));
      return n;
    },
  };
  writeLinesSync(writer, ["é1", "b"]);
  assert.equal(new TextDecoder().decode(concat(taken)), "é1\nb\n");
});
