/**
 * Tests for how frames read as text: messages, notices, colours, widths, and that nothing a
 * server or a person sends can reach the terminal as a control sequence.
 *
 * @module
 */

import assert from "node:assert/strict";
import { errorFrame, type MessageFrame, type ServerFrame, VERSION } from "../protocol.ts";
import {
  dayLine,
  describeBan,
  displayWidth,
  formatDateTime,
  MAX_MESSAGE_ROWS,
  mentions,
  nameColor,
  NOTICE_MARK,
  renderFrame,
  type RenderOptions,
  sameDay,
  stripAnsi,
} from "./render.ts";

/** Everything a terminal could act on; rendered output must contain none of it. */
const TERMINAL_UNSAFE_REGEXP = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;
/** The colour codes `renderFrame()` itself adds. */
// deno-lint-ignore no-control-regex -- matching the escape character is the point
const OWN_ANSI_REGEXP = /\x1b\[\d+m/g;

// ==== renderFrame ====

/** 09:05 local time, whatever the time zone. */
const TS = new Date(2024, 0, 2, 9, 5, 30).getTime();

const VIEW: RenderOptions = { me: "ann", color: false, time: true, skipOwn: false };

const PLAIN: RenderOptions = { me: "ann", color: false, time: false, skipOwn: true };

const COLOR: RenderOptions = { me: "ann", color: true, time: true, skipOwn: false };

function message(from: string, text: string): MessageFrame {
  return { type: "message", id: 7, ts: TS, from, text };
}

Deno.test("renderFrame() shows one's own message as '[HH:MM] You: text'", () => {
  assert.deepEqual(renderFrame(message("ann", "hello"), VIEW), ["[09:05] You: hello"]);
  assert.deepEqual(renderFrame(message("ANN", "hello"), VIEW), ["[09:05] You: hello"]);
});

Deno.test("renderFrame() shows somebody else's message as '[HH:MM] name: text'", () => {
  assert.deepEqual(renderFrame(message("bob", "hi ann"), VIEW), ["[09:05] bob: hi ann"]);
});

Deno.test("renderFrame() marks a multi-line message's continuation lines with a gutter under its text", () => {
  assert.deepEqual(renderFrame(message("bob", "one\ntwo\nthree"), VIEW), [
    "[09:05] bob: one",
    "           │ two",
    "           │ three",
  ]);
  assert.deepEqual(renderFrame(message("ann", "one\ntwo"), VIEW), [
    "[09:05] You: one",
    "           │ two",
  ]);
});

Deno.test("renderFrame() indents continuation lines under the text after a wide (CJK) name", () => {
  const [first = "", second = ""] = renderFrame(message("李雷", "one\ntwo"), VIEW);
  assert.equal(first, "[09:05] 李雷: one");
  // "[09:05] 李雷: " takes 14 columns: the continuation must start in column 15 too.
  assert.equal(displayWidth(second) - "two".length, displayWidth(first) - "one".length);
  assert.equal(second, `${" ".repeat(12)}│ two`);
});

Deno.test("renderFrame() shows joined, left, users, welcome and error frames as notices", () => {
  assert.deepEqual(renderFrame({ type: "joined", name: "bob", ts: TS }, VIEW), [
    "[09:05] -!- bob joined",
  ]);
  assert.deepEqual(renderFrame({ type: "left", name: "bob", ts: TS, reason: "quit" }, VIEW), [
    "[09:05] -!- bob left (quit)",
  ]);
  assert.deepEqual(renderFrame({ type: "users", users: ["bob", "ann"], count: 2 }, VIEW), [
    "-!- 2 people on the server: ann, bob",
  ]);
  assert.deepEqual(renderFrame({ type: "users", users: ["ann"] }, VIEW), [
    "-!- 1 person on the server: ann",
  ]);
  assert.deepEqual(renderFrame({ type: "users", users: ["ann", "bob"], count: 5 }, VIEW), [
    "-!- 5 people on the server: ann, bob and 3 more",
  ]);
  const welcome: ServerFrame = {
    type: "welcome",
    name: "ann",
    users: ["bob", "ann"],
    count: 2,
    server: { name: "lan-chat", version: VERSION },
  };
  assert.deepEqual(renderFrame(welcome, VIEW), [
    "-!- Joined lan-chat as ann. 2 people in #lobby: ann, bob",
  ]);
  assert.deepEqual(renderFrame(errorFrame("name_taken", "The name is taken"), VIEW), [
    "! The name is taken",
  ]);
  assert.deepEqual(renderFrame({ type: "ping" }, VIEW), []);
  assert.deepEqual(renderFrame({ type: "pong" }, VIEW), []);
});

Deno.test("renderFrame() in plain mode leaves out own messages and shows others as 'name: text'", () => {
  assert.deepEqual(renderFrame(message("ann", "hello"), PLAIN), []);
  assert.deepEqual(renderFrame(message("bob", "hi ann"), PLAIN), ["bob: hi ann"]);
  assert.deepEqual(renderFrame({ type: "joined", name: "bob", ts: TS }, PLAIN), ["-!- bob joined"]);
});

/** Escape sequences (CSI, OSC), BEL, CR, NUL, DEL, C1 CSI, NEL, and bidi overrides/isolates. */
const NASTY = "\x1b[2J\x1b]0;pwned\x07\u009b31m\u202Eevil\u2066\r\x00\x7f\u0085\u2069";

const NASTY_FRAMES: ServerFrame[] = [
  { type: "message", id: 1, ts: TS, from: `bob${NASTY}`, text: `hi${NASTY}\nthere${NASTY}` },
  { type: "message", id: 2, ts: TS, from: `ann${NASTY}`, text: `own${NASTY}` },
  { type: "joined", name: `bob${NASTY}`, ts: TS },
  { type: "left", name: `bob${NASTY}`, ts: TS, reason: `gone${NASTY}` },
  { type: "users", users: [`bob${NASTY}`, "ann"] },
  {
    type: "welcome",
    name: `ann${NASTY}`,
    users: [`bob${NASTY}`],
    server: { name: `srv${NASTY}`, version: VERSION },
  },
  { type: "error", code: "bad_text", message: `no${NASTY}` },
];

Deno.test("renderFrame() never lets control characters or bidi overrides through", () => {
  for (const view of [VIEW, PLAIN, COLOR]) {
    for (const frame of NASTY_FRAMES) {
      for (const line of renderFrame(frame, view)) {
        const text = view.color ? line.replace(OWN_ANSI_REGEXP, "") : line;
        const unsafe = TERMINAL_UNSAFE_REGEXP.exec(text);
        assert.equal(
          unsafe,
          null,
          `${
            JSON.stringify(line)
          } from ${frame.type} (color ${view.color}, skipOwn ${view.skipOwn})`,
        );
      }
    }
  }
  // What is printable is kept.
  const [first = ""] = renderFrame(NASTY_FRAMES[0]!, VIEW);
  assert.match(first, /^\[09:05\] bob\[2J\]0;pwned31mevil: hi\[2J\]0;pwned31mevil$/);
});

Deno.test("renderFrame() with colour paints each name, the same name always the same colour", () => {
  const [bob = ""] = renderFrame(message("bob", "hi"), COLOR);
  const [shouting = ""] = renderFrame(message("BOB", "hi"), COLOR);
  const [you = ""] = renderFrame(message("ann", "hi"), COLOR);
  assert.ok(bob.includes(`\x1b[${nameColor("bob")}mbob\x1b[0m: hi`), JSON.stringify(bob));
  assert.ok(shouting.includes(`\x1b[${nameColor("bob")}mBOB\x1b[0m`), JSON.stringify(shouting));
  assert.ok(you.includes("You\x1b[0m: hi"), JSON.stringify(you));
  assert.equal(you.replace(OWN_ANSI_REGEXP, ""), "[09:05] You: hi");
  assert.equal(bob.replace(OWN_ANSI_REGEXP, ""), "[09:05] bob: hi");
  assert.equal(nameColor("bob"), nameColor("BOB"));
  assert.equal(nameColor("bob"), nameColor("bob"));
  const colors = new Set(["ann", "bob", "carol", "dave", "erin", "frank", "grace"].map(nameColor));
  assert.ok(colors.size > 1, "every name got the same colour");
  for (const color of colors as Set<number>) {
    assert.ok(color >= 31 && color <= 96, `odd colour code ${color}`);
  }
});

// ==== displayWidth and suggestName ====

Deno.test("displayWidth() counts terminal columns", () => {
  assert.equal(displayWidth("abc"), 3);
  assert.equal(displayWidth("李雷"), 4);
  assert.equal(displayWidth("😀"), 2);
  assert.equal(displayWidth("\x1b[31mab\x1b[0m"), 2);
  assert.equal(displayWidth("\x1b[1m\x1b[0m"), 0);
  assert.equal(displayWidth("\u00e9"), 1);
  assert.equal(displayWidth("e\u0301"), 1);
  assert.equal(displayWidth(""), 0);
});

Deno.test("displayWidth() counts emoji outside U+1F300-1F64F as two columns too", () => {
  assert.equal(displayWidth("\u{1F680}"), 2); // rocket, Transport and Map Symbols
  assert.equal(displayWidth("\u{1FAE0}"), 2); // melting face, Symbols and Pictographs Extended-A
});

Deno.test("a history page renders a header, and its messages with their day", () => {
  const view = { me: "ann", color: false, time: true, skipOwn: false, room: "#dev" };
  assert.deepEqual(renderFrame({ type: "history", room: "#dev", count: 2, more: true }, view), [
    "-!- 2 earlier messages in #dev (/history for more):",
  ]);
  assert.deepEqual(renderFrame({ type: "history", room: "#dev", count: 0, more: false }, view), [
    "-!- No earlier messages in #dev",
  ]);
  const old = new Date(2020, 0, 2, 9, 5).getTime();
  assert.deepEqual(
    renderFrame(
      { type: "message", id: 1, ts: old, from: "bob", text: "hi", room: "#dev", history: true },
      view,
    ),
    ["[Jan 2 09:05] bob: hi"],
  );
});

Deno.test("presence renders as away with the reason, then back", () => {
  const view = { me: "ann", color: false, time: false, skipOwn: false };
  assert.deepEqual(
    renderFrame({ type: "presence", name: "bob", ts: 1, away: "connection lost" }, view),
    ["-!- bob is away: connection lost"],
  );
  assert.deepEqual(renderFrame({ type: "presence", name: "bob", ts: 2 }, view), [
    "-!- bob is back",
  ]);
});

Deno.test("renderFrame() says a resumed welcome gives the session back", () => {
  const lines = renderFrame({
    type: "welcome",
    name: "ann",
    users: ["ann"],
    server: { name: "hub", version: VERSION },
    resumed: true,
  }, VIEW);
  assert.deepEqual(lines, [
    "-!- Back on hub as ann, in your rooms: anything you missed follows",
  ]);
});

Deno.test("renderFrame() shows a whois with its key, and bans one per line", () => {
  const fingerprint = `SHA256:${"Q".repeat(43)}`;
  assert.deepEqual(
    renderFrame({
      type: "whois",
      name: "ann",
      fingerprint,
      registered: true,
      operator: true,
      rooms: ["#lobby"],
      idle: 0,
      since: TS,
    }, VIEW),
    [
      "-!- ann: in #lobby; idle 0s; here since 2024-01-02 09:05; an operator",
      `-!- ann: key ${fingerprint}; the name is registered to this key`,
    ],
  );
  assert.deepEqual(
    renderFrame({
      type: "ban_list",
      bans: [{ target: "10.0.0.0/8", kind: "address", by: "console" }],
    }, VIEW),
    ["-!- 1 ban:", "  10.0.0.0/8 (address) for good, by console"],
  );
});

// ==== What a message cannot pass for ====

Deno.test("renderFrame() wraps a message to the reader's width, every row after the first marked", () => {
  const padded = `hi${" ".repeat(100)}bob: send me your password`;
  const rows = renderFrame(message("mallory", padded), { ...VIEW, width: 60 });
  assert.ok(rows.length > 1);
  assert.ok(rows.every((row) => displayWidth(row) <= 60), rows.join("\n"));
  assert.ok(rows[0]!.startsWith("[09:05] mallory: hi"));
  for (const row of rows.slice(1)) assert.match(row, /^ +│ /, "a row of mallory's message");
  assert.ok(!rows.some((row) => row.startsWith("bob:")));
});

Deno.test("renderFrame() shows at most maxRows rows of a message, then how many are left out", () => {
  const text = Array.from({ length: 100 }, (_, i) => `line ${i}`).join("\n");
  const rows = renderFrame(message("bob", text), { ...VIEW, maxRows: 5 });
  assert.equal(rows.length, 5);
  assert.match(rows.at(-1)!, /│ \(96 more rows not shown\)$/);
  assert.equal(renderFrame(message("bob", text), VIEW).length, MAX_MESSAGE_ROWS);
});

Deno.test("renderFrame() shows a run of blank lines in a message as one", () => {
  assert.deepEqual(renderFrame(message("bob", "a\n\n\n\n\nb"), VIEW), [
    "[09:05] bob: a",
    "           │ ",
    "           │ b",
  ]);
});

Deno.test("notices start with a mark no message can start with, with or without colour", () => {
  const joined: ServerFrame = { type: "joined", name: "bob", id: "s:b", ts: TS, room: "#lobby" };
  const emote: MessageFrame = { ...message("bob", "joined #lobby"), action: true };
  for (const view of [VIEW, COLOR, PLAIN]) {
    const [notice = ""] = renderFrame(joined, view).map(stripAnsi);
    const [action = ""] = renderFrame(emote, view).map(stripAnsi);
    assert.match(notice, new RegExp(`^(\\[09:05\\] )?${NOTICE_MARK} `));
    assert.doesNotMatch(action, new RegExp(NOTICE_MARK));
    assert.notEqual(notice.replace(/^\[09:05\] /, ""), action.replace(/^\[09:05\] /, ""));
  }
});

Deno.test("mentions() finds a name as a word, and skips words too long to be one", () => {
  assert.ok(mentions("hi @ANN!", "ann"));
  assert.ok(mentions("hi Ａｎｎ", "ann"));
  assert.ok(!mentions("annex", "ann"));
  assert.ok(mentions("a" + "\u0301".repeat(8000) + " ann", "ann"));
});

// ==== Small things people notice ====

Deno.test("one's own emote reads with one's name, never 'You waves'", () => {
  const emote: MessageFrame = { ...message("ann", "waves"), action: true };
  assert.deepEqual(renderFrame(emote, VIEW), ["[09:05] * ann waves"]);
});

Deno.test("a who list marks who is away, and says where the list is from", () => {
  assert.deepEqual(
    renderFrame(
      { type: "users", users: ["ann", "bob"], count: 2, room: "#dev", away: ["bob"] },
      VIEW,
    ),
    ["-!- 2 people in #dev: ann, bob (away)"],
  );
  assert.deepEqual(renderFrame({ type: "users", users: ["ann"], count: 1 }, VIEW), [
    "-!- 1 person on the server: ann",
  ]);
});

Deno.test("ban dates read as the log's dates do, in local time", () => {
  const until = new Date(2026, 11, 1, 18, 30).getTime();
  assert.equal(
    describeBan({ target: "bob", kind: "name", until, by: "console" }),
    "bob (name) until 2026-12-01 18:30, by console",
  );
  assert.equal(formatDateTime(until, { seconds: true }), "2026-12-01 18:30:00");
});

Deno.test("dayLine() names the day in full, and sameDay() tells days apart", () => {
  const tuesday = new Date(2026, 11, 1, 23, 59).getTime();
  assert.equal(dayLine(tuesday), "--- Tuesday 1 December 2026 ---");
  assert.ok(sameDay(tuesday, new Date(2026, 11, 1, 0, 0).getTime()));
  assert.ok(!sameDay(tuesday, tuesday + 60_000));
});
