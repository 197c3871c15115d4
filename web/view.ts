/**
 * Drawing the model into the page. Everything a person or the server wrote reaches the page
 * through `textContent` only, never as HTML, so no message can add markup or run a script.
 *
 * @module
 */

import { dayLine, nameColor } from "../ui/render.ts";
import type { ChatModel, Conversation, Entry } from "./model.ts";

/** An element of the page by id. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`The page has no #${id}`);
  return element as T;
}

/**
 * Control characters (but line breaks and tabs) and bidirectional overrides, which could make
 * someone's text show as something else (`\u202Egnp.exe` as `exe.png`).
 */
const UNSAFE_TEXT = /(?![\n\t])[\p{Cc}\u202A-\u202E\u2066-\u2069]/gu;

/** Text as it may be shown: without {@linkcode UNSAFE_TEXT}, as the terminal client shows it. */
export function displayable(text: string): string {
  return text.replace(UNSAFE_TEXT, "");
}

/** A new element with classes and text (made {@linkcode displayable}). */
export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = "",
  text?: string,
): HTMLElementTagNameMap[K] {
  const made = document.createElement(tag);
  if (className) made.className = className;
  if (text !== undefined) made.textContent = displayable(text);
  return made;
}

/** The class that colours a name: the same colour the terminal gives it. */
export function nameClass(name: string): string {
  return `name c${nameColor(name)}`;
}

/** `14:02`, in the reader's time zone. */
function clock(ts: number): string {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** The rooms and private conversations in the side list, with unread counts and mentions. */
export function drawList(model: ChatModel, pick: (key: string) => void): void {
  const rooms = byId("rooms");
  const privates = byId("privates");
  rooms.replaceChildren();
  privates.replaceChildren();
  for (const conversation of model.list()) {
    const button = element("button", "conversation");
    button.type = "button";
    button.dataset.key = conversation.key;
    if (conversation.key === model.current) button.setAttribute("aria-current", "page");
    const title = element(
      "span",
      conversation.kind === "private" ? nameClass(conversation.title) : "",
      conversation.title,
    );
    button.append(title, ...badges(conversation));
    button.addEventListener("click", () => pick(conversation.key));
    const item = element("li");
    item.append(button);
    (conversation.kind === "room" ? rooms : privates).append(item);
  }
  byId("privates-heading").hidden = privates.childElementCount === 0;
}

function badges(conversation: Conversation): HTMLElement[] {
  const shown: HTMLElement[] = [];
  if (conversation.mentions > 0) {
    const mention = element("span", "mention", "@");
    mention.setAttribute("aria-label", `${conversation.mentions} for you`);
    mention.title = "Mentions you";
    shown.push(mention);
  }
  if (conversation.unread > 0) {
    const count = element("span", "count", String(conversation.unread));
    count.setAttribute("aria-label", `${conversation.unread} unread`);
    shown.push(count);
  }
  return shown;
}

/** The conversation's lines, with a line for each new day. */
export function drawEntries(conversation: Conversation): void {
  const items: HTMLElement[] = [];
  let day: string | undefined;
  for (const entry of conversation.entries) {
    const today = new Date(entry.ts).toDateString();
    if (today !== day) {
      const separator = element("li", "day", dayLine(entry.ts).replace(/^-+ | -+$/g, ""));
      separator.setAttribute("role", "separator");
      items.push(separator);
    }
    day = today;
    items.push(drawEntry(entry));
  }
  byId("entries").replaceChildren(...items);
  const top = byId("log-top");
  if (conversation.more) {
    const earlier = element(
      "button",
      "earlier",
      conversation.loading ? "Loading…" : "Earlier messages",
    );
    earlier.type = "button";
    earlier.id = "earlier";
    top.replaceChildren(earlier);
  } else {
    top.replaceChildren(conversation.entries.length ? "The conversation starts here." : "");
  }
}

function drawEntry(entry: Entry): HTMLElement {
  const time = element("time", "", clock(entry.ts));
  time.dateTime = new Date(entry.ts).toISOString();
  if (entry.kind === "notice") {
    const item = element("li", `notice ${entry.tone}`);
    item.append(time, " ", element("span", "text", entry.text));
    return item;
  }
  const classes = ["msg"];
  if (entry.kind === "message") {
    if (entry.mine) classes.push("mine");
    if (entry.mention) classes.push("mentioned");
  } else {
    classes.push("mine", entry.failed ? "failed" : "pending");
  }
  if (entry.action) classes.push("action");
  const item = element("li", classes.join(" "));
  if (entry.kind === "message") item.dataset.id = String(entry.id);
  const from = element("span", nameClass(entry.from), entry.from);
  const text = element("span", "text", entry.text);
  if (entry.action) item.append(time, " ", "* ", from, " ", text);
  else item.append(time, " ", from, element("span", "colon", ": "), text);
  if (entry.kind === "pending") {
    item.append(
      " ",
      element("span", "state", entry.failed ? `not sent: ${entry.failed}` : "sending…"),
    );
  }
  return item;
}

/** Who is in the room on screen, away people marked. */
export function drawPeople(conversation: Conversation | undefined): void {
  const list = byId("people-list");
  const people = conversation?.kind === "room" ? conversation.people : [];
  const items = [...people].sort((a, b) => a.name.localeCompare(b.name)).map((person) => {
    const item = element("li", person.away ? "away" : "");
    item.append(element("span", nameClass(person.name), person.name));
    if (person.away) item.append(" ", element("span", "muted", "(away)"));
    return item;
  });
  list.replaceChildren(...items);
  const count = conversation?.kind === "room" ? conversation.count : 0;
  byId("people-heading").textContent = conversation?.kind === "room"
    ? `Here (${count})`
    : "Private";
  const more = count - people.length;
  if (more > 0) list.append(element("li", "muted", `and ${more} more`));
}

/**
 * Redraws the conversation on screen, keeping the reader's place: at the bottom when they were
 * there, else at the same message (when earlier ones were added above).
 */
export function drawConversation(conversation: Conversation | undefined, jump: boolean): void {
  const log = byId("log");
  const fromBottom = log.scrollHeight - log.scrollTop;
  const atBottom = fromBottom - log.clientHeight < 48;
  byId("title").textContent = displayable(
    conversation
      ? conversation.kind === "private" ? `${conversation.title} (private)` : conversation.title
      : "",
  );
  byId("topic").textContent = displayable(conversation?.topic ?? "");
  if (conversation) drawEntries(conversation);
  drawPeople(conversation);
  log.scrollTop = jump || atBottom ? log.scrollHeight : log.scrollHeight - fromBottom;
}
