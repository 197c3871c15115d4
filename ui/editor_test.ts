/**
 * Tests for the line editor without a terminal: editing keys, typed and pasted text, history,
 * completion, and the row layout and width math the screen relies on.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  cellWidth,
  cleanInput,
  type Completer,
  type EditorAction,
  fitWidth,
  LineEditor,
  MAX_INPUT_LENGTH,
  rowsAboveAfterResize,
  wrapCells,
} from "./editor.ts";
import type { KeyEvent, KeyName } from "./keys.ts";
import { displayWidth } from "./render.ts";

function key(name: KeyName): KeyEvent {
  return { type: "key", name };
}

function typed(text: string): KeyEvent {
  return { type: "text", text };
}

function pasted(text: string): KeyEvent {
  return { type: "paste", text };
}

/** Feeds keys to an editor; returns the actions that were not `none`. */
function press(editor: LineEditor, ...events: KeyEvent[]): EditorAction[] {
  return events.map((event) => editor.handleKey(event)).filter((a) => a.type !== "none");
}

/** An editor with `text` typed into it. */
function editorWith(text: string, options: { completer?: Completer } = {}): LineEditor {
  const editor = new LineEditor(options);
  editor.handleKey(typed(text));
  return editor;
}

// ==== Editing ====

Deno.test("LineEditor edits at the cursor: Left, Right, Home, End, Backspace, Delete", () => {
  const editor = editorWith("helo");
  press(editor, key("left"), typed("l"), key("home"), key("delete"), typed("H"), key("end"));
  assert.equal(editor.text, "Hello");
  assert.equal(editor.cursor, 5);
  press(editor, key("backspace"), key("left"), key("left"), key("backspace"));
  assert.equal(editor.text, "Hll");
  assert.equal(editor.cursor, 1);
});

Deno.test("LineEditor kills words and to either end: Ctrl+W, Ctrl+U, Ctrl+K, Alt+D", () => {
  const editor = editorWith("one two  three");
  press(editor, key("delete-word-left"));
  assert.equal(editor.text, "one two  ");
  press(editor, key("delete-word-left"));
  assert.equal(editor.text, "one ");
  press(editor, typed("two three"), key("word-left"), key("word-left"), key("kill-to-end"));
  assert.equal(editor.text, "one ");
  press(editor, typed("x y"), key("word-left"), key("kill-to-start"));
  assert.equal(editor.text, "y");
  press(editor, key("home"), key("delete-word-right"));
  assert.equal(editor.text, "");
});

Deno.test("LineEditor keeps a letter and the accent typed after it as one character", () => {
  const editor = editorWith("cafe");
  press(editor, typed("\u0301"));
  assert.equal(editor.text, "cafe\u0301");
  assert.equal(editor.cursor, 4, "four characters: c, a, f, é");
  press(editor, key("backspace"));
  assert.equal(editor.text, "caf");
});

Deno.test("LineEditor drops control characters and bidi overrides, keeping newlines and tabs", () => {
  assert.equal(cleanInput("a\x1b[31mb\u202Ec\r\nd\te\rf\x07"), "a[31mbc\nd\te\nf");
  const editor = new LineEditor();
  press(editor, pasted("x\x1b]0;title\x07y"));
  assert.equal(editor.text, "x]0;titley");
});

Deno.test("LineEditor: Ctrl+C clears a line with text, and only on an empty line asks to quit", () => {
  const editor = editorWith("half a thought");
  assert.deepEqual(press(editor, key("interrupt")), []);
  assert.equal(editor.text, "");
  assert.deepEqual(press(editor, key("interrupt")), [{ type: "interrupt" }]);
});

Deno.test("LineEditor: Ctrl+D deletes forward, and only on an empty line means the end", () => {
  const editor = editorWith("ab");
  assert.deepEqual(press(editor, key("home"), key("eof")), []);
  assert.equal(editor.text, "b");
  press(editor, key("eof"));
  assert.deepEqual(press(editor, key("eof")), [{ type: "eof" }]);
});

// ==== Typed and pasted ====

/** What Enter submits after the given keys. */
function submit(...events: KeyEvent[]): { text: string; typed: boolean } {
  const editor = new LineEditor();
  const [action] = press(editor, ...events, key("enter"));
  assert.equal(action?.type, "submit");
  assert.equal(editor.text, "", "the line is empty after Enter");
  return action.type === "submit" ? action.line : { text: "", typed: false };
}

Deno.test("LineEditor says a line is typed only when its start was typed", () => {
  assert.deepEqual(submit(typed("/who")), { text: "/who", typed: true });
  assert.deepEqual(submit(typed("//x")), { text: "//x", typed: true });
  assert.deepEqual(submit(pasted("/who")), { text: "/who", typed: false });
  assert.deepEqual(submit(pasted("a\n/quit\n//x")), { text: "a\n/quit\n//x", typed: false });
  assert.deepEqual(submit(typed("/"), pasted("/x")), { text: "//x", typed: false });
  assert.deepEqual(submit(typed("/me "), pasted("waves\nhi")), {
    text: "/me waves\nhi",
    typed: true,
  });
  assert.deepEqual(submit(pasted("x"), key("home"), typed("/")), { text: "/x", typed: true });
  assert.deepEqual(submit(typed("/"), pasted("x"), key("home"), key("delete")), {
    text: "x",
    typed: false,
  });
});

Deno.test("LineEditor recalls lines with Up and Down, with what was pasted still pasted", () => {
  const editor = new LineEditor();
  press(editor, pasted("/who"), key("enter"), typed("/rooms"), key("enter"), typed("draft"));
  press(editor, key("up"));
  assert.equal(editor.text, "/rooms");
  const [first] = press(editor, key("up"), key("enter"));
  assert.deepEqual(first, { type: "submit", line: { text: "/who", typed: false } });
  press(editor, key("up"), key("up"), key("up"), key("down"), key("down"), key("down"));
  assert.equal(editor.text, "", "back down to the line being typed (the draft was sent)");
  press(editor, typed("again"), key("up"), key("down"));
  assert.equal(editor.text, "again");
});

Deno.test("LineEditor keeps no history when asked not to", () => {
  const editor = new LineEditor({ history: false });
  press(editor, typed("secret"), key("enter"), key("up"));
  assert.equal(editor.text, "");
});

// ==== Completion ====

const COMPLETER: Completer = (word, first) => {
  const words = first && word.startsWith("/")
    ? ["/join", "/j", "/who", "/whois"]
    : ["bob", "Bobby", "carol"];
  return words.filter((w) => w.toLowerCase().startsWith(word.toLowerCase()));
};

Deno.test("Tab completes a command word and adds a space", () => {
  const editor = editorWith("/jo", { completer: COMPLETER });
  press(editor, key("tab"));
  assert.equal(editor.text, "/join ");
  press(editor, typed("#dev"));
  assert.equal(editor.text, "/join #dev");
});

Deno.test("Tab extends to what the candidates share, then lists them", () => {
  const editor = editorWith("/w", { completer: COMPLETER });
  press(editor, key("tab"));
  assert.equal(editor.text, "/who");
  assert.deepEqual(press(editor, key("tab")), [{ type: "show", lines: ["/who  /whois"] }]);
  assert.equal(editor.text, "/who");
});

Deno.test("Tab completes a name in the middle of a line, adding a space only when needed", () => {
  const editor = editorWith("hi ca there", { completer: COMPLETER });
  press(editor, key("word-left"), key("left"), key("tab"));
  assert.equal(editor.text, "hi carol there");
  const second = editorWith("hi bo", { completer: COMPLETER });
  press(second, key("tab"));
  assert.equal(second.text, "hi bob", "bob and Bobby share bob");
  assert.deepEqual(press(second, key("tab")), [{ type: "show", lines: ["bob  Bobby"] }]);
});

// ==== Layout ====

Deno.test("cellWidth() counts wide characters as two columns and line breaks as none", () => {
  assert.deepEqual(["a", "中", "👍", "é", "\n", "\t"].map(cellWidth), [1, 2, 2, 1, 0, 1]);
});

Deno.test("wrapCells() starts a row where a wide character does not fit", () => {
  assert.deepEqual(wrapCells([1, 1, 1, 2, 2, 1, 1, 1, 2], 4), [0, 3, 5, 8]);
  assert.deepEqual(wrapCells([2, 2, 2], 3), [0, 1, 2]);
  assert.deepEqual(wrapCells([2], 1), [0], "a row always holds one cell");
  assert.deepEqual(wrapCells([], 5), [0]);
});

Deno.test("rowsAboveAfterResize() finds the live area after a terminal re-wrapped it", () => {
  const ascii = (n: number) => Array<number>(n).fill(1);
  // Measured in tmux: the cursor keeps to its character, and after the last one it stays on
  // that character's row.
  assert.equal(rowsAboveAfterResize({ cells: [ascii(19)], cursor: { row: 0, cell: 19 } }, 10), 1);
  assert.equal(rowsAboveAfterResize({ cells: [ascii(20)], cursor: { row: 0, cell: 20 } }, 10), 1);
  assert.equal(rowsAboveAfterResize({ cells: [ascii(10)], cursor: { row: 0, cell: 5 } }, 5), 1);
  const cjk = [1, 1, 1, 2, 2, 1, 1, 1, 2];
  assert.equal(rowsAboveAfterResize({ cells: [cjk], cursor: { row: 0, cell: 8 } }, 4), 3);
  assert.equal(rowsAboveAfterResize({ cells: [[1, 1, 2, 2]], cursor: { row: 0, cell: 4 } }, 3), 2);
  const drawn = { cells: [ascii(30), ascii(59), ascii(12)], cursor: { row: 2, cell: 12 } };
  assert.equal(rowsAboveAfterResize(drawn, 60), 2, "no change at the width it was drawn");
  assert.equal(rowsAboveAfterResize(drawn, 20), 5);
  assert.equal(rowsAboveAfterResize(drawn, 100), 2, "rows written apart are not joined");
  assert.equal(rowsAboveAfterResize({ cells: [[]], cursor: { row: 0, cell: 0 } }, 10), 0);
});

Deno.test("LineEditor.view() wraps after the prompt and keeps the last column for the cursor", () => {
  const editor = editorWith("abcdefghijklmnop");
  editor.prompt = "> ";
  const view = editor.view(11, 10);
  assert.deepEqual(view.rows, ["> abcdefgh", "ijklmnop"]);
  assert.deepEqual(view.cursor, { row: 1, column: 8, cell: 8 });
  press(editor, key("home"));
  assert.deepEqual(editor.view(11, 10).cursor, { row: 0, column: 2, cell: 2 });
});

Deno.test("LineEditor.view() moves a wide character that does not fit to the next row", () => {
  const editor = editorWith("a中文字中");
  editor.prompt = "> ";
  const view = editor.view(8, 10);
  assert.deepEqual(view.rows, ["> a中文", "字中"]);
  for (const row of view.rows) assert.ok(displayWidth(row) <= 7, `${row} fits in 7 columns`);
  assert.deepEqual(view.cells, [[1, 1, 1, 2, 2], [2, 2]]);
  assert.deepEqual(view.cursor, { row: 1, column: 4, cell: 2 });
});

Deno.test("LineEditor.view() starts a row at each line break of a paste", () => {
  const editor = new LineEditor();
  editor.prompt = "> ";
  press(editor, pasted("one\n\ntwo\n"));
  assert.deepEqual(editor.view(20, 10).rows, ["> one", "", "two", ""]);
  assert.deepEqual(editor.view(20, 10).cursor, { row: 3, column: 0, cell: 0 });
  press(editor, key("left"));
  assert.deepEqual(editor.view(20, 10).cursor, { row: 2, column: 3, cell: 3 });
});

Deno.test("LineEditor.view() shows the rows around the cursor when the line is too long", () => {
  const editor = editorWith("0123456789".repeat(10));
  editor.prompt = "> ";
  let view = editor.view(11, 3);
  assert.equal(view.rows.length, 3);
  assert.equal(view.rows.at(-1), "89", "the end, where the cursor is");
  press(editor, key("home"));
  view = editor.view(11, 3);
  assert.deepEqual(view.rows, ["> 01234567", "8901234567", "8901234567"]);
  assert.deepEqual(view.cursor, { row: 0, column: 2, cell: 2 });
  press(editor, key("end"), key("kill-to-start"), typed("short"));
  assert.deepEqual(editor.view(11, 3).rows, ["> short"]);
});

Deno.test("LineEditor.view() gives way to a short prompt when the prompt leaves no room", () => {
  const editor = editorWith("hi");
  editor.prompt = "\x1b[1mann\x1b[0m #a-long-room-name> ";
  assert.deepEqual(editor.view(20, 5).rows, ["> hi"]);
  assert.deepEqual(editor.view(80, 5).rows, ["\x1b[1mann\x1b[0m #a-long-room-name> hi"]);
});

/** A small deterministic random number generator (mulberry32), for repeatable edits. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("LineEditor.view() after any edits equals the view of the same line typed at once", () => {
  const next = random(42);
  const pieces = ["a", "bc ", "中", "文字", "\u0301", " ", "word ", "é", "👍"];
  const keys: KeyName[] = ["left", "right", "home", "end", "backspace", "delete", "word-left"];
  const editor = new LineEditor();
  editor.prompt = "ann> ";
  for (let step = 0; step < 500; step++) {
    const roll = next();
    if (roll < 0.5) press(editor, typed(pieces[Math.floor(next() * pieces.length)]!));
    else if (roll < 0.55) press(editor, pasted("x\ny"));
    else press(editor, key(keys[Math.floor(next() * keys.length)]!));
    const columns = 6 + Math.floor(next() * 10);
    const fresh = new LineEditor();
    fresh.prompt = "ann> ";
    press(fresh, typed(editor.text));
    const cursor = editor.cursor;
    for (let i = fresh.cursor; i > cursor; i--) press(fresh, key("left"));
    assert.deepEqual(editor.view(columns, 1000), fresh.view(columns, 1000), `step ${step}`);
  }
});

Deno.test("LineEditor types and draws a 6000-character line in linear time", () => {
  const editor = new LineEditor();
  editor.prompt = "ann #lobby> ";
  const started = performance.now();
  for (let i = 0; i < 6000; i++) {
    editor.handleKey(typed(i % 7 === 0 ? " " : "x"));
    editor.view(80, 8);
  }
  const typing = performance.now() - started;
  assert.equal(editor.text.length, 6000);
  assert.ok(typing < 1000, `typing took ${typing.toFixed(0)} ms`);
  // Editing in the middle redoes only the rows from there that are in view.
  press(editor, key("home"));
  const middle = performance.now();
  for (let i = 0; i < 2000; i++) {
    editor.handleKey(typed("y"));
    editor.view(80, 8);
  }
  assert.ok(performance.now() - middle < 1000);
});

Deno.test("LineEditor takes a 200,000-character paste at once and cuts what is beyond", () => {
  const editor = new LineEditor();
  const started = performance.now();
  press(editor, pasted("z".repeat(MAX_INPUT_LENGTH + 5)));
  editor.view(80, 8);
  assert.ok(performance.now() - started < 2000);
  assert.equal(editor.text.length, MAX_INPUT_LENGTH);
  assert.ok(editor.takeCut());
  assert.ok(!editor.takeCut(), "said once");
});

Deno.test("fitWidth() cuts text to a width with ... and leaves short text alone", () => {
  assert.equal(fitWidth("hello", 5), "hello");
  assert.equal(fitWidth("hello world", 8), "hello...");
  assert.equal(fitWidth("中文中文", 6), "中...");
  assert.equal(fitWidth("\x1b[2mdim text\x1b[0m", 20), "\x1b[2mdim text\x1b[0m");
  assert.equal(fitWidth("abc", 2), "ab");
});
