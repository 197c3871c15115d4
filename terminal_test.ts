/**
 * The terminal client in a real pseudo-terminal: tmux runs `client.ts` (with exactly the
 * `client` task's permissions) against a server started here on a free port, types, pastes and
 * resizes, and what the screen shows (its history included) is read back with `capture-pane`.
 * These are the faults a person sees: pasted text taken for commands, messages lost on resize,
 * stale rows of wide characters, a long line that freezes the client, Ctrl+C that quits with
 * text typed, and so on.
 *
 * Needs tmux (CI installs it); without it these tests are skipped, saying so.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ChatClient } from "./net/chat_client.ts";
import { MAX_TEXT_LENGTH, type MessageFrame } from "./protocol.ts";
import type { ChatServer, ServerOptions } from "./server.ts";
import {
  connect,
  denoDir,
  freePort,
  taskFlags,
  until,
  WAIT_MS,
  within,
  withServer,
  withTempDir,
  withTls,
} from "./test_util.ts";

// ==== tmux ====

const PROJECT_DIR = new URL(".", import.meta.url).pathname;
/** How often the screen is looked at while waiting for it to show something, in milliseconds. */
const POLL_MS = 50;

/** Whether tmux can be run here. */
function tmuxVersion(): string | undefined {
  try {
    const output = new Deno.Command("tmux", { args: ["-V"], stdout: "piped", stderr: "null" })
      .outputSync();
    return output.success ? new TextDecoder().decode(output.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

const TMUX = tmuxVersion();
if (TMUX === undefined) {
  console.warn("terminal_test.ts: skipped: tmux is not installed (apt-get install tmux)");
}

/** Quotes a word for the shell tmux runs the client with. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Options for {@linkcode Tmux.start}. */
interface ClientWindow {
  /** The server's port. */
  port: number;
  /** The server's key: the client connects over TLS with it pinned; without it, plain TCP. */
  fingerprint?: string | undefined;
  /** Connect over TLS with no key given: a first contact, asked about on the screen. */
  firstContact?: boolean;
  /** The client's name. */
  name: string;
  /** The window's size. */
  columns: number;
  rows: number;
  /** More arguments for the client (`--log FILE`). */
  args?: string[];
}

/**
 * A tmux server of its own (on a socket in a temporary folder) with one window running the chat
 * client. {@linkcode Tmux.close} kills it all.
 */
class Tmux {
  #socket: string;
  #exitFile: string;

  private constructor(dir: string) {
    this.#socket = `${dir}/tmux.sock`;
    this.#exitFile = `${dir}/exit-code`;
  }

  /** Starts the client in a new window of the given size, in a tmux server of its own. */
  static async start(dir: string, window: ClientWindow): Promise<Tmux> {
    const flags = await taskFlags("client");
    const command = [
      "env",
      "NO_COLOR=1",
      "DENO_NO_UPDATE_CHECK=1",
      `HOME=${dir}`,
      `DENO_DIR=${await denoDir()}`,
      Deno.execPath(),
      "run",
      ...flags,
      `${PROJECT_DIR}client.ts`,
      `127.0.0.1:${window.port}`,
      ...(window.firstContact
        ? []
        : window.fingerprint === undefined
        ? ["--plain"]
        : ["--fingerprint", window.fingerprint]),
      "--name",
      window.name,
      "--anonymous",
      ...(window.args ?? []),
    ].map(shellQuote).join(" ");
    return await Tmux.command(dir, command, window);
  }

  /** Runs any shell command in a new window of its own tmux server. */
  static async command(
    dir: string,
    command: string,
    size: { columns: number; rows: number },
  ): Promise<Tmux> {
    const tmux = new Tmux(dir);
    await tmux.run(
      "new-session",
      "-d",
      "-s",
      "chat",
      "-x",
      String(size.columns),
      "-y",
      String(size.rows),
      `${command}; echo $? > ${shellQuote(tmux.#exitFile)}; sleep 60`,
    );
    return tmux;
  }

  /** Runs a tmux command on this server; returns what it printed. */
  async run(...args: string[]): Promise<string> {
    const output = await new Deno.Command("tmux", {
      args: ["-f", "/dev/null", "-S", this.#socket, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    if (!output.success) {
      throw new Error(`tmux ${args[0]} failed: ${decoder.decode(output.stderr).trim()}`);
    }
    return decoder.decode(output.stdout);
  }

  /** What the window shows, or with `history` everything it showed (its scrollback too). */
  screen(options: { history?: boolean } = {}): Promise<string> {
    const range = options.history ? ["-S", "-", "-E", "-"] : [];
    return this.run("capture-pane", "-p", "-t", "chat", ...range);
  }

  /** Waits until the screen shows what `test` looks for; resolves with that screen. */
  async waitFor(
    test: string | RegExp | ((screen: string) => boolean),
    options: { history?: boolean; ms?: number } = {},
  ): Promise<string> {
    const matches = typeof test === "function"
      ? test
      : typeof test === "string"
      ? (screen: string) => screen.includes(test)
      : (screen: string) => test.test(screen);
    const deadline = performance.now() + (options.ms ?? WAIT_MS);
    let screen = "";
    while (performance.now() < deadline) {
      screen = await this.screen(options);
      if (matches(screen)) return screen;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    throw new Error(`Timed out waiting for the screen to show ${test}; it shows:\n${screen}`);
  }

  /** Types text, as keys (not a paste). */
  async type(text: string): Promise<void> {
    await this.run("send-keys", "-t", "chat", "-l", text);
  }

  /** Presses keys by tmux's names: `Enter`, `C-c`, `Tab`... */
  async press(...keys: string[]): Promise<void> {
    await this.run("send-keys", "-t", "chat", ...keys);
  }

  /** Pastes text the way a terminal does: bracketed, when the client asked for it. */
  async paste(text: string): Promise<void> {
    await this.run("set-buffer", "-b", "paste", text);
    await this.run("paste-buffer", "-p", "-d", "-b", "paste", "-t", "chat");
  }

  /** Resizes the window. */
  async resize(columns: number, rows: number): Promise<void> {
    await this.run("resize-window", "-t", "chat", "-x", String(columns), "-y", String(rows));
  }

  /**
   * Waits for the client to exit; resolves with its exit code (which the shell running it
   * writes down: tmux may not learn it when it runs under a test runner).
   */
  async exitCode(): Promise<number> {
    const deadline = performance.now() + WAIT_MS;
    while (performance.now() < deadline) {
      try {
        const text = await Deno.readTextFile(this.#exitFile);
        if (text.endsWith("\n")) return Number(text.trim());
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    throw new Error(`Timed out waiting for the client to exit; the screen shows:\n${await this
      .screen()}`);
  }

  /** Kills the tmux server, and so the client. */
  async close(): Promise<void> {
    await this.run("kill-server").catch(() => {});
  }
}

/** The prompt of a person in the lobby, as the client shows it without colours. */
function promptOf(name: string, room = "#lobby"): string {
  return `${name} ${room}> `;
}

/** A prompt row with nothing typed after it, as tmux shows it (trailing spaces cut). */
function emptyPrompt(prompt: string): RegExp {
  const escaped = prompt.trimEnd().replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${escaped}$`, "m");
}

/** How many times `part` occurs in `text`. */
function count(text: string, part: string): number {
  return text.split(part).length - 1;
}

/**
 * Runs `fn` with a TLS server (options as given), a chat client in tmux as `ann` in a window of
 * the given size (shown joined; `$DIR` in `args` is the test's folder), and `bob` connected
 * in-process; closes everything whatever happens.
 */
function terminalTest(
  name: string,
  fn: (context: ConnectingContext) => Promise<void>,
  options: { columns?: number; rows?: number; server?: ServerOptions; args?: string[] } = {},
): void {
  connectingTest(name, async (context) => {
    await joinedAsAnn(context.tmux, context.bob);
    await fn(context);
  }, {
    ...(options.server ? { server: options.server } : {}),
    window: (_server, dir) => ({
      columns: options.columns ?? 80,
      rows: options.rows ?? 24,
      args: (options.args ?? []).map((arg) => arg.replaceAll("$DIR", dir)),
    }),
  });
}

/** Waits for bob to receive a message from ann with this text. */
function fromAnn(bob: ChatClient, text: string): Promise<MessageFrame> {
  return until(bob, "message", (m) => m.from === "ann" && m.text === text);
}

// ==== Pastes ====

terminalTest("a pasted block is one message, sent as it is: no line of it is a command", async ({
  tmux,
  bob,
}) => {
  const block = "first line\n/quit\n//kept as typed\n/nonsense";
  await tmux.paste(block);
  await tmux.waitFor("/nonsense");
  await tmux.press("Enter");
  const message = await fromAnn(bob, block);
  assert.equal(message.room, "#lobby");
  const screen = await tmux.waitFor(/\[\d\d:\d\d\] You: first line/);
  assert.equal(count(screen, "first line"), 1, `the block shows once:\n${screen}`);
  assert.equal(count(screen, "//kept as typed"), 1);
  // Still chatting: /quit was text. A typed command still works, and // still escapes.
  await tmux.type("//typed slash");
  await tmux.press("Enter");
  await fromAnn(bob, "/typed slash");
  await tmux.type("/who");
  await tmux.press("Enter");
  await tmux.waitFor("2 people in #lobby");
});

terminalTest("a command typed right after a message keeps its echo", async ({ tmux, bob }) => {
  await tmux.run("send-keys", "-t", "chat", "-l", "hello there");
  await tmux.run("send-keys", "-t", "chat", "Enter", "/", "w", "h", "o", "Enter");
  await fromAnn(bob, "hello there");
  const screen = await tmux.waitFor("2 people in #lobby");
  assert.match(screen, /You: hello there/);
  assert.match(screen, /ann #lobby> \/who/, `the command is still on screen:\n${screen}`);
  assert.equal(count(screen, "hello there"), 1);
});

// ==== Resizing ====

terminalTest(
  "resizing narrower and wider loses no message and leaves one copy of the typed line",
  async ({ tmux, bob }) => {
    const typed = `start-${"x".repeat(90)}-end`;
    await tmux.type(typed);
    await tmux.waitFor("-end");
    const said: string[] = [];
    for (const [i, columns] of [30, 90, 45, 60].entries()) {
      await tmux.resize(columns, 24);
      said.push(`message number ${i}`);
      await bob.say(said.at(-1)!);
      await tmux.waitFor(said.at(-1)!);
    }
    const history = await tmux.waitFor("-end", { history: true });
    for (const text of said) {
      assert.equal(count(history, text), 1, `${text} shows once:\n${history}`);
    }
    assert.equal(count(history, "start-"), 1, `one copy of the typed line:\n${history}`);
    assert.equal(count(history, "-end"), 1, `one copy of the typed line:\n${history}`);
    assert.equal(count(history, "Joined chat as ann"), 1);
    // The typed line is whole: the rows at the bottom hold all of it.
    const screen = (await tmux.screen()).trimEnd().split("\n");
    const rows = screen.slice(screen.findIndex((row) => row.startsWith(promptOf("ann"))));
    assert.equal(rows.join("").replace(promptOf("ann"), ""), typed);
  },
  { columns: 60 },
);

terminalTest(
  "wide characters that do not fit the last column leave no stale row",
  async ({ tmux, bob }) => {
    // 12 columns of prompt and 6 wide characters fill 24 of the 25 columns: the 7th wraps.
    const typed = "中文字中文字中文";
    await tmux.type(typed);
    await tmux.waitFor("中文字中文字");
    for (let i = 1; i <= 3; i++) {
      await bob.say(`incoming ${i}`);
      await tmux.waitFor(`incoming ${i}`);
    }
    const history = await tmux.screen({ history: true });
    assert.equal(count(history, "中文字中文字"), 1, `no stale copy:\n${history}`);
    assert.equal(count(history, promptOf("ann").trim()), 1, `one prompt:\n${history}`);
    await tmux.press("Enter");
    await fromAnn(bob, typed);
  },
  { columns: 25, rows: 12 },
);

// ==== Long lines ====

terminalTest(
  "a 6000-character line shows at once and is sent as messages of at most 2000",
  async ({ tmux, bob }) => {
    const line = Array.from({ length: 1000 }, (_, i) => `w${String(i % 1000).padStart(3, "0")}`)
      .join(" ").slice(0, 5996) + " END";
    const started = performance.now();
    await tmux.type(line);
    await tmux.waitFor("END", { ms: 5000 });
    const took = performance.now() - started;
    assert.ok(took < 5000, `typed in ${took.toFixed(0)} ms`);
    await tmux.press("Enter");
    const parts: string[] = [];
    while (parts.join("").length < line.length) {
      const message = await until(bob, "message", (m) => m.from === "ann");
      assert.ok(Array.from(message.text).length <= MAX_TEXT_LENGTH);
      parts.push(message.text);
    }
    assert.equal(parts.join(""), line);
    assert.equal(parts.length, 3);
    // Pasted, the same line goes the same way.
    await tmux.paste(line);
    await tmux.waitFor("END");
    await tmux.press("Enter");
    const pasted: string[] = [];
    while (pasted.join("").length < line.length) {
      pasted.push((await until(bob, "message", (m) => m.from === "ann")).text);
    }
    assert.deepEqual(pasted, parts);
  },
);

// ==== Keys ====

terminalTest("Ctrl+C clears a typed line first, and quits only on an empty one", async ({
  tmux,
  bob,
}) => {
  await tmux.type("half a thought");
  await tmux.waitFor("half a thought");
  await tmux.press("C-c");
  await tmux.waitFor((screen) => !screen.includes("half a thought"));
  await tmux.type("still here");
  await tmux.press("Enter");
  await fromAnn(bob, "still here");
  await tmux.press("C-c");
  assert.equal(await tmux.exitCode(), 0);
  await until(bob, "left", (f) => f.name === "ann");
});

terminalTest(
  "Tab completes a command with a space, and offers only people present",
  async ({ tmux, bob, server }) => {
    const carol = await connect(server, "carol");
    const bobby = await connect(server, "bobby");
    await tmux.waitFor("bobby joined");
    await carol.close();
    await tmux.waitFor("carol left");
    await tmux.type("/jo");
    await tmux.press("Tab");
    await tmux.type("#dev");
    await tmux.waitFor(`${promptOf("ann")}/join #dev`);
    await tmux.press("C-u");
    await tmux.type("/msg ca");
    await tmux.press("Tab");
    await tmux.type("X");
    await tmux.waitFor(`${promptOf("ann")}/msg caX`);
    await tmux.press("C-u");
    await tmux.type("/msg bo");
    await tmux.press("Tab", "Tab");
    await tmux.waitFor("bob  bobby");
    await tmux.type("by");
    await tmux.press("Tab");
    await tmux.type("hi");
    await tmux.press("Enter");
    await until(bobby, "private", (f) => f.text === "hi");
    await bobby.close();
    assert.ok(bob.connected);
  },
);

// ==== What the screen tells ====

terminalTest(
  "a message shows as [sending] until the server's copy arrives",
  async ({ tmux, bob }) => {
    // One message a second: the second and third wait their turn in the client.
    for (const text of ["one", "two", "three"]) {
      await tmux.type(text);
      await tmux.press("Enter");
    }
    const waiting = await tmux.waitFor("[sending] You: three");
    assert.doesNotMatch(waiting, /\[\d\d:\d\d\] You: three/);
    await fromAnn(bob, "three");
    const screen = await tmux.waitFor((s) => /You: three/.test(s) && !s.includes("[sending]"));
    assert.equal(count(screen, "three"), 1);
  },
  { server: { rate: 1, burst: 1 } },
);

terminalTest(
  "the prompt shows away, and how many messages wait unseen in another room",
  async ({ tmux, bob }) => {
    await tmux.type("/join #dev");
    await tmux.press("Enter");
    await tmux.waitFor(emptyPrompt(promptOf("ann", "#dev")));
    bob.send({ type: "join", room: "#dev" });
    await until(bob, "room", (f) => f.room === "#dev");
    await tmux.type("/switch #lobby");
    await tmux.press("Enter");
    await tmux.waitFor(emptyPrompt(promptOf("ann")));
    await bob.say("psst", { room: "#dev" });
    await bob.say("psst again", { room: "#dev" });
    await tmux.waitFor(emptyPrompt("ann #lobby [#dev 2]> "));
    await tmux.type("/away lunch");
    await tmux.press("Enter");
    await tmux.waitFor(emptyPrompt("ann #lobby (away) [#dev 2]> "));
    await tmux.type("/switch #dev");
    await tmux.press("Enter");
    await tmux.waitFor(emptyPrompt("ann #dev (away)> "));
    await tmux.type("/back");
    await tmux.press("Enter");
    await tmux.waitFor(emptyPrompt(promptOf("ann", "#dev")));
  },
);

/** A moment `days` days before now, at noon. */
function daysAgo(days: number): number {
  const date = new Date();
  date.setDate(date.getDate() - days);
  date.setHours(12, 0, 0, 0);
  return date.getTime();
}

Deno.test({
  name: "a day-change line comes before what is shown from another day, and in the transcript",
  ignore: TMUX === undefined,
  fn: () =>
    withTempDir(async (dir) => {
      let clock = daysAgo(2);
      await withServer(async (server) => {
        const bob = await connect(server, "bob");
        let tmux: Tmux | undefined;
        try {
          await bob.say("old news");
          clock = Date.now();
          tmux = await Tmux.start(dir, {
            port: server.tlsAddr!.port,
            fingerprint: server.fingerprint,
            name: "ann",
            columns: 80,
            rows: 24,
            args: ["--log", `${dir}/chat.log`],
          });
          await tmux.waitFor(emptyPrompt(promptOf("ann")));
          await bob.say("fresh news");
          const screen = await tmux.waitFor("fresh news");
          const old = new Date(daysAgo(2));
          const weekday = old.toLocaleDateString("en-GB", { weekday: "long" });
          const rows = screen.split("\n");
          const oldDay = rows.findIndex((row) => row.startsWith(`--- ${weekday} `));
          const today = rows.findIndex((row) =>
            row.startsWith(`--- ${new Date().toLocaleDateString("en-GB", { weekday: "long" })} `)
          );
          assert.ok(oldDay >= 0 && today > oldDay, `day lines:\n${screen}`);
          assert.match(rows[oldDay + 1]!, /bob: old news/);
          assert.ok(rows.findIndex((row) => row.includes("fresh news")) > today);
          await tmux.press("C-c");
          assert.equal(await tmux.exitCode(), 0);
          const log = await Deno.readTextFile(`${dir}/chat.log`);
          assert.match(log, new RegExp(`--- ${weekday} .*---\\n.*bob: old news`));
          assert.equal(count(log, "\n--- "), 2, `two day lines in the log:\n${log}`);
        } finally {
          await tmux?.close();
          await bob.close();
        }
      }, await withTls({ db: ":memory:", now: () => clock }));
    }),
});

// ==== Connecting ====

/** What a test of the client in tmux is given. */
interface ConnectingContext {
  tmux: Tmux;
  bob: ChatClient;
  server: ChatServer;
  dir: string;
}

/**
 * Runs `fn` with a TLS server (options as given), `bob` connected in-process (with the server's
 * password, if it has one), and the client in tmux as `ann` (80x24) starting to connect, not yet
 * in; `window` says how (`firstContact`, or the key given; another port). Closes all.
 */
function connectingTest(
  name: string,
  fn: (context: ConnectingContext) => Promise<void>,
  options: {
    server?: ServerOptions;
    window?: (server: ChatServer, dir: string) => Partial<ClientWindow>;
  } = {},
): void {
  Deno.test({
    name,
    ignore: TMUX === undefined,
    fn: () =>
      withTempDir(async (dir) =>
        withServer(async (server) => {
          const password = options.server?.password;
          const bob = await ChatClient.connect({
            hostname: "127.0.0.1",
            port: server.addr.port,
            name: "bob",
            ...(password === undefined ? {} : { password }),
          });
          let tmux: Tmux | undefined;
          try {
            tmux = await Tmux.start(dir, {
              port: server.tlsAddr!.port,
              fingerprint: server.fingerprint,
              name: "ann",
              columns: 80,
              rows: 24,
              ...options.window?.(server, dir),
            });
            await fn({ tmux, bob, server, dir });
          } finally {
            await tmux?.close();
            await bob.close();
          }
        }, await withTls({ db: false, ...options.server }))
      ),
  });
}

/** Waits until `ann` is in: `bob` sees her arrive and her prompt is empty. */
async function joinedAsAnn(tmux: Tmux, bob: ChatClient): Promise<void> {
  await until(bob, "joined", (f) => f.name === "ann");
  await tmux.waitFor(emptyPrompt(promptOf("ann")));
}

connectingTest(
  "an address nobody answers at is asked for again, not the end of the client",
  async ({ tmux, bob, server }) => {
    await tmux.waitFor(/connection refused[\s\S]*Server or invite \[127\.0\.0\.1:\d+\]:/i);
    await tmux.type(`127.0.0.1:${server.tlsAddr!.port}`);
    await tmux.press("Enter");
    await joinedAsAnn(tmux, bob);
  },
  // Nothing listens on this port: the first try is refused.
  { window: () => ({ port: freePort() }) },
);

// ==== TLS and private servers ====

/** The question a first contact asks. */
const TRUST_QUESTION = /Trust this key and connect\? \[y\/N\]/;

connectingTest(
  "a server met for the first time shows its key and asks: yes connects and remembers it",
  async ({ tmux, bob, server, dir }) => {
    const asked = await tmux.waitFor(TRUST_QUESTION);
    assert.ok(asked.includes(server.fingerprint!), asked);
    await tmux.type("y");
    await tmux.press("Enter");
    await joinedAsAnn(tmux, bob);
    await tmux.type("/server");
    await tmux.press("Enter");
    const shown = await tmux.waitFor(/over TLS, encrypted/);
    assert.ok(shown.split(server.fingerprint!).length >= 3, shown);
    const known = await Deno.readTextFile(`${dir}/.config/chat/known_servers.json`);
    assert.ok(known.includes(server.fingerprint!), known);
  },
  { window: () => ({ firstContact: true }) },
);

connectingTest(
  "a server met for the first time and not trusted gets nothing, and the client says why",
  async ({ tmux, server }) => {
    await tmux.waitFor(TRUST_QUESTION);
    await tmux.press("Enter");
    assert.equal(await tmux.exitCode(), 1);
    assert.match(await tmux.screen({ history: true }), /not trusted/);
    assert.deepEqual([...server.hub.members].map((m) => m.name), ["bob"]);
  },
  { window: () => ({ firstContact: true }) },
);

connectingTest(
  "the prompt says (plain) when the connection is not encrypted, and /server says so",
  async ({ tmux, bob }) => {
    await until(bob, "joined", (f) => f.name === "ann");
    await tmux.waitFor(emptyPrompt("ann #lobby (plain)> "));
    await tmux.type("/server");
    await tmux.press("Enter");
    await tmux.waitFor(/over plain TCP: not encrypted/);
  },
  { window: (server) => ({ port: server.addr.port, fingerprint: undefined }) },
);

connectingTest(
  "a private server asks for its password, which is not shown as typed",
  async ({ tmux, bob }) => {
    await tmux.waitFor(/^Password:$/m);
    await tmux.type("wrong");
    await tmux.press("Enter");
    await tmux.waitFor(/Wrong password[\s\S]*^Password:$/m);
    await tmux.type("hunter2");
    const typed = await tmux.waitFor("*******");
    assert.doesNotMatch(typed, /hunter2|wrong/);
    await tmux.press("Enter");
    await joinedAsAnn(tmux, bob);
  },
  { server: { password: "hunter2" } },
);

// ==== The server's console ====

Deno.test({
  name: "Ctrl+D at the server's console closes the console, not the server; Ctrl+C then stops it",
  ignore: TMUX === undefined,
  fn: () =>
    withTempDir(async (dir) => {
      const port = freePort();
      const flags = await taskFlags("server");
      const command = [
        "env",
        "NO_COLOR=1",
        "DENO_NO_UPDATE_CHECK=1",
        Deno.execPath(),
        "run",
        ...flags,
        `${PROJECT_DIR}server.ts`,
        ...["--host", "127.0.0.1", "--port", String(port), "--db", "none"],
      ].map(shellQuote).join(" ");
      const tmux = await Tmux.command(dir, command, { columns: 100, rows: 30 });
      let bob: ChatClient | undefined;
      try {
        await tmux.waitFor(/^server>/m);
        await tmux.press("C-d");
        await tmux.waitFor("Console closed");
        bob = await ChatClient.connect({ hostname: "127.0.0.1", port, name: "bob" });
        await tmux.waitFor("+ bob joined");
        assert.equal((await bob.say("still up")).text, "still up");
        await tmux.press("C-c");
        assert.equal((await within(bob.closed, "bob to be told")).error?.code, "shutting_down");
        assert.equal(await tmux.exitCode(), 0);
        assert.doesNotMatch(await tmux.screen({ history: true }), /Uncaught|readline was closed/);
      } finally {
        await bob?.close();
        await tmux.close();
      }
    }),
});
