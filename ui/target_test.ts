/**
 * Tests for where the client connects and how it knows the server: reading an invite or an
 * address (TLS port by default, the plain one with --plain), and the dialer that pins the key
 * from the invite, --fingerprint or the known servers, accepts a known key at a new address,
 * asks (or trusts on first use) for a new one, and stops at a changed one.
 *
 * @module
 */

import assert from "node:assert/strict";
import { makeCertificate } from "../net/certs.ts";
import { DialRefusal, type Transport } from "../net/conn.ts";
import { dialTcp } from "../net/tcp.ts";
import { listenTls } from "../net/tls.ts";
import { DEFAULT_PORT, DEFAULT_TLS_PORT, formatInvite, type ServerAddress } from "../protocol.ts";
import { testCertificate } from "../test_util.ts";
import { KnownServers } from "./config.ts";
import { type ConnectionFacts, dialerFor, type DialSettings, parseTarget } from "./target.ts";

const TIMEOUT_MS = 5_000;

// ==== parseTarget ====

Deno.test("parseTarget() reads host and host:port, with the TLS port unless --plain", () => {
  const cases: [string, boolean, ServerAddress][] = [
    ["chat.lan", false, { hostname: "chat.lan", port: DEFAULT_TLS_PORT }],
    ["chat.lan", true, { hostname: "chat.lan", port: DEFAULT_PORT }],
    [" chat.lan:6000 ", false, { hostname: "chat.lan", port: 6000 }],
    ["10.0.0.5:5050", false, { hostname: "10.0.0.5", port: 5050 }],
    ["10.0.0.5", true, { hostname: "10.0.0.5", port: 5050 }],
    ["[::1]:5051", false, { hostname: "::1", port: 5051 }],
    ["[::1]:7000", true, { hostname: "::1", port: 7000 }],
    ["[::1]", false, { hostname: "::1", port: DEFAULT_TLS_PORT }],
    ["::1", false, { hostname: "::1", port: DEFAULT_TLS_PORT }],
    ["::1", true, { hostname: "::1", port: DEFAULT_PORT }],
    ["2001:db8::1", false, { hostname: "2001:db8::1", port: DEFAULT_TLS_PORT }],
    ["[fe80::1:5050]", false, { hostname: "fe80::1:5050", port: DEFAULT_TLS_PORT }],
  ];
  assert.equal(DEFAULT_TLS_PORT, 5051);
  assert.equal(DEFAULT_PORT, 5050);
  for (const [text, plain, address] of cases) {
    assert.deepEqual(
      parseTarget(text, { plain }),
      { ok: true, value: { address, invited: false } },
      `${text} ${plain ? "--plain" : ""}`,
    );
  }
});

Deno.test("parseTarget() refuses what is not an address with the address rules' own errors", () => {
  const cases: [string, RegExp][] = [
    ["", /^Host is empty$/],
    ["a b", /^Invalid host name "a b"$/],
    ["host:0", /^Invalid port "0": use 1 to 65535$/],
    ["chat.lan:", /^Invalid port "": use 1 to 65535$/],
    ["1.2.3.999", /^Invalid IPv4 address "1\.2\.3\.999"/],
    [
      "http://chat.lan:5051",
      /^Invalid address ".*": give host:port without http:\/\/ \(chat\.lan:5051\)$/,
    ],
    ["fe80::1:5050", /^Ambiguous address "fe80::1:5050": .*\[fe80::1\]:5050/],
  ];
  for (const [text, why] of cases) {
    for (const plain of [false, true]) {
      const result = parseTarget(text, { plain });
      assert.ok(!result.ok, text);
      assert.match(result.error, why);
    }
  }
});

Deno.test("parseTarget() reads an invite: address, key, room and secret", async () => {
  const { fingerprint } = await testCertificate();
  const invite = formatInvite({
    address: { hostname: "192.168.1.20", port: 5051 },
    fingerprint,
    room: "#lobby",
    secret: "s3cret-s3cret-s3cret",
  });
  assert.deepEqual(parseTarget(` ${invite} `, { plain: false }), {
    ok: true,
    value: {
      address: { hostname: "192.168.1.20", port: 5051 },
      fingerprint,
      room: "#lobby",
      secret: "s3cret-s3cret-s3cret",
      invited: true,
    },
  });
  const bare = formatInvite({ address: { hostname: "::1", port: 6001 }, fingerprint });
  assert.deepEqual(parseTarget(bare, { plain: false }), {
    ok: true,
    value: { address: { hostname: "::1", port: 6001 }, fingerprint, invited: true },
  });
});

Deno.test("parseTarget() reads an invite as TLS even in a plain session, and refuses a broken one", async () => {
  const { fingerprint } = await testCertificate();
  const invite = formatInvite({ address: { hostname: "chat.lan", port: 5051 }, fingerprint });
  assert.deepEqual(parseTarget(invite, { plain: true }), {
    ok: true,
    value: { address: { hostname: "chat.lan", port: 5051 }, fingerprint, invited: true },
  });
  const broken = parseTarget("chat://chat.lan:5051/?fp=short", { plain: false });
  assert.ok(!broken.ok);
  assert.match(broken.error, /^Invalid invite/);
});

// ==== dialerFor ====

/** A TLS server with `certificate` on a free loopback port that holds each connection. */
async function withTlsServer(
  fn: (port: number, fingerprint: string) => Promise<void>,
  certificate?: { certPem: string; keyPem: string; fingerprint: string },
): Promise<void> {
  const cert = certificate ?? await testCertificate();
  const listener = await listenTls({
    hostname: "127.0.0.1",
    port: 0,
    certPem: cert.certPem,
    keyPem: cert.keyPem,
  });
  const handlers: Promise<void>[] = [];
  const connections: Transport[] = [];
  const acceptLoop = (async () => {
    for (;;) {
      const transport = await listener.accept();
      if (transport === undefined) return;
      connections.push(transport);
      handlers.push((async () => {
        const buffer = new Uint8Array(1024);
        try {
          while (await transport.read(buffer) !== null) { /* nothing is sent */ }
        } catch {
          // A refused client goes away abruptly.
        } finally {
          transport.close();
        }
      })());
    }
  })();
  try {
    await fn(listener.addr.port, cert.fingerprint);
  } finally {
    listener.close();
    await acceptLoop;
    for (const transport of connections) transport.close();
    await Promise.all(handlers);
    await listener.finished;
  }
}

/** Settings for a script (no confirm, no --tofu) with the known servers given. */
function settingsWith(known: KnownServers, more: Partial<DialSettings> = {}): DialSettings {
  return { plain: false, tofu: false, known, ...more };
}

function newFacts(): ConnectionFacts {
  return { security: "plain", fingerprint: undefined };
}

/** Dials `port` on loopback with the dialer for that address; resolves to the result. */
async function dialAt(
  port: number,
  settings: DialSettings,
  facts = newFacts(),
  fingerprint?: string,
): ReturnType<ReturnType<typeof dialerFor>> {
  const address = { hostname: "127.0.0.1", port };
  const target = fingerprint === undefined
    ? { address, invited: false }
    : { address, fingerprint, invited: true };
  const result = await dialerFor(target, settings, facts)(address, TIMEOUT_MS);
  if (result.ok) result.value.close();
  return result;
}

function refusalOf(result: Awaited<ReturnType<typeof dialAt>>): DialRefusal {
  assert.ok(!result.ok, "it connected");
  assert.ok(result.error instanceof DialRefusal, String(result.error));
  return result.error;
}

/** A confirm that fails the test if it is asked. */
function neverAsked(): Promise<boolean> {
  return Promise.reject(new Error("confirm was asked"));
}

Deno.test("dialerFor() with --plain dials plain TCP and says so", () => {
  const facts: ConnectionFacts = { security: "tls", fingerprint: undefined };
  const dial = dialerFor(
    { address: { hostname: "127.0.0.1", port: 5050 }, invited: false },
    settingsWith(KnownServers.open(undefined), { plain: true }),
    facts,
  );
  assert.equal(dial, dialTcp);
  assert.equal(facts.security, "plain");
});

Deno.test("dialerFor() uses the key remembered for the address without asking", async () => {
  await withTlsServer(async (port, fingerprint) => {
    const known = KnownServers.open(undefined);
    known.trust(`127.0.0.1:${port}`, fingerprint);
    const facts = newFacts();
    const result = await dialAt(port, settingsWith(known, { confirm: neverAsked }), facts);
    assert.ok(result.ok);
    assert.deepEqual(facts, { security: "tls", fingerprint });
  });
});

Deno.test("dialerFor() stops at a changed key: both keys and the --fingerprint command", async () => {
  await withTlsServer(async (port, fingerprint) => {
    const old = (await makeCertificate({ dns: ["localhost"], ips: [] })).fingerprint;
    const known = KnownServers.open(undefined);
    const where = `127.0.0.1:${port}`;
    known.trust(where, old);
    const facts = newFacts();
    const refusal = refusalOf(
      await dialAt(port, settingsWith(known, { tofu: true, confirm: neverAsked }), facts),
    );
    assert.equal(refusal.code, "key_changed");
    assert.ok(refusal.message.includes(old), refusal.message);
    assert.ok(refusal.message.includes(fingerprint), refusal.message);
    assert.ok(
      refusal.message.includes(`deno task client ${where} --fingerprint ${fingerprint}`),
      refusal.message,
    );
    assert.match(refusal.message, /Nothing was sent/);
    assert.doesNotMatch(refusal.message, /\n/);
    assert.equal(known.at(where), old, "the old key is still the one trusted");
    assert.equal(facts.fingerprint, undefined);
  });
});

Deno.test("dialerFor() with --fingerprint accepts the new key and remembers it", async () => {
  await withTlsServer(async (port, fingerprint) => {
    const old = (await makeCertificate({ dns: ["localhost"], ips: [] })).fingerprint;
    const known = KnownServers.open(undefined);
    const where = `127.0.0.1:${port}`;
    known.trust(where, old);
    const result = await dialAt(port, settingsWith(known, { fingerprint }));
    assert.ok(result.ok);
    assert.equal(known.at(where), fingerprint);
    assert.equal(known.trusts(old), false, "the old key was trusted only there");
    // A wrong --fingerprint is refused with what it gave.
    const refusal = refusalOf(await dialAt(port, settingsWith(known, { fingerprint: old })));
    assert.equal(refusal.code, "key_changed");
    assert.match(refusal.message, /does not have the key --fingerprint gives/);
    assert.ok(refusal.message.includes(old) && refusal.message.includes(fingerprint));
  });
});

Deno.test("dialerFor() prefers the key from an invite to the one remembered", async () => {
  await withTlsServer(async (port, fingerprint) => {
    const old = (await makeCertificate({ dns: ["localhost"], ips: [] })).fingerprint;
    const where = `127.0.0.1:${port}`;
    const known = KnownServers.open(undefined);
    known.trust(where, old);
    const facts = newFacts();
    const result = await dialAt(
      port,
      settingsWith(known, { confirm: neverAsked }),
      facts,
      fingerprint,
    );
    assert.ok(result.ok);
    assert.equal(facts.fingerprint, fingerprint);
    assert.equal(known.at(where), fingerprint, "the invite's key is remembered");
    // And an invite naming another key than the server's is refused, saying so.
    const known2 = KnownServers.open(undefined);
    known2.trust(where, fingerprint);
    const refusal = refusalOf(await dialAt(port, settingsWith(known2), newFacts(), old));
    assert.equal(refusal.code, "key_changed");
    assert.match(refusal.message, /does not have the key its invite names/);
    assert.ok(refusal.message.includes(old) && refusal.message.includes(fingerprint));
  });
});

Deno.test("dialerFor() accepts a key trusted at another address: the same server", async () => {
  await withTlsServer(async (port, fingerprint) => {
    const known = KnownServers.open(undefined);
    known.trust("chat.lan:5051", fingerprint);
    const facts = newFacts();
    const result = await dialAt(port, settingsWith(known, { confirm: neverAsked }), facts);
    assert.ok(result.ok, result.ok ? "" : String(result.error));
    assert.equal(facts.fingerprint, fingerprint);
    assert.equal(known.at(`127.0.0.1:${port}`), fingerprint, "remembered at this address too");
    assert.equal(known.at("chat.lan:5051"), fingerprint, "and still at the other");
  });
});

Deno.test("dialerFor() with --tofu trusts a first contact without asking", async () => {
  await withTlsServer(async (port, fingerprint) => {
    const known = KnownServers.open(undefined);
    const result = await dialAt(port, settingsWith(known, { tofu: true, confirm: neverAsked }));
    assert.ok(result.ok);
    assert.equal(known.at(`127.0.0.1:${port}`), fingerprint);
  });
});

Deno.test("dialerFor() asks about a first contact: yes trusts it, no refuses it", async () => {
  await withTlsServer(async (port, fingerprint) => {
    const asked: [ServerAddress, string][] = [];
    const answer = (yes: boolean) => (address: ServerAddress, fp: string) => {
      asked.push([address, fp]);
      return Promise.resolve(yes);
    };
    const known = KnownServers.open(undefined);
    const refusal = refusalOf(await dialAt(port, settingsWith(known, { confirm: answer(false) })));
    assert.equal(refusal.code, "not_trusted");
    assert.ok(refusal.message.includes(fingerprint), refusal.message);
    assert.equal(known.at(`127.0.0.1:${port}`), undefined, "nothing trusted");
    assert.equal(known.trusts(fingerprint), false);

    const result = await dialAt(port, settingsWith(known, { confirm: answer(true) }));
    assert.ok(result.ok);
    assert.equal(known.at(`127.0.0.1:${port}`), fingerprint);
    assert.deepEqual(asked, [
      [{ hostname: "127.0.0.1", port }, fingerprint],
      [{ hostname: "127.0.0.1", port }, fingerprint],
    ]);
  });
});

Deno.test("dialerFor() refuses a first contact in a script (no confirm, no --tofu)", async () => {
  await withTlsServer(async (port, fingerprint) => {
    const known = KnownServers.open(undefined);
    const refusal = refusalOf(await dialAt(port, settingsWith(known)));
    assert.equal(refusal.code, "not_trusted");
    assert.ok(refusal.message.includes(`--fingerprint ${fingerprint}`), refusal.message);
    assert.equal(known.trusts(fingerprint), false);
  });
});

Deno.test("dialerFor() asks once: reconnections use the key accepted", async () => {
  await withTlsServer(async (port, fingerprint) => {
    let asked = 0;
    const known = KnownServers.open(undefined);
    const address = { hostname: "127.0.0.1", port };
    const facts = newFacts();
    const dial = dialerFor({ address, invited: false }, {
      plain: false,
      tofu: false,
      known,
      confirm: () => Promise.resolve(++asked === 1),
    }, facts);
    for (let i = 0; i < 3; i++) {
      const result = await dial(address, TIMEOUT_MS);
      assert.ok(result.ok, `dial ${i}`);
      result.value.close();
    }
    assert.equal(asked, 1);
    assert.equal(facts.fingerprint, fingerprint);
  });
});
