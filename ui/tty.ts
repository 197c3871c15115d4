/**
 * Terminal helpers for `node:readline` (the server's operator console): printing above the line
 * being typed without disturbing it, and clearing what was typed. The chat client draws its own
 * screen instead (`ui/screen.ts`).
 *
 * @module
 */

import process from "node:process";
import * as readline from "node:readline";

/** Readline's editing state; its typings call it read-only, but redrawing needs to set it. */
interface EditState {
  line: string;
  cursor: number;
}

/**
 * Prints lines above the input line without disturbing what the person is typing. Readline
 * remembers how many rows the typed line took, so the line is emptied and redrawn first (which
 * also clears its wrapped rows), then the output is printed, then the typed text and the cursor
 * are put back.
 */
export function printAbove(rl: readline.Interface, lines: string[]): void {
  if (lines.length === 0) return;
  const state = rl as unknown as EditState;
  const { line, cursor } = state;
  state.line = "";
  state.cursor = 0;
  rl.prompt(true);
  readline.cursorTo(process.stdout, 0);
  readline.clearLine(process.stdout, 0);
  process.stdout.write(lines.join("\n") + "\n");
  state.line = line;
  state.cursor = cursor;
  rl.prompt(true);
}

/** Clears the prompt and whatever is typed after it, leaving the cursor at the start of its row. */
export function clearInputLine(rl: readline.Interface): void {
  readline.moveCursor(process.stdout, 0, -rl.getCursorPos().rows);
  readline.cursorTo(process.stdout, 0);
  readline.clearScreenDown(process.stdout);
}
