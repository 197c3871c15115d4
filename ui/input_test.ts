/**
 * Tests for what typing means in the terminal client: splitting pastes into messages, and the
 * commands the client carries out itself (`/reply`, `/ignore`, `/switch`, `/bell`, `/help`,
 * `/history`), driven through a real state against a real server.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ChatClient, ChatEvent } from "../net/chat_client.ts";
import { MAX_TEXT_LENGTH } from "../protocol.ts";
import type { ChatServer } from "../server.ts";
import { connect, framesUntil, until, withServer } from "../test_util.ts";
import {
  applyEvent,
  handleInput,
  newTerminalState,
  splitMessage,
  type TerminalState,
} from "./input.ts";

// ==== splitMessage ====

Deno.test("splitMessage() keeps lines together while they fit in one message", () => {
  assert.deepEqual(splitMessage("a\nb\nc"), ["a\nb\nc"]);
  const long = "x".repeat(1500);
  assert.deepEqual(splitMessage(`${long}\n${long}\nend`), [long, `${long}\nend`]);
});

Deno.test("splitMessage() cuts a line longer than a message, counting characters", () => {
  const line = "😀".repeat(MAX_TEXT_LENGTH + 10);
  const parts = splitMessage(line);
  assert.deepEqual(parts.map((p) => Array.from(p).length), [MAX_TEXT_LENGTH, 10]);
  assert.equal(parts.join(""), line);
});

Deno.test("splitMessage() drops blank lines at the edges only when nothing else is there", () => {
  assert.deepEqual(splitMessage("\n\n"), []);
  assert.deepEqual(splitMessage("a\n\nb"), ["a\n\nb"]);
});

// ==== Commands the client carries out ====

async function withTerminal(
  fn: (server: ChatServer, ann: TerminalState, bob: ChatClient) => Promise<void>,
) {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    const bob = await connect(server, "bob");
    try {
      await fn(server, newTerminalState(ann, { color: false }), bob);
    } finally {
      await ann.close();
      await bob.close();
    }
  });
}

/** Feeds ann's frames through `applyEvent` until one matches; returns it with what applyEvent said. */
async function seen(
  state: TerminalState,
  match: (frame: ChatEvent) => boolean,
): Promise<{ frame: ChatEvent; shown: boolean | "bell" }> {
  while (true) {
    const frame = await state.client.next();
    if (frame === undefined) throw new Error("connection ended");
    const shown = applyEvent(state, frame);
    if (match(frame)) return { frame, shown };
  }
}

Deno.test("/reply answers the last person who wrote privately, and rings", async () => {
  await withTerminal(async (_server, ann, bob) => {
    assert.deepEqual(handleInput(ann, "/reply hi"), ["Nobody has written to you privately yet"]);
    bob.send({ type: "msg", to: "ann", text: "psst" });
    const { shown } = await seen(ann, (f) => f.type === "private");
    assert.equal(shown, "bell");
    assert.equal(handleInput(ann, "/reply got it"), "sent");
    while (true) {
      const frame = await bob.next();
      if (frame?.type === "private" && frame.from === "ann") {
        assert.equal(frame.to, "bob");
        assert.equal(frame.text, "got it");
        break;
      }
    }
  });
});

Deno.test("/ignore hides someone's messages and /unignore shows them again", async () => {
  await withTerminal(async (_server, ann, bob) => {
    await seen(ann, (f) => f.type === "joined" && f.name === "bob");
    assert.match((handleInput(ann, "/ignore BOB") as string[])[0]!, /Ignoring BOB/);
    await bob.say("first");
    assert.equal((await seen(ann, (f) => f.type === "message" && f.text === "first")).shown, false);
    handleInput(ann, "/unignore bob");
    await bob.say("second");
    assert.equal((await seen(ann, (f) => f.type === "message" && f.text === "second")).shown, true);
  });
});

Deno.test("a mention rings the bell until /bell off", async () => {
  await withTerminal(async (_server, ann, bob) => {
    await bob.say("hey ann, look");
    assert.equal((await seen(ann, (f) => f.type === "message")).shown, "bell");
    assert.deepEqual(handleInput(ann, "/bell off"), ["Bell off for private messages and mentions"]);
    await bob.say("ann again");
    assert.equal((await seen(ann, (f) => f.type === "message")).shown, true);
    assert.deepEqual(handleInput(ann, "/bell maybe"), ["Usage: /bell [on|off]"]);
  });
});

Deno.test("/switch moves plain input between joined rooms only", async () => {
  await withTerminal(async (_server, ann, bob) => {
    assert.deepEqual(handleInput(ann, "/switch #dev"), ["You are not in #dev: /join it first"]);
    assert.deepEqual(handleInput(ann, "/join dev"), []);
    await seen(ann, (f) => f.type === "room");
    assert.equal(ann.room, "#dev");
    assert.deepEqual(handleInput(ann, "/switch #LOBBY"), ["Now talking in #lobby"]);
    assert.equal(handleInput(ann, "to the lobby"), "sent");
    const said = await seen(ann, (f) => f.type === "message");
    assert.ok(said.frame.type === "message" && said.frame.room === "#lobby");
    assert.equal(bob.name, "bob");
  });
});

Deno.test("mistyped commands send nothing and say how to use them", async () => {
  await withTerminal(async (_server, ann, bob) => {
    assert.deepEqual(handleInput(ann, "/nick"), ["Usage: /nick <newname>"]);
    assert.deepEqual(handleInput(ann, "/nick two words"), ["Usage: /nick <newname>"]);
    assert.deepEqual(handleInput(ann, "/msg bob"), ["Usage: /msg <name> <text>"]);
    assert.match((handleInput(ann, "/nikc annie") as string[])[0]!, /Unknown command \/nikc/);
    assert.deepEqual(handleInput(ann, "/connect 999.1.1.1"), [
      'Invalid IPv4 address "999.1.1.1": use four numbers from 0 to 255',
    ]);
    assert.deepEqual(handleInput(ann, "/connect chat.lan:6000"), {
      connect: { address: { hostname: "chat.lan", port: 6000 }, invited: false },
    });
    const fp = "SHA256:" + "A".repeat(43);
    assert.deepEqual(handleInput(ann, `/connect chat://chat.lan:6001/dev?fp=${"A".repeat(43)}`), {
      connect: {
        address: { hostname: "chat.lan", port: 6001 },
        fingerprint: fp,
        room: "#dev",
        invited: true,
      },
    });
    // An invite for this very address with another key than the one this connection has.
    const port = ann.client.address.port;
    ann.facts = { security: "tls", fingerprint: `SHA256:${"B".repeat(43)}` };
    assert.match(
      (handleInput(ann, `/connect chat://127.0.0.1:${port}/?fp=${"A".repeat(43)}`) as string[])[0]!,
      /already on .* but its key is SHA256:B+, not the SHA256:A+ this invite names/,
    );
    ann.facts = { security: "plain", fingerprint: undefined };
    // Alone, it tells where we are and how (the test's connection is plain TCP).
    const where = handleInput(ann, "/server") as string[];
    assert.match(where[0]!, /^Connected to 127\.0\.0\.1:\d+ over plain TCP: not encrypted/);
    assert.deepEqual(handleInput(ann, "/quit see you"), { quit: "see you" });
    // Nothing of that reached bob: the next thing he sees is this message.
    await ann.client.say("only this");
    while (true) {
      const frame = await bob.next();
      assert.ok(frame?.type !== "renamed" && frame?.type !== "private");
      if (frame?.type === "message") {
        assert.equal(frame.text, "only this");
        break;
      }
    }
  });
});

Deno.test("/help is generated from the command table", async () => {
  await withTerminal((_server, ann) => {
    const help = handleInput(ann, "/help") as string[];
    for (const command of ["/join", "/msg", "/ignore", "/connect", "/quit"]) {
      assert.ok(help.some((line) => line.includes(command)), command);
    }
    assert.deepEqual(handleInput(ann, "/help r"), [
      "/reply <text>  Answer the last person who wrote to you privately (also /r)",
    ]);
    return Promise.resolve();
  });
});

Deno.test("/history pages back from the oldest message shown, further each time", async () => {
  await withServer(async (server) => {
    const bob = await connect(server, "bob");
    let ann: TerminalState | undefined;
    try {
      for (let i = 1; i <= 6; i++) await bob.say(`m${i}`);
      ann = newTerminalState(await connect(server, "ann"), { color: false });
      const texts = async (count: number) => {
        const shown: string[] = [];
        while (shown.length < count) {
          const { frame } = await seen(ann!, (f) => f.type === "message" && f.history === true);
          if (frame.type === "message") shown.push(frame.text);
        }
        return shown;
      };
      assert.deepEqual(await texts(2), ["m5", "m6"], "joining shows the last two");
      assert.deepEqual(handleInput(ann, "/history 3"), []);
      assert.deepEqual(await texts(3), ["m2", "m3", "m4"]);
      assert.deepEqual(handleInput(ann, "/history"), []);
      assert.deepEqual(await texts(1), ["m1"]);
    } finally {
      await ann?.client.close();
      await bob.close();
    }
  }, { historyLimit: 2, rate: 0 });
});

Deno.test("a pasted block of lines is sent as one message", async () => {
  await withTerminal(async (_server, ann, bob) => {
    assert.equal(handleInput(ann, "line one\nline two\n  indented"), "sent");
    while (true) {
      const frame = await bob.next();
      if (frame?.type === "message") {
        assert.equal(frame.text, "line one\nline two\n  indented");
        break;
      }
    }
  });
});

// ==== A person, not a name ====

/** Renames a client and waits until the server confirms it. */
async function rename(client: ChatClient, name: string): Promise<void> {
  client.send({ type: "nick", name });
  await until(client, "renamed", (f) => f.to === name);
}

Deno.test("/reply answers the person who wrote, after they renamed and another took their name", async () => {
  await withTerminal(async (server, ann, bob) => {
    const carol = await connect(server, "carol");
    try {
      bob.send({ type: "msg", to: "ann", text: "psst" });
      await seen(ann, (f) => f.type === "private" && f.text === "psst");
      await rename(bob, "robert");
      await seen(ann, (f) => f.type === "renamed" && f.to === "robert");
      await rename(carol, "bob");
      await seen(ann, (f) => f.type === "renamed" && f.to === "bob");
      assert.equal(handleInput(ann, "/reply are you there?"), "sent");
      const got = await until(bob, "private", (f) => f.text === "are you there?");
      assert.equal(got.to, "robert");
      assert.equal(got.toId, bob.welcome.id);
      carol.send({ type: "ping" });
      const carolSaw = await framesUntil(carol, (f) => f.type === "pong");
      assert.ok(!carolSaw.some((f) => f.type === "private"), "the new bob got nothing");
    } finally {
      await carol.close();
    }
  });
});

Deno.test("/ignore follows the person across renames, and not the name to its next holder", async () => {
  await withTerminal(async (server, ann, bob) => {
    const carol = await connect(server, "carol");
    try {
      await seen(ann, (f) => f.type === "joined" && f.name === "carol");
      assert.match((handleInput(ann, "/ignore bob") as string[])[0]!, /Ignoring bob/);
      assert.deepEqual(handleInput(ann, "/ignore"), ["You are ignoring 1: bob"]);
      await rename(bob, "robert");
      await rename(carol, "bob");
      await bob.say("robert speaking");
      assert.equal((await seen(ann, (f) => f.type === "message")).shown, false);
      await carol.say("carol, now bob");
      assert.equal((await seen(ann, (f) => f.type === "message")).shown, true);
      assert.deepEqual(handleInput(ann, "/ignore"), ["You are ignoring 1: robert"]);
      assert.deepEqual(handleInput(ann, "/ignore ann"), ["You cannot ignore yourself"]);
      assert.match(
        (handleInput(ann, "/ignore nobody") as string[])[0]!,
        /Nobody called nobody has been seen/,
      );
    } finally {
      await carol.close();
    }
  });
});

Deno.test("pasted text is sent as text, commands and // included, as one message", async () => {
  await withTerminal(async (_server, ann, bob) => {
    const paste = "see this:\n/quit\n//not a command";
    assert.equal(handleInput(ann, paste, { pasted: true }), "sent");
    const message = await until(bob, "message", (m) => m.from === "ann");
    assert.equal(message.text, paste);
  });
});

Deno.test("one typed line longer than a message is sent in parts, as a paste would be", async () => {
  await withTerminal(async (_server, ann, bob) => {
    const line = "x".repeat(MAX_TEXT_LENGTH + 500);
    assert.equal(handleInput(ann, line), "sent");
    const first = await until(bob, "message", (m) => m.from === "ann");
    const second = await until(bob, "message", (m) => m.from === "ann");
    assert.deepEqual([first.text.length, second.text.length], [MAX_TEXT_LENGTH, 500]);
  });
});

Deno.test("the rooms a resume gives back leave the current room as it was", async () => {
  await withTerminal(async (_server, ann) => {
    assert.deepEqual(handleInput(ann, "/join #dev"), []);
    await seen(ann, (f) => f.type === "room");
    assert.deepEqual(handleInput(ann, "/switch #lobby"), ["Now talking in #lobby"]);
    // What a resumed session's welcome is followed by: each room, the server's current last.
    for (const room of ["#lobby", "#dev"]) {
      applyEvent(ann, { type: "room", room, topic: "", users: ["ann"], count: 1 });
    }
    assert.equal(ann.room, "#lobby");
  });
});
