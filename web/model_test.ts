import assert from "node:assert/strict";
import type { MessageFrame, PrivateFrame } from "../protocol.ts";
import { ChatModel } from "./model.ts";

function message(id: number, text: string, extra: Partial<MessageFrame> = {}): MessageFrame {
  return {
    type: "message",
    id,
    ts: 1_000 * id,
    from: "bob",
    fromId: "s:bob",
    text,
    room: "#dev",
    ...extra,
  };
}

function texts(model: ChatModel, key: string): string[] {
  return model.conversations.get(key)!.entries.map((e) =>
    e.kind === "notice" ? `(${e.text})` : e.text
  );
}

Deno.test("messages sort by id, and a message seen twice shows once", () => {
  const model = new ChatModel();
  model.me = "ann";
  model.addMessage(message(5, "five"));
  model.addNotice(model.room("#dev"), "a notice");
  model.addMessage(message(3, "three", { history: true }));
  assert.equal(model.addMessage(message(5, "five")).fresh, false);
  model.addMessage(message(7, "seven"));
  assert.deepEqual(texts(model, "#dev"), ["three", "five", "(a notice)", "seven"]);
  assert.equal(model.room("#dev").oldest, 3);
  assert.equal(model.lastLive, 7, "history does not move where a resume continues");
});

Deno.test("our own message waits as pending until the server's copy replaces it", () => {
  const model = new ChatModel();
  model.me = "ann";
  model.myId = "k:ann";
  model.addPending(model.room("#dev"), "p.1", "hi", false);
  model.addMessage(message(2, "from bob"));
  assert.deepEqual(texts(model, "#dev"), ["from bob", "hi"]);
  const added = model.addMessage(message(3, "hi", { from: "ann", fromId: "k:ann", ref: "p.1" }));
  assert.equal(added.mine, true);
  assert.deepEqual(model.room("#dev").entries.map((e) => e.kind), ["message", "message"]);
  assert.equal(model.failPending("p.1", "too fast"), false);
});

Deno.test("unread counts and mentions, for conversations not on screen", () => {
  const model = new ChatModel();
  model.me = "ann";
  model.room("#lobby");
  model.addMessage(message(1, "plain"));
  model.addMessage(message(2, "ann: look"));
  model.addMessage(message(3, "in view", { room: "#lobby" }));
  assert.equal(model.room("#dev").unread, 2);
  assert.equal(model.room("#dev").mentions, 1);
  assert.equal(model.room("#lobby").unread, 0);
  model.show("#dev");
  assert.equal(model.unread, 0);
});

Deno.test("a private conversation started by name takes the person's id", () => {
  const model = new ChatModel();
  model.me = "ann";
  model.myId = "k:ann";
  const started = model.privateWith("Bob", undefined);
  model.show(started.key);
  const frame: PrivateFrame = {
    type: "private",
    id: 9,
    ts: 9_000,
    from: "ann",
    fromId: "k:ann",
    to: "bob",
    toId: "s:bob",
    text: "psst",
  };
  const { conversation } = model.addMessage(frame);
  assert.equal(conversation, started);
  assert.equal(conversation.key, "@s:bob");
  assert.equal(model.current, "@s:bob");
  model.renamed("bob", "robert", "s:bob");
  assert.equal(conversation.title, "robert");
});
