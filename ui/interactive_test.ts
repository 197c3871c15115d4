/**
 * Tests for the terminal chat's helpers.
 *
 * @module
 */

import assert from "node:assert/strict";
import { suggestName } from "./interactive.ts";

Deno.test("suggestName() turns any text into a name that passes the name rules", () => {
  assert.equal(suggestName("john.doe"), "john_doe");
  assert.equal(suggestName("ann"), "ann");
  assert.equal(suggestName(""), "guest");
  assert.equal(suggestName("server"), "guest");
  assert.equal(suggestName("SERVER"), "guest");
  assert.equal(suggestName("a".repeat(40)), "a".repeat(24));
  assert.equal(suggestName("x".repeat(20) + ".abcdefghij"), "x".repeat(20) + "_abc");
});

Deno.test("suggestName() cuts a name with characters outside the BMP to 24 characters", () => {
  // U+20BB7 is a letter used in Japanese names; in UTF-16 it takes two code units.
  assert.equal(suggestName("a" + "\u{20BB7}".repeat(30)), "a" + "\u{20BB7}".repeat(23));
});
