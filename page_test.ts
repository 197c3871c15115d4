/**
 * The chat page in a real browser (Debian's `chromium`, driven by `playwright-core`): pages and a
 * terminal-protocol client chat together, a reload and a server restart resume with nothing lost
 * or shown twice, history pages back on scroll, markup in a message stays text, and a page from
 * another origin cannot open the WebSocket. The last test writes the screenshots in
 * `web/screenshots/`.
 *
 * Without `/usr/bin/chromium` every test here says so in one line and passes. Playwright keeps a
 * browser process, pipes and timers of its own, so these tests run without the op and resource
 * sanitizers; each closes its browser and servers itself.
 *
 * @module
 */

import assert from "node:assert/strict";
import fs from "node:fs";
import type { Browser, Page } from "playwright-core";
import { ChatClient } from "./net/chat_client.ts";
import { errorFrame } from "./protocol.ts";
import { type ChatServer, type ServerOptions, startServer } from "./server.ts";
import { connect, framesBeforePong, joinRoom, until, withTempDir } from "./test_util.ts";

const CHROMIUM = "/usr/bin/chromium";
const PLAIN_HOST = "chat.test";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-quic",
  "--no-first-run",
  "--disable-sync",
  // A name for 127.0.0.1 that is not a secure context (plain http, not localhost): no WebCrypto.
  `--host-resolver-rules=MAP ${PLAIN_HOST} 127.0.0.1`,
];
/** The longest a page may take to show what a test waits for, in milliseconds. */
const PAGE_WAIT_MS = 10_000;
const SCREENSHOTS = new URL("./web/screenshots/", import.meta.url);

async function hasChromium(): Promise<boolean> {
  try {
    return (await Deno.stat(CHROMIUM)).isFile;
  } catch {
    return false;
  }
}

let toldSkipped = false;

/**
 * Loads playwright. When loaded it looks for WSL in `/proc/sys`, which Deno lets only `--allow-all`
 * read (other flags make `existsSync` throw, not answer): for the length of the import, a path
 * that may not be read counts as absent.
 */
async function loadChromium(): Promise<typeof import("playwright-core").chromium> {
  const existsSync = fs.existsSync;
  fs.existsSync = (path) => {
    try {
      return existsSync(path);
    } catch {
      return false;
    }
  };
  try {
    return (await import("playwright-core")).chromium;
  } finally {
    fs.existsSync = existsSync;
  }
}

/** A browser test: no sanitizers (see the module doc), skipped in one line without chromium. */
function browserTest(name: string, fn: (browser: Browser) => Promise<void>): void {
  Deno.test({
    name,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      if (!await hasChromium()) {
        if (!toldSkipped) {
          console.log(`skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);
        }
        toldSkipped = true;
        return;
      }
      const chromium = await loadChromium();
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      try {
        await fn(browser);
      } finally {
        await browser.close();
      }
    },
  });
}

/** A server with its web page on free loopback ports; always closed. */
async function withWebServer(
  fn: (server: ChatServer) => Promise<void>,
  options: ServerOptions = {},
): Promise<void> {
  const server = startServer({ hostname: "127.0.0.1", port: 0, web: { port: 0 }, ...options });
  try {
    await server.listening;
    await fn(server);
  } finally {
    await server.close();
  }
}

function pageUrl(server: ChatServer, host = "127.0.0.1"): string {
  return `http://${host}:${server.webAddr!.port}/`;
}

/** The window's size and theme, and the host name the page is opened by. */
interface PageOptions {
  width?: number;
  height?: number;
  dark?: boolean;
  host?: string;
}

/** A fresh browser profile (its own storage) with the page open, not joined yet. */
async function openPage(
  browser: Browser,
  server: ChatServer,
  options: PageOptions = {},
): Promise<Page> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1000, height: options.height ?? 700 },
    colorScheme: options.dark ? "dark" : "light",
  });
  const page = await context.newPage();
  page.setDefaultTimeout(PAGE_WAIT_MS);
  page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
  await page.goto(pageUrl(server, options.host));
  return page;
}

/** A page that has joined the chat under `name`. */
async function joinedPage(
  browser: Browser,
  server: ChatServer,
  name: string,
  options: PageOptions = {},
): Promise<Page> {
  const page = await openPage(browser, server, options);
  await page.fill("#join-name", name);
  await page.click("#join-button");
  await page.waitForSelector("#chat-view:not([hidden])");
  await page.waitForSelector(`#me-name:text-is("${name}")`, { state: "attached" });
  return page;
}

/** Types a line into the page's input and presses Enter. */
async function type(page: Page, line: string): Promise<void> {
  await page.fill("#input", line);
  await page.press("#input", "Enter");
}

/** The texts of the messages the page shows now (acknowledged ones). */
function shownTexts(page: Page): Promise<string[]> {
  return page.$$eval(
    "#entries li.msg:not(.pending) .text",
    (els) => els.map((e) => e.textContent ?? ""),
  );
}

/** Waits until the page shows a message with exactly this text. */
async function expectMessage(page: Page, text: string): Promise<void> {
  await page.locator(`#entries li.msg:not(.pending) .text:text-is(${JSON.stringify(text)})`).first()
    .waitFor();
}

/** Waits until the conversation on screen is `title`. */
async function expectTitle(page: Page, title: string): Promise<void> {
  await page.waitForSelector(`#title:text-is("${title}")`);
}

/** Waits until the page is online (no offline or connecting line). */
async function expectOnline(page: Page): Promise<void> {
  await page.waitForSelector("#chat-view:not([hidden])");
  await page.waitForSelector("body:not(.offline)");
}

function conversationButton(page: Page, key: string) {
  return page.locator(`#side button[data-key="${key}"]`);
}

browserTest("two pages and a terminal client chat in two rooms, both ways", async (browser) => {
  await withWebServer(async (server) => {
    const carol = await connect(server, "carol");
    try {
      const ann = await joinedPage(browser, server, "ann");
      const bob = await joinedPage(browser, server, "bob");
      await type(ann, "hello from ann");
      await expectMessage(bob, "hello from ann");
      await until(carol, "message", (m) => m.text === "hello from ann" && m.from === "ann");
      await carol.say("hello from carol");
      await expectMessage(ann, "hello from carol");
      await expectMessage(bob, "hello from carol");

      await joinRoom(carol, "#dev");
      for (const page of [ann, bob]) {
        await type(page, "/join #dev");
        await expectTitle(page, "#dev");
      }
      await type(bob, "bob in dev");
      await expectMessage(ann, "bob in dev");
      const seen = await until(carol, "message", (m) => m.text === "bob in dev");
      assert.equal(seen.room, "#dev");
      await carol.say("carol in dev", { room: "#dev" });
      await expectMessage(ann, "carol in dev");
      await expectMessage(bob, "carol in dev");

      // A message in a room not on screen: counted as unread until the room is opened.
      await carol.say("back in the lobby", { room: "#lobby" });
      await conversationButton(ann, "#lobby").locator(".count:text-is('1')").waitFor();
      await conversationButton(ann, "#lobby").click();
      await expectTitle(ann, "#lobby");
      await expectMessage(ann, "back in the lobby");
      assert.equal(await conversationButton(ann, "#lobby").locator(".count").count(), 0);
      assert.deepEqual(
        await ann.$$eval("#people-list .name", (els) => els.map((e) => e.textContent)),
        [
          "ann",
          "bob",
          "carol",
        ],
      );
    } finally {
      await carol.close();
    }
  });
});

browserTest(
  "the input: /help, Tab completion, Shift+Enter, //text and the title",
  async (browser) => {
    await withWebServer(async (server) => {
      const carol = await connect(server, "carol");
      try {
        const ann = await joinedPage(browser, server, "ann");
        await type(ann, "/help");
        await ann.locator("#entries .notice", { hasText: "/join <#room>" }).waitFor();
        assert.equal(
          await ann.locator("#entries .notice", { hasText: "/kick" }).count(),
          0,
          "operator commands are for operators",
        );
        await type(ann, "/kick carol");
        await ann.locator("#entries .notice.error", { hasText: "Unknown command /kick" }).waitFor();
        await ann.fill("#input", "/jo");
        await ann.press("#input", "Tab");
        assert.equal(await ann.inputValue("#input"), "/join ");
        await ann.fill("#input", "hi ca");
        await ann.press("#input", "Tab");
        assert.equal(await ann.inputValue("#input"), "hi carol ");
        await ann.press("#input", "Shift+Enter");
        await ann.keyboard.type("second line");
        await ann.press("#input", "Enter");
        await until(carol, "message", (m) => m.text === "hi carol \nsecond line");
        await type(ann, "//not a command");
        await until(carol, "message", (m) => m.text === "/not a command");

        await type(ann, "/join #dev");
        await expectTitle(ann, "#dev");
        await carol.say("ann, are you there?");
        await conversationButton(ann, "#lobby").locator(".mention").waitFor();
        assert.match(await ann.title(), /^\(1\) #dev/);
      } finally {
        await carol.close();
      }
    });
  },
);

browserTest("a taken name is refused with a clear message", async (browser) => {
  await withWebServer(async (server) => {
    const ann = await connect(server, "ann");
    try {
      const page = await openPage(browser, server);
      await page.fill("#join-name", "ann");
      await page.click("#join-button");
      await page.waitForSelector("#join-error:has-text('taken')");
      assert.equal(await page.isVisible("#chat-view"), false);
    } finally {
      await ann.close();
    }
  });
});

browserTest("private messages between a page and a terminal client", async (browser) => {
  await withWebServer(async (server) => {
    const carol = await connect(server, "carol");
    try {
      const ann = await joinedPage(browser, server, "ann");
      await carol.tell("ann", "psst, ann");
      const button = ann.locator("#privates button", { hasText: "carol" });
      await button.locator(".mention").waitFor();
      await button.click();
      await expectTitle(ann, "carol (private)");
      await expectMessage(ann, "psst, ann");
      await type(ann, "/reply hi carol");
      const answer = await until(carol, "private", (m) => m.text === "hi carol");
      assert.equal(answer.from, "ann");
      // Plain text in a private conversation goes to that person.
      await type(ann, "and more");
      await until(carol, "private", (m) => m.text === "and more");
      await expectMessage(ann, "and more");
    } finally {
      await carol.close();
    }
  });
});

for (const [host, how] of [["127.0.0.1", "an identity"], [PLAIN_HOST, "a stored token"]] as const) {
  browserTest(
    `a reload resumes the session with nothing lost or shown twice (${how})`,
    async (browser) => {
      await withWebServer(async (server) => {
        const bob = await connect(server, "bob");
        try {
          const ann = await joinedPage(browser, server, "ann", { host });
          assert.equal(await ann.evaluate("isSecureContext"), host === "127.0.0.1");
          await type(ann, "/join #dev");
          await expectTitle(ann, "#dev");
          await joinRoom(bob, "#dev");
          for (const text of ["one", "two"]) await bob.say(text, { room: "#dev" });
          await bob.say("in the lobby", { room: "#lobby" });
          await expectMessage(ann, "two");
          await ann.reload();
          await expectOnline(ann);
          await expectTitle(ann, "#dev");
          await expectMessage(ann, "two");
          await bob.say("three", { room: "#dev" });
          await expectMessage(ann, "three");
          assert.deepEqual(await shownTexts(ann), ["one", "two", "three"]);
          await conversationButton(ann, "#lobby").click();
          await expectMessage(ann, "in the lobby");
          const lobby = await shownTexts(ann);
          assert.equal(lobby.filter((t) => t === "in the lobby").length, 1);
          // bob never saw ann leave: the session was resumed, not a new arrival.
          const frames = await framesBeforePong(bob);
          assert.ok(
            !frames.some((f) => (f.type === "left" || f.type === "joined") && f.name === "ann"),
          );
        } finally {
          await bob.close();
        }
      });
    },
  );
}

browserTest(
  "a message typed while the server cannot be reached survives a reload, sent once",
  async (browser) => {
    await withWebServer(async (server) => {
      const bob = await connect(server, "bob");
      try {
        const ann = await joinedPage(browser, server, "ann");
        // From now on the page's new sockets lead nowhere (until `blocked` is false); its
        // connection is dropped.
        let blocked = true;
        await ann.routeWebSocket(/\/ws$/, (socket) => {
          if (!blocked) socket.connectToServer();
        });
        for (const connection of server.connections()) {
          if (connection.member?.name !== "ann") continue;
          connection.end(errorFrame("timeout", "dropped by the test"), "connection lost");
        }
        await ann.waitForSelector("body.offline");
        await type(ann, "typed while away");
        await ann.locator("#entries li.msg.pending .text:text-is('typed while away')").waitFor();
        // The network is back, and the person reloads before the page reconnects by itself.
        blocked = false;
        await ann.reload();
        await expectOnline(ann);
        await expectMessage(ann, "typed while away");
        assert.equal(
          (await until(bob, "message", (f) => f.from === "ann")).text,
          "typed while away",
        );
        // Once, not twice: the next thing bob sees from ann is the next message.
        await type(ann, "and then this");
        assert.equal((await until(bob, "message", (f) => f.from === "ann")).text, "and then this");
        assert.equal(
          await ann.locator("#entries li.msg .text:text-is('typed while away')").count(),
          1,
        );
      } finally {
        await bob.close();
      }
    });
  },
);

browserTest("a server restart resumes every page", async (browser) => {
  await withTempDir(async (dir) => {
    const db = `${dir}/chat.db`;
    let server = startServer({ hostname: "127.0.0.1", port: 0, web: { port: 0 }, db });
    await server.listening;
    const ports = { port: server.addr.port, web: { port: server.webAddr!.port } };
    let carol: ChatClient | undefined;
    try {
      carol = await ChatClient.connect({
        hostname: "127.0.0.1",
        port: ports.port,
        name: "carol",
        reconnect: true,
      });
      const ann = await joinedPage(browser, server, "ann");
      const bob = await joinedPage(browser, server, "bob");
      await carol.say("before the restart");
      await expectMessage(ann, "before the restart");
      await expectMessage(bob, "before the restart");

      await server.close();
      await ann.waitForSelector("body.offline");
      await type(ann, "typed while offline");
      server = startServer({ hostname: "127.0.0.1", ...ports, db });
      await server.listening;

      await expectOnline(ann);
      await expectOnline(bob);
      await until(carol, "reconnected");
      await until(carol, "message", (m) => m.text === "typed while offline");
      await expectMessage(bob, "typed while offline");
      await carol.say("after the restart");
      for (const page of [ann, bob]) {
        await expectMessage(page, "after the restart");
        assert.deepEqual(await shownTexts(page), [
          "before the restart",
          "typed while offline",
          "after the restart",
        ]);
        assert.equal(await page.textContent("#me-name"), page === ann ? "ann" : "bob");
      }
    } finally {
      await carol?.close();
      await server.close();
    }
  });
});

browserTest("scrolling up pages back through the history", async (browser) => {
  await withWebServer(async (server) => {
    const bob = await connect(server, "bob");
    try {
      const texts = Array.from({ length: 130 }, (_, i) => `message ${i + 1}`);
      for (const text of texts) await bob.say(text);
      const ann = await joinedPage(browser, server, "ann");
      await expectMessage(ann, "message 130");
      const first = await shownTexts(ann);
      assert.ok(first.length < texts.length, "joining shows only the latest page");
      assert.deepEqual(first, texts.slice(-first.length));
      while (await ann.locator("#earlier").count() > 0) {
        const before = (await shownTexts(ann)).length;
        await ann.$eval("#log", (log) => log.scrollTop = 0);
        await ann.locator("#entries li.msg").nth(before).waitFor();
      }
      await ann.waitForSelector("#log-top:has-text('starts here')");
      assert.deepEqual(await shownTexts(ann), texts);
    } finally {
      await bob.close();
    }
  }, { rate: 0 });
});

browserTest("a message with markup shows as text and runs nothing", async (browser) => {
  await withWebServer(async (server) => {
    const bob = await connect(server, "bob");
    try {
      const ann = await joinedPage(browser, server, "ann");
      const dialogs: string[] = [];
      ann.on("dialog", (dialog) => {
        dialogs.push(dialog.message());
        dialog.dismiss().catch(() => {});
      });
      const markup = "<img src=x onerror=alert(1)>";
      await bob.say(markup);
      await type(ann, `<script>alert(2)</script> ${markup}`);
      await expectMessage(ann, markup);
      await expectMessage(ann, `<script>alert(2)</script> ${markup}`);
      await ann.waitForTimeout(300);
      assert.equal(await ann.locator("#entries img, #entries script").count(), 0);
      assert.deepEqual(dialogs, []);
      // A bidirectional override cannot turn what is shown around ("gnp.exe" into "exe.png").
      await bob.say("\u202Egnp.exe\u202C is a picture");
      await expectMessage(ann, "gnp.exe is a picture");
    } finally {
      await bob.close();
    }
  });
});

browserTest("a page from another origin cannot open the WebSocket", async (browser) => {
  await withWebServer(async (server) => {
    const elsewhere = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () =>
        new Response("<!doctype html><title>elsewhere</title>", {
          headers: { "content-type": "text/html" },
        }),
    );
    try {
      const page = await openPage(browser, server);
      const ws = `ws://127.0.0.1:${server.webAddr!.port}/ws`;
      const tryOpen = (url: string) =>
        new Promise<string>((resolve) => {
          const socket = new WebSocket(url);
          socket.onopen = () => {
            resolve("open");
            socket.close();
          };
          socket.onclose = () => resolve("refused");
        });
      assert.equal(await page.evaluate(tryOpen, ws), "open", "the page's own origin may connect");
      await page.goto(`http://127.0.0.1:${elsewhere.addr.port}/`);
      assert.equal(await page.evaluate(tryOpen, ws), "refused");
    } finally {
      await elsewhere.shutdown();
    }
  });
});

browserTest("screenshots of a chat, desktop and phone", async (browser) => {
  await withWebServer(async (server) => {
    const people: ChatClient[] = [];
    try {
      for (const name of ["bob", "carol", "dave"]) people.push(await connect(server, name));
      const [bob, carol, dave] = people as [ChatClient, ChatClient, ChatClient];
      for (const client of people) await joinRoom(client, "#dev");
      bob.send({ type: "topic", room: "#dev", topic: "Release 0.2 on Friday: web page and TLS" });
      await until(bob, "topic");
      await bob.say("morning all", { room: "#lobby" });
      await carol.say("morning! coffee first", { room: "#lobby" });
      await dave.say("I pushed the websocket transport last night", { room: "#dev" });
      await bob.say("nice, the tests pass here too", { room: "#dev" });
      await carol.say("waves", { room: "#dev", action: true });

      const desktop = await joinedPage(browser, server, "ann", { width: 1280, height: 800 });
      await type(desktop, "/join #dev");
      await expectTitle(desktop, "#dev");
      await type(desktop, "/join #design");
      await expectTitle(desktop, "#design");
      await type(desktop, "/join #dev");
      await expectTitle(desktop, "#dev");
      await dave.say("ann, could you look at the page on a phone?", { room: "#dev" });
      await type(desktop, "sure, I'll try it on mine after lunch");
      await carol.say("the dark theme looks great", { room: "#dev" });
      await bob.tell("ann", "do you have a minute later?");
      await carol.say("anyone for lunch?", { room: "#lobby" });
      await expectMessage(desktop, "the dark theme looks great");
      await desktop.locator("#privates button").waitFor();
      await desktop.waitForSelector("#entries li.msg:not(.pending) >> text=after lunch");
      await Deno.mkdir(SCREENSHOTS, { recursive: true });
      await desktop.screenshot({ path: new URL("desktop.png", SCREENSHOTS).pathname });

      const phone = await joinedPage(browser, server, "erin", {
        width: 390,
        height: 844,
        dark: true,
      });
      await type(phone, "/join #dev");
      await expectTitle(phone, "#dev");
      await expectMessage(phone, "the dark theme looks great");
      await type(phone, "hi all, erin here on my phone");
      await expectMessage(phone, "hi all, erin here on my phone");
      await phone.screenshot({ path: new URL("phone.png", SCREENSHOTS).pathname });
    } finally {
      await Promise.all(people.map((client) => client.close()));
    }
  }, { serverName: "hub" });
});
