/**
 * Tests for the chat client: address parsing, rendering, display width and name suggestions as
 * units; {@linkcode ChatClient} against a real in-process server; and `client.ts` run as a
 * subprocess in scripting mode, with the permissions its `deno.json` task grants.
 *
 * Run with `deno test --sanitize-ops --sanitize-resources --allow-net --allow-read --allow-run
 * --allow-env --allow-sys client_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  ChatClient,
  ChatError,
  type ChatErrorCode,
  type ChatEvent,
  parseAddress,
  splitMessage,
  suggestName,
} from "./client.ts";
import {
  DEFAULT_PORT,
  displayWidth,
  encodeFrame,
  errorFrame,
  MAX_TEXT_LENGTH,
  type MessageFrame,
  nameColor,
  readLines,
  renderFrame,
  type RenderOptions,
  type ServerFrame,
  type UsersFrame,
  VERSION,
  writeAll,
} from "./protocol.ts";
import { startServer } from "./server.ts";
import { connect, type FrameOf, within, withServer } from "./test_util.ts";

// ==== Helpers ====

/** The project directory, where `client.ts` and `deno.json` are. */
const PROJECT_DIR = new URL(".", import.meta.url).pathname;
/** Everything a terminal could act on; rendered output must contain none of it. */
const TERMINAL_UNSAFE_REGEXP = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;
/** The colour codes `renderFrame()` itself adds. */
// deno-lint-ignore no-control-regex -- matching the escape character is the point
const OWN_ANSI_REGEXP = /\x1b\[\d+m/g;
/** A stack trace line, as printed for an uncaught error. */
const STACK_TRACE_REGEXP = /^\s+at |Uncaught|error: /m;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads frames, skipping others, until one matches; fails if the connection ends first. */
function waitForFrame<F extends ChatEvent>(
  client: ChatClient,
  what: string,
  match: (frame: ChatEvent) => frame is F,
): Promise<F> {
  return within(
    (async () => {
      while (true) {
        const frame = await client.next();
        if (frame === undefined) throw new Error(`Connection ended before ${what}`);
        if (match(frame)) return frame;
      }
    })(),
    what,
  );
}

function isMessageFrom(from: string): (frame: ChatEvent) => frame is MessageFrame {
  return (frame): frame is MessageFrame => frame.type === "message" && frame.from === from;
}

/** Checks that a promise rejects with a {@linkcode ChatError} of the given code. */
async function assertChatError(
  promise: Promise<unknown>,
  code: ChatErrorCode,
  message?: RegExp,
): Promise<ChatError> {
  const error = await within(promise.then(() => undefined, (e: unknown) => e), `a ${code} error`);
  assert.ok(error instanceof ChatError, `Expected a ChatError, got ${String(error)}`);
  assert.equal(error.name, "ChatError");
  assert.equal(error.code, code);
  if (message) assert.match(error.message, message);
  return error;
}

/** A loopback port nobody listens on (it was free a moment ago). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** The permission flags of a `deno run` task in `deno.json`. */
async function taskFlags(task: string): Promise<string[]> {
  const config: unknown = JSON.parse(
    await Deno.readTextFile(new URL("./deno.json", import.meta.url)),
  );
  assert.ok(typeof config === "object" && config !== null && "tasks" in config);
  const tasks = config.tasks;
  assert.ok(typeof tasks === "object" && tasks !== null);
  const command: unknown = (tasks as Record<string, unknown>)[task];
  assert.equal(typeof command, "string", `deno.json has no "${task}" task`);
  return String(command).split(/\s+/).filter((word) => /^--(allow|deny)-/.test(word));
}

/** `deno run <client task flags> client.ts ...args`, from the project directory. */
async function clientCommand(args: string[], stdin: "piped" | "null"): Promise<Deno.Command> {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...await taskFlags("client"), "client.ts", ...args],
    cwd: PROJECT_DIR,
    stdin,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  });
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the client with no input and collects what it printed. */
async function runClient(args: string[]): Promise<RunResult> {
  const output = await within((await clientCommand(args, "null")).output(), "the client to exit");
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

// ==== splitMessage ====

Deno.test("splitMessage() keeps lines together while they fit in one message", () => {
  assert.deepEqual(splitMessage("a\nb\nc"), ["a\nb\nc"]);
  const long = "x".repeat(1500);
  assert.deepEqual(splitMessage(`${long}\n${long}\nend`), [long, `${long}\nend`]);
});

Deno.test("splitMessage() cuts a line longer than a message, counting characters", () => {
  const line = "😀".repeat(MAX_TEXT_LENGTH + 10);
  const parts = splitMessage(line);
  assert.deepEqual(parts.map((p) => Array.from(p).length), [MAX_TEXT_LENGTH, 10]);
  assert.equal(parts.join(""), line);
});

Deno.test("splitMessage() drops blank lines at the edges only when nothing else is there", () => {
  assert.deepEqual(splitMessage("\n\n"), []);
  assert.deepEqual(splitMessage("a\n\nb"), ["a\n\nb"]);
});

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
    assert.deepEqual(parseAddress(text), { ok: true, address: { hostname, port } });
  });
}

const BAD_ADDRESSES: [string, string, RegExp][] = [
  ["999.1.1.1", "an IPv4 address with a part over 255", /^Invalid IPv4 address "999\.1\.1\.1"/],
  ["localhost:70000", "port 70000", /^Invalid port "70000": use 1 to 65535/],
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

// ==== renderFrame ====

/** 09:05 local time, whatever the time zone. */
const TS = new Date(2024, 0, 2, 9, 5, 30).getTime();
const VIEW: RenderOptions = { me: "ann", color: false, time: true, skipOwn: false };
const PLAIN: RenderOptions = { me: "ann", color: false, time: false, skipOwn: true };
const COLOR: RenderOptions = { me: "ann", color: true, time: true, skipOwn: false };

function message(from: string, text: string): MessageFrame {
  return { type: "message", id: 7, ts: TS, from, text };
}

Deno.test("renderFrame() shows one's own message as '[HH:MM] You: text'", () => {
  assert.deepEqual(renderFrame(message("ann", "hello"), VIEW), ["[09:05] You: hello"]);
  assert.deepEqual(renderFrame(message("ANN", "hello"), VIEW), ["[09:05] You: hello"]);
});

Deno.test("renderFrame() shows somebody else's message as '[HH:MM] name: text'", () => {
  assert.deepEqual(renderFrame(message("bob", "hi ann"), VIEW), ["[09:05] bob: hi ann"]);
});

Deno.test("renderFrame() indents a multi-line message's continuation lines under its text", () => {
  assert.deepEqual(renderFrame(message("bob", "one\ntwo\nthree"), VIEW), [
    "[09:05] bob: one",
    "             two",
    "             three",
  ]);
  assert.deepEqual(renderFrame(message("ann", "one\ntwo"), VIEW), [
    "[09:05] You: one",
    "             two",
  ]);
});

Deno.test("renderFrame() indents continuation lines under the text after a wide (CJK) name", () => {
  const [first = "", second = ""] = renderFrame(message("李雷", "one\ntwo"), VIEW);
  assert.equal(first, "[09:05] 李雷: one");
  // "[09:05] 李雷: " takes 14 columns: the continuation must start in column 15 too.
  assert.equal(displayWidth(second) - "two".length, displayWidth(first) - "one".length);
  assert.equal(second, `${" ".repeat(14)}two`);
});

Deno.test("renderFrame() shows joined, left, users, welcome and error frames as notices", () => {
  assert.deepEqual(renderFrame({ type: "joined", name: "bob", ts: TS }, VIEW), [
    "[09:05] * bob joined",
  ]);
  assert.deepEqual(renderFrame({ type: "left", name: "bob", ts: TS, reason: "quit" }, VIEW), [
    "[09:05] * bob left (quit)",
  ]);
  assert.deepEqual(renderFrame({ type: "users", users: ["bob", "ann"], count: 2 }, VIEW), [
    "* 2 people here: ann, bob",
  ]);
  assert.deepEqual(renderFrame({ type: "users", users: ["ann"] }, VIEW), [
    "* 1 person here: ann",
  ]);
  assert.deepEqual(renderFrame({ type: "users", users: ["ann", "bob"], count: 5 }, VIEW), [
    "* 5 people here: ann, bob and 3 more",
  ]);
  const welcome: ServerFrame = {
    type: "welcome",
    name: "ann",
    users: ["bob", "ann"],
    count: 2,
    server: { name: "lan-chat", version: VERSION },
  };
  assert.deepEqual(renderFrame(welcome, VIEW), [
    "* Joined lan-chat as ann. 2 people in #lobby: ann, bob",
  ]);
  assert.deepEqual(renderFrame(errorFrame("name_taken", "The name is taken"), VIEW), [
    "! The name is taken",
  ]);
  assert.deepEqual(renderFrame({ type: "ping" }, VIEW), []);
  assert.deepEqual(renderFrame({ type: "pong" }, VIEW), []);
});

Deno.test("renderFrame() in plain mode leaves out own messages and shows others as 'name: text'", () => {
  assert.deepEqual(renderFrame(message("ann", "hello"), PLAIN), []);
  assert.deepEqual(renderFrame(message("bob", "hi ann"), PLAIN), ["bob: hi ann"]);
  assert.deepEqual(renderFrame({ type: "joined", name: "bob", ts: TS }, PLAIN), ["* bob joined"]);
});

/** Escape sequences (CSI, OSC), BEL, CR, NUL, DEL, C1 CSI, NEL, and bidi overrides/isolates. */
const NASTY = "\x1b[2J\x1b]0;pwned\x07\u009b31m\u202Eevil\u2066\r\x00\x7f\u0085\u2069";

const NASTY_FRAMES: ServerFrame[] = [
  { type: "message", id: 1, ts: TS, from: `bob${NASTY}`, text: `hi${NASTY}\nthere${NASTY}` },
  { type: "message", id: 2, ts: TS, from: `ann${NASTY}`, text: `own${NASTY}` },
  { type: "joined", name: `bob${NASTY}`, ts: TS },
  { type: "left", name: `bob${NASTY}`, ts: TS, reason: `gone${NASTY}` },
  { type: "users", users: [`bob${NASTY}`, "ann"] },
  {
    type: "welcome",
    name: `ann${NASTY}`,
    users: [`bob${NASTY}`],
    server: { name: `srv${NASTY}`, version: VERSION },
  },
  { type: "error", code: "bad_text", message: `no${NASTY}` },
];

Deno.test("renderFrame() never lets control characters or bidi overrides through", () => {
  for (const view of [VIEW, PLAIN, COLOR]) {
    for (const frame of NASTY_FRAMES) {
      for (const line of renderFrame(frame, view)) {
        const text = view.color ? line.replace(OWN_ANSI_REGEXP, "") : line;
        const unsafe = TERMINAL_UNSAFE_REGEXP.exec(text);
        assert.equal(
          unsafe,
          null,
          `${
            JSON.stringify(line)
          } from ${frame.type} (color ${view.color}, skipOwn ${view.skipOwn})`,
        );
      }
    }
  }
  // What is printable is kept.
  const [first = ""] = renderFrame(NASTY_FRAMES[0]!, VIEW);
  assert.match(first, /^\[09:05\] bob\[2J\]0;pwned31mevil: hi\[2J\]0;pwned31mevil$/);
});

Deno.test("renderFrame() with colour paints each name, the same name always the same colour", () => {
  const [bob = ""] = renderFrame(message("bob", "hi"), COLOR);
  const [shouting = ""] = renderFrame(message("BOB", "hi"), COLOR);
  const [you = ""] = renderFrame(message("ann", "hi"), COLOR);
  assert.ok(bob.includes(`\x1b[${nameColor("bob")}mbob\x1b[0m: hi`), JSON.stringify(bob));
  assert.ok(shouting.includes(`\x1b[${nameColor("bob")}mBOB\x1b[0m`), JSON.stringify(shouting));
  assert.ok(you.includes("You\x1b[0m: hi"), JSON.stringify(you));
  assert.equal(you.replace(OWN_ANSI_REGEXP, ""), "[09:05] You: hi");
  assert.equal(bob.replace(OWN_ANSI_REGEXP, ""), "[09:05] bob: hi");
  assert.equal(nameColor("bob"), nameColor("BOB"));
  assert.equal(nameColor("bob"), nameColor("bob"));
  const colors = new Set(["ann", "bob", "carol", "dave", "erin", "frank", "grace"].map(nameColor));
  assert.ok(colors.size > 1, "every name got the same colour");
  for (const color of colors as Set<number>) {
    assert.ok(color >= 31 && color <= 96, `odd colour code ${color}`);
  }
});

// ==== displayWidth and suggestName ====

Deno.test("displayWidth() counts terminal columns", () => {
  assert.equal(displayWidth("abc"), 3);
  assert.equal(displayWidth("李雷"), 4);
  assert.equal(displayWidth("😀"), 2);
  assert.equal(displayWidth("\x1b[31mab\x1b[0m"), 2);
  assert.equal(displayWidth("\x1b[1m\x1b[0m"), 0);
  assert.equal(displayWidth("\u00e9"), 1);
  assert.equal(displayWidth("e\u0301"), 1);
  assert.equal(displayWidth(""), 0);
});

Deno.test("displayWidth() counts emoji outside U+1F300-1F64F as two columns too", () => {
  assert.equal(displayWidth("\u{1F680}"), 2); // rocket, Transport and Map Symbols
  assert.equal(displayWidth("\u{1FAE0}"), 2); // melting face, Symbols and Pictographs Extended-A
});

Deno.test("suggestName() turns any text into a name that passes the name rules", () => {
  assert.equal(suggestName("john.doe"), "john_doe");
  assert.equal(suggestName("ann"), "ann");
  assert.equal(suggestName(""), "guest");
  assert.equal(suggestName("server"), "guest");
  assert.equal(suggestName("SERVER"), "guest");
  assert.equal(suggestName("a".repeat(40)), "a".repeat(24));
  assert.equal(suggestName("x".repeat(20) + ".abcdefghij"), "x".repeat(20) + "_abc");
});

Deno.test("suggestName() cuts a name with characters outside the BMP to 24 characters", () => {
  // U+20BB7 is a letter used in Japanese names; in UTF-16 it takes two code units.
  assert.equal(suggestName("a" + "\u{20BB7}".repeat(30)), "a" + "\u{20BB7}".repeat(23));
});

// ==== ChatClient against a real server ====

Deno.test("ChatClient.connect() resolves with a welcome listing everyone present", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      const bob = await connect(server, "bob");
      try {
        assert.equal(bob.name, "bob");
        assert.equal(bob.welcome.type, "welcome");
        assert.equal(bob.welcome.name, "bob");
        assert.deepEqual([...bob.welcome.users].sort(), ["ann", "bob"]);
        assert.equal(bob.welcome.count, 2);
        assert.equal(bob.welcome.server.version, VERSION);
        assert.deepEqual(ann.welcome.users, ["ann"]);
      } finally {
        await bob.close();
      }
    } finally {
      await ann.close();
    }
  });
});

Deno.test("ChatClient.say() resolves with the server's copy: id, ts, from and text", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    const bob = await connect(server, "bob");
    try {
      const before = Date.now();
      const sent = await within(ann.say("hello everyone"), "the acknowledgement");
      const after = Date.now();
      assert.equal(sent.type, "message");
      assert.ok(Number.isSafeInteger(sent.id) && sent.id > 0, `id ${sent.id}`);
      assert.ok(
        sent.ts >= before && sent.ts <= after,
        `ts ${sent.ts} not in [${before}, ${after}]`,
      );
      assert.equal(sent.from, "ann");
      assert.equal(sent.text, "hello everyone");
      const seen = await waitForFrame(bob, "ann's message", isMessageFrom("ann"));
      assert.equal(seen.id, sent.id);
      assert.equal(seen.text, "hello everyone");
      const second = await within(ann.say("again"), "the second acknowledgement");
      assert.ok(second.id > sent.id, "message ids increase");
    } finally {
      await bob.close();
      await ann.close();
    }
  });
});

Deno.test("ChatClient.connect() rejects a name taken in another case with name_taken", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      await assertChatError(connect(server, "ANN"), "name_taken", /taken/);
      assert.equal(server.core.size, 1);
    } finally {
      await ann.close();
    }
  });
});

Deno.test("ChatClient.connect() rejects a reserved or invalid name with bad_name", async () => {
  await withServer(async (server) => {
    for (const name of ["server", "Admin", "bad name", "", "x".repeat(25), "a\u202Eb"]) {
      const error = await assertChatError(connect(server, name), "bad_name");
      assert.doesNotMatch(error.message, TERMINAL_UNSAFE_REGEXP);
    }
    assert.equal(server.core.size, 0);
  });
});

Deno.test("ChatClient.say() rejects empty or blank text with bad_text", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      for (const text of ["", "   ", "\t\n ", "\x07\x1b"]) {
        await assertChatError(ann.say(text), "bad_text", /empty/i);
      }
      const ok = await within(ann.say("still here"), "the acknowledgement");
      assert.equal(ok.text, "still here");
    } finally {
      await ann.close();
    }
  });
});

Deno.test("ChatClient.connect() to a closed port rejects with unreachable: connection refused", async () => {
  const port = freePort();
  const error = await assertChatError(
    ChatClient.connect({ hostname: "127.0.0.1", port, name: "ann" }),
    "unreachable",
    /connection refused/,
  );
  assert.match(error.message, new RegExp(`^Cannot connect to 127\\.0\\.0\\.1:${port}: `));
});

Deno.test("ChatClient.say() never loses a message when its own outbox fills up", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      // 900 x 2 KB is more than the 1 MiB outbox holds at once, with no rate to pace it.
      const text = "x".repeat(1990);
      const acks = await within(
        Promise.all(Array.from({ length: 900 }, (_, i) => ann.say(`${i} ${text}`))),
        "every acknowledgement",
      );
      assert.equal(new Set(acks.map((a) => a.id)).size, 900);
      assert.equal(ann.unsent, 0);
    } finally {
      await ann.close();
    }
  }, { rate: 0 });
});

Deno.test("ChatClient.who() is answered with a users frame", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    const bob = await connect(server, "bob");
    try {
      bob.who();
      const users = await waitForFrame(
        bob,
        "the users frame",
        (frame): frame is UsersFrame => frame.type === "users",
      );
      assert.deepEqual([...users.users].sort(), ["ann", "bob"]);
      assert.equal(users.count, 2);
    } finally {
      await bob.close();
      await ann.close();
    }
  });
});

Deno.test("ChatClient.closed reports shutting_down when the server closes, and say() then rejects", async () => {
  const server = startServer({ hostname: "127.0.0.1", port: 0 });
  let ann: ChatClient | undefined;
  try {
    ann = await connect(server, "ann");
    await server.close();
    const info = await within(ann.closed, "the connection to end");
    assert.equal(info.by, "server");
    assert.equal(info.error?.type, "error");
    assert.equal(info.error?.code, "shutting_down");
    assert.equal(info.error?.message, "The server is shutting down");
    await assertChatError(ann.say("anyone?"), "disconnected");
  } finally {
    await ann?.close();
    await server.close();
  }
});

Deno.test("ChatClient.say() still awaiting its acknowledgement rejects with disconnected when the server goes", async () => {
  // A stand-in server that takes the say but never acknowledges it, then shuts down.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { promise: sayReceived, resolve: onSay } = Promise.withResolvers<string>();
  const serving = (async () => {
    const conn = await listener.accept();
    try {
      const lines = readLines(conn);
      await lines.next();
      await writeAll(
        conn,
        encodeFrame({
          type: "welcome",
          name: "ann",
          users: ["ann"],
          server: { name: "stand-in", version: VERSION },
        }),
      );
      const say = await lines.next();
      onSay(say.done ? "" : say.value);
      await writeAll(conn, encodeFrame(errorFrame("shutting_down", "Going down")));
    } finally {
      conn.close();
    }
  })();
  let ann: ChatClient | undefined;
  try {
    ann = await ChatClient.connect({
      hostname: "127.0.0.1",
      port: listener.addr.port,
      name: "ann",
    });
    const rejected = assertChatError(ann.say("are you there?"), "disconnected", /shutting down/);
    assert.match(await within(sayReceived, "the say"), /"type":"say"/);
    const info = await within(ann.closed, "the connection to end");
    assert.deepEqual(info, {
      by: "server",
      error: { type: "error", code: "shutting_down", message: "Going down" },
    });
    await rejected;
  } finally {
    await ann?.close();
    await within(serving, "the stand-in server");
    listener.close();
  }
});

Deno.test("ChatClient.close() makes the others see a left frame with reason quit", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      const bob = await connect(server, "bob");
      await bob.close();
      const info = await bob.closed;
      assert.equal(info.by, "client");
      const left = await waitForFrame(
        ann,
        "bob's left frame",
        (frame): frame is Extract<ChatEvent, { type: "left" }> => frame.type === "left",
      );
      assert.equal(left.name, "bob");
      assert.equal(left.reason, "quit");
      assert.equal(server.core.size, 1);
    } finally {
      await ann.close();
    }
  });
});

// ==== client.ts as a subprocess ====

Deno.test("client.ts in a pipe sends each input line and prints what others say", async () => {
  const server = startServer({ hostname: "127.0.0.1", port: 0 });
  let bob: ChatClient | undefined;
  let child: Deno.ChildProcess | undefined;
  let output: Promise<Deno.CommandOutput> | undefined;
  let stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  try {
    const port = server.addr.port;
    bob = await connect(server, "bob");
    child = (await clientCommand([`127.0.0.1:${port}`, "--name", "ann"], "piped")).spawn();
    output = child.output();
    stdin = child.stdin.getWriter();

    await stdin.write(encoder.encode("first line from ann\n"));
    const first = await waitForFrame(bob, "ann's first message", isMessageFrom("ann"));
    assert.equal(first.text, "first line from ann");
    // Ann still has input to send, so she is connected when this arrives.
    await within(bob.say("hello ann"), "bob's acknowledgement");
    await stdin.write(encoder.encode("second line from ann\n"));
    await stdin.close();
    stdin = undefined;
    const second = await waitForFrame(bob, "ann's second message", isMessageFrom("ann"));
    assert.equal(second.text, "second line from ann");
    assert.ok(second.id > first.id);

    const result = await within(output, "ann to exit");
    output = undefined;
    const stdout = decoder.decode(result.stdout);
    assert.equal(decoder.decode(result.stderr), "");
    assert.match(stdout, /^bob: hello ann$/m);
    assert.doesNotMatch(stdout, /line from ann/, "own messages are not echoed");
    assert.equal(result.code, 0);
  } finally {
    if (stdin) await stdin.close().catch(() => {});
    if (output) {
      try {
        child?.kill();
      } catch {
        // It has already exited.
      }
      await output.catch(() => {});
    }
    await bob?.close();
    await server.close();
  }
});

Deno.test("client.ts --log appends what it shows, as plain text, to a file", async () => {
  const server = startServer({ hostname: "127.0.0.1", port: 0 });
  const dir = await Deno.makeTempDir({ prefix: "chat-log-" });
  const log = `${dir}/chat.log`;
  let bob: ChatClient | undefined;
  let child: Deno.ChildProcess | undefined;
  let output: Promise<Deno.CommandOutput> | undefined;
  try {
    await Deno.writeTextFile(log, "earlier line\n");
    const port = server.addr.port;
    bob = await connect(server, "bob");
    child = (await clientCommand([`127.0.0.1:${port}`, "--name", "ann", "--log", log], "piped"))
      .spawn();
    output = child.output();
    const stdin = child.stdin.getWriter();
    await waitForFrame(
      bob,
      "ann to arrive",
      (f): f is FrameOf<"joined"> => f.type === "joined" && f.name === "ann",
    );
    await bob.say("hello ann");
    await stdin.write(encoder.encode("hi bob\n"));
    await waitForFrame(bob, "ann's answer", isMessageFrom("ann"));
    await stdin.close();
    const result = await within(output, "ann to exit");
    output = undefined;
    assert.equal(result.code, 0);
    const text = await Deno.readTextFile(log);
    assert.match(text, /^earlier line\n--- .* 127\.0\.0\.1:\d+ ---\n/, "appended after a header");
    assert.match(text, /^bob: hello ann$/m);
    assert.ok(!text.includes("\x1b"), "no colour codes");
  } finally {
    if (output) {
      try {
        child?.kill();
      } catch {
        // It has already exited.
      }
      await output.catch(() => {});
    }
    await bob?.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("client.ts --log to a folder that does not exist exits 1 with one line", async () => {
  const result = await runClient(["127.0.0.1:1", "--log", "/nonexistent-dir/chat.log"]);
  assert.equal(result.code, 1);
  assert.equal(
    result.stderr,
    "client: Cannot write the log /nonexistent-dir/chat.log: its folder does not exist\n",
  );
});

Deno.test("client.ts in a pipe exits 1 when the server shuts down, although its input is still open", async () => {
  const server = startServer({ hostname: "127.0.0.1", port: 0 });
  let watcher: ChatClient | undefined;
  let output: Promise<Deno.CommandOutput> | undefined;
  let stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  try {
    watcher = await connect(server, "watcher");
    const args = [`127.0.0.1:${server.addr.port}`, "--name", "ann"];
    const child = (await clientCommand(args, "piped")).spawn();
    output = child.output();
    stdin = child.stdin.getWriter();
    await stdin.write(encoder.encode("tail -f says hello\n"));
    await waitForFrame(watcher, "ann's message", isMessageFrom("ann"));
    await watcher.close();
    await server.close();
    // Like `tail -f log | client`: the input never ends, yet the client must notice it is alone.
    const result = await within(output, "ann to exit after the shutdown");
    output = undefined;
    assert.equal(result.code, 1);
    assert.match(decoder.decode(result.stderr), /shutting down/);
  } finally {
    if (stdin) await stdin.close().catch(() => {});
    await output?.catch(() => {});
    await watcher?.close();
    await server.close();
  }
});

Deno.test("client.ts exits 1 with one line on stderr when the port has no server", async () => {
  const port = freePort();
  const result = await runClient([`127.0.0.1:${port}`, "--name", "ann"]);
  assert.equal(result.code, 1);
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, /connection refused/);
  assert.doesNotMatch(result.stderr, STACK_TRACE_REGEXP);
  assert.equal(result.stdout, "");
});

Deno.test("client.ts exits 2 for the address 999.1.1.1", async () => {
  const result = await runClient(["999.1.1.1", "--name", "ann"]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /Invalid IPv4 address "999\.1\.1\.1"/);
  assert.doesNotMatch(result.stderr, STACK_TRACE_REGEXP);
});

Deno.test("client.ts exits 2 for the name 'bad name'", async () => {
  const result = await runClient([`127.0.0.1:${freePort()}`, "--name", "bad name"]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /Invalid name "bad name"/);
  assert.doesNotMatch(result.stderr, STACK_TRACE_REGEXP);
});

Deno.test("client.ts --help exits 0 and prints the usage", async () => {
  const result = await runClient(["--help"]);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /^USAGE:$/m);
  assert.match(result.stdout, /--name NAME/);
  assert.equal(result.stderr, "");
});

Deno.test("client.ts in a pipe exits 1 with a one-line message when the name is taken", async () => {
  await withServer(async (server) => {
    const bob = await connect(server, "bob");
    try {
      const result = await runClient([`127.0.0.1:${server.addr.port}`, "--name", "BOB"]);
      assert.equal(result.code, 1);
      const lines = result.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0]!, /^client: .*taken/);
      assert.doesNotMatch(result.stderr, STACK_TRACE_REGEXP);
    } finally {
      await bob.close();
    }
  });
});
