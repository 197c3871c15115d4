/**
 * Tests for the client's own files: where the configuration folder is, the identity made on
 * first run (private to its owner) and kept after, and what was last seen on each server.
 *
 * @module
 */

import assert from "node:assert/strict";
import { generateIdentity } from "../net/identity.ts";
import { withTempDir } from "../test_util.ts";
import { ConfigError, configFolder, loadOrCreateIdentity, SeenFile } from "./config.ts";

Deno.test("configFolder() follows XDG on Linux and macOS, and APPDATA on Windows", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.equal(configFolder(env({ HOME: "/home/ann" }), "linux"), "/home/ann/.config/chat");
  assert.equal(
    configFolder(env({ HOME: "/home/ann", XDG_CONFIG_HOME: "/cfg" }), "linux"),
    "/cfg/chat",
  );
  assert.equal(
    configFolder(env({ HOME: "/Users/ann", XDG_CONFIG_HOME: "relative" }), "darwin"),
    "/Users/ann/.config/chat",
    "a relative XDG_CONFIG_HOME is ignored, as the specification says",
  );
  assert.equal(
    configFolder(env({ APPDATA: "C:\\Users\\ann\\AppData\\Roaming" }), "windows"),
    "C:\\Users\\ann\\AppData\\Roaming\\chat",
  );
  assert.equal(configFolder(env({}), "linux"), undefined);
});

Deno.test("an identity is made on first use, private to its owner, and the same key after", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/config/chat/identity.json`;
    const first = await loadOrCreateIdentity(path);
    assert.equal(first.created, true);
    assert.match(first.facts.fingerprint, /^SHA256:[\w+/]{43}$/);
    if (Deno.build.os !== "windows") {
      assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
      assert.equal(Deno.statSync(`${dir}/config/chat`).mode! & 0o777, 0o700);
    }
    const stored = JSON.parse(Deno.readTextFileSync(path));
    assert.equal(stored.type, "ed25519");
    assert.equal(stored.publicKey, first.identity.publicKey);
    const again = await loadOrCreateIdentity(path);
    assert.equal(again.created, false);
    assert.equal(again.identity.publicKey, first.identity.publicKey);
    assert.deepEqual(
      [...await again.identity.sign(new Uint8Array([1, 2, 3]))].length,
      64,
      "it signs",
    );
  });
});

Deno.test("an identity file others can read is made private again", async () => {
  if (Deno.build.os === "windows") return;
  await withTempDir(async (dir) => {
    const path = `${dir}/identity.json`;
    await loadOrCreateIdentity(path);
    Deno.chmodSync(path, 0o644);
    await loadOrCreateIdentity(path);
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
  });
});

Deno.test("a broken identity file is refused in one line that says what to do", async () => {
  await withTempDir(async (dir) => {
    const other = await generateIdentity();
    const mine = await generateIdentity();
    const cases: [string, RegExp][] = [
      ["not json", /it is not JSON/],
      ["{}", /no publicKey and privateKey/],
      [
        JSON.stringify({ publicKey: other.stored.publicKey, privateKey: mine.stored.privateKey }),
        /does not belong to the public key/,
      ],
      [JSON.stringify({ publicKey: "short", privateKey: "x" }), /not 32 bytes/],
    ];
    for (const [text, why] of cases) {
      const path = `${dir}/identity.json`;
      Deno.writeTextFileSync(path, text);
      const error = await loadOrCreateIdentity(path).then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof ConfigError, text);
      assert.match(error.message, why);
      assert.match(error.message, /--anonymous/);
      assert.doesNotMatch(error.message, /\n/);
    }
  });
});

Deno.test("SeenFile keeps the newest id seen per server, found again by the address used", async () => {
  await withTempDir((dir) => {
    const identity = `${dir}/identity.json`;
    const seen = SeenFile.open(identity);
    assert.equal(seen.lastAt("chat.lan:5050"), undefined);
    seen.note("chat.lan:5050", "server-1", 41);
    seen.note("chat.lan:5050", "server-1", 42);
    seen.flush();
    const again = SeenFile.open(identity);
    assert.equal(again.lastAt("chat.lan:5050"), 42);
    assert.equal(again.lastAt("10.0.0.5:5050"), undefined);
    if (Deno.build.os !== "windows") {
      assert.equal(Deno.statSync(`${dir}/identity.seen.json`).mode! & 0o777, 0o600);
    }
  });
});
