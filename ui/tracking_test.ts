/**
 * Tests for what the terminal chat follows for its prompt and completion: presence, activity in
 * other rooms, day changes, and messages waiting for acknowledgement.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ChatEvent } from "../net/chat_client.ts";
import type { WelcomeFrame } from "../protocol.ts";
import { dayLine } from "./render.ts";
import {
  Activity,
  DayMarks,
  eventTime,
  Presence,
  WAITING_MARK,
  WaitingMessages,
} from "./tracking.ts";

const TS = 1_700_000_000_000;

function welcome(name: string, users: string[]): WelcomeFrame {
  return { type: "welcome", name, users, server: { name: "test", version: "0" }, room: "#lobby" };
}

function presence(...events: ChatEvent[]): Presence {
  const people = new Presence("ann", { users: ["ann", "bob", "carol"], room: "#lobby" });
  for (const event of events) people.apply(event);
  return people;
}

Deno.test("Presence offers the people of one's rooms, not oneself", () => {
  assert.deepEqual(presence().names(), ["bob", "carol"]);
  assert.deepEqual(
    presence({ type: "room", room: "#dev", topic: "", users: ["ann", "dave"], count: 2 }).names(),
    ["bob", "carol", "dave"],
  );
});

Deno.test("Presence forgets someone who left, unless they are still in another shared room", () => {
  const left = presence({ type: "left", name: "bob", ts: TS, reason: "quit", room: "#lobby" });
  assert.deepEqual(left.names(), ["carol"]);
  const elsewhere = presence(
    { type: "room", room: "#dev", topic: "", users: ["ann", "bob"], count: 2 },
    { type: "left", name: "bob", ts: TS, reason: "left", room: "#lobby" },
  );
  assert.deepEqual(elsewhere.names(), ["bob", "carol"]);
});

Deno.test("Presence follows arrivals and renames", () => {
  const people = presence(
    { type: "joined", name: "erin", ts: TS, room: "#lobby" },
    { type: "renamed", from: "bob", to: "robert", ts: TS },
  );
  assert.deepEqual(people.names(), ["carol", "erin", "robert"]);
});

Deno.test("Presence takes a whole room list as it is and a cut one as news", () => {
  const whole = presence({ type: "users", users: ["ann", "zed"], count: 2, room: "#lobby" });
  assert.deepEqual(whole.names(), ["zed"]);
  const cut = presence({ type: "users", users: ["ann", "zed"], count: 900, room: "#lobby" });
  assert.deepEqual(cut.names(), ["bob", "carol", "zed"]);
  const server = presence({ type: "users", users: ["ann", "yann"], count: 2 });
  assert.deepEqual(server.names(), ["bob", "carol", "yann"]);
});

Deno.test("Presence forgets one's own room on leaving it, and starts over on a new session", () => {
  const people = presence(
    { type: "room", room: "#dev", topic: "", users: ["ann", "dave"], count: 2 },
    { type: "left", name: "ann", ts: TS, reason: "left", room: "#dev" },
  );
  assert.deepEqual(people.names(), ["bob", "carol"]);
  people.apply({ type: "reconnected", resumed: false, welcome: welcome("ann", ["ann", "fay"]) });
  assert.deepEqual(people.names(), ["fay"]);
});

Deno.test("Activity counts messages in other rooms until the room is visited", () => {
  const activity = new Activity();
  activity.message("#dev", "#lobby", false);
  activity.message("#lobby", "#lobby", false);
  activity.message("#DEV", "#lobby", true);
  activity.message("#ops", "#lobby", false);
  assert.deepEqual(activity.rooms(), [
    { room: "#dev", count: 2, mention: true },
    { room: "#ops", count: 1, mention: false },
  ]);
  activity.clear("#Dev");
  assert.deepEqual(activity.rooms().map((r) => r.room), ["#ops"]);
});

Deno.test("DayMarks marks the first thing of another day, history included, once", () => {
  const now = new Date(2026, 11, 1, 12, 0).getTime();
  const days = new DayMarks(now);
  const yesterday = new Date(2026, 10, 30, 23, 50).getTime();
  assert.equal(days.before(yesterday), dayLine(yesterday));
  assert.equal(days.before(yesterday + 60_000), undefined);
  assert.equal(days.before(now), dayLine(now));
  assert.equal(days.before(now + 1000), undefined);
  assert.match(dayLine(now), /^--- Tuesday 1 December 2026 ---$/);
  const tomorrow = new Date(2026, 11, 2, 0, 1).getTime();
  assert.equal(days.before(tomorrow), dayLine(tomorrow));
});

Deno.test("eventTime() reads the time of frames that have one", () => {
  assert.equal(eventTime({ type: "joined", name: "bob", ts: TS, room: "#a" }), TS);
  assert.equal(eventTime({ type: "notice", text: "hi" }), undefined);
});

Deno.test("WaitingMessages shows what waits until the client's count says it is done", () => {
  const waiting = new WaitingMessages();
  waiting.sent("You: hello", 1);
  waiting.sent("You: a long text\nof two lines", 3);
  assert.deepEqual(waiting.rows(10), [
    `${WAITING_MARK} You: hello`,
    `${WAITING_MARK} You: a long text (+1 lines) (1/3)`,
    `${WAITING_MARK} You: a long text (+1 lines) (2/3)`,
    `${WAITING_MARK} You: a long text (+1 lines) (3/3)`,
  ]);
  assert.deepEqual(waiting.rows(3).at(-1), `${WAITING_MARK} ...and 2 more waiting`);
  assert.ok(waiting.settle(2), "two of four acknowledged");
  assert.equal(waiting.length, 2);
  assert.ok(!waiting.settle(2));
  assert.ok(waiting.settle(0));
  assert.deepEqual(waiting.rows(3), []);
});
