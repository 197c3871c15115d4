/**
 * Tests for `ChatClient` against a real server: connecting, sending and acknowledgements,
 * refusals, and how it ends.
 *
 * @module
 */

import assert from "node:assert/strict";
import { encodeFrame, errorFrame, fail, type UsersFrame, VERSION } from "../protocol.ts";
import { startServer } from "../server.ts";
import {
  connect,
  freePort,
  isMessageFrom,
  waitForFrame,
  within,
  withServer,
} from "../test_util.ts";
import {
  ChatClient,
  ChatError,
  type ChatErrorCode,
  type ChatEvent,
  disconnectText,
} from "./chat_client.ts";
import { DialRefusal, type Transport } from "./conn.ts";
import { dialTcp } from "./tcp.ts";
import { readLines } from "./lines.ts";
import { writeAll } from "./outbox.ts";

// ==== Helpers ====

/** Everything a terminal could act on; error messages must contain none of it. */
const TERMINAL_UNSAFE_REGEXP = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;

/** Checks that a promise rejects with a {@linkcode ChatError} of the given code. */
async function assertChatError(
  promise: Promise<unknown>,
  code: ChatErrorCode,
  message?: RegExp,
): Promise<ChatError> {
  const error = await within(promise.then(() => undefined, (e: unknown) => e), `a ${code} error`);
  assert.ok(error instanceof ChatError, `Expected a ChatError, got ${String(error)}`);
  assert.equal(error.name, "ChatError");
  assert.equal(error.code, code);
  if (message) assert.match(error.message, message);
  return error;
}

// ==== ChatClient against a real server ====

Deno.test("ChatClient.connect() resolves with a welcome listing everyone present", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      const bob = await connect(server, "bob");
      try {
        assert.equal(bob.name, "bob");
        assert.equal(bob.welcome.type, "welcome");
        assert.equal(bob.welcome.name, "bob");
        assert.deepEqual([...bob.welcome.users].sort(), ["ann", "bob"]);
        assert.equal(bob.welcome.count, 2);
        assert.equal(bob.welcome.server.version, VERSION);
        assert.deepEqual(ann.welcome.users, ["ann"]);
      } finally {
        await bob.close();
      }
    } finally {
      await ann.close();
    }
  });
});

Deno.test("ChatClient.say() resolves with the server's copy: id, ts, from and text", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    const bob = await connect(server, "bob");
    try {
      const before = Date.now();
      const sent = await within(ann.say("hello everyone"), "the acknowledgement");
      const after = Date.now();
      assert.equal(sent.type, "message");
      assert.ok(Number.isSafeInteger(sent.id) && sent.id > 0, `id ${sent.id}`);
      assert.ok(
        sent.ts >= before && sent.ts <= after,
        `ts ${sent.ts} not in [${before}, ${after}]`,
      );
      assert.equal(sent.from, "ann");
      assert.equal(sent.text, "hello everyone");
      const seen = await waitForFrame(bob, "ann's message", isMessageFrom("ann"));
      assert.equal(seen.id, sent.id);
      assert.equal(seen.text, "hello everyone");
      const second = await within(ann.say("again"), "the second acknowledgement");
      assert.ok(second.id > sent.id, "message ids increase");
    } finally {
      await bob.close();
      await ann.close();
    }
  });
});

Deno.test("ChatClient.connect() rejects a name taken in another case with name_taken", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      await assertChatError(connect(server, "ANN"), "name_taken", /taken/);
      assert.equal(server.hub.size, 1);
    } finally {
      await ann.close();
    }
  });
});

Deno.test("ChatClient.connect() rejects a reserved or invalid name with bad_name", async () => {
  await withServer(async (server) => {
    for (const name of ["server", "Admin", "bad name", "", "x".repeat(25), "a\u202Eb"]) {
      const error = await assertChatError(connect(server, name), "bad_name");
      assert.doesNotMatch(error.message, TERMINAL_UNSAFE_REGEXP);
    }
    assert.equal(server.hub.size, 0);
  });
});

Deno.test("ChatClient.say() rejects empty or blank text with bad_text", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      for (const text of ["", "   ", "\t\n ", "\x07\x1b"]) {
        await assertChatError(ann.say(text), "bad_text", /empty/i);
      }
      const ok = await within(ann.say("still here"), "the acknowledgement");
      assert.equal(ok.text, "still here");
    } finally {
      await ann.close();
    }
  });
});

Deno.test("ChatClient.connect() to a closed port rejects with unreachable: connection refused", async () => {
  const port = freePort();
  const error = await assertChatError(
    ChatClient.connect({ hostname: "127.0.0.1", port, name: "ann" }),
    "unreachable",
    /connection refused/,
  );
  assert.match(error.message, new RegExp(`^Cannot connect to 127\\.0\\.0\\.1:${port}: `));
});

Deno.test("ChatClient.say() never loses a message when its own outbox fills up", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      // 900 x 2 KB is more than the 1 MiB outbox holds at once, with no rate to pace it.
      const text = "x".repeat(1990);
      const acks = await within(
        Promise.all(Array.from({ length: 900 }, (_, i) => ann.say(`${i} ${text}`))),
        "every acknowledgement",
      );
      assert.equal(new Set(acks.map((a) => a.id)).size, 900);
      assert.equal(ann.unsent, 0);
    } finally {
      await ann.close();
    }
  }, { rate: 0 });
});

Deno.test("ChatClient.who() is answered with a users frame", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    const bob = await connect(server, "bob");
    try {
      bob.who();
      const users = await waitForFrame(
        bob,
        "the users frame",
        (frame): frame is UsersFrame => frame.type === "users",
      );
      assert.deepEqual([...users.users].sort(), ["ann", "bob"]);
      assert.equal(users.count, 2);
    } finally {
      await bob.close();
      await ann.close();
    }
  });
});

Deno.test("ChatClient.closed reports shutting_down when the server closes, and say() then rejects", async () => {
  const server = startServer({ hostname: "127.0.0.1", port: 0 });
  let ann: ChatClient | undefined;
  try {
    ann = await connect(server, "ann");
    await server.close();
    const info = await within(ann.closed, "the connection to end");
    assert.equal(info.by, "server");
    assert.equal(info.error?.type, "error");
    assert.equal(info.error?.code, "shutting_down");
    assert.equal(info.error?.message, "The server is shutting down");
    await assertChatError(ann.say("anyone?"), "disconnected");
  } finally {
    await ann?.close();
    await server.close();
  }
});

Deno.test("ChatClient.say() still awaiting its acknowledgement rejects with disconnected when the server goes", async () => {
  // A stand-in server that takes the say but never acknowledges it, then shuts down.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { promise: sayReceived, resolve: onSay } = Promise.withResolvers<string>();
  const serving = (async () => {
    const conn = await listener.accept();
    try {
      const lines = readLines(conn);
      await lines.next();
      await writeAll(
        conn,
        encodeFrame({
          type: "welcome",
          name: "ann",
          users: ["ann"],
          server: { name: "stand-in", version: VERSION },
        }),
      );
      const say = await lines.next();
      onSay(say.done ? "" : say.value);
      await writeAll(conn, encodeFrame(errorFrame("shutting_down", "Going down")));
    } finally {
      conn.close();
    }
  })();
  let ann: ChatClient | undefined;
  try {
    ann = await ChatClient.connect({
      hostname: "127.0.0.1",
      port: listener.addr.port,
      name: "ann",
    });
    const rejected = assertChatError(ann.say("are you there?"), "disconnected", /shutting down/);
    assert.match(await within(sayReceived, "the say"), /"type":"say"/);
    const info = await within(ann.closed, "the connection to end");
    assert.deepEqual(info, {
      by: "server",
      error: { type: "error", code: "shutting_down", message: "Going down" },
    });
    await rejected;
  } finally {
    await ann?.close();
    await within(serving, "the stand-in server");
    listener.close();
  }
});

Deno.test("ChatClient.close() makes the others see a left frame with reason quit", async () => {
  await withServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      const bob = await connect(server, "bob");
      await bob.close();
      const info = await bob.closed;
      assert.equal(info.by, "client");
      const left = await waitForFrame(
        ann,
        "bob's left frame",
        (frame): frame is Extract<ChatEvent, { type: "left" }> => frame.type === "left",
      );
      assert.equal(left.name, "bob");
      assert.equal(left.reason, "quit");
      assert.equal(server.hub.size, 1);
    } finally {
      await ann.close();
    }
  });
});

Deno.test("a reconnection refused for the server's key ends the client, saying so, not blaming the server", () =>
  withServer(async (server) => {
    const transports: Transport[] = [];
    let refuse = false;
    const client = await ChatClient.connect({
      hostname: "127.0.0.1",
      port: server.addr.port,
      name: "ann",
      reconnect: true,
      retryMinMs: 10,
      retryMaxMs: 50,
      dial: async (address, timeoutMs) => {
        if (refuse) {
          return fail(new DialRefusal("key_changed", "it had SHA256:old, it has SHA256:new"));
        }
        const dialed = await dialTcp(address, timeoutMs);
        if (dialed.ok) transports.push(dialed.value);
        return dialed;
      },
    });
    refuse = true;
    // The connection drops; the next dial meets another key.
    transports[0]!.close();
    const info = await within(client.closed, "the client to give up");
    assert.equal(info.refusal?.code, "key_changed");
    assert.equal(info.by, "client");
    assert.equal(
      disconnectText(info),
      "Not reconnected: it had SHA256:old, it has SHA256:new",
    );
  }));

Deno.test("the time a dial takes (a person reading a new server's key) does not count against the hello", () =>
  withServer(async (server) => {
    const timeoutMs = 200;
    const client = await ChatClient.connect({
      hostname: "127.0.0.1",
      port: server.addr.port,
      name: "ann",
      timeoutMs,
      dial: async (address, ms) => {
        // The person takes longer than the whole timeout to answer the question.
        await new Promise((resolve) => setTimeout(resolve, timeoutMs * 1.5));
        return await dialTcp(address, ms);
      },
    });
    assert.equal(client.name, "ann");
    await client.close();
  }));
