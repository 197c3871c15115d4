/**
 * The terminal chat's screen: what arrives is printed above a live area at the bottom, which
 * holds the lines still waiting to be sent and the prompt with the line being typed. The terminal
 * is in raw mode with bracketed paste on, so keys reach {@linkcode LineEditor} as they are
 * pressed and a paste arrives as one piece; the live area is drawn by this module alone, row by
 * row, and found again after a resize from what was drawn (see
 * {@linkcode rowsAboveAfterResize}).
 *
 * @module
 */

import { errorText } from "../net/conn.ts";
import {
  type DrawnRows,
  type EditorAction,
  fitWidth,
  LineEditor,
  MAX_INPUT_LENGTH,
  rowsAboveAfterResize,
  type SubmittedLine,
} from "./editor.ts";
import { KeyDecoder, type KeyEvent, PASTE_MODE_OFF, PASTE_MODE_ON } from "./keys.ts";
import { displayWidth, stripAnsi } from "./render.ts";

// ==== The terminal ====

/** A terminal's size, in columns and rows. */
export interface TerminalSize {
  columns: number;
  rows: number;
}

/** What the screen needs of a terminal; {@linkcode denoTerminal} is the real one. */
export interface Terminal {
  /** Turns raw mode on or off. */
  setRaw(on: boolean): void;
  /** Reads what the keyboard sent into `buffer`; `null` at the end of input. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes all of `bytes`. */
  write(bytes: Uint8Array): void;
  /** The size now. */
  size(): TerminalSize;
  /** Calls `listener` after each resize; returns a function that stops it. */
  onResize(listener: () => void): () => void;
}

/** The size assumed when the terminal cannot tell. */
const DEFAULT_SIZE: TerminalSize = { columns: 80, rows: 24 };
/** How often the size is checked where there is no resize signal (Windows), in milliseconds. */
const RESIZE_POLL_MS = 500;

/** The process's own terminal: standard input and output. */
export function denoTerminal(): Terminal {
  const size = (): TerminalSize => {
    try {
      const { columns, rows } = Deno.consoleSize();
      return columns > 0 && rows > 0 ? { columns, rows } : DEFAULT_SIZE;
    } catch {
      return DEFAULT_SIZE;
    }
  };
  return {
    setRaw: (on) => Deno.stdin.setRaw(on),
    read: (buffer) => Deno.stdin.read(buffer),
    write: (bytes) => {
      let written = 0;
      while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
    },
    size,
    onResize: (listener) => {
      try {
        Deno.addSignalListener("SIGWINCH", listener);
        return () => Deno.removeSignalListener("SIGWINCH", listener);
      } catch {
        // No SIGWINCH (Windows): look at the size now and then instead.
        let last = size();
        const timer = setInterval(() => {
          const now = size();
          if (now.columns !== last.columns || now.rows !== last.rows) listener();
          last = now;
        }, RESIZE_POLL_MS);
        Deno.unrefTimer(timer);
        return () => clearInterval(timer);
      }
    },
  };
}

// ==== Escape sequences ====

/**
 * Erases the row the cursor is on and every row below it, leaving the cursor where it was. The
 * first row is erased on its own: an erase to the end of the screen from its top-left corner
 * clears the whole screen, which tmux (`scroll-on-clear`) first copies into its history.
 */
const ERASE_ROWS = "\x1b7\x1b[2K\x1b[B\x1b[J\x1b8";
const HIDE_CURSOR = "\x1b[?25l";
const SHOW_CURSOR = "\x1b[?25h";
const CLEAR_SCREEN = "\x1b[H\x1b[2J";

function up(rows: number): string {
  return rows > 0 ? `\x1b[${rows}A` : "";
}

/** Moves to the start of the last row, without scrolling. */
function bottomRow(rows: number): string {
  return `\x1b[${rows};1H`;
}

function right(columns: number): string {
  return columns > 0 ? `\x1b[${columns}C` : "";
}

/** The widths of the cells of a row of text (colours take none). */
function cellsOf(text: string): number[] {
  const cells: number[] = [];
  for (const { segment } of new Intl.Segmenter().segment(stripAnsi(text))) {
    const width = displayWidth(segment);
    if (width > 0) cells.push(width);
  }
  return cells;
}

// ==== The screen ====

/** What the screen tells about the line being typed. */
export interface LineHandler {
  /** Enter was pressed. */
  line(line: SubmittedLine): void;
  /** Ctrl+C on an empty line. */
  interrupt(): void;
  /** Ctrl+D on an empty line, or the end of input. */
  eof(): void;
}

/** The most rows of status (lines waiting to be sent) drawn above the prompt. */
export const MAX_STATUS_ROWS = 3;
/** How long a lone `ESC` waits for the rest of a key's sequence, in milliseconds. */
const ESCAPE_WAIT_MS = 50;
/** How much is read from the terminal at once, in bytes. */
const READ_BUFFER_BYTES = 16 * 1024;

/**
 * The screen of the terminal chat. {@linkcode Screen.print} prints lines above the live area;
 * {@linkcode Screen.status} sets the rows shown above the prompt; keys go to the editor, and
 * what they lead to goes to {@linkcode Screen.handler}.
 */
export class Screen {
  /** Where submitted lines, Ctrl+C and Ctrl+D go. */
  handler: LineHandler | undefined;
  #terminal: Terminal;
  #editor: LineEditor;
  #decoder = new KeyDecoder();
  #text = new TextDecoder();
  #encoder = new TextEncoder();
  #size: TerminalSize;
  #status: string[] = [];
  #statusStyle: (row: string) => string = (row) => row;
  /** What the live area looks like on screen now; `undefined` when nothing is drawn. */
  #drawn: DrawnRows | undefined;
  #stopResize: () => void;
  #resizeListeners: ((size: TerminalSize) => void)[] = [];
  #escapeTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #batching = false;
  #dirty = false;

  /**
   * Takes over a terminal: raw mode, bracketed paste, and the live area drawn on its bottom row.
   * `editor` is the line editor for the chat (Up, Down, Tab); {@linkcode Screen.close} gives the
   * terminal back.
   */
  constructor(terminal: Terminal, editor: LineEditor) {
    this.#terminal = terminal;
    this.#editor = editor;
    this.#size = terminal.size();
    terminal.setRaw(true);
    // The live area lives on the bottom row, with what was printed above it. Starting there
    // leaves room above it to grow into when a narrower terminal re-wraps it: a terminal keeps
    // the cursor's row and pushes what no longer fits above into its history, where a stale
    // copy could never be erased.
    this.#write(PASTE_MODE_ON + bottomRow(this.#size.rows));
    this.#stopResize = terminal.onResize(() => this.#resized());
    this.#readLoop();
    this.#draw();
  }

  /** The terminal's size now. */
  get size(): TerminalSize {
    return this.#size;
  }

  /** The editor keys go to. */
  get editor(): LineEditor {
    return this.#editor;
  }

  /** Calls `listener` with the new size after each resize. */
  onResize(listener: (size: TerminalSize) => void): void {
    this.#resizeListeners.push(listener);
  }

  /**
   * Prints lines above the live area. A line wider than the terminal is wrapped by the terminal;
   * a line break inside a line starts a new row.
   */
  print(lines: readonly string[]): void {
    if (lines.length === 0 || this.#closed) return;
    const erase = this.#erase();
    const text = lines.map((line) => `${line.replaceAll("\n", "\r\n")}\r\n`).join("");
    this.#write(HIDE_CURSOR + erase + text + this.#live() + SHOW_CURSOR);
  }

  /**
   * Sets the rows shown above the prompt (at most {@linkcode MAX_STATUS_ROWS}, plain text, each
   * cut to the width) and how they are styled (dimmed, say), and redraws.
   */
  status(rows: readonly string[], style: (row: string) => string = (row) => row): void {
    this.#statusStyle = style;
    const kept = rows.slice(0, MAX_STATUS_ROWS);
    if (kept.length === this.#status.length && kept.every((row, i) => row === this.#status[i])) {
      return;
    }
    this.#status = kept;
    this.#draw();
  }

  /** Sets the prompt and redraws. */
  prompt(prompt: string): void {
    if (prompt === this.#editor.prompt) return;
    this.#editor.prompt = prompt;
    this.#draw();
  }

  /** Runs `fn`, drawing the live area once at the end however many changes it makes. */
  batch(fn: () => void): void {
    if (this.#batching) return fn();
    this.#batching = true;
    try {
      fn();
    } finally {
      this.#batching = false;
    }
    if (this.#dirty) {
      this.#dirty = false;
      this.#draw();
    }
  }

  /** Rings the terminal's bell. */
  bell(): void {
    this.#write("\x07");
  }

  /**
   * Asks a question on the prompt line and resolves with the answer, or `undefined` when the
   * person presses Ctrl+C or Ctrl+D instead. Answers are not kept for Up and Down; a `secret`
   * one shows as `*`. A question too long to share the row with the answer (the editor would
   * shorten it to `> `) is printed above instead, so it is never lost.
   */
  ask(question: string, options: { secret?: boolean } = {}): Promise<string | undefined> {
    if (displayWidth(stripAnsi(question)) > this.size.columns / 2) {
      this.print([question.trimEnd()]);
      question = "> ";
    }
    const { promise, resolve } = Promise.withResolvers<string | undefined>();
    const editor = this.#editor;
    const handler = this.handler;
    const done = (answer: string | undefined) => {
      this.#editor = editor;
      this.handler = handler;
      this.#draw();
      resolve(answer);
    };
    this.#editor = new LineEditor({ history: false, mask: options.secret ?? false });
    this.#editor.prompt = question;
    this.handler = {
      line: (line) => done(line.text),
      interrupt: () => done(undefined),
      eof: () => done(undefined),
    };
    this.#draw();
    return promise;
  }

  /** Redraws the live area (once, at the end, while keys are being acted on). */
  #draw(): void {
    if (this.#closed) return;
    if (this.#batching) {
      this.#dirty = true;
      return;
    }
    this.#write(HIDE_CURSOR + this.#erase() + this.#live() + SHOW_CURSOR);
  }

  /**
   * Gives the terminal back: the live area is erased (the cursor left at its start), bracketed
   * paste and raw mode are turned off.
   */
  close(): void {
    if (this.#closed) return;
    this.#write(this.#erase() + PASTE_MODE_OFF);
    this.#closed = true;
    this.#stopResize();
    clearTimeout(this.#escapeTimer);
    try {
      this.#terminal.setRaw(false);
    } catch {
      // The terminal is gone already.
    }
  }

  /**
   * Moves to the start of the live area and erases it and everything below. The size is looked
   * at first: after a resize the terminal has re-wrapped what was drawn to the new width, and
   * the live area is found where that put it.
   */
  #erase(): string {
    this.#checkSize();
    const drawn = this.#drawn;
    this.#drawn = undefined;
    if (drawn === undefined) return "";
    return `\r${up(rowsAboveAfterResize(drawn, this.#size.columns))}${ERASE_ROWS}`;
  }

  /** Notes a new size, and tells the listeners (once the drawing in progress is done). */
  #checkSize(): void {
    const size = this.#terminal.size();
    if (size.columns === this.#size.columns && size.rows === this.#size.rows) return;
    this.#size = size;
    queueMicrotask(() => {
      for (const listener of this.#resizeListeners) listener(size);
    });
  }

  /** Draws the live area from the start of the current row; notes what was drawn. */
  #live(): string {
    const { columns, rows } = this.#size;
    const status = this.#status.map((row) => fitWidth(row, columns - 1));
    const styled = status.map((row) => this.#statusStyle(row));
    const maxInputRows = Math.max(1, Math.min(rows - status.length - 1, Math.floor(rows / 3)));
    const view = this.#editor.view(columns, maxInputRows);
    const lines = [...styled, ...view.rows];
    const cells = [...status.map(cellsOf), ...view.cells];
    const cursorRow = status.length + view.cursor.row;
    this.#drawn = { cells, cursor: { row: cursorRow, cell: view.cursor.cell } };
    return lines.join("\r\n") + `\r${up(lines.length - 1 - cursorRow)}${right(view.cursor.column)}`;
  }

  #resized(): void {
    const size = this.#terminal.size();
    if (size.columns !== this.#size.columns || size.rows !== this.#size.rows) this.#draw();
  }

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    while (!this.#closed) {
      let n: number | null;
      try {
        n = await this.#terminal.read(buffer);
      } catch {
        n = null;
      }
      if (this.#closed) return;
      if (n === null) {
        this.#call((handler) => handler.eof());
        return;
      }
      this.#keys(this.#text.decode(buffer.subarray(0, n), { stream: true }));
    }
  }

  /** Acts on what the keyboard sent, then draws once. */
  #keys(text: string): void {
    clearTimeout(this.#escapeTimer);
    this.#actOn(this.#decoder.feed(text));
    if (this.#decoder.pending) {
      this.#escapeTimer = setTimeout(() => this.#actOn(this.#decoder.flush()), ESCAPE_WAIT_MS);
    }
  }

  #actOn(events: readonly KeyEvent[]): void {
    if (events.length === 0) return;
    this.batch(() => {
      for (const event of events) this.#act(this.#editor.handleKey(event));
      this.#dirty = true;
    });
    if (this.#editor.takeCut()) {
      this.print([`! A line holds at most ${MAX_INPUT_LENGTH} characters: the rest was left out`]);
    }
  }

  #act(action: EditorAction): void {
    switch (action.type) {
      case "none":
        return;
      case "submit":
        return this.#call((handler) => handler.line(action.line));
      case "interrupt":
        return this.#call((handler) => handler.interrupt());
      case "eof":
        return this.#call((handler) => handler.eof());
      case "clear-screen":
        this.#drawn = undefined;
        this.#write(CLEAR_SCREEN + bottomRow(this.#size.rows));
        return;
      case "show":
        return this.print(action.lines);
    }
  }

  /** Calls the handler; an error it throws is shown, never a stack trace. */
  #call(act: (handler: LineHandler) => void): void {
    if (this.handler === undefined) return;
    try {
      act(this.handler);
    } catch (error) {
      this.print([`! ${errorText(error)}`]);
    }
  }

  #write(text: string): void {
    if (text === "") return;
    try {
      this.#terminal.write(this.#encoder.encode(text));
    } catch {
      // The terminal is gone: there is nobody left to show anything to.
    }
  }
}
