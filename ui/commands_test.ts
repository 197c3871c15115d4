/**
 * Tests for the command tables and how typed commands become frames.
 *
 * @module
 */

import assert from "node:assert/strict";
import { HISTORY_PAGE } from "../protocol.ts";
import { CHAT_COMMANDS, frameBuilder } from "./commands.ts";

Deno.test("/history asks for 50 earlier messages of the current room, before the oldest seen", () => {
  const history = frameBuilder(CHAT_COMMANDS, "history")!;
  assert.deepEqual(history("", { room: "#dev" }), {
    ok: true,
    value: { type: "history", room: "#dev", limit: HISTORY_PAGE },
  });
  assert.deepEqual(history("20", { room: "#dev", oldest: 77 }), {
    ok: true,
    value: { type: "history", room: "#dev", limit: 20, before: 77 },
  });
  for (const bad of ["0", "201", "1.5", "-3", "bob 0", "bob x"]) {
    const built = history(bad, { room: "#dev" });
    assert.ok(!built.ok, bad);
    assert.equal(typeof built.error, "string", bad);
  }
  assert.deepEqual(history("bob", { room: "#dev" }), {
    ok: true,
    value: { type: "history", with: "bob", limit: HISTORY_PAGE },
  });
  assert.deepEqual(history("bob 7", { room: "#dev", oldest: 77 }), {
    ok: true,
    value: { type: "history", with: "bob", limit: 7 },
  });
});
