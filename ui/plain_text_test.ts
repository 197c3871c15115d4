/**
 * Tests for the plain-text face: a person on `nc` or `telnet` is asked for a name and chats in
 * readable lines.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ChatClient } from "../net/chat_client.ts";
import { connect, framesBeforePong, joinRoom, RawClient, until, withServer } from "../test_util.ts";

Deno.test("a person on nc or telnet is asked for a name and chats in readable lines", async () => {
  await withServer(async (server) => {
    const carol = await RawClient.open(server);
    let dave: ChatClient | undefined;
    try {
      const prompt = await carol.linesUntil((l) => l.startsWith("Type your name"));
      assert.match(prompt[0]!, /^Welcome to test/);
      // Telnet's option negotiation (IAC WILL ECHO, IAC DO SUPPRESS-GO-AHEAD), then the name.
      await carol.write([0xff, 0xfb, 0x01, 0xff, 0xfd, 0x03], "carol\r\n");
      const greeting = await carol.linesUntil((l) => l.startsWith("Hello carol"));
      assert.ok(greeting.some((l) => l.includes("Joined test as carol")), greeting.join("\n"));
      assert.ok(greeting.every((l) => !l.trimStart().startsWith("{")), "no JSON for people");

      dave = await connect(server, "dave");
      await carol.linesUntil((l) => l.includes("dave joined #lobby"));
      await dave.say("hi carol");
      const heard = (await carol.linesUntil((l) => l.includes("hi carol"))).at(-1)!;
      assert.match(heard, /^\[\d\d:\d\d\] #lobby dave: hi carol$/);

      await carol.write("hello dave\r\n");
      const hello = await until(dave, "message", (m) => m.from === "carol");
      assert.equal(hello.text, "hello dave");
      assert.equal(hello.room, "#lobby");

      await joinRoom(dave, "#x");
      await carol.write("/join #x\r\n");
      await carol.linesUntil((l) => l.includes("You are in #x"));
      await carol.write("bad ", [0x80], " byte\r\n");
      const bad = await until(dave, "message", (m) => m.from === "carol");
      assert.equal(bad.text, "bad \uFFFD byte");
      assert.equal(bad.room, "#x");

      await carol.write("/msg dave psst\r\n");
      const secret = await until(dave, "private");
      assert.deepEqual([secret.from, secret.to, secret.text], ["carol", "dave", "psst"]);
      await carol.linesUntil((l) => l.includes("psst"));

      await carol.write("/foo\r\n/switch #lobby\r\n");
      const answer = await carol.linesUntil((l) => l.includes("You are in #lobby"));
      assert.equal(answer.length, 2, answer.join("\n"));
      assert.match(answer[0]!, /^! Unknown command \/foo/);
      const daveSaw = await framesBeforePong(dave);
      assert.ok(!daveSaw.some((f) => f.type === "message" || f.type === "private"));
    } finally {
      carol.close();
      await dave?.close();
    }
  }, { promptDelayMs: 20, serverName: "test" });
});
