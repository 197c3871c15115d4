/**
 * Tests for bans: addresses compared as addresses (every textual form of one address, IPv4 and
 * its IPv4-mapped IPv6 form, networks in CIDR notation), names in any case, identities, expiry,
 * and that bans outlast a restart.
 *
 * @module
 */

import assert from "node:assert/strict";
import { withTempDir } from "../test_util.ts";
import { addressGroup, Bans, inNetwork, parseIp, parseNetwork } from "./bans.ts";
import { ChatStore } from "./store.ts";

/** Every textual form of one address must read as the same 128 bits. */
const SAME_ADDRESSES: string[][] = [
  ["10.0.0.5", "::ffff:10.0.0.5", "::FFFF:10.0.0.5", "0:0:0:0:0:ffff:a00:5", "[::ffff:a00:5]"],
  ["2001:db8::1", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:DB8:0:0::1", "[2001:db8::1]"],
  ["::1", "0:0:0:0:0:0:0:1", "0000::0001"],
  ["fe80::1:2", "fe80:0:0:0:0:0:1:2"],
];

for (const forms of SAME_ADDRESSES) {
  Deno.test(`parseIp() reads ${forms.join(", ")} as one address`, () => {
    const bits = forms.map(parseIp);
    assert.ok(bits[0] !== undefined, forms[0]);
    for (const [i, b] of bits.entries()) assert.equal(b, bits[0], forms[i]);
  });
}

for (const bad of ["10.0.0", "10.0.0.256", "1::2::3", "12345::", "g::1", "::1%eth0", "bob", ""]) {
  Deno.test(`parseIp() refuses ${JSON.stringify(bad)}`, () => {
    assert.equal(parseIp(bad), undefined);
  });
}

Deno.test("a network in CIDR notation holds its addresses and no others", () => {
  const cases: [string, string[], string[]][] = [
    ["10.0.0.0/24", ["10.0.0.0", "10.0.0.255", "::ffff:10.0.0.9"], ["10.0.1.0", "11.0.0.1", "::1"]],
    ["10.0.0.5", ["10.0.0.5", "::ffff:a00:5"], ["10.0.0.6"]],
    ["0.0.0.0/0", ["1.2.3.4", "255.255.255.255"], ["::1", "2001:db8::1"]],
    ["2001:db8::/32", ["2001:db8::1", "2001:db8:ffff::"], ["2001:db9::", "10.0.0.1"]],
    ["::ffff:10.0.0.0/120", ["10.0.0.77"], ["10.0.1.77"]],
  ];
  for (const [network, inside, outside] of cases) {
    const parsed = parseNetwork(network);
    assert.ok(parsed.ok, network);
    for (const address of inside) assert.ok(inNetwork(parseIp(address)!, parsed.value), address);
    for (const address of outside) {
      assert.ok(!inNetwork(parseIp(address)!, parsed.value), `${address} in ${network}`);
    }
  }
  for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/x", "10.0.0.0/8/8"]) {
    assert.ok(!parseNetwork(bad).ok, bad);
  }
});

Deno.test("Bans.find() matches an address ban whatever form the ban or the address takes", () => {
  const bans = new Bans();
  const target = Bans.target("::FFFF:127.0.0.1");
  assert.ok(target.ok && target.value.kind === "address");
  bans.add(target.value, { by: "console" });
  for (const address of ["127.0.0.1", "::ffff:127.0.0.1", "0:0:0:0:0:ffff:7f00:1"]) {
    assert.equal(bans.find({ address })?.target, "::FFFF:127.0.0.1", address);
  }
  assert.equal(bans.find({ address: "127.0.0.2" }), undefined);
  const network = Bans.target("2001:db8::/48");
  assert.ok(network.ok);
  bans.add(network.value, { by: "console" });
  assert.ok(bans.find({ address: "2001:0db8:0000:0042::7" }));
  assert.equal(bans.find({ address: "2001:db8:1::7" }), undefined);
});

Deno.test("Bans.target() reads identities, addresses and names, and refuses what is none", () => {
  const fingerprint = `SHA256:${"A".repeat(43)}`;
  assert.deepEqual(Bans.target(fingerprint), {
    ok: true,
    value: { kind: "identity", key: fingerprint, target: fingerprint },
  });
  const name = Bans.target("Bob");
  assert.ok(name.ok && name.value.kind === "name" && name.value.key === "bob");
  for (const bad of ["SHA256:short", "999.1.1.1", "a b", "10.0.0.0/40"]) {
    assert.ok(!Bans.target(bad).ok, bad);
  }
});

Deno.test("Bans.find() matches names in any case or look-alike form, and identities", () => {
  let now = 0;
  const bans = new Bans({ now: () => now });
  const name = Bans.target("Mallory");
  const key = Bans.target(`SHA256:${"B".repeat(43)}`);
  assert.ok(name.ok && key.ok);
  bans.add(name.value, { by: "console", minutes: 1 });
  bans.add(key.value, { by: "ann (op)", reason: "spam" });
  assert.ok(bans.find({ name: "MALLORY" }));
  assert.ok(bans.find({ name: "ｍａｌｌｏｒｙ" }));
  assert.equal(bans.find({ fingerprint: `SHA256:${"B".repeat(43)}` })?.reason, "spam");
  now = 60_001;
  assert.equal(bans.find({ name: "mallory" }), undefined, "a ban for a minute ends");
  assert.deepEqual(bans.list().map((b) => b.kind), ["identity"]);
});

Deno.test("bans are kept in the store and outlast a restart; lifted ones do not", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/chat.db`;
    const first = ChatStore.open(path);
    const bans = new Bans({ store: first });
    for (const text of ["10.1.0.0/16", "eve", `SHA256:${"C".repeat(43)}`]) {
      const target = Bans.target(text);
      assert.ok(target.ok);
      bans.add(target.value, { by: "console" });
    }
    const eve = Bans.target("eve");
    assert.ok(eve.ok);
    assert.ok(bans.remove(eve.value));
    first.close();
    const second = ChatStore.open(path);
    try {
      const again = new Bans({ store: second });
      assert.ok(again.find({ address: "::ffff:10.1.2.3" }));
      assert.ok(again.find({ fingerprint: `SHA256:${"C".repeat(43)}` }));
      assert.equal(again.find({ name: "eve" }), undefined);
    } finally {
      second.close();
    }
  });
});

Deno.test("addressGroup() counts an IPv6 address with its /64, and an IPv4 address alone", () => {
  assert.equal(addressGroup("10.0.0.5"), "10.0.0.5");
  assert.equal(addressGroup("2001:db8:1:2:3:4:5:6"), addressGroup("2001:db8:1:2::9"));
  assert.notEqual(addressGroup("2001:db8:1:2::9"), addressGroup("2001:db8:1:3::9"));
  assert.equal(addressGroup("2001:db8:1:2::9"), "2001:db8:1:2::/64");
  assert.equal(addressGroup("-"), "-");
});
