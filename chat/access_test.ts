/**
 * Tests for who may come in to a private server: the password, the allowlist of identity
 * fingerprints, operators, one-time invites, and the wait after wrong passwords, which doubles
 * (on a clock the test moves: no sleeps).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ErrorFrame } from "../protocol.ts";
import {
  Access,
  type Applicant,
  INVITE_LIFETIME_MS,
  PASSWORD_TRIES,
  PASSWORD_WAIT_MS,
} from "./access.ts";

const ANN_KEY = "SHA256:" + "A".repeat(43);
const BOB_KEY = "SHA256:" + "B".repeat(43);

/** Someone asking to come in from 10.0.0.5, with nothing given unless said. */
function applicant(more: Partial<Applicant> = {}): Applicant {
  return {
    fingerprint: undefined,
    operator: false,
    address: "10.0.0.5",
    password: undefined,
    invite: undefined,
    ...more,
  };
}

/** An Access on a clock the test moves. */
function withClock(options: { password?: string; allowed?: string[] }) {
  const clock = { now: 1_700_000_000_000 };
  const access = new Access({ ...options, now: () => clock.now });
  return { access, clock };
}

function assertRefused(refusal: ErrorFrame | undefined, code: string, message?: RegExp): void {
  assert.ok(refusal, "admitted");
  assert.equal(refusal.type, "error");
  assert.equal(refusal.code, code, refusal.message);
  if (message) assert.match(refusal.message, message);
  assert.doesNotMatch(refusal.message, /\n/);
}

Deno.test("Access without password or allowlist admits everyone", () => {
  const access = new Access();
  assert.equal(access.isPrivate, false);
  assert.equal(access.hasPassword, false);
  assert.equal(access.refusal(applicant()), undefined);
  assert.equal(access.refusal(applicant({ password: "anything" })), undefined);
  assert.equal(new Access({ allowed: [] }).isPrivate, false, "an empty allowlist lists nobody");
});

Deno.test("Access admits the right password and refuses a wrong or missing one", () => {
  const access = new Access({ password: "correct horse" });
  assert.equal(access.isPrivate, true);
  assert.equal(access.hasPassword, true);
  assert.equal(access.refusal(applicant({ password: "correct horse" })), undefined);
  for (const password of [undefined, ""]) {
    assertRefused(
      access.refusal(applicant({ password })),
      "password_required",
      /give its password/,
    );
  }
  for (const password of ["correct hors", "correct horse ", "Correct horse", "x".repeat(10_000)]) {
    // A fresh address each time: only the answers are compared here, not the waits.
    const refusal = access.refusal(
      applicant({ password, address: `10.0.1.${password.length % 250}` }),
    );
    assertRefused(refusal, "password_required", /^Wrong password/);
  }
  assert.equal(access.refusal(applicant({ password: "correct horse" })), undefined);
});

Deno.test("Access compares passwords as UTF-8, whatever their script", () => {
  const access = new Access({ password: "пароль 🔑" });
  assert.equal(access.refusal(applicant({ password: "пароль 🔑" })), undefined);
  assertRefused(access.refusal(applicant({ password: "пароль" })), "password_required");
});

Deno.test("Access admits the identities on its allowlist without a password", () => {
  const access = new Access({ allowed: [ANN_KEY] });
  assert.equal(access.isPrivate, true);
  assert.equal(access.hasPassword, false);
  assert.equal(access.refusal(applicant({ fingerprint: ANN_KEY })), undefined);
  assertRefused(
    access.refusal(applicant({ fingerprint: BOB_KEY })),
    "not_admitted",
    new RegExp(`does not list your identity \\(${BOB_KEY.replace(/[+/]/g, "\\$&")}\\)`),
  );
  assertRefused(
    access.refusal(applicant({ password: "a guess" })),
    "not_admitted",
    /connect with your identity/,
  );
});

Deno.test("Access with an allowlist and a password asks the others for the password", () => {
  const access = new Access({ password: "pw", allowed: new Set([ANN_KEY]) });
  assert.equal(access.refusal(applicant({ fingerprint: ANN_KEY })), undefined);
  assertRefused(access.refusal(applicant({ fingerprint: BOB_KEY })), "password_required");
  assert.equal(access.refusal(applicant({ fingerprint: BOB_KEY, password: "pw" })), undefined);
  assert.equal(access.refusal(applicant({ password: "pw" })), undefined, "anonymous too");
});

Deno.test("Access always admits the server's operators", () => {
  for (const options of [{ password: "pw" }, { allowed: [ANN_KEY] }]) {
    const access = new Access(options);
    assert.equal(access.refusal(applicant({ operator: true })), undefined);
    assert.equal(access.refusal(applicant({ operator: true, password: "wrong" })), undefined);
  }
});

Deno.test("Access admits a one-time invite once only", () => {
  for (const options of [{ password: "pw" }, { allowed: [ANN_KEY] }]) {
    const access = new Access(options);
    const invite = access.makeInvite();
    assert.match(invite, /^[A-Za-z0-9_-]{24}$/, "base64url, as invites carry it");
    assert.notEqual(access.makeInvite(), invite, "each one new");
    assert.equal(access.refusal(applicant({ invite })), undefined);
    const again = access.refusal(applicant({ invite, address: "10.0.0.6" }));
    assertRefused(again, "password" in options ? "password_required" : "not_admitted");
    assertRefused(access.refusal(applicant({ invite: "not-one-of-ours-at-all" })), again!.code);
  }
});

Deno.test("Access refuses an invite used after a day", () => {
  const { access, clock } = withClock({ password: "pw" });
  const late = access.makeInvite();
  const inTime = access.makeInvite();
  clock.now += INVITE_LIFETIME_MS - 1;
  assert.equal(access.refusal(applicant({ invite: inTime })), undefined);
  clock.now += 1;
  assertRefused(access.refusal(applicant({ invite: late })), "password_required");
});

Deno.test("Access does not use up an invite for someone admitted otherwise", () => {
  const access = new Access({ password: "pw", allowed: [ANN_KEY] });
  const invite = access.makeInvite();
  assert.equal(access.refusal(applicant({ fingerprint: ANN_KEY, invite })), undefined);
  assert.equal(access.refusal(applicant({ operator: true, invite })), undefined);
  assert.equal(access.refusal(applicant({ invite })), undefined, "still good");
  assertRefused(access.refusal(applicant({ invite })), "password_required");
});

Deno.test(`Access makes an address wait after ${PASSWORD_TRIES} wrong passwords, twice as long each time`, () => {
  const { access, clock } = withClock({ password: "pw" });
  const wrong = () => access.refusal(applicant({ password: "guess" }));
  const right = () => access.refusal(applicant({ password: "pw" }));
  assert.equal(PASSWORD_TRIES, 3);
  assert.equal(PASSWORD_WAIT_MS, 10_000);
  assertRefused(wrong(), "password_required", /try again \(2 more tries before a wait\)/);
  assertRefused(wrong(), "password_required", /try again \(1 more try before a wait\)/);
  assertRefused(wrong(), "password_required", /^Wrong password: wait 10 s before trying again$/);
  // Even the right password waits; a wrong one then does not count.
  assertRefused(right(), "rate_limited", /try again in 10 s$/);
  clock.now += 9_000;
  assertRefused(wrong(), "rate_limited", /try again in 1 s$/);
  clock.now += 1_000;
  assertRefused(wrong(), "password_required", /wait 20 s before trying again$/);
  clock.now += 20_000;
  assertRefused(wrong(), "password_required", /wait 40 s before trying again$/);
  assertRefused(right(), "rate_limited", /try again in 40 s$/);
  clock.now += 40_000;
  assert.equal(right(), undefined, "the right password after the wait");
  // And it starts again from the beginning.
  assertRefused(wrong(), "password_required", /2 more tries before a wait/);
});

Deno.test("Access caps the wait after wrong passwords at 15 minutes", () => {
  const { access, clock } = withClock({ password: "pw" });
  let last: ErrorFrame | undefined;
  for (let i = 0; i < 30; i++) {
    last = access.refusal(applicant({ password: "guess" }));
    clock.now += 60 * 60_000; // an hour between guesses: never waiting
  }
  assertRefused(last, "password_required", /wait 900 s before trying again$/);
});

Deno.test("Access counts wrong passwords per address (an IPv6 /64 as one)", () => {
  const { access } = withClock({ password: "pw" });
  for (let i = 0; i < PASSWORD_TRIES; i++) {
    access.refusal(applicant({ password: "guess", address: "10.0.0.5" }));
    access.refusal(applicant({ password: "guess", address: `2001:db8:1:2::${i + 1}` }));
  }
  assertRefused(access.refusal(applicant({ password: "pw", address: "10.0.0.5" })), "rate_limited");
  assert.equal(access.refusal(applicant({ password: "pw", address: "10.0.0.6" })), undefined);
  assertRefused(
    access.refusal(applicant({ password: "pw", address: "2001:db8:1:2::99" })),
    "rate_limited",
    /try again in 10 s/,
  );
  assert.equal(
    access.refusal(applicant({ password: "pw", address: "2001:db8:1:3::1" })),
    undefined,
  );
});

Deno.test("Access forgets wrong passwords once the right one is given", () => {
  const { access } = withClock({ password: "pw" });
  access.refusal(applicant({ password: "guess" }));
  access.refusal(applicant({ password: "guess" }));
  assert.equal(access.refusal(applicant({ password: "pw" })), undefined);
  assertRefused(
    access.refusal(applicant({ password: "guess" })),
    "password_required",
    /2 more tries before a wait/,
  );
});
