/**
 * Tests for the operator console's commands against a real server: announcing, kicking, banning,
 * speaking in a room, the message of the day, who is here, and shutting down.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  connect,
  expectError,
  framesBeforePong,
  framesUntil,
  joinRoom,
  RawClient,
  until,
  withChat,
  within,
  withServer,
} from "../test_util.ts";
import { completeOperatorLine, limitLog, logOutput, runOperatorCommand } from "./console.ts";

Deno.test("a client that is not an operator cannot use operator commands: kick is not allowed", async () => {
  await withServer(async (server) => {
    const bob = await connect(server, "bob");
    const raw = await RawClient.open(server);
    try {
      await raw.write({ type: "hello", name: "mallory" });
      await until(raw, "welcome");
      await raw.write('{"type":"kick","name":"bob"}\n');
      const refused = await expectError(raw, "not_allowed");
      assert.match(refused.message, /operators can use kick/);
      assert.ok(!(await framesBeforePong(bob)).some((f) => f.type === "error"));
      assert.ok(bob.connected);
      assert.ok(server.hub.member("bob"));
    } finally {
      raw.close();
      await bob.close();
    }
  });
});

Deno.test("operator: plain text goes nowhere; /announce speaks to everyone", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }, server) => {
    assert.deepEqual(runOperatorCommand(server, "kick bob").lines, [
      "Not sent: did you mean /kick? (to speak to everyone, use /announce <text>)",
    ]);
    assert.deepEqual(runOperatorCommand(server, "Maintenance at noon").lines, [
      "Not sent: to speak to everyone, use /announce <text> (/help lists the commands)",
    ]);
    assert.deepEqual(runOperatorCommand(server, "/announce Maintenance at noon"), { lines: [] });
    for (const client of [ann, bob]) {
      const announce = await until(client, "announce");
      assert.equal(announce.text, "Maintenance at noon");
      assert.equal(typeof announce.ts, "number");
    }
  });
});

Deno.test("operator: /kick disconnects with kicked and tells the others why", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }, server) => {
    assert.deepEqual(runOperatorCommand(server, "/kick bob spam").lines, ["Kicked bob"]);
    const closed = await within(bob.closed, "bob to be disconnected");
    assert.equal(closed.by, "server");
    assert.equal(closed.error?.code, "kicked");
    assert.match(closed.error?.message ?? "", /spam/);
    assert.equal((await until(ann, "left", (f) => f.name === "bob")).reason, "kicked: spam");
    assert.equal(runOperatorCommand(server, "/kick bob").lines.length, 1, "already gone");
  });
});

Deno.test("operator: /ban of a name disconnects it and keeps it out until /unban", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }, server) => {
    const [banned] = runOperatorCommand(server, "/ban bob").lines;
    assert.match(banned ?? "", /^Banned bob/);
    assert.equal((await within(bob.closed, "bob to be disconnected")).error?.code, "banned");
    assert.equal((await until(ann, "left", (f) => f.name === "bob")).reason, "banned");
    await assert.rejects(connect(server, "BOB"), { name: "ChatError", code: "banned" });
    const bans = runOperatorCommand(server, "/bans").lines;
    assert.equal(bans.length, 1);
    assert.match(bans[0]!, /bob \(name\) for good/);
    assert.deepEqual(runOperatorCommand(server, "/unban bob").lines, ["Unbanned bob"]);
    assert.deepEqual(runOperatorCommand(server, "/bans").lines, ["No bans"]);
    const back = await connect(server, "bob");
    await back.close();
  });
});

Deno.test("operator: a banned name cannot be taken by renaming either", async () => {
  await withChat(["ann", "bob2"], async ({ ann, bob2 }, server) => {
    runOperatorCommand(server, "/ban bob");
    bob2.send({ type: "nick", name: "BOB" });
    const answer = (await framesUntil(bob2, (f) => f.type === "error" || f.type === "renamed"))
      .at(-1);
    assert.deepEqual(answer?.type === "error" ? answer.code : answer, "not_allowed");
    assert.ok(!(await framesBeforePong(ann)).some((f) => f.type === "renamed"));
    assert.equal(server.hub.member("bob"), undefined);
  });
});

Deno.test("operator: /ban of an address refuses new connections from it", async () => {
  await withChat(["ann"], async ({ ann }, server) => {
    const [banned] = runOperatorCommand(server, "/ban 127.0.0.1 5").lines;
    assert.match(banned ?? "", /^Banned 127\.0\.0\.1 \(address\) for 5 minutes; removed 1/);
    assert.equal(
      (await within(ann.closed, "ann to be disconnected")).error?.code,
      "banned",
      "the address's connections go too",
    );
    await assert.rejects(connect(server, "cy"), { name: "ChatError", code: "banned" });
    const bans = runOperatorCommand(server, "/bans").lines;
    assert.match(bans[0] ?? "", /127\.0\.0\.1 \(address\) until /);
    runOperatorCommand(server, "/unban 127.0.0.1");
    const cy = await connect(server, "cy");
    await cy.close();
  });
});

Deno.test("operator: /say speaks in one room as the server", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }, server) => {
    await joinRoom(bob, "#x");
    assert.deepEqual(runOperatorCommand(server, "/say #lobby hi all").lines, []);
    for (const client of [ann, bob]) {
      const message = await until(client, "message");
      assert.equal(message.from, "server");
      assert.equal(message.room, "#lobby");
      assert.equal(message.text, "hi all");
    }
    assert.match(runOperatorCommand(server, "/say #nowhere hi").lines[0] ?? "", /no room/);
  });
});

Deno.test("operator: /motd sets the message of the day later joiners get", async () => {
  await withChat(["ann"], async (_, server) => {
    assert.deepEqual(runOperatorCommand(server, "/motd Be kind").lines, [
      "Message of the day: Be kind",
    ]);
    const bob = await connect(server, "bob");
    try {
      assert.equal(bob.welcome.motd, "Be kind");
    } finally {
      await bob.close();
    }
  });
});

Deno.test("operator: /who lists names with their addresses", async () => {
  await withChat(["ann", "bob"], (_, server) => {
    const lines = runOperatorCommand(server, "/who").lines;
    assert.equal(lines[0], "2 present:");
    assert.ok(
      lines.some((l) => /^ {2}ann from 127\.0\.0\.1\b.* in #lobby/.test(l)),
      lines.join("\n"),
    );
    assert.ok(lines.some((l) => /^ {2}bob from 127\.0\.0\.1\b/.test(l)), lines.join("\n"));
    return Promise.resolve();
  });
});

Deno.test("operator: /shutdown asks to stop and an unknown command gets one line", async () => {
  await withServer((server) => {
    assert.deepEqual(runOperatorCommand(server, "/shutdown bye"), {
      lines: ["Shutting down"],
      shutdown: "bye",
    });
    const unknown = runOperatorCommand(server, "/frobnicate now");
    assert.equal(unknown.lines.length, 1);
    assert.match(unknown.lines[0]!, /Unknown command \/frobnicate/);
    assert.deepEqual(runOperatorCommand(server, "   "), { lines: [] });
    return Promise.resolve();
  });
});

// ==== The server's log ====

/** A writer whose writes wait until released, recording what they carried. */
function pausedWriter(): {
  write(bytes: Uint8Array): Promise<number>;
  release(): void;
  text: string;
} {
  const decoder = new TextDecoder();
  const gate = Promise.withResolvers<void>();
  const writer = {
    text: "",
    async write(bytes: Uint8Array): Promise<number> {
      await gate.promise;
      writer.text += decoder.decode(bytes);
      return bytes.length;
    },
    release: () => gate.resolve(),
  };
  return writer;
}

Deno.test("logOutput() never waits for a paused reader: it queues a bounded amount, then counts", async () => {
  const writer = pausedWriter();
  const output = logOutput(writer, { maxQueuedBytes: 100 });
  for (let i = 0; i < 50; i++) output.print([`line ${i}`]); // returns at once, every time
  writer.release();
  await output.flush();
  const lines = writer.text.trimEnd().split("\n");
  assert.equal(lines[0], "line 0");
  assert.ok(lines.length < 30, `${lines.length} lines went through`);
  assert.match(lines.at(-1)!, /^\.\.\. \d+ log lines dropped: the log's reader is too slow$/);
});

Deno.test("logOutput() goes quiet when its reader goes away, and never throws", async () => {
  let writes = 0;
  const output = logOutput({
    write(): Promise<number> {
      writes++;
      return Promise.reject(new Deno.errors.BrokenPipe("Broken pipe (os error 32)"));
    },
  });
  output.print(["one"]);
  await output.flush();
  output.print(["two"]);
  await output.flush();
  assert.equal(writes, 1);
});

Deno.test("limitLog() lets each address log a burst, then sums up the rest in one line", () => {
  const lines: string[] = [];
  const log = limitLog((line) => lines.push(line), { perSource: 1, total: 1000 });
  for (let i = 0; i < 25; i++) log(`10.0.0.5 ! bad_frame ${i}`);
  for (let i = 0; i < 3; i++) log(`10.0.0.6 + someone joined ${i}`);
  log("server starting");
  log.close();
  assert.equal(lines.filter((l) => l.startsWith("10.0.0.5 ! bad_frame")).length, 10);
  assert.equal(lines.filter((l) => l.startsWith("10.0.0.6 +")).length, 3);
  assert.ok(lines.includes("server starting"));
  assert.ok(lines.includes("10.0.0.5 ... and 15 more lines (log limit)"), lines.join("\n"));
});

Deno.test("limitLog() holds the whole log to its rate, whoever writes", () => {
  const lines: string[] = [];
  const log = limitLog((line) => lines.push(line), { perSource: 100, total: 2 });
  for (let i = 0; i < 30; i++) log(`10.0.${i}.1 + joined`);
  log.close();
  assert.equal(lines.filter((l) => l.endsWith("+ joined")).length, 10);
  assert.ok(lines.includes("... and 20 more lines from everyone (log limit)"), lines.join("\n"));
});

Deno.test("operator: Tab completes commands, then the names of people present and rooms", async () => {
  await withChat(["ann", "andy", "bob"], async ({ bob }, server) => {
    await joinRoom(bob, "#dev");
    const commands = ["/kick", "/ban", "/who"];
    assert.deepEqual(completeOperatorLine(server, commands, "/k"), [["/kick "], "/k"]);
    assert.deepEqual(completeOperatorLine(server, commands, "/kick an"), [["andy ", "ann "], "an"]);
    assert.deepEqual(completeOperatorLine(server, commands, "/say #d"), [["#dev "], "#d"]);
  });
});
