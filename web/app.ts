/**
 * The chat page's script, bundled into `web/app.js` (`deno task bundle`) and served by the chat
 * server with the page. It joins with a name, then shows rooms and private conversations, takes
 * text and the terminal client's slash commands, and comes back by itself after a reload, a drop
 * or a server restart (resume token and last message id kept in `sessionStorage`, the identity in
 * IndexedDB), with nothing lost or shown twice.
 *
 * @module
 */

import {
  checkName,
  checkRoom,
  checkText,
  type ClientFrame,
  type ErrorFrame,
  type HelloFrame,
  HISTORY_PAGE,
  LOBBY,
  MAX_TEXT_LENGTH,
  type MsgFrame,
  nameKey,
  type Result,
  roomKey,
  type SayFrame,
  type ServerFrame,
  VERSION,
  type WelcomeFrame,
} from "../protocol.ts";
import {
  CHAT_COMMANDS,
  type ChatCommand,
  type CommandContext,
  type CommandHandlers,
  commandHelp,
  commandNames,
  commandWords,
  findCommand,
  frameCommandHandlers,
  parseCommand,
  unknownCommand,
} from "../ui/commands.ts";
import { renderFrame } from "../ui/render.ts";
import { identityFor, type PageIdentity } from "./identity.ts";
import { Link, type LinkStatus } from "./link.ts";
import { ChatModel, type Conversation, roomConversationKey } from "./model.ts";
import { byId, drawConversation, drawList } from "./view.ts";

/** What survives a reload of this tab (never another tab's: `sessionStorage`). */
interface Session {
  /** The name typed in the join form: the identity is kept under it. */
  joinName: string;
  /** The name now (after a `/nick`). */
  name: string;
  resume?: string | undefined;
  last?: number | undefined;
  /** The conversation on screen. */
  view?: string | undefined;
  /** The private conversations, to fetch their history after a reload. */
  privates: { name: string; id?: string | undefined }[];
  /** Messages typed and not yet acknowledged: sent again after a reload. */
  unsent?: (SayFrame | MsgFrame)[] | undefined;
}

const SESSION_KEY = "chat.session";
const NAME_KEY = "chat.name";
const BELL_KEY = "chat.bell";
const IGNORE_KEY = "chat.ignored";
/** The commands only the server's operators may use (their help says so). */
const OPERATOR_ONLY = new Set(
  commandNames(CHAT_COMMANDS).filter((name) => CHAT_COMMANDS[name].help.startsWith("Operators:")),
);

const model = new ChatModel();
let link: Link | undefined;
let session: Session | undefined;
let password: string | undefined;
let welcome: WelcomeFrame | undefined;
/** Rooms we asked to join: their history comes by itself, and the first one goes on screen. */
const joining = new Set<string>();
/** Rooms whose `who` the page asked for itself, to mark away people: no notice for those. */
const quietWho = new Set<string>();
let lastRoom = LOBBY;
let lastPrivate: CommandContext["lastPrivate"];
/** This page's part of each message's `ref` and `cid` (`randomUUID` needs a secure context). */
const pageId = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16)).join(
  "",
);
let nextRef = 1;
let pasted = false;
let drawPending = false;
let jumpToEnd = true;
let identity: PageIdentity | undefined;
/** The conversation that was on screen before a reload, shown again once it is back. */
let restoreView: string | undefined;

// ==== Sessions ====

function loadSession(): Session | undefined {
  try {
    const stored = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null") as Session | null;
    return stored && typeof stored.name === "string" ? stored : undefined;
  } catch {
    return undefined;
  }
}

function saveSession(): void {
  if (!session) return;
  session.last = model.lastLive ?? session.last;
  session.view = model.current;
  session.unsent = link?.unsent() ?? session.unsent;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

function endSession(): void {
  session = undefined;
  sessionStorage.removeItem(SESSION_KEY);
}

function helloFrame(): HelloFrame {
  const s = session!;
  const last = model.lastLive ?? s.last;
  return {
    type: "hello",
    name: s.name,
    client: { app: `chat-web ${VERSION}` },
    ...(identity ? { key: identity.publicKey } : {}),
    ...(s.resume ? { resume: s.resume } : {}),
    ...(last === undefined ? {} : { last }),
    ...(password ? { password } : {}),
  };
}

/** Connects under the session's name; `resuming` after a reload. */
async function start(resuming: boolean): Promise<void> {
  identity = await identityFor(nameKey(session!.joinName));
  link = new Link({
    url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`,
    hello: helloFrame,
    identity,
    resuming,
    onFrame: receive,
    onStatus: showStatus,
  });
  if (resuming) showChat();
  // What was typed before the reload and never acknowledged goes again (the server keeps one
  // message per sender and `cid`, so one that did arrive is not shown twice).
  for (const frame of resuming ? session!.unsent ?? [] : []) resend(frame);
  link.start();
}

/** A message kept from before a reload: shown as on its way again, and queued. */
function resend(frame: SayFrame | MsgFrame): void {
  const conversation = frame.type === "say"
    ? model.room(frame.room ?? LOBBY)
    : model.privateWith(frame.to, frame.toId);
  model.addPending(conversation, frame.ref!, frame.text, frame.action === true);
  link?.send(frame);
}

// ==== Join form ====

function showJoin(error = ""): void {
  byId("chat-view").hidden = true;
  byId("join-view").hidden = false;
  byId("join-error").textContent = error;
  byId(byId("join-password-row").hidden ? "join-name" : "join-password").focus();
  document.title = "Chat";
}

function showChat(): void {
  byId("join-view").hidden = true;
  byId("chat-view").hidden = false;
  byId("input").focus();
}

function submitJoin(event: Event): void {
  event.preventDefault();
  const typed = byId<HTMLInputElement>("join-name").value.trim();
  const name = checkName(typed);
  if (!name.ok) {
    showJoin(name.error);
    return;
  }
  const typedPassword = byId<HTMLInputElement>("join-password").value;
  password = typedPassword === "" ? undefined : typedPassword;
  localStorage.setItem(NAME_KEY, name.value);
  if (
    globalThis.Notification?.permission === "default" && localStorage.getItem(BELL_KEY) !== "off"
  ) {
    Notification.requestPermission().catch(() => {});
  }
  byId("join-error").textContent = "Joining…";
  session = { joinName: name.value, name: name.value, privates: [] };
  resetModel();
  start(false);
}

function resetModel(): void {
  model.conversations.clear();
  model.lastLive = undefined;
  model.current = roomConversationKey(LOBBY);
  welcome = undefined;
}

/** Why joining failed, in words for the join form. */
function joinError(error: ErrorFrame | undefined, reason: string): string {
  switch (error?.code) {
    case "password_required":
      byId("join-password-row").hidden = false;
      return password
        ? "That password is not right: try again"
        : "This server is private: give its password";
    case "name_taken":
    case "bad_name":
      return `${error.message}`;
    case "banned":
      return `You are banned from this server: ${error.message}`;
    case "server_full":
      return `The server is full right now: try again later (${error.message})`;
    default:
      return reason;
  }
}

// ==== Status ====

function showStatus(status: LinkStatus): void {
  const line = byId("status");
  document.body.classList.toggle(
    "offline",
    status.state === "offline" || status.state === "connecting",
  );
  switch (status.state) {
    case "connecting":
      line.hidden = welcome === undefined;
      line.textContent = "Connecting…";
      return;
    case "online":
      line.hidden = true;
      line.textContent = "";
      return;
    case "offline": {
      const waiting = pendingCount();
      line.hidden = false;
      line.textContent =
        `Offline (${status.reason}): trying again in ${Math.ceil(status.retryInMs / 1000)} s.` +
        (waiting
          ? ` ${waiting} ${waiting === 1 ? "message waits" : "messages wait"} to be sent.`
          : " What you send waits.");
      return;
    }
    case "ended": {
      const wasIn = welcome !== undefined;
      endSession();
      link = undefined;
      const why = status.error ? `Disconnected: ${status.reason}` : status.reason;
      showJoin(wasIn ? why : joinError(status.error, status.reason));
    }
  }
}

function pendingCount(): number {
  let count = 0;
  for (const c of model.conversations.values()) {
    count += c.entries.filter((e) => e.kind === "pending").length;
  }
  return count;
}

// ==== Frames from the server ====

/** Every frame the server sends, into the model (and a notice where one is due). */
function receive(frame: ServerFrame): void {
  handle(frame);
  restoreViewOnce();
}

function handle(frame: ServerFrame): void {
  switch (frame.type) {
    case "welcome":
      return welcomed(frame);
    case "room":
      return enteredRoom(frame);
    case "message":
    case "private":
      return messageArrived(frame);
    case "history": {
      const conversation = frame.room !== undefined
        ? model.room(frame.room)
        : [...model.conversations.values()].find((c) => c.peerId === frame.with);
      if (conversation) Object.assign(conversation, { more: frame.more, loading: false });
      break;
    }
    case "joined":
      model.arrived(frame.room ?? LOBBY, frame.name, frame.id);
      notice(frame, [model.room(frame.room ?? LOBBY)]);
      break;
    case "left":
      if (model.isMine(frame.name, frame.id) && frame.room !== undefined) {
        model.leave(frame.room);
        notice(frame, [model.room(LOBBY)]);
      } else {
        notice(frame, model.departed(frame.room, frame.name));
      }
      break;
    case "renamed": {
      const mine = model.isMine(frame.from, frame.id);
      const where = model.renamed(frame.from, frame.to, frame.id);
      if (mine && session) session.name = frame.to;
      notice(
        frame,
        mine ? [...model.conversations.values()].filter((c) => c.kind === "room") : where,
      );
      break;
    }
    case "presence":
      notice(frame, model.presence(frame.name, frame.away !== undefined));
      break;
    case "topic": {
      const room = model.room(frame.room);
      room.topic = frame.topic;
      notice(frame, [room]);
      break;
    }
    case "users": {
      const room = frame.room === undefined
        ? undefined
        : model.conversations.get(roomKey(frame.room));
      if (room) model.setPeople(room, frame);
      if (frame.room !== undefined && quietWho.delete(roomKey(frame.room))) break;
      notice(frame);
      break;
    }
    case "error":
      if (!welcome) return;
      // A refused page of history can be asked for again.
      if (frame.code === "rate_limited") {
        for (const c of model.conversations.values()) c.loading = false;
      }
      if (frame.ref === undefined || !model.failPending(frame.ref, frame.message)) notice(frame);
      break;
    case "challenge":
    case "ping":
    case "pong":
      return;
    default:
      notice(frame);
  }
  saveSession();
  draw();
}

/** After a reload: the conversation that was on screen, once the server has given it back. */
function restoreViewOnce(): void {
  if (restoreView === undefined || !model.conversations.has(restoreView)) return;
  model.show(restoreView);
  restoreView = undefined;
  jumpToEnd = true;
}

function welcomed(frame: WelcomeFrame): void {
  const first = welcome === undefined;
  welcome = frame;
  model.me = frame.name;
  model.myId = frame.id;
  if (frame.last !== undefined) model.seen(frame.last);
  if (session) {
    session.name = frame.name;
    session.resume = frame.resume;
  }
  byId("me-name").textContent = frame.name;
  byId("me-role").textContent = frame.operator ? "operator" : "";
  byId<HTMLTextAreaElement>("input").placeholder = "Message (/help for commands)";
  if (!frame.resumed) {
    // A new arrival (or a session the server forgot): the lobby, then the rooms we were in.
    // Such a server may have forgotten its message ids too: "new" starts at its `last`.
    model.lastLive = frame.last;
    const lobby = model.room(frame.room ?? LOBBY);
    model.setPeople(lobby, frame);
    askWho(lobby.title);
    if (first) notice(frame, [lobby]);
    for (const c of model.conversations.values()) {
      if (c.kind === "room" && c !== lobby) sendFrame({ type: "join", room: c.title });
    }
  }
  if (first) {
    for (const p of session?.privates ?? []) requestHistory(model.privateWith(p.name, p.id));
    showChat();
  }
  saveSession();
  draw(first);
}

function enteredRoom(frame: Extract<ServerFrame, { type: "room" }>): void {
  const room = model.room(frame.room);
  room.topic = frame.topic;
  model.setPeople(room, frame);
  askWho(frame.room);
  const key = roomKey(frame.room);
  if (joining.delete(key)) {
    model.show(key);
    jumpToEnd = true;
  } else if (!room.entries.some((e) => e.kind === "message")) {
    // Back after a reload: the page has nothing of the room yet.
    requestHistory(room);
  }
  saveSession();
  draw();
}

function messageArrived(frame: Extract<ServerFrame, { type: "message" | "private" }>): void {
  const from = frame.fromId ?? nameKey(frame.from);
  if (ignored().includes(from) && !model.isMine(frame.from, frame.fromId)) return;
  const added = model.addMessage(frame);
  const { conversation } = added;
  if (
    frame.type === "private" && session &&
    !session.privates.some((p) => conversation.peerId === p.id)
  ) {
    session.privates = session.privates.filter((p) =>
      nameKey(p.name) !== nameKey(conversation.title)
    );
    session.privates.push({ name: conversation.title, id: conversation.peerId });
  }
  if (frame.type === "private" && !added.mine) lastPrivate = { name: frame.from, id: frame.fromId };
  if (added.fresh && !frame.history && !added.mine) {
    const where = conversation.kind === "private" ? "privately" : `in ${conversation.title}`;
    if (conversation.key === model.current || added.mention) {
      byId("announce").textContent = `${frame.from} ${where}: ${frame.text}`;
    }
    if (added.mention) notify(`${frame.from} ${where}`, frame.text, conversation.key);
  }
  saveSession();
  draw();
}

/** A notice for the frame, in these conversations (by default the one on screen). */
function notice(frame: ServerFrame, where?: Conversation[]): void {
  const lines = renderFrame(frame, { me: model.me, color: false, time: false, skipOwn: false })
    .map((line) => line.replace(/^-!- /, ""));
  if (lines.length === 0) return;
  const targets = where ?? [model.shown ?? model.room(LOBBY)];
  for (const c of targets) {
    model.addNotice(c, lines.join("\n"), frame.type === "error" ? "error" : "info");
  }
}

/** A line of the page's own, in the conversation on screen. */
function say(text: string, tone: "info" | "error" = "info"): void {
  model.addNotice(model.shown ?? model.room(LOBBY), text, tone);
  draw();
}

function askWho(room: string): void {
  if (sendFrame({ type: "who", room })) quietWho.add(roomKey(room));
}

function requestHistory(conversation: Conversation): void {
  if (conversation.loading) return;
  const where = conversation.kind === "room"
    ? { room: conversation.title }
    : { with: conversation.peerId ?? conversation.title };
  const before = conversation.oldest === undefined ? {} : { before: conversation.oldest };
  if (sendFrame({ type: "history", ...where, ...before, limit: HISTORY_PAGE })) {
    conversation.loading = true;
  }
}

// ==== Sending ====

function sendFrame(frame: ClientFrame): boolean {
  return link?.send(frame) ?? false;
}

/** Sends a message (or private message), shown as on its way until the server has it. */
function sendMessage(frame: SayFrame | MsgFrame): void {
  const ref = `${pageId}.${nextRef++}`;
  const conversation = frame.type === "say"
    ? model.room(frame.room ?? lastRoom)
    : model.privateWith(frame.to, frame.toId ?? idOf(frame.to));
  const toId = frame.type === "msg" ? conversation.peerId : undefined;
  model.addPending(conversation, ref, frame.text, frame.action === true);
  if (conversation.kind === "private" && model.current !== conversation.key) {
    model.show(conversation.key);
  }
  jumpToEnd = true;
  link?.send({ ...frame, ...(toId ? { toId } : {}), ref, cid: ref });
  saveSession();
  draw();
}

/** Someone's person id, from the rooms' lists. */
function idOf(name: string): string | undefined {
  for (const c of model.conversations.values()) {
    const found = c.people.find((p) => nameKey(p.name) === nameKey(name));
    if (found?.id) return found.id;
  }
  return undefined;
}

/** Plain text to the conversation on screen, in pieces of at most the longest message. */
function sendText(text: string, action = false): void {
  const shown = model.shown;
  const chars = Array.from(text);
  for (let i = 0; i < chars.length; i += MAX_TEXT_LENGTH) {
    const checked = checkText(chars.slice(i, i + MAX_TEXT_LENGTH).join(""));
    if (!checked.ok) return say(checked.error, "error");
    const piece = checked.value;
    if (shown?.kind === "private") {
      sendMessage({
        type: "msg",
        to: shown.title,
        ...(shown.peerId ? { toId: shown.peerId } : {}),
        text: piece,
        action,
      });
    } else {
      sendMessage({ type: "say", room: shown?.title ?? LOBBY, text: piece, action });
    }
  }
}

/** What the input sends: text, or a command. */
function submitLine(line: string, wasPasted: boolean): void {
  if (line.trim() === "") return;
  const command = wasPasted ? undefined : parseCommand(line);
  if (!command) return sendText(line.startsWith("//") && !wasPasted ? line.slice(1) : line);
  const name = findCommand(CHAT_COMMANDS, command.name);
  if (name === undefined || (OPERATOR_ONLY.has(name) && !welcome?.operator)) {
    return say(unknownCommand(command.name), "error");
  }
  const context: CommandContext = {
    room: lastRoom,
    lastPrivate,
    oldest: model.conversations.get(roomKey(lastRoom))?.oldest,
  };
  handlers[name](command.args, context);
}

/** Sends what a command built, or says what is wrong. */
function sendBuilt(result: Result<ClientFrame>): void {
  if (!result.ok) return say(result.error, "error");
  const frame = result.value;
  if (frame.type === "say" || frame.type === "msg") return sendMessage(frame);
  if (frame.type === "join") joining.add(roomKey(frame.room));
  if (frame.type === "history" && frame.room !== undefined) {
    model.room(frame.room).loading = true;
  }
  if (!sendFrame(frame)) say("Not connected: try again once back online", "error");
}

/** Every chat command: most send their frame; the page carries out the rest itself. */
const handlers: CommandHandlers<ChatCommand, CommandContext, void> = {
  ...frameCommandHandlers((build) => (args, context) => sendBuilt(build(args, context))),
  help: (args) => {
    const names = commandNames(CHAT_COMMANDS).filter((n) =>
      welcome?.operator || !OPERATOR_ONLY.has(n)
    );
    const lines = commandHelp(CHAT_COMMANDS, {
      names,
      ...(args.trim() ? { name: args.trim() } : {}),
    });
    say(
      (args.trim() ? [] : ["Commands (Enter sends, Shift+Enter adds a line, Tab completes):"])
        .concat(lines).join("\n"),
    );
  },
  me: (args) => args.trim() ? sendText(args, true) : say("Usage: /me <action>", "error"),
  switch: (args) => {
    const target = args.trim();
    const key = target.startsWith("#") ? roomKey(target) : `@${idOf(target) ?? nameKey(target)}`;
    if (!model.conversations.has(key)) {
      return say(`You are not in ${target || "that room"}: /join it first`, "error");
    }
    pick(key);
  },
  ignore: (args) => {
    const name = args.trim();
    if (!name) {
      return say(ignored().length ? `Ignoring: ${ignored().join(", ")}` : "You ignore nobody");
    }
    setIgnored([...ignored(), idOf(name) ?? nameKey(name)]);
    say(`Ignoring ${name}: their messages are hidden from you`);
  },
  unignore: (args) => {
    const name = args.trim();
    setIgnored(
      ignored().filter((key) => key !== (idOf(name) ?? nameKey(name)) && key !== nameKey(name)),
    );
    say(`${name} is no longer ignored`);
  },
  bell: (args) => {
    const off = args.trim().toLowerCase() === "off";
    localStorage.setItem(BELL_KEY, off ? "off" : "on");
    if (!off) globalThis.Notification?.requestPermission().catch(() => {});
    say(
      off
        ? "No notifications"
        : "Notifications for mentions and private messages while the page is hidden",
    );
  },
  connect: () => {
    const encrypted = location.protocol === "https:" ? "encrypted (https)" : "not encrypted (http)";
    say(
      `Connected to ${location.host}, ${encrypted}, as ${model.me}. To use another server, open its page.`,
    );
  },
  quit: (args) => {
    link?.close(args.trim() ? { type: "bye", message: args.trim() } : { type: "bye" });
  },
};

function ignored(): string[] {
  try {
    return JSON.parse(localStorage.getItem(IGNORE_KEY) ?? "[]") as string[];
  } catch {
    return [];
  }
}

function setIgnored(keys: string[]): void {
  localStorage.setItem(IGNORE_KEY, JSON.stringify([...new Set(keys)]));
}

// ==== Notifications and drawing ====

function notify(title: string, body: string, key: string): void {
  if (model.visible || localStorage.getItem(BELL_KEY) === "off") return;
  if (globalThis.Notification?.permission !== "granted") return;
  const shown = new Notification(title, { body: body.slice(0, 200), tag: key });
  shown.onclick = () => {
    globalThis.focus();
    pick(key);
  };
}

/** Redraws soon: frames arriving together (a page of history) draw once. */
function draw(jump = false): void {
  jumpToEnd ||= jump;
  if (drawPending) return;
  drawPending = true;
  setTimeout(() => {
    drawPending = false;
    const shown = model.shown;
    if (shown?.kind === "room") lastRoom = shown.title;
    drawList(model, pick);
    drawConversation(shown, jumpToEnd);
    jumpToEnd = false;
    const unread = model.unread;
    byId("side-unread").hidden = unread === 0;
    byId("side-unread").textContent = String(unread);
    document.title = `${unread ? `(${unread}) ` : ""}${shown?.title ?? "Chat"} · ${
      welcome?.server.name ?? "chat"
    }`;
    fillView();
  }, 0);
}

/** Fetches earlier messages while the log does not fill its space. */
function fillView(): void {
  const log = byId("log");
  const shown = model.shown;
  if (shown?.more && !shown.loading && log.scrollHeight <= log.clientHeight && link?.online) {
    requestHistory(shown);
  }
}

function pick(key: string): void {
  model.show(key);
  closeDrawers();
  saveSession();
  draw(true);
  byId("input").focus();
}

// ==== Input ====

/** Tab completion: what is being completed, and the choices, cycled through by further Tabs. */
let completion: { start: number; choices: string[]; index: number } | undefined;

function complete(input: HTMLTextAreaElement): boolean {
  const end = input.selectionStart;
  if (!completion) {
    const start = input.value.slice(0, end).search(/\S*$/);
    const word = input.value.slice(start, end).toLowerCase();
    if (word === "") return false;
    const people = model.shown?.kind === "room" ? model.shown.people.map((p) => p.name) : [];
    const words = word.startsWith("/") && start === 0
      ? commandWords(CHAT_COMMANDS).filter((w) =>
        welcome?.operator || !OPERATOR_ONLY.has(w.slice(1) as ChatCommand)
      )
      : word.startsWith("#")
      ? model.list().filter((c) => c.kind === "room").map((c) => c.title)
      : [...people, ...model.list().filter((c) => c.kind === "private").map((c) => c.title)];
    const choices = [...new Set(words)].filter((w) =>
      w.toLowerCase().startsWith(word) && w.toLowerCase() !== word
    );
    if (choices.length === 0) return word.length > 0;
    completion = { start, choices, index: -1 };
  }
  completion.index = (completion.index + 1) % completion.choices.length;
  const choice = `${completion.choices[completion.index]} `;
  const wordEnd = input.value.slice(completion.start).search(/\s|$/) + completion.start;
  input.value = input.value.slice(0, completion.start) + choice + input.value.slice(wordEnd + 1);
  input.selectionStart = input.selectionEnd = completion.start + choice.length;
  return true;
}

function onKey(event: KeyboardEvent): void {
  const input = event.target as HTMLTextAreaElement;
  if (event.key === "Tab" && !event.shiftKey && !event.ctrlKey && !event.altKey) {
    if (complete(input)) event.preventDefault();
    return;
  }
  completion = undefined;
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    byId<HTMLFormElement>("composer").requestSubmit();
  } else if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
    event.preventDefault();
    const keys = model.list().map((c) => c.key);
    const at = keys.indexOf(model.current) + (event.key === "ArrowUp" ? -1 : 1);
    if (keys.length) pick(keys[(at + keys.length) % keys.length]!);
  }
}

function submitComposer(event: Event): void {
  event.preventDefault();
  const input = byId<HTMLTextAreaElement>("input");
  const line = input.value;
  input.value = "";
  submitLine(line, pasted);
  pasted = false;
  fitInput(input);
}

function fitInput(input: HTMLTextAreaElement): void {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

function onScroll(): void {
  const shown = model.shown;
  if (shown?.more && !shown.loading && byId("log").scrollTop < 80) {
    requestHistory(shown);
    draw();
  }
}

/** Closes the side panels a phone shows over the chat. */
function closeDrawers(): void {
  document.body.classList.remove("side-open", "people-open");
  byId("toggle-side").setAttribute("aria-expanded", "false");
  byId("toggle-people").setAttribute("aria-expanded", "false");
}

function toggle(which: "side" | "people"): void {
  const open = document.body.classList.toggle(`${which}-open`);
  byId(`toggle-${which}`).setAttribute("aria-expanded", String(open));
  if (open) byId(which).querySelector<HTMLElement>("button, [tabindex]")?.focus();
}

function joinRoomForm(event: Event): void {
  event.preventDefault();
  const field = byId<HTMLInputElement>("new-room-name");
  const typed = field.value.trim();
  const room = checkRoom(typed.startsWith("#") ? typed : `#${typed}`);
  if (!room.ok) return say(room.error, "error");
  field.value = "";
  sendBuilt({ ok: true, value: { type: "join", room: room.value } });
}

function setUp(): void {
  byId("join-host").textContent = location.host;
  byId<HTMLInputElement>("join-name").value = localStorage.getItem(NAME_KEY) ?? "";
  byId("join-form").addEventListener("submit", submitJoin);
  byId("composer").addEventListener("submit", submitComposer);
  byId("new-room").addEventListener("submit", joinRoomForm);
  const input = byId<HTMLTextAreaElement>("input");
  input.addEventListener("keydown", onKey);
  input.addEventListener("paste", () => pasted ||= input.value === "");
  input.addEventListener("input", () => {
    completion = undefined;
    if (input.value === "") pasted = false;
    fitInput(input);
  });
  byId("log").addEventListener("scroll", onScroll, { passive: true });
  byId("log").addEventListener("click", closeDrawers);
  byId("log-top").addEventListener("click", (event) => {
    if ((event.target as HTMLElement).id === "earlier" && model.shown) requestHistory(model.shown);
    draw();
  });
  byId("toggle-side").addEventListener("click", () => toggle("side"));
  byId("toggle-people").addEventListener("click", () => toggle("people"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeDrawers();
  });
  document.addEventListener("visibilitychange", () => {
    model.visible = !document.hidden;
    model.markRead();
    draw();
  });
  // A reload or a closed tab keeps where we were, and what was typed and not yet sent.
  globalThis.addEventListener("pagehide", saveSession);
  model.visible = !document.hidden;
  session = loadSession();
  restoreView = session?.view;
  if (session) start(true);
  else showJoin();
}

setUp();
