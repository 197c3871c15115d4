/**
 * Tests for the wire protocol: frame decoding, the name, text and address rules, property-based
 * round trips through encode, split and decode, and the purity of `protocol.ts` itself.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { FrameTooLargeError, LineSplitter } from "./net/lines.ts";
import {
  checkHost,
  checkName,
  checkRoom,
  checkText,
  cleanInfo,
  type ClientFrame,
  type ClientInfo,
  decodeClientFrame,
  DecodeError,
  type DecodeErrorKind,
  type DecodeResult,
  decodeServerFrame,
  DEFAULT_PORT,
  DEFAULT_TLS_PORT,
  encodeFrame,
  ERROR_CODES,
  type ErrorCode,
  errorFrame,
  foldCase,
  formatInvite,
  frameCost,
  type Invite,
  INVITE_SCHEME,
  isValidRef,
  MAX_FRAME_BYTES,
  MAX_NAME_INPUT,
  MAX_TEXT_LENGTH,
  nameKey,
  parseAddress,
  parseInvite,
  parsePort,
  sanitizeForTerminal,
  type ServerFrame,
} from "./protocol.ts";
import { bytesOf, splitAt, splitLines } from "./test_util.ts";
import { joinChunks } from "./net/outbox.ts";

// ==== Helpers ====

function frameOf<F>(result: DecodeResult<F>): F {
  if (!result.ok) {
    assert.fail(`Expected a frame, got ${result.error.kind}: ${result.error.message}`);
  }
  return result.value;
}

function errorOf<F>(result: DecodeResult<F>): DecodeError {
  if (result.ok) assert.fail(`Expected an error, got ${JSON.stringify(result.value)}`);
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

// ==== Decoding: valid frames ====

interface ValidCase<F> {
  what: string;
  line: string;
  frame: F;
}

const KEY = "A".repeat(43);
const SIGNATURE = "B".repeat(86);
const FINGERPRINT = `SHA256:${"C".repeat(43)}`;

const VALID_CLIENT_CASES: ValidCase<ClientFrame>[] = [
  {
    what: "a hello with a key",
    line: `{"type":"hello","name":"Ann","key":"${KEY}","last":7}`,
    frame: { type: "hello", name: "Ann", key: KEY, last: 7 },
  },
  {
    what: "a proof",
    line: `{"type":"proof","signature":"${SIGNATURE}"}`,
    frame: { type: "proof", signature: SIGNATURE },
  },
  { what: "a register", line: '{"type":"register"}', frame: { type: "register" } },
  { what: "an unregister", line: '{"type":"unregister"}', frame: { type: "unregister" } },
  {
    what: "a kick with a reason",
    line: '{"type":"kick","name":"bob","reason":"spam"}',
    frame: { type: "kick", name: "bob", reason: "spam" },
  },
  {
    what: "a ban of a network for minutes",
    line: '{"type":"ban","target":"10.0.0.0/24","minutes":30,"reason":"flood"}',
    frame: { type: "ban", target: "10.0.0.0/24", minutes: 30, reason: "flood" },
  },
  {
    what: "an unban",
    line: `{"type":"unban","target":"${FINGERPRINT}"}`,
    frame: { type: "unban", target: FINGERPRINT },
  },
  { what: "a bans request", line: '{"type":"bans"}', frame: { type: "bans" } },
  { what: "a motd request", line: '{"type":"motd"}', frame: { type: "motd" } },
  {
    what: "an announce",
    line: '{"type":"announce","text":"restart at six"}',
    frame: { type: "announce", text: "restart at six" },
  },
  {
    what: "a msg to a person id",
    line: '{"type":"msg","to":"bob","toId":"k:abcdefghijkl","text":"hi"}',
    frame: { type: "msg", to: "bob", toId: "k:abcdefghijkl", text: "hi" },
  },
  {
    what: "a history of a private conversation",
    line: '{"type":"history","with":"bob","limit":20}',
    frame: { type: "history", with: "bob", limit: 20 },
  },
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
    what: "a challenge",
    line: `{"type":"challenge","nonce":"${KEY}"}`,
    frame: { type: "challenge", nonce: KEY },
  },
  {
    what: "a ban list",
    line:
      '{"type":"ban_list","bans":[{"target":"eve","kind":"name","until":5,"by":"console","reason":"x"},{"target":"10.0.0.0/8","kind":"address"}]}',
    frame: {
      type: "ban_list",
      bans: [
        { target: "eve", kind: "name", until: 5, by: "console", reason: "x" },
        { target: "10.0.0.0/8", kind: "address" },
      ],
    },
  },
  {
    what: "a welcome with an identity and ids",
    line:
      `{"type":"welcome","name":"ann","id":"k:abcdefghijkl","fingerprint":"${FINGERPRINT}","operator":true,"users":["ann"],"ids":["k:abcdefghijkl"],"server":{"name":"hub","version":"0.1.0","id":"srv"}}`,
    frame: {
      type: "welcome",
      name: "ann",
      id: "k:abcdefghijkl",
      fingerprint: FINGERPRINT,
      operator: true,
      users: ["ann"],
      ids: ["k:abcdefghijkl"],
      server: { name: "hub", version: "0.1.0", id: "srv" },
    },
  },
  {
    what: "a private message with person ids, from history",
    line:
      '{"type":"private","id":3,"ts":4,"from":"a","fromId":"s:aaaaaaaaaaaa","to":"b","toId":"k:bbbbbbbbbbbb","text":"x","history":true}',
    frame: {
      type: "private",
      id: 3,
      ts: 4,
      from: "a",
      fromId: "s:aaaaaaaaaaaa",
      to: "b",
      toId: "k:bbbbbbbbbbbb",
      text: "x",
      history: true,
    },
  },
  {
    what: "a history page of a private conversation",
    line: '{"type":"history","with":"k:bbbbbbbbbbbb","count":0,"more":false}',
    frame: { type: "history", with: "k:bbbbbbbbbbbb", count: 0, more: false },
  },
  {
    what: "a whois with a key",
    line:
      `{"type":"whois","name":"ann","id":"k:abcdefghijkl","fingerprint":"${FINGERPRINT}","registered":true,"operator":false,"rooms":[],"idle":0,"since":1}`,
    frame: {
      type: "whois",
      name: "ann",
      id: "k:abcdefghijkl",
      fingerprint: FINGERPRINT,
      registered: true,
      operator: false,
      rooms: [],
      idle: 0,
      since: 1,
    },
  },
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
    assert.deepStrictEqual(checkName(name), { ok: true, value: name });
  });
}

Deno.test("checkName() returns a decomposed (NFD) name in composed form (NFC)", () => {
  assert.deepStrictEqual(checkName("Jose\u0301"), { ok: true, value: "José" });
  assert.deepStrictEqual(checkName("Zoe\u0308"), { ok: true, value: "Zoë" });
  // 24 characters once composed, 48 code points before.
  assert.deepStrictEqual(checkName("e\u0301".repeat(24)), { ok: true, value: "é".repeat(24) });
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
    assert.deepStrictEqual(checkText(input), { ok: true, value: output });
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
    assert.deepStrictEqual(checkText(longest), { ok: true, value: longest }, unit);
    // Controls are removed before counting.
    assert.deepStrictEqual(checkText(longest + "\u0000"), { ok: true, value: longest }, unit);
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
    assert.deepStrictEqual(checkHost(host), { ok: true, value: host });
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
    const result = checkHost(host);
    assert.ok(!result.ok);
    assert.equal(typeof result.error, "string");
    assert.doesNotMatch(result.error, /\p{Cc}/u);
  });
}

for (const [text, port] of [["1", 1], ["5050", 5050], ["65535", 65535]] as const) {
  Deno.test(`parsePort() accepts ${text}`, () => {
    assert.deepStrictEqual(parsePort(text), { ok: true, value: port });
  });
}

for (
  const text of ["0", "65536", "70000", "-1", "abc", "5050x", "", " 5050", "5e3", "1.5", "0x10"]
) {
  Deno.test(`parsePort() refuses ${JSON.stringify(text)}`, () => {
    assert.equal(parsePort(text).ok, false);
  });
}

// ==== parseAddress ====

const GOOD_ADDRESSES: [string, string, number][] = [
  ["localhost", "localhost", DEFAULT_PORT],
  ["chat.lan:6000", "chat.lan", 6000],
  ["192.168.1.20:5050", "192.168.1.20", 5050],
  ["[::1]:6000", "::1", 6000],
  ["::1", "::1", DEFAULT_PORT],
  ["[::1]", "::1", DEFAULT_PORT],
];

for (const [text, hostname, port] of GOOD_ADDRESSES) {
  Deno.test(`parseAddress() reads ${JSON.stringify(text)} as ${hostname} port ${port}`, () => {
    assert.deepEqual(parseAddress(text), { ok: true, value: { hostname, port } });
  });
}

const BAD_ADDRESSES: [string, string, RegExp][] = [
  ["999.1.1.1", "an IPv4 address with a part over 255", /^Invalid IPv4 address "999\.1\.1\.1"/],
  ["localhost:70000", "port 70000", /^Invalid port "70000": use 1 to 65535/],
  ["http://chat.lan:5050", "a URL", /give host:port without http:\/\/ \(chat\.lan:5050\)/],
  ["::1:5050", "an IPv6 address with an unbracketed port", /needs brackets, \[::1\]:5050/],
  ["localhost:0", "port 0", /^Invalid port "0": use 1 to 65535/],
  ["host:abc", "a port that is not a number", /^Invalid port "abc"/],
  ["bad_host!", "a host name with _ and !", /^Invalid host name "bad_host!"/],
  ["", "an empty address", /^Host is empty/],
  ["1.2.3", "an IPv4 address with three parts", /^Invalid IPv4 address "1\.2\.3"/],
];

for (const [text, what, message] of BAD_ADDRESSES) {
  Deno.test(`parseAddress() refuses ${what} (${JSON.stringify(text)}) with a clear message`, () => {
    const parsed = parseAddress(text);
    assert.ok(!parsed.ok, `${JSON.stringify(text)} was accepted`);
    assert.match(parsed.error, message);
    assert.doesNotMatch(parsed.error, /\.$/, "error messages end without a period");
  });
}

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
  fc.record({ type: fc.constant("hello" as const), name: TEXT, key: TEXT, last: INTEGER }, {
    ...RECORD,
    requiredKeys: ["type", "name", "key"],
  }),
  fc.record({ type: fc.constant("proof" as const), signature: TEXT }, RECORD),
  fc.record({ type: fc.constant("msg" as const), to: TEXT, toId: TEXT, text: TEXT }, {
    ...RECORD,
    requiredKeys: ["type", "to", "text"],
  }),
  fc.record({
    type: fc.constant("ban" as const),
    target: TEXT,
    minutes: fc.double({ min: 0, max: 1e6, noNaN: true }),
    reason: TEXT,
  }, { ...RECORD, requiredKeys: ["type", "target"] }),
  fc.record({ type: fc.constant("kick" as const), name: TEXT, reason: TEXT }, {
    ...RECORD,
    requiredKeys: ["type", "name"],
  }),
  fc.constantFrom<ClientFrame>(
    { type: "who" },
    { type: "ping" },
    { type: "pong" },
    {
      type: "bye",
    },
    { type: "register" },
    { type: "unregister" },
    { type: "bans" },
  ),
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
  fc.record({ type: fc.constant("challenge" as const), nonce: TEXT }, RECORD),
  fc.record({
    type: fc.constant("private" as const),
    id: INTEGER,
    ts: INTEGER,
    from: TEXT,
    fromId: TEXT,
    to: TEXT,
    toId: TEXT,
    text: TEXT,
  }, { ...RECORD, requiredKeys: ["type", "id", "ts", "from", "to", "text"] }),
  fc.record({
    type: fc.constant("ban_list" as const),
    bans: fc.array(
      fc.record({
        target: TEXT,
        kind: fc.constantFrom("name" as const, "identity" as const, "address" as const),
        until: INTEGER,
        by: TEXT,
      }, { ...RECORD, requiredKeys: ["target", "kind"] }),
      { maxLength: 3 },
    ),
  }, RECORD),
  fc.constantFrom<ServerFrame>({ type: "ping" }, { type: "pong" }),
);

function assertRoundTrip<F>(
  frames: F[],
  cuts: number[],
  decode: (line: string) => DecodeResult<F>,
): void {
  const bytes = joinChunks(frames.map((f) => encodeFrame(f as ClientFrame | ServerFrame)));
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
        if (result.ok) assert.equal(typeof result.value.type, "string");
        else assert.ok(result.error instanceof DecodeError && KINDS.includes(result.error.kind));
      }
    }),
    { numRuns: 500 },
  );
});

// ==== Hostile names and text ====

Deno.test("checkName() refuses an over-long name before normalising it, without repeating it", () => {
  // 30,000 combining marks: normalising them would take seconds.
  // The message repeats nothing of the name: it was refused on its length alone.
  const flood = "a" + "\u0301".repeat(30_000);
  assert.deepEqual(checkName(flood), {
    ok: false,
    error: "Invalid name: longer than 24 characters; use 1-24 letters, digits, _ or -",
  });
  assert.equal(checkName("n".repeat(MAX_NAME_INPUT + 1)).ok, false);
});

for (
  const [name, why] of [
    ["\u0430nn", "a Cyrillic а among Latin letters"],
    ["ann\u03bf", "a Greek ο after Latin letters"],
    ["\u3164", "the Hangul filler alone"],
    ["ann\u3164", "padded with the Hangul filler"],
    ["a\u200bnn", "a zero-width space"],
    ["\u115fann", "a Hangul choseong filler"],
    ["ann\u2060", "a word joiner"],
  ] as const
) {
  Deno.test(`checkName() refuses a name with ${why}`, () => {
    const result = checkName(name);
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.error, /show nothing|one script|letters, digits/);
  });
}

for (
  const [name, why] of [
    ["Анна", "Cyrillic alone"],
    ["Ελένη", "Greek alone"],
    ["山田太郎", "Han alone"],
    ["やまだ太郎", "Japanese: kana with Han"],
    ["김철수", "Hangul"],
    ["ann_2", "Latin with digits and _"],
    ["a\u{20BB7}", "Latin with Han, as Japanese names are written in Latin letters too"],
  ] as const
) {
  Deno.test(`checkName() accepts a name in ${why}`, () => {
    assert.deepEqual(checkName(name), { ok: true, value: name.normalize("NFC") });
  });
}

Deno.test("checkRoom() holds rooms to the same rules: bounded, one script, nothing invisible", () => {
  assert.equal(checkRoom("#" + "\u0301".repeat(40_000)).ok, false);
  assert.equal(checkRoom("#d\u0435v").ok, false, "a Cyrillic е");
  assert.equal(checkRoom("#dev\u200b").ok, false);
  assert.deepEqual(checkRoom("#разработка"), { ok: true, value: "#разработка" });
});

Deno.test("nameKey() folds case fully: Straße and STRASSE are one name", () => {
  assert.equal(nameKey("Straße"), nameKey("STRASSE"));
  assert.equal(nameKey("ǅemal"), nameKey("ǆemal"));
  assert.equal(foldCase("ΣΊΣΥΦΟΣ"), foldCase("σίσυφος".toUpperCase()));
});

for (
  const [text, why] of [
    ["\u200b", "a zero-width space"],
    ["\u3164\u3164", "Hangul fillers"],
    ["\u2800 \u2800", "blank Braille patterns"],
    ["\u0301\u0301", "combining marks with nothing to combine with"],
    ["\u200e\u200f\u2066", "direction marks"],
  ] as const
) {
  Deno.test(`checkText() refuses a message of only ${why}`, () => {
    const result = checkText(text);
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.error, /empty|shows nothing/);
  });
}

Deno.test("checkText() cuts runs of blank lines to one and drops them at either end", () => {
  assert.deepEqual(checkText("\n".repeat(1998) + "x"), { ok: true, value: "x" });
  assert.deepEqual(checkText("a\n\n\n\n \n\t\nb\n\n\n"), { ok: true, value: "a\n\nb" });
  assert.deepEqual(checkText(" \n".repeat(999) + "x\n  \n"), { ok: true, value: "x" });
  assert.deepEqual(checkText("  indented\nkept  "), { ok: true, value: "  indented\nkept  " });
  // Lines that show nothing are blank lines too, whatever invisible characters they hold.
  const invisible = "x" + "\n\u2800".repeat(50) + "\n\u3164\n\u200b \ny";
  assert.deepEqual(checkText(invisible), { ok: true, value: "x\n\ny" });
  assert.deepEqual(checkText("\u200b\n\u00a0\nx\n\u3000"), { ok: true, value: "x" });
});

Deno.test("checkText() refuses input far over the limit before cleaning it", () => {
  const result = checkText("x".repeat(MAX_TEXT_LENGTH * 4 + 1));
  assert.deepEqual(result, { ok: false, error: "Message is longer than 2000 characters" });
});

Deno.test("frameCost() charges more for frames with large answers, and nothing for bye", () => {
  assert.equal(frameCost({ type: "say", text: "hi" }), 1);
  assert.equal(frameCost({ type: "ping" }), 1);
  assert.equal(frameCost({ type: "history" }), 5);
  assert.equal(frameCost({ type: "rooms" }), 5);
  assert.equal(frameCost({ type: "who" }), 2);
  assert.equal(frameCost({ type: "bye" }), 0);
});

Deno.test("decodeServerFrame() reads a room list's total count", () => {
  const decoded = decodeServerFrame(
    '{"type":"room_list","rooms":[{"room":"#a","count":2,"topic":""}],"count":250}',
  );
  assert.ok(decoded.ok && decoded.value.type === "room_list" && decoded.value.count === 250);
});

// ==== Invites ====

/** A fingerprint as certificates have them: `SHA256:` and 43 characters of base64. */
const INVITE_FP = "SHA256:ab+/cdEFgh01+/ijklmnopqrstuvwxyzABCDEFGH+/0";
const INVITE_FP_URL = "ab-_cdEFgh01-_ijklmnopqrstuvwxyzABCDEFGH-_0";
const INVITE_SECRET = "Zm9vYmFyLWJhei1xdXV4LTEy";

Deno.test("formatInvite() writes chat://host:port/room?fp=... with the secret after #", () => {
  assert.equal(INVITE_FP.length, 7 + 43);
  assert.equal(
    formatInvite({
      address: { hostname: "192.168.1.20", port: 5051 },
      fingerprint: INVITE_FP,
      room: "#dev",
      secret: INVITE_SECRET,
    }),
    `chat://192.168.1.20:5051/dev?fp=${INVITE_FP_URL}#key=${INVITE_SECRET}`,
  );
  assert.equal(
    formatInvite({ address: { hostname: "chat.lan", port: 6001 }, fingerprint: INVITE_FP }),
    `chat://chat.lan:6001/?fp=${INVITE_FP_URL}`,
  );
  assert.equal(
    formatInvite({ address: { hostname: "::1", port: 5051 }, fingerprint: INVITE_FP }),
    `chat://[::1]:5051/?fp=${INVITE_FP_URL}`,
  );
  assert.ok(
    formatInvite({ address: { hostname: "h", port: 1 }, fingerprint: INVITE_FP })
      .startsWith(INVITE_SCHEME),
  );
});

Deno.test("an invite's secret is in its fragment, the part no web server receives", () => {
  const text = formatInvite({
    address: { hostname: "::1", port: 5051 },
    fingerprint: INVITE_FP,
    room: "#lobby",
    secret: INVITE_SECRET,
  });
  const [beforeFragment] = text.split("#");
  assert.ok(!beforeFragment!.includes(INVITE_SECRET), text);
  const url = new URL(text);
  assert.equal(url.hash, `#key=${INVITE_SECRET}`);
  assert.equal(url.search, `?fp=${INVITE_FP_URL}`);
  assert.equal(url.pathname, "/lobby");
  assert.ok(!`${url.origin}${url.pathname}${url.search}`.includes(INVITE_SECRET));
});

Deno.test("parseInvite() reads back what formatInvite() wrote, with and without room and secret", () => {
  const invites: Invite[] = [
    { address: { hostname: "192.168.1.20", port: 5051 }, fingerprint: INVITE_FP },
    { address: { hostname: "chat.lan", port: 6001 }, fingerprint: INVITE_FP, room: "#dev" },
    { address: { hostname: "::1", port: 5051 }, fingerprint: INVITE_FP, secret: INVITE_SECRET },
    {
      address: { hostname: "2001:db8::5", port: 65535 },
      fingerprint: INVITE_FP,
      room: "#café",
      secret: INVITE_SECRET,
    },
  ];
  for (const invite of invites) {
    const text = formatInvite(invite);
    assert.deepEqual(parseInvite(text), { ok: true, value: invite }, text);
    assert.deepEqual(parseInvite(`  ${text}\n`), { ok: true, value: invite }, "trimmed");
  }
});

Deno.test("parseInvite() takes an invite without port or slash, and in capitals", () => {
  const expected = {
    ok: true,
    value: { address: { hostname: "chat.lan", port: 5051 }, fingerprint: INVITE_FP },
  };
  assert.equal(DEFAULT_TLS_PORT, 5051);
  assert.deepEqual(parseInvite(`chat://chat.lan/?fp=${INVITE_FP_URL}`), expected);
  assert.deepEqual(parseInvite(`chat://chat.lan:5051?fp=${INVITE_FP_URL}`), expected);
  assert.deepEqual(parseInvite(`CHAT://chat.lan:5051/?fp=${INVITE_FP_URL}`), expected);
  // A room given without its # gets one.
  const noHash = formatInvite({
    address: { hostname: "chat.lan", port: 5051 },
    fingerprint: INVITE_FP,
    room: "dev",
  });
  assert.deepEqual(parseInvite(noHash), {
    ok: true,
    value: {
      address: { hostname: "chat.lan", port: 5051 },
      fingerprint: INVITE_FP,
      room: "#dev",
    },
  });
});

Deno.test("parseInvite() is undefined for what is not an invite at all", () => {
  for (
    const text of [
      "",
      "   ",
      "chat.lan",
      "chat.lan:5051",
      "10.0.0.5",
      "[::1]:5051",
      "::1",
      `https://chat.lan:5051/?fp=${INVITE_FP_URL}`,
      `chats://chat.lan:5051/?fp=${INVITE_FP_URL}`,
      `chat:/chat.lan:5051/?fp=${INVITE_FP_URL}`,
    ]
  ) {
    assert.equal(parseInvite(text), undefined, text);
  }
});

Deno.test("parseInvite() refuses a broken invite in one line that says what is wrong", () => {
  const good = `chat://chat.lan:5051/dev?fp=${INVITE_FP_URL}#key=${INVITE_SECRET}`;
  assert.ok(parseInvite(good)?.ok, "the good one it was broken from");
  const cases: [string, RegExp][] = [
    [
      `chat://chat.lan:5051/dev`,
      /^Invalid invite ".*": it should look like chat:\/\/host:5051\/room\?fp=/,
    ],
    [`chat://chat.lan:5051/dev?fp=`, /^Invalid invite/],
    [`chat://chat.lan:5051/dev?fp=${INVITE_FP_URL.slice(1)}`, /^Invalid invite/],
    [`chat://chat.lan:5051/dev?fp=${INVITE_FP_URL}x`, /^Invalid invite/],
    [`chat://chat.lan:5051/dev?fp=${INVITE_FP_URL.replace("a", "+")}`, /^Invalid invite/],
    [`chat://chat.lan:5051/dev?fp=${INVITE_FP_URL.replace("a", "!")}`, /^Invalid invite/],
    [`chat://chat.lan:5051/dev?fp=${INVITE_FP_URL}#key=short`, /^Invalid invite/],
    [`chat://chat.lan:5051/dev?fp=${INVITE_FP_URL}#${INVITE_SECRET}`, /^Invalid invite/],
    // A mistyped port is not read as a port and a room ("12345" and "#6").
    [`chat://chat.lan:123456/dev?fp=${INVITE_FP_URL}`, /^Invalid port "123456": use 1 to 65535$/],
    [`chat://chat.lan:505110/?fp=${INVITE_FP_URL}`, /^Invalid port "505110"/],
    [`chat://chat.lan:5051lobby?fp=${INVITE_FP_URL}`, /^Invalid invite/],
    [`chat://chat.lan:99999/dev?fp=${INVITE_FP_URL}`, /^Invalid port "99999": use 1 to 65535$/],
    [`chat://chat.lan:0/dev?fp=${INVITE_FP_URL}`, /^Invalid port "0"/],
    [`chat://:5051/dev?fp=${INVITE_FP_URL}`, /^Host is empty$/],
    [`chat://999.1.1.1:5051/?fp=${INVITE_FP_URL}`, /^Invalid IPv4 address "999\.1\.1\.1"/],
    [`chat://[::zz]:5051/?fp=${INVITE_FP_URL}`, /^Invalid IPv6 address/],
    [`chat://bad_host:5051/?fp=${INVITE_FP_URL}`, /^Invalid host name "bad_host"$/],
    [`chat://chat.lan:5051/no%20spaces?fp=${INVITE_FP_URL}`, /^Invalid room "no spaces"/],
    [
      `chat://chat.lan:5051/%E2%82?fp=${INVITE_FP_URL}`,
      /^Invalid invite: its room "%E2%82" is not readable$/,
    ],
  ];
  for (const [text, why] of cases) {
    const result = parseInvite(text);
    assert.ok(result !== undefined && !result.ok, text);
    assert.match(result.error, why, text);
    assert.doesNotMatch(result.error, /\n/);
  }
  // A long broken invite is not repeated whole.
  const long = parseInvite(`chat://${"x".repeat(500)}`);
  assert.ok(long !== undefined && !long.ok);
  assert.ok(long.error.length < 200, long.error);
});

/** Invites as formatInvite() makes them: any host, port, key, and room and secret or not. */
const INVITE: fc.Arbitrary<Invite> = fc.record({
  address: fc.record({
    hostname: fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6(), fc.constant("localhost")),
    port: fc.integer({ min: 1, max: 65535 }),
  }),
  fingerprint: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) =>
    `SHA256:${btoa(String.fromCharCode(...bytes)).replace(/=+$/, "")}`
  ),
  room: fc.oneof(
    fc.stringMatching(/^#[A-Za-z0-9_-]{1,32}$/),
    fc.constantFrom("#café", "#обсуждение", "#日本語", "#x1"),
  ),
  secret: fc.uint8Array({ minLength: 12, maxLength: 48 }).map((bytes) =>
    btoa(String.fromCharCode(...bytes)).replace(/=+$/, "").replaceAll("+", "-")
      .replaceAll("/", "_")
  ),
}, { requiredKeys: ["address", "fingerprint"] }).map((invite) => ({
  ...invite,
  address: { ...invite.address },
}));

Deno.test("any invite survives formatInvite() and parseInvite()", () => {
  fc.assert(
    fc.property(INVITE, (invite) => {
      const text = formatInvite(invite);
      assert.deepEqual(parseInvite(text), { ok: true, value: invite }, text);
      if (invite.secret !== undefined) {
        assert.ok(!text.split("#")[0]!.includes(invite.secret), "the secret is in the fragment");
      }
    }),
    { numRuns: 300 },
  );
});
