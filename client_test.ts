/**
 * Tests for `client.ts` run as a subprocess in scripting mode, with the permissions its
 * `deno.json` task grants: piping lines in, the transcript, exit codes and one-line errors.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ChatClient } from "./client.ts";
import {
  connect,
  type FrameOf,
  freePort,
  isMessageFrom,
  taskFlags,
  waitForFrame,
  within,
  withServer,
} from "./test_util.ts";
import { startServer } from "./server.ts";

// ==== Helpers ====

/** The project directory, where `client.ts` and `deno.json` are. */
const PROJECT_DIR = new URL(".", import.meta.url).pathname;

/** A stack trace line, as printed for an uncaught error. */
const STACK_TRACE_REGEXP = /^\s+at |Uncaught|error: /m;

const encoder = new TextEncoder();

const decoder = new TextDecoder();
/** `deno run <client task flags> client.ts ...args`, from the project directory. */
async function clientCommand(args: string[], stdin: "piped" | "null"): Promise<Deno.Command> {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...await taskFlags("client"), "client.ts", "--plain", ...args],
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

Deno.test("client.ts exits 2 for an invite with --plain, and for a broken invite or key", async () => {
  const key = "A".repeat(43);
  const cases: [string[], RegExp][] = [
    // runClient gives --plain.
    [[`chat://chat.lan:5051/?fp=${key}`], /An invite is for TLS.*drop --plain/],
    [["chat://chat.lan:5051/?fp=short"], /Invalid invite/],
    [["chat://chat.lan:505110/?fp=" + key], /Invalid port "505110"/],
  ];
  for (const [args, why] of cases) {
    const result = await runClient([...args, "--name", "ann"]);
    assert.equal(result.code, 2, args.join(" "));
    assert.match(result.stderr.split("\n")[0]!, why);
    assert.doesNotMatch(result.stderr, STACK_TRACE_REGEXP);
  }
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

// ==== Scripting ====

/** Runs the client with `input` on its standard input, against a server; collects its output. */
async function pipeInto(args: string[], input: string): Promise<RunResult> {
  const child = (await clientCommand(args, "piped")).spawn();
  const output = child.output();
  const stdin = child.stdin.getWriter();
  await stdin.write(encoder.encode(input));
  await stdin.close();
  const result = await within(output, "the client to exit", 60_000);
  return {
    code: result.code,
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
  };
}

Deno.test("client.ts sends the last piped line even without a final newline", async () => {
  await withServer(async (server) => {
    const bob = await connect(server, "bob");
    try {
      const result = await pipeInto([`127.0.0.1:${server.addr.port}`, "--name", "ci"], "done");
      assert.equal(result.code, 0, result.stderr);
      const message = await waitForFrame(bob, "ci's message", isMessageFrom("ci"));
      assert.equal(message.text, "done");
    } finally {
      await bob.close();
    }
  });
});

Deno.test("client.ts sends 2,000 piped lines as a few multi-line messages, in order", async () => {
  await withServer(async (server) => {
    const bob = await connect(server, "bob");
    try {
      const lines = Array.from({ length: 2000 }, (_, i) => `build step ${i} passed`);
      const result = await pipeInto(
        [`127.0.0.1:${server.addr.port}`, "--name", "ci"],
        lines.join("\n") + "\n",
      );
      assert.equal(result.code, 0, result.stderr);
      const texts: string[] = [];
      while (texts.join("\n").split("\n").length < lines.length) {
        texts.push((await waitForFrame(bob, "ci's messages", isMessageFrom("ci"))).text);
      }
      assert.deepEqual(texts.join("\n").split("\n"), lines);
      assert.ok(texts.length <= 30, `${texts.length} messages for 2,000 lines`);
    } finally {
      await bob.close();
    }
  });
});

Deno.test("client.ts prints no earlier history unless --history asks for it", async () => {
  await withServer(async (server) => {
    const bob = await connect(server, "bob");
    try {
      await bob.say("from before");
      const address = `127.0.0.1:${server.addr.port}`;
      const plain = await pipeInto([address, "--name", "ci"], "");
      assert.equal(plain.code, 0, plain.stderr);
      assert.doesNotMatch(plain.stdout, /from before/);
      const asked = await pipeInto([address, "--name", "ci2", "--history"], "");
      assert.match(asked.stdout, /bob: from before/);
    } finally {
      await bob.close();
    }
  });
});

Deno.test("client.ts --room and --to choose where piped lines go", async () => {
  await withServer(async (server) => {
    const bob = await connect(server, "bob");
    try {
      bob.send({ type: "join", room: "#builds" });
      await waitForFrame(bob, "bob in #builds", (f): f is FrameOf<"room"> => f.type === "room");
      const address = `127.0.0.1:${server.addr.port}`;
      const room = await pipeInto([address, "--name", "ci", "--room", "builds"], "green\n");
      assert.equal(room.code, 0, room.stderr);
      const inRoom = await waitForFrame(bob, "the message", isMessageFrom("ci"));
      assert.deepEqual([inRoom.text, inRoom.room], ["green", "#builds"]);
      const told = await pipeInto([address, "--name", "ci", "--to", "bob"], "psst\n");
      assert.equal(told.code, 0, told.stderr);
      const private_ = await waitForFrame(
        bob,
        "the private message",
        (f): f is FrameOf<"private"> => f.type === "private",
      );
      assert.deepEqual([private_.from, private_.text], ["ci", "psst"]);
    } finally {
      await bob.close();
    }
  });
});

Deno.test("client.ts shows its progress on standard error when that is a terminal", async () => {
  if (!await hasScript()) {
    console.log("skipped: the `script` program (util-linux) is needed for a pseudo-terminal");
    return;
  }
  await withServer(async (server) => {
    const dir = await Deno.makeTempDir();
    try {
      const input = `${dir}/lines.txt`;
      await Deno.writeTextFile(input, "one\ntwo\nthree\n");
      const command = ["deno", "run", ...await taskFlags("client"), "client.ts"]
        .concat([`127.0.0.1:${server.addr.port}`, "--plain", "--name", "ci"])
        .map((word) => `'${word}'`).join(" ") + ` < '${input}'`;
      // `script` runs the command on a new pseudo-terminal: stdin is the file, stderr a terminal.
      const output = await within(
        new Deno.Command("script", {
          args: ["-qec", command, "/dev/null"],
          cwd: PROJECT_DIR,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", PATH: Deno.env.get("PATH") ?? "" },
        }).output(),
        "the client under script to exit",
      );
      const shown = decoder.decode(output.stdout);
      assert.equal(output.code, 0, shown);
      assert.match(shown, /3 lines read, 1 of 1 messages sent/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

/** Whether the `script` program is here. */
async function hasScript(): Promise<boolean> {
  try {
    return (await new Deno.Command("script", { args: ["--version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
}
