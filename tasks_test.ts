/**
 * Tests for the `deno.json` tasks: the compile task grants exactly what the run tasks grant, the
 * grants are minimal, and they suffice: the server and the client, run as subprocesses with no
 * more than those flags, talk to each other and shut down cleanly.
 *
 * Run with `deno test --sanitize-ops --sanitize-resources --allow-net --allow-read --allow-write --allow-run
 * --allow-env --allow-sys tasks_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ChatClient, type ChatEvent } from "./client.ts";
import type { MessageFrame } from "./protocol.ts";
import { denoDir, freePort, StreamText, within } from "./test_util.ts";

// ==== Helpers ====

/** The project directory, where the scripts and `deno.json` are. */
const PROJECT_DIR = new URL(".", import.meta.url).pathname;
/** What Deno prints when a permission is missing. */
const PERMISSION_ERROR_REGEXP = /PermissionDenied|Requires /;

const encoder = new TextEncoder();

/** The `tasks` of `deno.json`. */
async function readTasks(): Promise<Record<string, string>> {
  const config: unknown = JSON.parse(
    await Deno.readTextFile(new URL("./deno.json", import.meta.url)),
  );
  assert.ok(typeof config === "object" && config !== null && "tasks" in config);
  const tasks = config.tasks;
  assert.ok(typeof tasks === "object" && tasks !== null, "deno.json has no tasks");
  const result: Record<string, string> = {};
  for (const [name, command] of Object.entries(tasks)) {
    assert.equal(typeof command, "string", `task ${name} is not a string`);
    result[name] = String(command);
  }
  return result;
}

function words(command: string): string[] {
  return command.trim().split(/\s+/);
}

/** The permission flags in a command, in order. */
function permissionFlags(command: string): string[] {
  return words(command).filter((word) => /^--(allow|deny)-/.test(word) || word === "-A");
}

/** The flags of the task `name`, which must be `deno run ... <script>`. */
function runTaskFlags(tasks: Record<string, string>, name: string, script: string): string[] {
  const command = tasks[name];
  assert.ok(command !== undefined, `deno.json has no "${name}" task`);
  const parts = words(command);
  assert.deepEqual(parts.slice(0, 2), ["deno", "run"], `task ${name}: ${command}`);
  assert.equal(parts.at(-1), script, `task ${name} runs ${parts.at(-1)}`);
  return permissionFlags(command);
}

/** The flags of each `deno compile` in the compile task, by the script it builds. */
function compileFlags(tasks: Record<string, string>): Map<string, string[]> {
  const command = tasks.compile;
  assert.ok(command !== undefined, 'deno.json has no "compile" task');
  const builds = new Map<string, string[]>();
  // After "||" comes what runs when a build fails (tidying up), not a build.
  for (const part of command.split("||")[0]!.split("&&")) {
    const parts = words(part);
    assert.deepEqual(parts.slice(0, 2), ["deno", "compile"], `compile step: ${part}`);
    const script = parts.at(-1)!;
    assert.ok(!builds.has(script), `${script} is compiled twice`);
    builds.set(script, permissionFlags(part));
  }
  return builds;
}

function spawnDeno(
  args: string[],
  stdin: "piped" | "null",
  env: Record<string, string> = {},
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args,
    cwd: PROJECT_DIR,
    stdin,
    stdout: "piped",
    stderr: "piped",
    env: { ...env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
}

// ==== The flags ====

Deno.test("deno.json tasks: deno compile grants the server exactly what the server task does", async () => {
  const tasks = await readTasks();
  const run = runTaskFlags(tasks, "server", "server.ts");
  const compiled = compileFlags(tasks).get("server.ts");
  assert.ok(compiled !== undefined, "the compile task does not build server.ts");
  assert.deepEqual(new Set(compiled), new Set(run));
  assert.deepEqual(compiled, run);
});

Deno.test("deno.json tasks: deno compile grants the client exactly what the client task does", async () => {
  const tasks = await readTasks();
  const run = runTaskFlags(tasks, "client", "client.ts");
  const compiled = compileFlags(tasks).get("client.ts");
  assert.ok(compiled !== undefined, "the compile task does not build client.ts");
  assert.deepEqual(new Set(compiled), new Set(run));
  assert.deepEqual(compiled, run);
});

Deno.test("deno.json tasks: a failed compile leaves no empty dist folder, and keeps a full one", async () => {
  const fallback = (await readTasks()).compile!.split("||")[1]!.trim();
  const code = /^deno eval "(.*)"$/.exec(fallback)?.[1];
  assert.ok(code !== undefined, `the fallback is a deno eval: ${fallback}`);
  for (const full of [false, true]) {
    const dir = await Deno.makeTempDir({ prefix: "chat-compile-" });
    try {
      await Deno.mkdir(`${dir}/dist`);
      if (full) await Deno.writeTextFile(`${dir}/dist/chat-server`, "an earlier build");
      const result = await new Deno.Command(Deno.execPath(), {
        args: ["eval", code],
        cwd: dir,
        env: { DENO_NO_UPDATE_CHECK: "1" },
      }).output();
      assert.equal(result.code, 1, "the task still fails");
      const kept = await Deno.stat(`${dir}/dist`).then(() => true, () => false);
      assert.equal(kept, full);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("deno.json tasks: the compile task builds server.ts first, then client.ts", async () => {
  assert.deepEqual([...compileFlags(await readTasks()).keys()], ["server.ts", "client.ts"]);
});

Deno.test("deno.json tasks: the run tasks grant no blanket permissions", async () => {
  const tasks = await readTasks();
  for (const [name, script] of [["server", "server.ts"], ["client", "client.ts"]] as const) {
    const flags = runTaskFlags(tasks, name, script);
    assert.ok(flags.length > 0, `task ${name} grants nothing`);
    for (const flag of flags) {
      assert.notEqual(flag, "-A", `task ${name}`);
      assert.ok(!flag.startsWith("--allow-all"), `task ${name} has ${flag}`);
    }
    assert.ok(!words(tasks[name]!).includes("-A"), `task ${name} uses -A`);
  }
});

Deno.test("deno.json tasks: the client may read and write files (its identity, --log) and read only the variables that locate them", async () => {
  const flags = runTaskFlags(await readTasks(), "client", "client.ts");
  for (const flag of flags) assert.doesNotMatch(flag, /^--allow-(run|ffi|all)(=|$)/, flag);
  assert.ok(flags.includes("--allow-read") && flags.includes("--allow-write"), flags.join(" "));
  assert.deepEqual(
    flags.find((f) => f.startsWith("--allow-env"))?.split("=")[1]?.split(",").sort(),
    ["APPDATA", "HOME", "LOGNAME", "USER", "USERNAME", "XDG_CONFIG_HOME"],
  );
});

Deno.test("deno.json tasks: neither program may run other programs or load native code", async () => {
  const tasks = await readTasks();
  for (const [name, script] of [["server", "server.ts"], ["client", "client.ts"]] as const) {
    for (const flag of runTaskFlags(tasks, name, script)) {
      assert.doesNotMatch(flag, /^--allow-(run|ffi|all)(=|$)/, `task ${name}: ${flag}`);
    }
  }
});

// ==== The flags suffice ====

Deno.test("deno.json tasks: server and client run with exactly their task's flags", async () => {
  const tasks = await readTasks();
  const serverFlags = runTaskFlags(tasks, "server", "server.ts");
  const clientFlags = runTaskFlags(tasks, "client", "client.ts");
  const port = freePort();
  const [tlsPort, webPort, httpsPort] = distinctFreePorts(3, [port]);
  const dir = await Deno.makeTempDir({ prefix: "chat-tasks-" });
  const db = `${dir}/chat.db`;
  const log = `${dir}/client.log`;

  const server = spawnDeno(
    [
      "run",
      ...serverFlags,
      "server.ts",
      ...["--host", "127.0.0.1", "--port", String(port), "--tls-port", String(tlsPort)],
      ...["--web-port", String(webPort), "--https-port", String(httpsPort), "--db", db],
    ],
    "null",
  );
  const serverOut = new StreamText(server.stdout);
  const serverErr = new StreamText(server.stderr);
  let serverStatus: Deno.CommandStatus | undefined;
  let watcher: ChatClient | undefined;
  let client: Deno.ChildProcess | undefined;
  let clientOutput: Promise<Deno.CommandOutput> | undefined;
  try {
    await within(serverOut.waitFor("deno task client '"), "the server to print its invite");
    assert.match(serverOut.text, new RegExp(`listening on 127\\.0\\.0\\.1:${port}`));
    const invite = serverOut.text.match(/deno task client '(chat:[^']+)'/)![1]!;
    watcher = await ChatClient.connect({ hostname: "127.0.0.1", port, name: "watcher" });
    // The page is served (embedded in the program), over HTTP and HTTPS.
    const page = await fetch(`http://127.0.0.1:${webPort}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /^<!doctype html>/i);
    using https = Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(`${dir}/chat-cert.pem`)],
    });
    const secure = await fetch(`https://127.0.0.1:${httpsPort}/app.js`, { client: https });
    assert.equal(secure.status, 200);
    await secure.body?.cancel();
    // And its WebSocket says welcome.
    const socket = new WebSocket(`ws://127.0.0.1:${webPort}/ws`);
    const welcome = new Promise<string>((resolve, reject) => {
      socket.onmessage = (event) => resolve(String(event.data));
      socket.onerror = () => reject(new Error("the WebSocket failed"));
    });
    socket.onopen = () => socket.send('{"type":"hello","name":"page"}');
    assert.match(await within(welcome, "the page's welcome"), /^\{"type":"welcome"/);
    const socketClosed = new Promise((resolve) => socket.onclose = resolve);
    socket.close();
    await socketClosed;

    // Over TLS with the invite; the client remembers the key in its configuration folder.
    client = spawnDeno(
      ["run", ...clientFlags, "client.ts", invite, "--name", "ci", "--log", log],
      "piped",
      { HOME: dir, DENO_DIR: await denoDir() },
    );
    clientOutput = client.output();
    const stdin = client.stdin.getWriter();
    await stdin.write(encoder.encode("build finished\n"));
    await stdin.close();
    const seen = await within(
      (async () => {
        for await (const frame of watcher) {
          if (isMessage(frame) && frame.from === "ci") return frame;
        }
        throw new Error("The watcher was disconnected");
      })(),
      "ci's message",
    );
    assert.equal(seen.text, "build finished");

    const result = await within(clientOutput, "the client to exit");
    clientOutput = undefined;
    const clientText = new TextDecoder().decode(result.stdout) +
      new TextDecoder().decode(result.stderr);
    assert.doesNotMatch(clientText, PERMISSION_ERROR_REGEXP);
    assert.equal(new TextDecoder().decode(result.stderr), "");
    assert.equal(result.code, 0);

    server.kill("SIGTERM");
    const info = await within(watcher.closed, "the server to say goodbye");
    assert.equal(info.error?.code, "shutting_down");
    serverStatus = await within(server.status, "the server to exit");
    assert.equal(serverStatus.code, 0);
    const stdout = await within(serverOut.done, "the server's output");
    const stderr = await within(serverErr.done, "the server's errors");
    assert.match(stdout, /SIGTERM: shutting down/);
    assert.match(stdout, / stopped$/m);
    assert.doesNotMatch(stdout + stderr, PERMISSION_ERROR_REGEXP);
    assert.equal(stderr, "");
    // The flags let the server keep its database and key, and the client write its log and
    // the server's key.
    assert.ok((await Deno.stat(db)).size > 0, "the database file");
    assert.ok((await Deno.stat(`${dir}/chat-key.pem`)).size > 0, "the server's key file");
    assert.match(await Deno.readTextFile(log), new RegExp(`^--- .*localhost:${tlsPort} ---$`, "m"));
    assert.match(
      await Deno.readTextFile(`${dir}/.config/chat/known_servers.json`),
      /SHA256:/,
      "the known servers file",
    );
  } finally {
    if (clientOutput) {
      stopQuietly(client);
      await clientOutput.catch(() => {});
    }
    await watcher?.close();
    if (serverStatus === undefined) {
      stopQuietly(server);
      await server.status;
    }
    await serverOut.done.catch(() => {});
    await serverErr.done.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

/** `count` free ports, different from each other and from `taken`. */
function distinctFreePorts(count: number, taken: number[]): number[] {
  const ports = new Set(taken);
  while (ports.size < taken.length + count) ports.add(freePort());
  return [...ports].slice(taken.length);
}

/** Kills a process that may already have exited. */
function stopQuietly(child: Deno.ChildProcess | undefined): void {
  try {
    child?.kill("SIGKILL");
  } catch {
    // It has already exited.
  }
}

function isMessage(frame: ChatEvent): frame is MessageFrame {
  return frame.type === "message";
}
