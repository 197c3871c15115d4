/**
 * What the keyboard sends a program in raw mode, as keys: the bytes of a terminal (already
 * decoded to text) become printable text, named keys (`enter`, `left`, `ctrl-c`...) and pastes.
 * A bracketed paste (`ESC [200~` ... `ESC [201~`, which terminals send once a program asks with
 * `ESC [?2004h`) arrives as one `paste` event, however many reads it took, so that nothing pasted
 * is ever taken for typing. Pure: no I/O.
 *
 * @module
 */

// ==== Keys ====

/** The keys the line editor knows by name. */
export type KeyName =
  | "enter"
  | "tab"
  | "backspace"
  | "delete"
  | "left"
  | "right"
  | "up"
  | "down"
  | "home"
  | "end"
  | "word-left"
  | "word-right"
  | "delete-word-left"
  | "delete-word-right"
  | "kill-to-start"
  | "kill-to-end"
  | "interrupt"
  | "eof"
  | "clear-screen"
  | "escape";

/**
 * One thing the keyboard did: typed `text` (a run of printable characters, possibly several
 * at once), pressed a named `key`, or pasted `text` (with its newlines, as `\n`).
 */
export type KeyEvent =
  | { type: "text"; text: string }
  | { type: "key"; name: KeyName }
  | { type: "paste"; text: string };

/** What turns on bracketed paste: the terminal then wraps whatever is pasted in markers. */
export const PASTE_MODE_ON = "\x1b[?2004h";
/** What turns bracketed paste off again. */
export const PASTE_MODE_OFF = "\x1b[?2004l";
const PASTE_START = "\x1b[200~";
const PASTE_END = "\x1b[201~";

/**
 * The most characters of one paste that are kept; the rest is dropped (the line editor has a
 * smaller limit of its own).
 * @default {1048576}
 */
export const MAX_PASTE_LENGTH = 1024 * 1024;

/** Single control characters and what they mean to the editor. */
const CONTROL_KEYS: Readonly<Record<string, KeyName>> = {
  "\r": "enter",
  "\n": "enter",
  "\t": "tab",
  "\x7f": "backspace",
  "\x08": "backspace",
  "\x01": "home",
  "\x05": "end",
  "\x02": "left",
  "\x06": "right",
  "\x10": "up",
  "\x0e": "down",
  "\x15": "kill-to-start",
  "\x0b": "kill-to-end",
  "\x17": "delete-word-left",
  "\x03": "interrupt",
  "\x04": "eof",
  "\x0c": "clear-screen",
};

/** Escape sequences (after `ESC`) and the keys they stand for; others are ignored. */
const SEQUENCE_KEYS: Readonly<Record<string, KeyName>> = {
  "[A": "up",
  "[B": "down",
  "[C": "right",
  "[D": "left",
  "[H": "home",
  "[F": "end",
  "OA": "up",
  "OB": "down",
  "OC": "right",
  "OD": "left",
  "OH": "home",
  "OF": "end",
  "[1~": "home",
  "[7~": "home",
  "[4~": "end",
  "[8~": "end",
  "[3~": "delete",
  "[1;5C": "word-right",
  "[1;5D": "word-left",
  "[1;3C": "word-right",
  "[1;3D": "word-left",
  "[1;5H": "home",
  "[1;5F": "end",
  "[3;5~": "delete-word-right",
  "b": "word-left",
  "f": "word-right",
  "d": "delete-word-right",
  "\x7f": "delete-word-left",
  "\x08": "delete-word-left",
};

// deno-lint-ignore no-control-regex -- control characters are what this matches
const CONTROL_REGEXP = /[\x00-\x1f\x7f]/;
/** A CSI sequence: parameters, intermediates, one final byte. */
const CSI_REGEXP = /^\[[0-?]*[ -/]*[@-~]/;
/** The start of a CSI sequence that has not ended yet. */
const CSI_PREFIX_REGEXP = /^\[[0-?]*[ -/]*$/;

/**
 * Turns what a terminal sends into {@linkcode KeyEvent}s. Feed it text as it arrives: a sequence
 * or a paste cut between two reads is held until the rest comes. A lone `ESC` at the end of what
 * was fed is held too, since it may start a sequence: call {@linkcode KeyDecoder.flush} when no
 * more arrives shortly after. The work is linear in what is fed, pastes included.
 */
export class KeyDecoder {
  /** Text held back: the start of an escape sequence, or the last characters of a paste. */
  #held = "";
  /** The paste being received, in pieces, or `undefined` when not in a paste. */
  #paste: string[] | undefined;
  #pasteLength = 0;

  /** Whether something is held back waiting for more input (an `ESC`, a sequence, a paste). */
  get pending(): boolean {
    return this.#held !== "" || this.#paste !== undefined;
  }

  /** Decodes more input; returns the events it completes. */
  feed(text: string): KeyEvent[] {
    const events: KeyEvent[] = [];
    let rest = this.#held + text;
    this.#held = "";
    while (rest !== "") {
      rest = this.#paste !== undefined ? this.#pasteStep(rest, events) : this.#step(rest, events);
    }
    return events;
  }

  /**
   * Gives up waiting: a held `ESC` becomes the `escape` key, a cut sequence is dropped, and an
   * unfinished paste is delivered as it is.
   */
  flush(): KeyEvent[] {
    const events: KeyEvent[] = [];
    if (this.#paste !== undefined) {
      this.#keepPasted(this.#held);
      events.push({ type: "paste", text: this.#endPaste() });
    } else if (this.#held === "\x1b") {
      events.push({ type: "key", name: "escape" });
    }
    this.#held = "";
    return events;
  }

  /** Decodes from the start of `text` outside a paste; returns what is left. */
  #step(text: string, events: KeyEvent[]): string {
    const first = text[0]!;
    if (first === "\x1b") return this.#escape(text, events);
    if (!CONTROL_REGEXP.test(first)) {
      // A run of printable text is one event, so typing fast or an unbracketed paste is cheap.
      let end = 1;
      while (end < text.length && !CONTROL_REGEXP.test(text[end]!)) end++;
      const last = events.at(-1);
      if (last?.type === "text") last.text += text.slice(0, end);
      else events.push({ type: "text", text: text.slice(0, end) });
      return text.slice(end);
    }
    const name = CONTROL_KEYS[first];
    if (name !== undefined) events.push({ type: "key", name });
    return text.slice(1);
  }

  /** Decodes an escape sequence at the start of `text`; returns what is left. */
  #escape(text: string, events: KeyEvent[]): string {
    const body = text.slice(1);
    if (body === "") {
      this.#held = text;
      return "";
    }
    if (body[0] === "[") {
      const match = CSI_REGEXP.exec(body);
      if (match === null) {
        if (CSI_PREFIX_REGEXP.test(body)) {
          this.#held = text;
          return "";
        }
        return body.slice(1);
      }
      const sequence = match[0];
      if (`\x1b${sequence}` === PASTE_START) {
        this.#paste = [];
        this.#pasteLength = 0;
      } else {
        const name = SEQUENCE_KEYS[sequence];
        if (name !== undefined) events.push({ type: "key", name });
      }
      return body.slice(sequence.length);
    }
    if (body[0] === "O") {
      if (body.length < 2) {
        this.#held = text;
        return "";
      }
      const name = SEQUENCE_KEYS[body.slice(0, 2)];
      if (name !== undefined) events.push({ type: "key", name });
      return body.slice(2);
    }
    // Alt (Meta) and a key.
    const name = SEQUENCE_KEYS[body[0]!];
    if (name !== undefined) events.push({ type: "key", name });
    return body.slice(1);
  }

  /** Takes in paste content until its end marker; returns what follows the paste. */
  #pasteStep(text: string, events: KeyEvent[]): string {
    const end = text.indexOf(PASTE_END);
    if (end === -1) {
      // The marker may be cut between reads: hold back as much as could be its start.
      const keep = Math.min(text.length, PASTE_END.length - 1);
      this.#keepPasted(text.slice(0, text.length - keep));
      this.#held = text.slice(text.length - keep);
      return "";
    }
    this.#keepPasted(text.slice(0, end));
    events.push({ type: "paste", text: this.#endPaste() });
    return text.slice(end + PASTE_END.length);
  }

  #keepPasted(text: string): void {
    const room = MAX_PASTE_LENGTH - this.#pasteLength;
    if (room <= 0 || text === "") return;
    const kept = text.length > room ? text.slice(0, room) : text;
    this.#paste!.push(kept);
    this.#pasteLength += kept.length;
  }

  #endPaste(): string {
    const text = this.#paste!.join("").replace(/\r\n?/g, "\n");
    this.#paste = undefined;
    this.#pasteLength = 0;
    return text;
  }
}
