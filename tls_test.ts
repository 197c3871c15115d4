/**
 * TLS, pinned keys, invites and private servers, with real processes: `server.ts` and
 * `client.ts` run with exactly their tasks' permissions, in folders of their own (the server's
 * key beside its database, the client's identity and known servers in its own "computer").
 *
 * @module
 */

import assert from "node:assert/strict";
import { ChatClient } from "./net/chat_client.ts";
import { loadOrCreateIdentity } from "./ui/config.ts";
import {
  denoDir,
  freePort,
  joinRoom,
  RawClient,
  reap,
  type ServerProcess,
  startServerProcess,
  stopServerProcess,
  StreamText,
  taskFlags,
  until,
  within,
  withServer,
  withTempDir,
  withTls,
} from "./test_util.ts";

const PROJECT_DIR = new URL(".", import.meta.url).pathname;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const clientFlags = await taskFlags("client");

/** What a client run printed, and how it ended. */
interface ClientRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `client.ts` from a pipe on `home` (its own configuration folder: another computer), with
 * `input` as what it reads, and collects what it printed.
 */
async function runClient(home: string, args: string[], input = ""): Promise<ClientRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...clientFlags, "client.ts", ...args],
    cwd: PROJECT_DIR,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: {
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      HOME: home,
      DENO_DIR: await denoDir(),
      XDG_CONFIG_HOME: `${home}/.config`,
    },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(encoder.encode(input));
  await writer.close();
  const output = await within(child.output(), "the client to exit");
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A server process with TLS on a port of its own, keeping its key in `dir`. */
interface TlsServer {
  process: ServerProcess;
  tlsPort: number;
  /** The server's key fingerprint, from its banner. */
  fingerprint: string;
  /** The invite its banner prints for this computer. */
  invite: string;
}

/** Starts `server.ts` with its database (and so its key) in `dir`, plain and TLS ports given. */
async function startTlsServer(
  dir: string,
  ports: { plain: number; tls: number },
  extraArgs: string[] = [],
): Promise<TlsServer> {
  const process = await startServerProcess(
    `${dir}/chat.db`,
    ports.plain,
    ["--tls-port", String(ports.tls), ...extraArgs],
  );
  await within(process.stdout.waitFor("deno task client '"), "the server's invite");
  const text = process.stdout.text;
  const fingerprint = text.match(/The server's key: (SHA256:\S+)/)?.[1];
  const invite = text.match(/deno task client '(chat:\/\/[^']+)'/)?.[1];
  assert.ok(fingerprint && invite, `no key or invite in the banner:\n${text}`);
  return { process, tlsPort: ports.tls, fingerprint, invite };
}

/** Someone watching the chat on the plain port, in-process. */
function watch(port: number, name = "watcher"): Promise<ChatClient> {
  return ChatClient.connect({ hostname: "127.0.0.1", port, name });
}

/** Ports for one server, kept across its restarts. */
function freePorts(): { plain: number; tls: number } {
  const plain = freePort();
  let tls = freePort();
  while (tls === plain) tls = freePort();
  return { plain, tls };
}

/** The fingerprints a text names. */
function fingerprintsIn(text: string): string[] {
  return text.match(/SHA256:[A-Za-z0-9+/]{43}/g) ?? [];
}

Deno.test("an invite connects a fresh identity over TLS with no question, and the key is remembered", () =>
  withTempDir(async (dir) => {
    const ports = freePorts();
    const server = await startTlsServer(`${dir}`, ports);
    let watcher: ChatClient | undefined;
    try {
      watcher = await watch(ports.plain);
      const home = `${dir}/laptop`;
      const run = await runClient(home, [
        server.invite,
        "--name",
        "ann",
        "--identity",
        `${home}/ann.json`,
      ], "hello over tls\n");
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr, "");
      const said = await until(watcher, "message", (f) => f.from === "ann");
      assert.equal(said.text, "hello over tls");
      const known = await Deno.readTextFile(`${home}/known_servers.json`);
      assert.ok(known.includes(server.fingerprint), known);
    } finally {
      await watcher?.close();
      await reap(server.process);
    }
  }));

Deno.test("a known address answering with another key is refused, both keys named, nothing sent", () =>
  withTempDir(async (dir) => {
    const ports = freePorts();
    const home = `${dir}/laptop`;
    // The invite names localhost: that is the address the client knows the key at.
    const where = `localhost:${ports.tls}`;
    const identity = ["--identity", `${home}/ann.json`];
    let server = await startTlsServer(dir, ports);
    const old = server.fingerprint;
    let watcher: ChatClient | undefined;
    try {
      const first = await runClient(home, [server.invite, "--name", "ann", ...identity], "hi\n");
      assert.equal(first.code, 0, first.stderr);
      await stopServerProcess(server.process, "SIGTERM");
      // Someone else's server on the same address: the key file is gone, a new key is made.
      await Deno.remove(`${dir}/chat-key.pem`);
      server = await startTlsServer(dir, ports);
      assert.notEqual(server.fingerprint, old);
      // The operator is warned: the database is from before, its key is not.
      await within(server.process.stdout.waitFor("Made a NEW TLS key"), "the warning");
      assert.match(
        server.process.stdout.text,
        /Made a NEW TLS key.*will be told this server's key changed/,
      );
      watcher = await watch(ports.plain);

      for (const target of [where, `chat://localhost:${ports.tls}/?fp=${inviteKey(old)}`]) {
        const run = await runClient(home, [target, "--name", "ann", ...identity], "secret\n");
        assert.equal(run.code, 1, `${target}: ${run.stderr}`);
        assert.deepEqual(fingerprintsIn(run.stderr).slice(0, 2), [old, server.fingerprint]);
        assert.match(run.stderr, /--fingerprint SHA256:|invite/);
        assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
      }
      // Nothing reached the chat: the refusal came before the hello.
      assert.doesNotMatch(server.process.stdout.text, /ann/);
      // The person accepts the new key as the message says.
      const accepted = await runClient(home, [
        where,
        "--fingerprint",
        server.fingerprint,
        "--name",
        "ann",
        ...identity,
      ], "new key checked\n");
      assert.equal(accepted.code, 0, accepted.stderr);
    } finally {
      await watcher?.close();
      await reap(server.process);
    }
  }));

/** The invite form of a fingerprint: base64url, as `formatInvite` writes it. */
function inviteKey(fingerprint: string): string {
  return fingerprint.slice("SHA256:".length).replaceAll("+", "-").replaceAll("/", "_");
}

Deno.test("a renewed certificate with the same key is accepted silently", () =>
  withTempDir(async (dir) => {
    const ports = freePorts();
    const home = `${dir}/laptop`;
    let server = await startTlsServer(dir, ports);
    try {
      const first = await runClient(home, [server.invite, "--name", "ann"], "one\n");
      assert.equal(first.code, 0, first.stderr);
      const before = await Deno.readTextFile(`${dir}/chat-cert.pem`);
      await stopServerProcess(server.process, "SIGTERM");
      await Deno.remove(`${dir}/chat-cert.pem`);
      server = await startTlsServer(dir, ports);
      assert.match(server.process.stdout.text, /renew/i);
      assert.notEqual(await Deno.readTextFile(`${dir}/chat-cert.pem`), before);
      const again = await runClient(home, [`127.0.0.1:${ports.tls}`, "--name", "ann"], "two\n");
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stderr, "");
    } finally {
      await reap(server.process);
    }
  }));

Deno.test("a script meeting a server for the first time is refused unless it gives the key or asks for trust on first use", () =>
  withTempDir(async (dir) => {
    const ports = freePorts();
    const server = await startTlsServer(dir, ports);
    const where = `127.0.0.1:${ports.tls}`;
    try {
      const refused = await runClient(`${dir}/a`, [where, "--name", "ann"], "hi\n");
      assert.equal(refused.code, 1);
      assert.ok(refused.stderr.includes(server.fingerprint), refused.stderr);
      assert.match(refused.stderr, /invite|--fingerprint/);

      const wrong = `SHA256:${"A".repeat(43)}`;
      const mismatch = await runClient(`${dir}/b`, [where, "--fingerprint", wrong], "hi\n");
      assert.equal(mismatch.code, 1);
      assert.deepEqual(fingerprintsIn(mismatch.stderr).slice(0, 2), [wrong, server.fingerprint]);

      const given = await runClient(
        `${dir}/c`,
        [where, "--fingerprint", server.fingerprint],
        "hi\n",
      );
      assert.equal(given.code, 0, given.stderr);

      const tofu = await runClient(`${dir}/d`, [where, "--tofu", "--name", "dan"], "hi\n");
      assert.equal(tofu.code, 0, tofu.stderr);
      // Remembered: the next run needs no --tofu.
      const later = await runClient(`${dir}/d`, [where, "--name", "dan"], "again\n");
      assert.equal(later.code, 0, later.stderr);
    } finally {
      await reap(server.process);
    }
  }));

Deno.test("a server trusted at one address is the same server at another of its addresses", () =>
  withTempDir(async (dir) => {
    const ports = freePorts();
    const server = await startTlsServer(dir, ports);
    const home = `${dir}/laptop`;
    try {
      const first = await runClient(home, [server.invite, "--name", "ann"], "one\n");
      assert.equal(first.code, 0, first.stderr);
      // `localhost` is another name (and the invite said localhost: try the IP too).
      for (const other of [`127.0.0.1:${ports.tls}`, `localhost:${ports.tls}`]) {
        const run = await runClient(home, [other, "--name", "ann"], `via ${other}\n`);
        assert.equal(run.code, 0, `${other}: ${run.stderr}`);
      }
    } finally {
      await reap(server.process);
    }
  }));

Deno.test("a password keeps out who lacks it, pipe and nc alike, and lets in who gives it", () =>
  withTempDir(async (dir) => {
    const ports = freePorts();
    await Deno.writeTextFile(`${dir}/password`, "open sesame\n");
    const server = await startTlsServer(dir, ports, ["--password-file", `${dir}/password`]);
    let nc: RawClient | undefined;
    try {
      const without = await runClient(`${dir}/a`, [server.invite, "--name", "ann"], "hi\n");
      assert.equal(without.code, 1);
      assert.match(without.stderr, /password.*--password-file/i);

      await Deno.writeTextFile(`${dir}/wrong`, "open barley\n");
      const wrong = await runClient(`${dir}/a`, [
        server.invite,
        "--name",
        "ann",
        "--password-file",
        `${dir}/wrong`,
      ], "hi\n");
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /password/i);

      const right = await runClient(`${dir}/a`, [
        server.invite,
        "--name",
        "ann",
        "--password-file",
        `${dir}/password`,
      ], "let in\n");
      assert.equal(right.code, 0, right.stderr);

      // nc on the plain port is asked, and a wrong answer is asked again.
      nc = await RawClient.open(ports.plain);
      await nc.linesUntil((line) => /name/i.test(line));
      await nc.write("bob\n");
      await nc.linesUntil((line) => /^Password/.test(line));
      await nc.write("nope\n");
      const again = await nc.linesUntil((line) => /^Password/.test(line));
      assert.match(again.join("\n"), /Wrong password/);
      await nc.write("open sesame\n");
      await nc.linesUntil((line) => line.includes("Joined"));
    } finally {
      nc?.close();
      await reap(server.process);
    }
  }));

Deno.test("an allowlist admits the identities it lists and no one else, nc included", () =>
  withTempDir(async (dir) => {
    const ports = freePorts();
    const ann = await loadOrCreateIdentity(`${dir}/ann/ann.json`);
    await Deno.writeTextFile(`${dir}/allowed`, `# friends\n${ann.facts.fingerprint} ann\n`);
    const server = await startTlsServer(dir, ports, ["--allow", `${dir}/allowed`]);
    let nc: RawClient | undefined;
    try {
      const admitted = await runClient(`${dir}/ann`, [
        server.invite,
        "--name",
        "ann",
        "--identity",
        `${dir}/ann/ann.json`,
      ], "on the list\n");
      assert.equal(admitted.code, 0, admitted.stderr);

      const other = await runClient(`${dir}/bob`, [
        server.invite,
        "--name",
        "bob",
        "--identity",
        `${dir}/bob/bob.json`,
      ], "let me in\n");
      assert.equal(other.code, 1);
      assert.match(other.stderr, /not .*(list|admit)|allow/i);

      const anonymous = await runClient(`${dir}/eve`, [server.invite, "--name", "eve"], "hi\n");
      assert.equal(anonymous.code, 1);

      nc = await RawClient.open(ports.plain);
      await nc.linesUntil((line) => /name/i.test(line));
      await nc.write("mallory\n");
      const refusal = await nc.linesUntil((line) => /allow|admit|list/i.test(line));
      assert.ok(refusal.length > 0);
    } finally {
      nc?.close();
      await reap(server.process);
    }
  }));

Deno.test("the plain port still serves nc, and a third-party TLS client gets the text face over TLS", () =>
  withTempDir(async (dir) => {
    const ports = freePorts();
    const server = await startTlsServer(dir, ports);
    let watcher: ChatClient | undefined;
    let nc: RawClient | undefined;
    try {
      watcher = await watch(ports.plain);
      nc = await RawClient.open(ports.plain);
      await nc.linesUntil((line) => /name/i.test(line));
      await nc.write("carol\ncarol over nc\n");
      assert.equal(
        (await until(watcher, "message", (f) => f.from === "carol")).text,
        "carol over nc",
      );

      for (const [tool, args] of thirdPartyTls(ports.tls)) {
        if (!await installed(tool)) {
          console.log(`skipped ${tool}: not installed`);
          continue;
        }
        const name = `via_${tool}`;
        const child = new Deno.Command(tool, {
          args,
          stdin: "piped",
          stdout: "piped",
          stderr: "null",
        }).spawn();
        const out = new StreamText(child.stdout);
        const writer = child.stdin.getWriter();
        try {
          await within(out.waitFor("name"), `${tool} to be asked for a name`);
          await writer.write(encoder.encode(`${name}\nhello from ${tool}\n`));
          const said: { text: string } = await until(watcher, "message", (f) => f.from === name);
          assert.equal(said.text, `hello from ${tool}`);
          await watcher.say(`hi ${tool}`);
          await within(out.waitFor(`hi ${tool}`), `${tool} to show the reply`);
        } finally {
          await writer.close().catch(() => {});
          child.kill();
          await child.status;
          await out.done.catch(() => {});
        }
      }
    } finally {
      nc?.close();
      await watcher?.close();
      await reap(server.process);
    }
  }));

/** `openssl s_client` and `socat OPENSSL:` on the TLS port, not checking the certificate. */
function thirdPartyTls(port: number): [string, string[]][] {
  return [
    ["openssl", ["s_client", "-quiet", "-connect", `127.0.0.1:${port}`]],
    ["socat", ["-", `OPENSSL:127.0.0.1:${port},verify=0`]],
  ];
}

/** Whether a program is on the PATH. */
async function installed(program: string): Promise<boolean> {
  try {
    const { code } = await new Deno.Command("sh", {
      args: ["-c", `command -v ${program}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return code === 0;
  } catch {
    return false;
  }
}

Deno.test("a one-time invite lets one person into a private server without the password, once", () =>
  withTempDir(async (dir) =>
    withServer(async (server) => {
      const invites = server.invites({
        oneTime: true,
        room: "#dev",
        hosts: ["127.0.0.1", "localhost"],
      });
      assert.equal(invites.length, 2);
      // One secret for every address of the invite.
      const secrets = new Set(invites.map((invite) => invite.split("#key=")[1]));
      assert.equal(secrets.size, 1);
      const watcher = await ChatClient.connect({
        hostname: "127.0.0.1",
        port: server.addr.port,
        name: "watcher",
        password: "hunter2",
      });
      try {
        await joinRoom(watcher, "#dev");
        const first = await runClient(`${dir}/a`, [invites[0]!, "--name", "ann"], "in #dev\n");
        assert.equal(first.code, 0, first.stderr);
        const said = await until(watcher, "message", (f) => f.from === "ann");
        assert.equal(said.room, "#dev");
        const again = await runClient(`${dir}/b`, [invites[1]!, "--name", "bob"], "me too\n");
        assert.equal(again.code, 1);
        assert.match(again.stderr, /password/i);
      } finally {
        await watcher.close();
      }
    }, await withTls({ db: false, password: "hunter2" }))
  ));

Deno.test("a private server asks an openssl user for the password without warning of clear text", () =>
  withTempDir(async (dir) => {
    if (!await installed("openssl")) {
      console.log("skipped: openssl is not installed");
      return;
    }
    const ports = freePorts();
    await Deno.writeTextFile(`${dir}/password`, "open sesame\n");
    const server = await startTlsServer(dir, ports, ["--password-file", `${dir}/password`]);
    const child = new Deno.Command("openssl", {
      args: ["s_client", "-quiet", "-connect", `127.0.0.1:${ports.tls}`],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const out = new StreamText(child.stdout);
    const writer = child.stdin.getWriter();
    try {
      await within(out.waitFor("name"), "the name question");
      await writer.write(encoder.encode("olga\n"));
      await within(out.waitFor("Password"), "the password question");
      assert.match(out.text, /Password \(it shows as you type; the connection is encrypted\):/);
      await writer.write(encoder.encode("open sesame\n"));
      await within(out.waitFor("Joined"), "olga to join");
    } finally {
      await writer.close().catch(() => {});
      child.kill();
      await child.status;
      await out.done.catch(() => {});
      await reap(server.process);
    }
  }));
