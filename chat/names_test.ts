/**
 * Tests for `names.ts`: which names count as one because they look alike.
 *
 * @module
 */

import assert from "node:assert/strict";
import { looksReserved, nameSkeleton } from "./names.ts";

for (
  const [a, b, why] of [
    ["ann", "ANN", "case"],
    ["ann", "ＡＮＮ", "full-width letters"],
    ["ann", "ΑΝΝ", "Greek capitals"],
    ["ace", "асе", "Cyrillic letters"],
    ["mallory", "rnallory", "rn for m"],
    ["lann", "Iann", "capital I for l"],
    ["strasse", "Straße", "sharp s"],
  ] as const
) {
  Deno.test(`nameSkeleton() makes ${a} and ${b} one name (${why})`, () => {
    assert.equal(nameSkeleton(a), nameSkeleton(b));
  });
}

Deno.test("nameSkeleton() keeps names apart that only differ", () => {
  assert.notEqual(nameSkeleton("ann"), nameSkeleton("anna"));
  assert.notEqual(nameSkeleton("bob"), nameSkeleton("rob"));
});

Deno.test("looksReserved() catches the reserved names in any disguise", () => {
  for (const name of ["server", "SERVER", "ꜱerver", "seｒver", "ѕеrvеr"]) {
    assert.ok(looksReserved(name), name);
  }
  assert.ok(!looksReserved("servers"));
  assert.ok(!looksReserved("ann"));
});
