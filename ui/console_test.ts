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
import { runOperatorCommand } from "./console.ts";

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

Deno.test("operator: plain text is announced to everyone", async () => {
  await withChat(["ann", "bob"], async ({ ann, bob }, server) => {
    assert.deepEqual(runOperatorCommand(server, "Maintenance at noon"), { lines: [] });
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
