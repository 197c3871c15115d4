/**
 * Tests for TLS over loopback: the listener, and the client's dialer pinned by the server's key.
 * A server with the pinned key is reached whatever name or address it is dialled at; a server
 * with another key, or one nobody said to trust, is refused before a single byte is sent; a plain
 * client on the TLS port does not disturb the listener; failures are one line for a person.
 *
 * @module
 */

import assert from "node:assert/strict";
import { freePort, testCertificate, within } from "../test_util.ts";
import { makeCertificate, type ServerCertificate } from "./certs.ts";
import { DialRefusal, type Transport } from "./conn.ts";
import { writeAll } from "./outbox.ts";
import { dialTls, KeyMismatchError, listenTls } from "./tls.ts";

const TIMEOUT_MS = 5_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What the server saw on one connection. */
interface Served {
  transport: Transport;
  /** How many bytes arrived. */
  received: number;
  /** How the connection ended: `closed` (read gave null), or the error's name. */
  ended: Promise<string>;
}

/** A TLS listener on a free loopback port that echoes what it receives. */
interface EchoServer {
  hostname: string;
  port: number;
  served: Served[];
  /** Resolves once `count` connections were accepted. */
  accepted(count: number): Promise<void>;
}

/**
 * Runs `fn` with a TLS echo server listening with `certificate`, then shuts it down in order:
 * the listener, its accept loop, each connection, each handler.
 */
async function withEchoServer(
  certificate: ServerCertificate,
  fn: (server: EchoServer) => Promise<void>,
  hostname = "127.0.0.1",
  handshakeTimeoutMs?: number,
): Promise<void> {
  const listener = await listenTls({
    hostname,
    port: 0,
    certPem: certificate.certPem,
    keyPem: certificate.keyPem,
    ...(handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs }),
  });
  assert.equal(listener.kind, "tls");
  const served: Served[] = [];
  let wake = () => {};
  const acceptLoop = (async () => {
    for (;;) {
      const transport = await listener.accept();
      if (transport === undefined) return;
      assert.equal(transport.kind, "tls");
      const entry: Served = { transport, received: 0, ended: Promise.resolve("") };
      entry.ended = echo(entry);
      served.push(entry);
      wake();
    }
  })();
  const server: EchoServer = {
    hostname: listener.addr.hostname,
    port: listener.addr.port,
    served,
    async accepted(count) {
      while (served.length < count) {
        const { promise, resolve } = Promise.withResolvers<void>();
        wake = resolve;
        await within(promise, `connection ${count}`);
      }
    },
  };
  try {
    await fn(server);
  } finally {
    listener.close();
    await acceptLoop;
    for (const entry of served) entry.transport.close();
    await Promise.all(served.map((entry) => entry.ended));
    await listener.finished;
  }
}

/** Echoes what arrives until the peer closes, then closes; resolves to how it ended. */
async function echo(entry: Served): Promise<string> {
  const buffer = new Uint8Array(4096);
  try {
    for (;;) {
      const n = await entry.transport.read(buffer);
      if (n === null) return "closed";
      entry.received += n;
      await writeAll(entry.transport, buffer.slice(0, n));
    }
  } catch (error) {
    return error instanceof Error ? error.name : String(error);
  } finally {
    entry.transport.close(); // as the server does when a connection ends
  }
}

/** Reads from `transport` until `length` bytes have arrived. */
async function readBytes(transport: Transport, length: number): Promise<string> {
  const buffer = new Uint8Array(length);
  let have = 0;
  while (have < length) {
    const n = await within(transport.read(buffer.subarray(have)), "echoed bytes");
    assert.notEqual(n, null, "the server closed early");
    have += n!;
  }
  return decoder.decode(buffer);
}

/** Sends `text` and checks that the server echoes it back. */
async function assertEchoes(transport: Transport, text: string): Promise<void> {
  await writeAll(transport, encoder.encode(text));
  assert.equal(await readBytes(transport, encoder.encode(text).length), text);
}

/** Dials, expecting a connection; the caller closes it. */
async function dialOk(
  dial: ReturnType<typeof dialTls>,
  hostname: string,
  port: number,
): Promise<Transport> {
  const result = await dial({ hostname, port }, TIMEOUT_MS);
  if (!result.ok) {
    assert.fail(typeof result.error === "string" ? result.error : result.error.message);
  }
  return result.value;
}

/** Dials, expecting a refusal. */
async function dialRefused(
  dial: ReturnType<typeof dialTls>,
  hostname: string,
  port: number,
): Promise<DialRefusal> {
  const result = await dial({ hostname, port }, TIMEOUT_MS);
  if (result.ok) {
    result.value.close();
    assert.fail("connected");
  }
  assert.ok(result.error instanceof DialRefusal, String(result.error));
  return result.error;
}

Deno.test("dialTls() pinned by the right key connects, and bytes flow both ways", async () => {
  const certificate = await testCertificate();
  await withEchoServer(certificate, async (server) => {
    const keys: string[] = [];
    const dial = dialTls({ fingerprint: certificate.fingerprint }, (fp) => keys.push(fp));
    const transport = await dialOk(dial, "127.0.0.1", server.port);
    try {
      assert.equal(transport.kind, "tls");
      assert.equal(transport.remoteAddress, "127.0.0.1");
      await assertEchoes(transport, "hello over TLS\n");
      await assertEchoes(transport, "x".repeat(50_000) + "\n");
      assert.deepEqual(keys, [certificate.fingerprint], "onKey is told the key");
      await server.accepted(1);
      assert.equal(server.served[0]!.transport.remoteAddress, "127.0.0.1");
      assert.equal(server.served[0]!.received, 15 + 50_001);
    } finally {
      transport.close();
    }
    assert.equal(await within(server.served[0]!.ended, "the server's end"), "closed");
  });
});

Deno.test("dialTls() refuses a server with another key, naming both keys, before sending a byte", async () => {
  const certificate = await testCertificate();
  const expected = (await makeCertificate({ dns: ["localhost"], ips: [] })).fingerprint;
  await withEchoServer(certificate, async (server) => {
    const keys: string[] = [];
    const refusal = await dialRefused(
      dialTls({ fingerprint: expected }, (fp) => keys.push(fp)),
      "127.0.0.1",
      server.port,
    );
    assert.equal(refusal.code, "key_changed");
    assert.ok(refusal.message.includes(expected), refusal.message);
    assert.ok(refusal.message.includes(certificate.fingerprint), refusal.message);
    assert.equal(
      refusal.message,
      new KeyMismatchError(
        { hostname: "127.0.0.1", port: server.port },
        expected,
        certificate.fingerprint,
      )
        .message,
    );
    assert.match(refusal.message, new RegExp(`^The server at 127\\.0\\.0\\.1:${server.port} `));
    assert.deepEqual(keys, [], "onKey is not told a refused key");
    // The server sees the connection end without a byte of data.
    await server.accepted(1);
    const ended = await within(server.served[0]!.ended, "the refused connection's end");
    assert.notEqual(ended, "", ended);
    assert.equal(server.served[0]!.received, 0);
  });
});

Deno.test("dialTls() says a changed key in the words it is given", async () => {
  const certificate = await testCertificate();
  await withEchoServer(certificate, async (server) => {
    const refusal = await dialRefused(
      dialTls({
        fingerprint: "SHA256:old",
        keyChangedText: (expected, actual) => `was ${expected}, is ${actual}`,
      }),
      "127.0.0.1",
      server.port,
    );
    assert.equal(refusal.code, "key_changed");
    assert.equal(refusal.message, `was SHA256:old, is ${certificate.fingerprint}`);
  });
});

Deno.test("dialTls() refuses a first contact nobody trusts, and shows its key", async () => {
  const certificate = await testCertificate();
  await withEchoServer(certificate, async (server) => {
    for (const pin of [{}, { firstContact: () => Promise.resolve(false) }]) {
      const refusal = await dialRefused(dialTls(pin), "127.0.0.1", server.port);
      assert.equal(refusal.code, "not_trusted");
      assert.ok(refusal.message.includes(certificate.fingerprint), refusal.message);
      assert.ok(refusal.message.includes("--fingerprint"), refusal.message);
      assert.doesNotMatch(refusal.message, /\n/);
    }
    await server.accepted(2);
    for (const entry of server.served) {
      await within(entry.ended, "the refused connection's end");
      assert.equal(entry.received, 0);
    }
  });
});

Deno.test("dialTls() goes on with a first contact that is trusted, and tells its key", async () => {
  const certificate = await testCertificate();
  await withEchoServer(certificate, async (server) => {
    const asked: string[] = [];
    const keys: string[] = [];
    const dial = dialTls({
      firstContact: (fingerprint) => {
        asked.push(fingerprint);
        return Promise.resolve(true);
      },
    }, (fp) => keys.push(fp));
    const transport = await dialOk(dial, "127.0.0.1", server.port);
    try {
      await assertEchoes(transport, "first contact\n");
    } finally {
      transport.close();
    }
    assert.deepEqual(asked, [certificate.fingerprint]);
    assert.deepEqual(keys, [certificate.fingerprint]);
  });
});

Deno.test("dialTls() does not ask about a first contact when a key is pinned", async () => {
  const certificate = await testCertificate();
  await withEchoServer(certificate, async (server) => {
    let asked = 0;
    const firstContact = () => {
      asked++;
      return Promise.resolve(true);
    };
    const refusal = await dialRefused(
      dialTls({ fingerprint: "SHA256:other", firstContact }),
      "127.0.0.1",
      server.port,
    );
    assert.equal(refusal.code, "key_changed");
    const transport = await dialOk(
      dialTls({ fingerprint: certificate.fingerprint, firstContact }),
      "127.0.0.1",
      server.port,
    );
    transport.close();
    assert.equal(asked, 0);
  });
});

Deno.test("dialTls() pins the key, not the name: a certificate for another name still works", async () => {
  // The certificate lists neither localhost nor any address.
  const certificate = await makeCertificate({ dns: ["example.invalid"], ips: [] });
  await withEchoServer(certificate, async (server) => {
    const dial = dialTls({ fingerprint: certificate.fingerprint });
    // The listener's own address (127.0.0.1 or ::1), and the name that resolved to it.
    for (const hostname of [server.hostname, "localhost"]) {
      const transport = await dialOk(dial, hostname, server.port);
      try {
        await assertEchoes(transport, `dialled as ${hostname}\n`);
      } finally {
        transport.close();
      }
    }
    // The same pin refuses nothing at either, and another key is refused at either.
    for (const hostname of [server.hostname, "localhost"]) {
      const refusal = await dialRefused(
        dialTls({ fingerprint: (await testCertificate()).fingerprint }),
        hostname,
        server.port,
      );
      assert.equal(refusal.code, "key_changed");
    }
  }, "localhost");
});

Deno.test("a plain TCP client sending garbage to the TLS listener does not break it", async () => {
  const certificate = await testCertificate();
  await withEchoServer(certificate, async (server) => {
    const plain = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      await plain.write(encoder.encode("GET / HTTP/1.0\r\n\r\nnot TLS at all\n"));
      // The listener ends that connection (a TLS alert at most, then the end).
      const buffer = new Uint8Array(1024);
      for (;;) {
        const n = await within(plain.read(buffer).catch(() => null), "the plain client's end");
        if (n === null) break;
      }
    } finally {
      plain.close();
    }
    // It never reached the server's side: a failed handshake is not a connection.
    assert.equal(server.served.length, 0);
    // A good TLS client right after is served as usual.
    const transport = await dialOk(
      dialTls({ fingerprint: certificate.fingerprint }),
      "127.0.0.1",
      server.port,
    );
    try {
      await assertEchoes(transport, "still listening\n");
      assert.equal(server.served.length, 1);
    } finally {
      transport.close();
    }
  });
});

Deno.test("a TLS handshake that never finishes is cut off, its socket closed", async () => {
  const certificate = await testCertificate();
  await withEchoServer(
    certificate,
    async (server) => {
      const stalled = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      try {
        // The first bytes of a ClientHello, and then nothing.
        await stalled.write(new Uint8Array([0x16, 0x03, 0x01]));
        const n = await within(
          stalled.read(new Uint8Array(64)).catch(() => null),
          "the server to close the stalled socket",
        );
        assert.equal(n, null);
        assert.equal(server.served.length, 0);
      } finally {
        stalled.close();
      }
    },
    "127.0.0.1",
    200,
  );
});

Deno.test("dialTls() to a closed port fails in one line that says what to check", async () => {
  const port = freePort();
  const result = await dialTls({ fingerprint: "SHA256:x" })(
    { hostname: "127.0.0.1", port },
    TIMEOUT_MS,
  );
  assert.ok(!result.ok);
  assert.equal(typeof result.error, "string", "a string: worth trying again, unlike a refusal");
  assert.match(
    String(result.error),
    new RegExp(`^Cannot connect to 127\\.0\\.0\\.1:${port}: connection refused \\(is the server`),
  );
  assert.doesNotMatch(String(result.error), /\n/);
});

Deno.test("dialTls() to a plain server says it does not speak TLS", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serve = (async () => {
    const conn = await listener.accept();
    try {
      await conn.write(encoder.encode("Welcome! Pick a name:\n"));
    } finally {
      conn.close();
    }
  })();
  try {
    const result = await dialTls({ fingerprint: "SHA256:x" })(
      { hostname: "127.0.0.1", port: listener.addr.port },
      TIMEOUT_MS,
    );
    assert.ok(!result.ok);
    assert.equal(typeof result.error, "string");
    assert.match(String(result.error), /does not speak TLS .*--plain/);
    assert.doesNotMatch(String(result.error), /\n/);
  } finally {
    listener.close();
    await serve;
  }
});

Deno.test("dialTls() gives up on a server that never answers the handshake", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  try {
    const result = await dialTls({ fingerprint: "SHA256:x" })(
      { hostname: "127.0.0.1", port: listener.addr.port },
      200,
    );
    assert.ok(!result.ok);
    assert.equal(
      result.error,
      `Cannot connect to 127.0.0.1:${listener.addr.port}: no answer after 0.2 s`,
    );
  } finally {
    (await accepted).close();
    listener.close();
  }
});

Deno.test("dialTls() does not hand over a connection the server closed while its key was checked", async () => {
  // A person deciding whether to trust a key may take longer than the server waits.
  const certificate = await testCertificate();
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: certificate.certPem,
    key: certificate.keyPem,
  });
  const serverClosed = (async () => {
    const conn = await listener.accept();
    await conn.handshake();
    conn.close();
  })();
  try {
    const keys: string[] = [];
    const result = await dialTls({
      firstContact: async () => {
        await serverClosed;
        // The time a person takes to read a fingerprint: the server's close arrives meanwhile.
        await new Promise((resolve) => setTimeout(resolve, 100));
        return true;
      },
    }, (fp) => keys.push(fp))({ hostname: "127.0.0.1", port: listener.addr.port }, TIMEOUT_MS);
    if (result.ok) {
      // Had the close not arrived yet, the connection must still end when it does.
      try {
        assert.equal(await within(result.value.read(new Uint8Array(16)), "the end"), null);
      } finally {
        result.value.close();
      }
    } else {
      assert.equal(typeof result.error, "string", "worth trying again");
      assert.match(String(result.error), /closed the connection/);
    }
    assert.deepEqual(keys, [certificate.fingerprint], "the key the person accepted is told");
  } finally {
    listener.close();
    await serverClosed.catch(() => {});
  }
});

Deno.test("listenTls() reports its real port and stops accepting once closed", async () => {
  const certificate = await testCertificate();
  const listener = await listenTls({
    hostname: "127.0.0.1",
    port: 0,
    certPem: certificate.certPem,
    keyPem: certificate.keyPem,
  });
  assert.ok(listener.addr.port > 0);
  assert.equal(listener.addr.hostname, "127.0.0.1");
  const pending = listener.accept();
  listener.close();
  assert.equal(await pending, undefined);
  listener.close(); // twice is harmless
  await listener.finished;
});
