/**
 * Tests for the client's own files: where the configuration folder is, the identity made on
 * first run (private to its owner) and kept after, what was last seen on each server, and the
 * servers trusted (their keys, and the addresses they were reached at).
 *
 * @module
 */

import assert from "node:assert/strict";
import { generateIdentity } from "../net/identity.ts";
import { withTempDir } from "../test_util.ts";
import {
  ConfigError,
  configFolder,
  KNOWN_SERVERS_FILE,
  KnownServers,
  loadOrCreateIdentity,
  SeenFile,
} from "./config.ts";

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

// ==== Known servers ====

const KEY_A = "SHA256:" + "A".repeat(43);
const KEY_B = "SHA256:" + "B".repeat(43);

Deno.test("KnownServers.pathBeside() puts known_servers.json beside the identity", () => {
  assert.equal(KNOWN_SERVERS_FILE, "known_servers.json");
  assert.equal(
    KnownServers.pathBeside("/home/ann/.config/chat/identity.json"),
    "/home/ann/.config/chat/known_servers.json",
  );
  assert.equal(
    KnownServers.pathBeside("C:\\Users\\ann\\AppData\\Roaming\\chat\\identity.json"),
    "C:\\Users\\ann\\AppData\\Roaming\\chat\\known_servers.json",
  );
  assert.equal(KnownServers.pathBeside("identity.json"), "known_servers.json");
});

Deno.test("KnownServers starts empty without a file, and writes one on the first trust", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/config/chat/known_servers.json`;
    const known = KnownServers.open(path);
    assert.equal(known.at("chat.lan:5051"), undefined);
    assert.equal(known.trusts(KEY_A), false);
    assert.throws(() => Deno.statSync(path), Deno.errors.NotFound, "opening writes nothing");
    known.trust("chat.lan:5051", KEY_A);
    assert.equal(known.at("chat.lan:5051"), KEY_A);
    assert.deepEqual(JSON.parse(Deno.readTextFileSync(path)), {
      servers: { [KEY_A]: ["chat.lan:5051"] },
    });
    assert.ok(Deno.readTextFileSync(path).endsWith("}\n"), "a text file, ending in a newline");
    if (Deno.build.os !== "windows") {
      assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
      assert.equal(Deno.statSync(`${dir}/config/chat`).mode! & 0o777, 0o700);
    }
    assert.deepEqual(
      [...Deno.readDirSync(`${dir}/config/chat`)].map((e) => e.name),
      ["known_servers.json"],
      "no temporary file left beside it",
    );
  });
});

Deno.test("KnownServers trusts a key at every address it was reached at, and reopens the same", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/known_servers.json`;
    const known = KnownServers.open(path);
    known.trust("chat.lan:5051", KEY_A);
    known.trust("10.0.0.5:5051", KEY_A);
    known.trust("10.0.0.5:5051", KEY_A); // again: no duplicate
    known.trust("other.lan:5051", KEY_B);
    const again = KnownServers.open(path);
    for (const list of [known, again]) {
      assert.equal(list.at("chat.lan:5051"), KEY_A);
      assert.equal(list.at("10.0.0.5:5051"), KEY_A);
      assert.equal(list.at("other.lan:5051"), KEY_B);
      assert.equal(list.at("chat.lan:5050"), undefined, "an address is host and port");
      assert.equal(list.trusts(KEY_A), true, "at whatever address");
      assert.equal(list.trusts(KEY_B), true);
      assert.equal(list.trusts("SHA256:" + "C".repeat(43)), false);
    }
    assert.deepEqual(JSON.parse(Deno.readTextFileSync(path)).servers, {
      [KEY_A]: ["chat.lan:5051", "10.0.0.5:5051"],
      [KEY_B]: ["other.lan:5051"],
    });
  });
});

Deno.test("KnownServers replaces the key trusted at an address, and forgets a key left nowhere", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/known_servers.json`;
    const known = KnownServers.open(path);
    known.trust("chat.lan:5051", KEY_A);
    known.trust("10.0.0.5:5051", KEY_A);
    known.trust("chat.lan:5051", KEY_B);
    assert.equal(known.at("chat.lan:5051"), KEY_B);
    assert.equal(known.at("10.0.0.5:5051"), KEY_A, "the old key is still trusted elsewhere");
    known.trust("10.0.0.5:5051", KEY_B);
    assert.equal(known.trusts(KEY_A), false, "trusted nowhere now");
    assert.deepEqual(JSON.parse(Deno.readTextFileSync(path)).servers, {
      [KEY_B]: ["chat.lan:5051", "10.0.0.5:5051"],
    });
  });
});

Deno.test("KnownServers refuses a broken file in one line, and leaves it as it is", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/known_servers.json`;
    for (const text of ["not json", "", "null", "42", '"text"', "[]", '{"servers":"x"}']) {
      Deno.writeTextFileSync(path, text);
      assert.throws(
        () => KnownServers.open(path),
        (error: unknown) =>
          error instanceof ConfigError &&
          /not a list of trusted servers.*delete it/.test(error.message),
        text,
      );
      assert.equal(Deno.readTextFileSync(path), text, "never written over");
    }
  });
});

Deno.test("KnownServers keeps what it can read of a file and skips entries that are not keys", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/known_servers.json`;
    Deno.writeTextFileSync(
      path,
      JSON.stringify({
        servers: { [KEY_A]: ["chat.lan:5051", 7, null], [KEY_B]: "10.0.0.5", "not a key": ["x:1"] },
      }),
    );
    const known = KnownServers.open(path);
    assert.equal(known.at("chat.lan:5051"), KEY_A);
    assert.equal(known.trusts(KEY_B), false);
    known.trust("10.0.0.5:5051", KEY_B);
    assert.deepEqual(JSON.parse(Deno.readTextFileSync(path)), {
      servers: { [KEY_A]: ["chat.lan:5051"], [KEY_B]: ["10.0.0.5:5051"] },
    });
  });
});

Deno.test("KnownServers without a file, or with one it cannot write, lasts as long as the program", async () => {
  const memory = KnownServers.open(undefined);
  memory.trust("chat.lan:5051", KEY_A);
  assert.equal(memory.at("chat.lan:5051"), KEY_A);
  await withTempDir((dir) => {
    Deno.writeTextFileSync(`${dir}/file`, "a file, not a folder");
    const path = `${dir}/file/known_servers.json`;
    const told: string[] = [];
    const error = console.error;
    console.error = (...data: unknown[]) => told.push(data.join(" "));
    try {
      const known = KnownServers.open(path);
      known.trust("chat.lan:5051", KEY_A);
      known.trust("10.0.0.5:5051", KEY_B);
      assert.equal(known.at("chat.lan:5051"), KEY_A, "still trusted in memory");
      assert.equal(known.at("10.0.0.5:5051"), KEY_B);
    } finally {
      console.error = error;
    }
    assert.equal(told.length, 1, "told once");
    assert.match(told[0]!, /^client: cannot keep the trusted servers in .*known_servers\.json: /);
  });
});
