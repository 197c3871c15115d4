/**
 * The line editor of the terminal chat, without the terminal: what is typed (and what was
 * pasted, kept apart so that pasted text is never taken for a command), the cursor, history,
 * Tab completion, and how the prompt and the text are laid out in rows of a given width. Pure:
 * no I/O, so it is tested as it is; `ui/screen.ts` draws it.
 *
 * Everything a key does costs time in proportion to what it changes, not to the length of the
 * line: the layout is kept between keys and only redone from where the line changed, so typing
 * or pasting a long line is linear.
 *
 * @module
 */

import { sanitizeForTerminal } from "../protocol.ts";
import { displayWidth, stripAnsi } from "./render.ts";
import type { KeyEvent, KeyName } from "./keys.ts";

// ==== Characters and cells ====

const graphemes = new Intl.Segmenter();
/** Printable ASCII: one column each, the common case, measured without a regular expression. */
const ASCII_REGEXP = /^[ -~]$/;
/** Everything but the line breaks and tabs that input keeps: what a pasted block may carry. */
const KEPT_CONTROLS_REGEXP = /([\n\t])/;

/**
 * The most characters (graphemes) the line being typed may hold; a paste beyond it is cut, with
 * a word saying so. A line this long is sent as 100 messages.
 * @default {200000}
 */
export const MAX_INPUT_LENGTH = 200_000;

/** The most lines kept for Up and Down. */
export const HISTORY_SIZE = 500;

/** The longest line (in characters) kept in history: a huge paste is not worth recalling. */
export const MAX_HISTORY_LINE = 20_000;

/**
 * How many columns one character (grapheme) of the line takes on screen: two for wide East
 * Asian characters and emoji, none for a line break (which ends a row) and for invisible ones.
 */
export function cellWidth(grapheme: string): number {
  if (grapheme.length === 1 && ASCII_REGEXP.test(grapheme)) return 1;
  if (grapheme === "\n") return 0;
  if (grapheme === "\t") return 1;
  return displayWidth(grapheme);
}

/** What a character of the line shows as: a tab as a space, a line break and invisibles as nothing. */
function cellText(grapheme: string, width: number): string {
  if (grapheme === "\t") return " ";
  return width === 0 ? "" : grapheme;
}

/**
 * Input as the line keeps it: line breaks as `\n`, tabs kept, and every other control character
 * and bidirectional override dropped, so nothing typed or pasted can reach the terminal as a
 * control sequence.
 */
export function cleanInput(text: string): string {
  return text.replace(/\r\n?/g, "\n").split(KEPT_CONTROLS_REGEXP)
    .map((part) => part === "\n" || part === "\t" ? part : sanitizeForTerminal(part)).join("");
}

/** The graphemes of a string, in order. */
function splitGraphemes(text: string): string[] {
  const out: string[] = [];
  for (const { segment } of graphemes.segment(text)) out.push(segment);
  return out;
}

// ==== Rows ====

/**
 * Lays cells of the given widths out in rows of `columns` columns, the way a terminal wraps
 * them: a character that does not fit in what is left of a row (a wide one in the last column)
 * starts the next row. Returns the index of the first cell of each row (the first is `0`); a
 * row holds at least one cell, however narrow the terminal.
 */
export function wrapCells(widths: readonly number[], columns: number): number[] {
  const starts = [0];
  let column = 0;
  widths.forEach((width, i) => {
    if (column + width > columns && column > 0) {
      starts.push(i);
      column = 0;
    }
    column += width;
  });
  return starts;
}

/** The row (of {@linkcode wrapCells}) that cell `cell` lands on; past the end, the last row. */
function rowOfCell(starts: readonly number[], cell: number): number {
  let row = 0;
  while (row + 1 < starts.length && starts[row + 1]! <= cell) row++;
  return row;
}

/** What a screen drew, row by row, so that its rows can be found again after a resize. */
export interface DrawnRows {
  /** The widths of the cells of each row, as written (each row ends with a line break). */
  cells: readonly (readonly number[])[];
  /** The row the cursor is on, and the index of the cell it is on (the row's length: after it). */
  cursor: { row: number; cell: number };
}

/**
 * How many rows above the cursor the drawn rows take once the terminal has been resized to
 * `columns`. Terminals that reflow (tmux, VTE, kitty, iTerm2, Windows Terminal...) re-wrap each
 * written line to the new width and keep the cursor on its character; a row wider than the new
 * width then takes several rows. A cursor after the last cell stays on the row of that cell.
 */
export function rowsAboveAfterResize(drawn: DrawnRows, columns: number): number {
  const width = Math.max(1, columns);
  let rows = 0;
  for (let i = 0; i < drawn.cursor.row; i++) rows += wrapCells(drawn.cells[i] ?? [], width).length;
  const cells = drawn.cells[drawn.cursor.row] ?? [];
  const starts = wrapCells(cells, width);
  const cell = Math.min(drawn.cursor.cell, cells.length - 1);
  return rows + (cell < 0 ? 0 : rowOfCell(starts, cell));
}

/**
 * Cuts text to at most `columns` columns, ending it with `...` when cut. Text with colours is
 * measured without them.
 */
export function fitWidth(text: string, columns: number): string {
  if (displayWidth(text) <= columns) return text;
  const ellipsis = columns >= 3 ? "..." : "";
  const room = Math.max(0, columns - ellipsis.length);
  let out = "";
  let width = 0;
  for (const grapheme of splitGraphemes(stripAnsi(text))) {
    const w = cellWidth(grapheme);
    if (width + w > room) break;
    out += grapheme;
    width += w;
  }
  return out + ellipsis;
}

// ==== The line ====

/** A line as sent: its text, and whether its start was typed (so a command is meant). */
export interface SubmittedLine {
  /** The whole text, line breaks included. */
  text: string;
  /**
   * Whether the text starts with what the person typed: only then can it be a command (a
   * leading `/`) or use the `//` escape. Text that starts with something pasted is text.
   */
  typed: boolean;
}

/** A line kept in history: its characters and which of them were pasted. */
interface HistoryEntry {
  chars: string[];
  pasted: boolean[];
}

/** The most characters inserted with `splice()`; more are inserted by copying. */
const SPLICE_LIMIT = 1024;

/**
 * The characters of the line with their widths and origin (typed or pasted), and the cursor, in
 * characters (graphemes). Edits report the first index they changed, for the layout.
 */
class LineText {
  chars: string[] = [];
  widths: number[] = [];
  pasted: boolean[] = [];
  cursor = 0;

  get length(): number {
    return this.chars.length;
  }

  text(from = 0, to = this.chars.length): string {
    return this.chars.slice(from, to).join("");
  }

  /**
   * Inserts text at the cursor, joining it with the characters on either side when they make
   * one grapheme (a combining accent typed after its letter). Returns the first index changed.
   */
  insert(text: string, pasted: boolean): number {
    const at = this.cursor;
    const from = at > 0 ? at - 1 : at;
    const to = at < this.chars.length ? at + 1 : at;
    const before = this.text(from, at);
    const after = this.text(at, to);
    const joined = splitGraphemes(before + text + after);
    const chars: string[] = [];
    const widths: number[] = [];
    const origin: boolean[] = [];
    let offset = 0;
    let cursor = from;
    for (const char of joined) {
      chars.push(char);
      widths.push(cellWidth(char));
      origin.push(
        offset < before.length
          ? this.pasted[from]!
          : offset < before.length + text.length
          ? pasted
          : this.pasted[at]!,
      );
      if (offset < before.length + text.length) cursor++;
      offset += char.length;
    }
    this.#replace(from, to, chars, widths, origin);
    this.cursor = cursor;
    return from;
  }

  /** Removes the characters in `[from, to)`; returns the first index changed. */
  remove(from: number, to: number): number {
    if (to <= from) return this.chars.length;
    this.#replace(from, to, [], [], []);
    if (this.cursor > to) this.cursor -= to - from;
    else if (this.cursor > from) this.cursor = from;
    return from;
  }

  /** Replaces the whole line (from history); the cursor goes to its end. */
  set(chars: string[], pasted: boolean[]): number {
    this.chars = [...chars];
    this.widths = chars.map(cellWidth);
    this.pasted = [...pasted];
    this.cursor = chars.length;
    return 0;
  }

  /** The index where the word before the cursor starts (after spaces, as shells do). */
  wordStart(): number {
    let i = this.cursor;
    while (i > 0 && /\s/.test(this.chars[i - 1]!)) i--;
    while (i > 0 && !/\s/.test(this.chars[i - 1]!)) i--;
    return i;
  }

  /** The index where the word after the cursor ends. */
  wordEnd(): number {
    let i = this.cursor;
    while (i < this.chars.length && /\s/.test(this.chars[i]!)) i++;
    while (i < this.chars.length && !/\s/.test(this.chars[i]!)) i++;
    return i;
  }

  #replace(from: number, to: number, chars: string[], widths: number[], pasted: boolean[]): void {
    if (from === this.chars.length && to === from) {
      // Appending, the common case: no copying of what is already there.
      for (let i = 0; i < chars.length; i++) {
        this.chars.push(chars[i]!);
        this.widths.push(widths[i]!);
        this.pasted.push(pasted[i]!);
      }
      return;
    }
    if (chars.length <= SPLICE_LIMIT) {
      this.chars.splice(from, to - from, ...chars);
      this.widths.splice(from, to - from, ...widths);
      this.pasted.splice(from, to - from, ...pasted);
    } else {
      // Spreading a long paste into splice() would pass too many arguments.
      this.chars = this.chars.slice(0, from).concat(chars, this.chars.slice(to));
      this.widths = this.widths.slice(0, from).concat(widths, this.widths.slice(to));
      this.pasted = this.pasted.slice(0, from).concat(pasted, this.pasted.slice(to));
    }
  }
}

/**
 * Where each row of the prompt and line starts, worked out lazily and kept: an edit throws
 * away only the rows from where it changed the line, and only the rows asked for are laid out.
 */
class RowLayout {
  /** The index of the first character of each known row. */
  #starts = [0];
  /** Whether the known rows reach the end of the line. */
  #complete = false;
  #columns = 1;
  #promptWidth = 0;

  /** Starts over when the width or the prompt's width changed. */
  configure(columns: number, promptWidth: number): void {
    if (columns === this.#columns && promptWidth === this.#promptWidth) return;
    this.#columns = columns;
    this.#promptWidth = promptWidth;
    this.invalidate(0);
  }

  /** Forgets the rows that may have changed since the line changed at `index`. */
  invalidate(index: number): void {
    let keep = this.#starts.length;
    while (keep > 1 && this.#starts[keep - 1]! >= index) keep--;
    this.#starts.length = keep;
    this.#complete = false;
  }

  /** The row the character at `index` (or the cursor before it) is on. */
  rowOf(line: LineText, index: number): number {
    while (!this.#complete && this.#starts.at(-1)! <= index) this.#extend(line);
    let low = 0;
    let high = this.#starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.#starts[mid]! <= index) low = mid;
      else high = mid - 1;
    }
    return low;
  }

  /** The index where row `row` starts, and where it ends; `undefined` past the last row. */
  row(line: LineText, row: number): { start: number; end: number } | undefined {
    while (!this.#complete && this.#starts.length <= row + 1) this.#extend(line);
    const start = this.#starts[row];
    if (start === undefined) return undefined;
    return { start, end: this.#starts[row + 1] ?? line.length };
  }

  /** The column where row `row` starts (after the prompt on the first). */
  startColumn(row: number): number {
    return row === 0 ? this.#promptWidth : 0;
  }

  /** Lays out the last known row to its end, adding the start of the next one. */
  #extend(line: LineText): void {
    const row = this.#starts.length - 1;
    let column = this.startColumn(row);
    const first = this.#starts[row]!;
    for (let i = first; i < line.length; i++) {
      if (line.chars[i] === "\n") {
        this.#starts.push(i + 1);
        return;
      }
      const width = line.widths[i]!;
      if (column + width > this.#columns && (i > first || column > 0)) {
        this.#starts.push(i);
        return;
      }
      column += width;
    }
    this.#complete = true;
  }
}

/** What the editor draws: the rows of the prompt and line that fit, and the cursor. */
export interface EditorView {
  /** The rows to draw, the first starting with the prompt when it is in view. */
  rows: string[];
  /** The widths of the cells of each row. */
  cells: number[][];
  /** The cursor: its row among `rows`, its column, and the index of its cell in that row. */
  cursor: { row: number; column: number; cell: number };
}

/** What a key asks of the program that uses the editor. */
export type EditorAction =
  | { type: "none" }
  | { type: "submit"; line: SubmittedLine }
  | { type: "interrupt" }
  | { type: "eof" }
  | { type: "clear-screen" }
  | { type: "show"; lines: string[] };

/**
 * Offers completions for the word before the cursor: `word` is that word, `first` whether it
 * starts the line. Returns the candidates that fit it, in the order to offer them.
 */
export type Completer = (word: string, first: boolean) => readonly string[];

/** The most candidates a completion lists on screen. */
const MAX_LISTED_COMPLETIONS = 40;

/**
 * A line editor: the text with its cursor, the prompt, history and completion. Feed it keys
 * with {@linkcode LineEditor.handleKey}; draw it with {@linkcode LineEditor.view}.
 */
export class LineEditor {
  #line = new LineText();
  #layout = new RowLayout();
  #prompt = "";
  #promptCells: number[] = [];
  #history: HistoryEntry[] = [];
  /** Where Up and Down are in history (its length: the line being typed), and that line. */
  #historyAt = 0;
  #draft: HistoryEntry | undefined;
  /** The first row in view, kept while the cursor stays in view. */
  #top = 0;
  #completer: Completer | undefined;
  /** Whether the last paste was cut to {@linkcode MAX_INPUT_LENGTH}. */
  #cut = false;

  #keepHistory: boolean;

  /**
   * Makes an editor; `history` says whether Enter keeps lines for Up and Down (default `true`),
   * `completer` what Tab completes from (default: nothing), `mask` whether what is typed shows
   * as `*` (default `false`).
   */
  constructor(options: { history?: boolean; completer?: Completer; mask?: boolean } = {}) {
    this.#keepHistory = options.history ?? true;
    this.#completer = options.completer;
    this.#mask = options.mask ?? false;
  }

  /** Whether what is typed shows as `*` (a password). */
  #mask: boolean;

  /** The text typed so far. */
  get text(): string {
    return this.#line.text();
  }

  /** The cursor, in characters (graphemes) from the start of the line. */
  get cursor(): number {
    return this.#line.cursor;
  }

  /** The prompt, as drawn (it may have colours). */
  get prompt(): string {
    return this.#prompt;
  }

  /** Sets the prompt shown before the line. */
  set prompt(prompt: string) {
    if (prompt === this.#prompt) return;
    this.#prompt = prompt;
    this.#promptCells = splitGraphemes(stripAnsi(prompt)).map(cellWidth);
  }

  /** Sets (or removes) what Tab completes from. */
  set completer(completer: Completer | undefined) {
    this.#completer = completer;
  }

  /** Types text at the cursor, as if typed (`pasted` false) or pasted. */
  insert(text: string, pasted = false): void {
    const clean = cleanInput(text);
    if (clean === "") return;
    const room = MAX_INPUT_LENGTH - this.#line.length;
    let kept = clean;
    if (clean.length > room) {
      // Cutting by code units first keeps the work bounded; then by characters.
      kept = splitGraphemes(clean.slice(0, Math.max(0, room) * 2)).slice(0, Math.max(0, room))
        .join("");
      this.#cut = true;
    }
    if (kept === "") return;
    this.#layout.invalidate(this.#line.insert(kept, pasted));
  }

  /** Whether input was cut to {@linkcode MAX_INPUT_LENGTH} since the last call (then resets). */
  takeCut(): boolean {
    const cut = this.#cut;
    this.#cut = false;
    return cut;
  }

  /** Empties the line. */
  clear(): void {
    this.#layout.invalidate(this.#line.remove(0, this.#line.length));
    this.#historyAt = this.#history.length;
    this.#draft = undefined;
    this.#top = 0;
  }

  /** Acts on one key or paste; says what the program should do about it, if anything. */
  handleKey(event: KeyEvent): EditorAction {
    switch (event.type) {
      case "text":
        this.insert(event.text);
        return NONE;
      case "paste":
        this.insert(event.text, true);
        return NONE;
      case "key":
        return this.#key(event.name);
    }
  }

  #key(name: KeyName): EditorAction {
    const line = this.#line;
    switch (name) {
      case "enter":
        return this.#submit();
      case "interrupt":
        if (line.length === 0) return { type: "interrupt" };
        this.clear();
        return NONE;
      case "eof":
        if (line.length === 0) return { type: "eof" };
        this.#removeTo(line.cursor + 1);
        return NONE;
      case "tab":
        return this.#complete();
      case "backspace":
        this.#removeTo(line.cursor - 1);
        return NONE;
      case "delete":
        this.#removeTo(line.cursor + 1);
        return NONE;
      case "delete-word-left":
        this.#removeTo(line.wordStart());
        return NONE;
      case "delete-word-right":
        this.#removeTo(line.wordEnd());
        return NONE;
      case "kill-to-start":
        this.#removeTo(0);
        return NONE;
      case "kill-to-end":
        this.#removeTo(line.length);
        return NONE;
      case "left":
        line.cursor = Math.max(0, line.cursor - 1);
        return NONE;
      case "right":
        line.cursor = Math.min(line.length, line.cursor + 1);
        return NONE;
      case "word-left":
        line.cursor = line.wordStart();
        return NONE;
      case "word-right":
        line.cursor = line.wordEnd();
        return NONE;
      case "home":
        line.cursor = 0;
        return NONE;
      case "end":
        line.cursor = line.length;
        return NONE;
      case "up":
        this.#recall(-1);
        return NONE;
      case "down":
        this.#recall(1);
        return NONE;
      case "clear-screen":
        return { type: "clear-screen" };
      case "escape":
        return NONE;
    }
  }

  /** Removes what lies between the cursor and `to` (either side of it). */
  #removeTo(to: number): void {
    const line = this.#line;
    const end = Math.max(0, Math.min(line.length, to));
    const from = Math.min(end, line.cursor);
    const until = Math.max(end, line.cursor);
    if (from === until) return;
    this.#layout.invalidate(line.remove(from, until));
  }

  #submit(): EditorAction {
    const line = this.#line;
    const { chars, pasted } = line;
    const typed = chars.length > 0 && !pasted[0] &&
      !(chars[0] === "/" && chars[1] === "/" && pasted[1]);
    const submitted: SubmittedLine = { text: line.text(), typed };
    if (this.#keepHistory && chars.length > 0 && chars.length <= MAX_HISTORY_LINE) {
      const last = this.#history.at(-1);
      if (last === undefined || last.chars.join("") !== submitted.text) {
        this.#history.push({ chars: [...chars], pasted: [...pasted] });
        if (this.#history.length > HISTORY_SIZE) this.#history.shift();
      }
    }
    this.clear();
    return { type: "submit", line: submitted };
  }

  /** Up (`-1`) and Down (`1`) through history; the line being typed is kept to come back to. */
  #recall(step: -1 | 1): void {
    const target = this.#historyAt + step;
    if (target < 0 || target > this.#history.length) return;
    if (this.#historyAt === this.#history.length) {
      this.#draft = { chars: [...this.#line.chars], pasted: [...this.#line.pasted] };
    }
    this.#historyAt = target;
    const entry = target === this.#history.length ? this.#draft : this.#history[target];
    this.#layout.invalidate(this.#line.set(entry?.chars ?? [], entry?.pasted ?? []));
  }

  /**
   * Tab: completes the word before the cursor. One candidate replaces the word and adds a space;
   * several extend it as far as they agree, or are listed when they do not.
   */
  #complete(): EditorAction {
    const line = this.#line;
    if (this.#completer === undefined) return NONE;
    let start = line.cursor;
    while (start > 0 && !/\s/.test(line.chars[start - 1]!)) start--;
    const word = line.text(start, line.cursor);
    const first = line.text(0, start).trim() === "";
    const candidates = this.#completer(word, first);
    if (candidates.length === 0) return NONE;
    const only = candidates.length === 1 ? candidates[0]! : undefined;
    const common = only ?? commonPrefix(candidates);
    if (only === undefined && Array.from(common).length <= Array.from(word).length) {
      const listed = candidates.slice(0, MAX_LISTED_COMPLETIONS).join("  ");
      const more = candidates.length > MAX_LISTED_COMPLETIONS
        ? ` (and ${candidates.length - MAX_LISTED_COMPLETIONS} more)`
        : "";
      return { type: "show", lines: [listed + more] };
    }
    const spaced = only !== undefined && line.chars[line.cursor] !== " " ? `${common} ` : common;
    this.#layout.invalidate(line.remove(start, line.cursor));
    this.#layout.invalidate(line.insert(spaced, false));
    return NONE;
  }

  /**
   * The rows to draw in `columns` columns, at most `maxRows` of them: the ones around the cursor
   * when the line is longer. The last column is left free, for the cursor at the end of a row.
   */
  view(columns: number, maxRows: number): EditorView {
    const usable = Math.max(1, columns - 1);
    const promptWidth = this.#promptCells.reduce((sum, w) => sum + w, 0);
    // A prompt that leaves less than half the row for typing gives way to a short one.
    const longPrompt = promptWidth > usable / 2;
    const prompt = longPrompt ? "> " : this.#prompt;
    const promptCells = longPrompt ? [1, 1] : this.#promptCells;
    const layout = this.#layout;
    layout.configure(usable, longPrompt ? 2 : promptWidth);
    const line = this.#line;
    const cursorRow = layout.rowOf(line, line.cursor);
    const height = Math.max(1, maxRows);
    if (cursorRow < this.#top) this.#top = cursorRow;
    if (cursorRow >= this.#top + height) this.#top = cursorRow - height + 1;
    // Use the room when the line got shorter: no empty rows below while rows above are hidden.
    while (this.#top > 0 && layout.row(line, this.#top + height - 1) === undefined) this.#top--;
    const rows: string[] = [];
    const cells: number[][] = [];
    let cursor = { row: 0, column: 0, cell: 0 };
    for (let r = this.#top; r < this.#top + height; r++) {
      const span = layout.row(line, r);
      if (span === undefined) break;
      let text = r === 0 ? prompt : "";
      const widths = r === 0 ? [...promptCells] : [];
      let column = layout.startColumn(r);
      for (let i = span.start; i < span.end; i++) {
        if (i === line.cursor) cursor = { row: rows.length, column, cell: widths.length };
        const width = line.widths[i]!;
        const shown = this.#mask && width > 0 ? "*".repeat(width) : cellText(line.chars[i]!, width);
        if (shown !== "") {
          text += shown;
          widths.push(width);
          column += width;
        }
      }
      if (r === cursorRow && line.cursor >= span.end) {
        cursor = { row: rows.length, column, cell: widths.length };
      }
      rows.push(text);
      cells.push(widths);
    }
    return { rows, cells, cursor };
  }
}

const NONE: EditorAction = { type: "none" };

/** The longest start that all candidates share, ignoring case; in the first one's spelling. */
function commonPrefix(candidates: readonly string[]): string {
  const first = Array.from(candidates[0] ?? "");
  let length = first.length;
  for (const candidate of candidates.slice(1)) {
    const chars = Array.from(candidate);
    let same = 0;
    while (
      same < length && same < chars.length &&
      chars[same]!.toLowerCase() === first[same]!.toLowerCase()
    ) same++;
    length = same;
  }
  return first.slice(0, length).join("");
}
