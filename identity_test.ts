/**
 * Scenarios of identity with real programs: a client killed with `kill -9` and started again
 * with the same identity is back under its name at once with exactly what it missed; operators
 * by identity act from their own client; the database keeps no secret in clear.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ChatClient } from "./net/chat_client.ts";
import { generateIdentity, keyFacts } from "./net/identity.ts";
import { startServer } from "./server.ts";
import {
  expectError,
  StreamText,
  taskFlags,
  until,
  withChat,
  within,
  withServer,
  withTempDir,
} from "./test_util.ts";
import { runOperatorCommand } from "./ui/console.ts";

const PROJECT_DIR = new URL(".", import.meta.url).pathname;

/** `client.ts` in pipe mode with the client task's permissions, its input kept open. */
function startClient(args: string[]): {
  child: Deno.ChildProcess;
  stdout: StreamText;
  stderr: StreamText;
} {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...taskFlagsSync, "client.ts", "--plain", ...args],
    cwd: PROJECT_DIR,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
  return { child, stdout: new StreamText(child.stdout), stderr: new StreamText(child.stderr) };
}

const taskFlagsSync = await taskFlags("client");

/** Resolves once a file's text contains `marker` (the client writes it at the end of a turn). */
async function fileContains(path: string, marker: string): Promise<void> {
  await within(
    (async () => {
      while (!(await Deno.readTextFile(path).catch(() => "")).includes(marker)) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })(),
    `${marker} in ${path}`,
  );
}

Deno.test("a client killed with kill -9 and started again with its identity is back under its name at once, with exactly what it missed", async () => {
  await withTempDir(async (dir) => {
    const server = startServer({ hostname: "127.0.0.1", port: 0, db: `${dir}/chat.db` });
    const bob = await ChatClient.connect({
      hostname: "127.0.0.1",
      port: server.addr.port,
      name: "bob",
    });
    const address = `127.0.0.1:${server.addr.port}`;
    const identity = `${dir}/ann.json`;
    const args = [address, "--name", "ann", "--identity", identity];
    try {
      const first = startClient(args);
      await until(bob, "joined", (f) => f.name === "ann");
      const before = await bob.say("before the crash");
      await first.stdout.waitFor("bob: before the crash");
      await fileContains(identity.replace(/\.json$/, ".seen.json"), `:${before.id}`);
      first.child.kill("SIGKILL");
      await first.child.status;
      await first.child.stdin.close().catch(() => {});
      await Promise.all([first.stdout.done, first.stderr.done]);
      await until(bob, "presence", (f) => f.name === "ann" && f.away !== undefined);
      await bob.say("missed in the room");
      await bob.tell("ann", "missed privately");
      const second = startClient(args);
      try {
        await second.stdout.waitFor("missed privately");
        assert.equal(server.hub.member("ann")?.link.state, "live", "back at once, not held");
        const key = await keyFacts(JSON.parse(Deno.readTextFileSync(identity)).publicKey);
        assert.equal(server.hub.member("ann")?.person.key?.fingerprint, key.fingerprint);
        await until(bob, "presence", (f) => f.name === "ann" && f.away === undefined);
        await second.child.stdin.close();
        assert.equal((await second.child.status).code, 0);
        const shown = await second.stdout.done;
        assert.match(shown, /bob: missed in the room/);
        assert.match(shown, /\(private\) bob → You: missed privately|\(private\) bob: missed/);
        assert.doesNotMatch(shown, /before the crash/, "nothing it had seen is shown again");
      } finally {
        await second.stderr.done;
      }
    } finally {
      await bob.close();
      await server.close();
    }
  });
});

Deno.test("an operator by identity can kick from their own client; others cannot", async () => {
  const op = await generateIdentity();
  const fingerprint = (await keyFacts(op.identity.publicKey)).fingerprint;
  await withServer(async (server) => {
    const ann = await ChatClient.connect({
      hostname: "127.0.0.1",
      port: server.addr.port,
      name: "ann",
      identity: op.identity,
    });
    const bob = await ChatClient.connect({
      hostname: "127.0.0.1",
      port: server.addr.port,
      name: "bob",
    });
    const cy = await ChatClient.connect({
      hostname: "127.0.0.1",
      port: server.addr.port,
      name: "cy",
    });
    try {
      assert.equal(ann.welcome.operator, true);
      cy.send({ type: "kick", name: "bob" });
      await expectError(cy, "not_allowed");
      ann.send({ type: "kick", name: "bob", reason: "spam" });
      const closed = await within(bob.closed, "bob to be kicked");
      assert.equal(closed.error?.code, "kicked");
      assert.match(closed.error?.message ?? "", /spam/);
      const left = await until(cy, "left", (f) => f.name === "bob");
      assert.equal(left.reason, "kicked: spam");
      assert.match((await until(ann, "notice")).text, /Kicked bob/);
    } finally {
      await Promise.all([ann.close(), bob.close(), cy.close()]);
    }
  }, { operators: [fingerprint] });
});

Deno.test("the console's /op makes someone with a key an operator, kept across restarts", async () => {
  await withTempDir(async (dir) => {
    const { identity } = await generateIdentity();
    const db = `${dir}/chat.db`;
    const connect = (port: number, name: string, withKey: boolean) =>
      ChatClient.connect({
        hostname: "127.0.0.1",
        port,
        name,
        ...(withKey ? { identity } : {}),
      });
    const first = startServer({ hostname: "127.0.0.1", port: 0, db, graceMs: 0 });
    try {
      const ann = await connect(first.addr.port, "ann", true);
      const bob = await connect(first.addr.port, "bob", false);
      assert.match(runOperatorCommand(first, "/op bob").lines[0]!, /has no key/);
      assert.match(runOperatorCommand(first, "/op ann").lines[0]!, /is now an operator/);
      assert.match((await until(ann, "notice")).text, /You are now an operator/);
      await Promise.all([ann.close(), bob.close()]);
    } finally {
      await first.close();
    }
    const second = startServer({ hostname: "127.0.0.1", port: 0, db, graceMs: 0 });
    try {
      const ann = await connect(second.addr.port, "ann", true);
      assert.equal(ann.welcome.operator, true, "still an operator after a restart");
      ann.send({ type: "bans" });
      assert.deepEqual((await until(ann, "ban_list")).bans, []);
      assert.match(runOperatorCommand(second, "/deop ann").lines[0]!, /no longer an operator/);
      ann.send({ type: "bans" });
      await expectError(ann, "not_allowed");
      await ann.close();
    } finally {
      await second.close();
    }
  });
});

Deno.test("the database is private to its owner and keeps no resume token in clear", async () => {
  if (Deno.build.os === "windows") return;
  await withTempDir(async (dir) => {
    const db = `${dir}/chat.db`;
    let token = "";
    await withChat(["ann"], async ({ ann }) => {
      token = ann.welcome.resume ?? "";
      await ann.say("hello");
    }, { db });
    assert.match(token, /^[\w-]{22}$/);
    for (const entry of Deno.readDirSync(dir)) {
      const path = `${dir}/${entry.name}`;
      assert.equal(Deno.statSync(path).mode! & 0o777, 0o600, entry.name);
      const bytes = new TextDecoder().decode(Deno.readFileSync(path));
      assert.ok(!bytes.includes(token), `${entry.name} holds the token in clear`);
    }
  });
});
