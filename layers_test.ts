/**
 * The layering rules of the source tree, checked on every file's imports (the README's "How it
 * is built" states them):
 * - `protocol.ts` imports nothing and touches no `Deno` API;
 * - `chat/` imports only `protocol.ts`, its own files and (in the store) `node:sqlite`, and
 *   `node:crypto` to hash the secrets it keeps, and (in `chat/names.ts`) the confusables table
 *   `unhomoglyph`, and (in `chat/access.ts`) `node:crypto` to compare passwords;
 * - `net/` imports `protocol.ts`, its own files and `chat/`'s types, and from
 *   `chat/directory.ts` (the hub's side of a connection) its values too, never `ui/` or `web/`;
 * - `ui/` may import `net/` and `chat/`; `ui/commands.ts` and `ui/render.ts` stay pure;
 * - `web/` imports only `protocol.ts` and the pure parts of `ui/`;
 * - nothing under those folders imports an entry script (`server.ts`, `client.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";

const ROOT = new URL(".", import.meta.url);
const LAYERS = ["chat", "net", "ui", "web"] as const;
/** Files of `ui/` that must stay pure, for the browser page. */
const PURE_UI = ["ui/commands.ts", "ui/render.ts"];

/** One import or re-export of a source file. */
interface Import {
  /** What is imported: a project path like `chat/hub.ts`, or a specifier like `node:sqlite`. */
  target: string;
  /** Whether only types are imported (erased when compiled). */
  typeOnly: boolean;
}

const IMPORT_REGEXP =
  /^\s*(import|export)\s+(type\s+)?([^;]*?)\s*from\s*"([^"]+)"|^\s*import\s+"([^"]+)"/gm;

/** The imports of a file, with relative specifiers resolved to project paths. */
function importsOf(path: string, source: string): Import[] {
  const imports: Import[] = [];
  for (const match of source.matchAll(IMPORT_REGEXP)) {
    const specifier = match[4] ?? match[5]!;
    const names = match[3] ?? "";
    const typeOnly = match[2] !== undefined ||
      (/^\{[^}]*\}$/s.test(names) &&
        names.slice(1, -1).split(",").map((n) => n.trim()).filter((n) => n)
          .every((n) => n.startsWith("type ")));
    const target = specifier.startsWith(".")
      ? new URL(specifier, new URL(path, ROOT)).pathname.slice(ROOT.pathname.length)
      : specifier;
    imports.push({ target, typeOnly });
  }
  return imports;
}

/** Every source file (tests excluded) of the layer folders, and `protocol.ts`. */
async function sourceFiles(): Promise<string[]> {
  const files = ["protocol.ts"];
  for (const layer of LAYERS) {
    try {
      for await (const entry of Deno.readDir(new URL(`${layer}/`, ROOT))) {
        if (entry.isFile && /\.ts$/.test(entry.name) && !entry.name.endsWith("_test.ts")) {
          files.push(`${layer}/${entry.name}`);
        }
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return files.sort();
}

/** Why a file may not make an import, or `undefined` when it may. */
function violation(file: string, { target, typeOnly }: Import): string | undefined {
  const layer = file.split("/")[0]!;
  if (file === "protocol.ts") return "protocol.ts imports nothing";
  if (target === "server.ts" || target === "client.ts") {
    return "only the entry scripts compose; no layer imports them";
  }
  const targetLayer = target.includes("/") ? target.split("/")[0]! : target;
  switch (layer) {
    case "chat":
      if (file === "chat/store.ts" && (target === "node:sqlite" || target === "node:crypto")) {
        return undefined;
      }
      if (file === "chat/names.ts" && target === "unhomoglyph") return undefined;
      if (file === "chat/access.ts" && target === "node:crypto") return undefined;
      return target === "protocol.ts" || targetLayer === "chat"
        ? undefined
        : "chat/ imports only protocol.ts and chat/ (and node:sqlite and node:crypto in the store, " +
          "node:crypto in chat/access.ts, unhomoglyph in chat/names.ts)";
    case "net":
      if (targetLayer === "ui" || targetLayer === "web") return "net/ never imports ui/ or web/";
      if (targetLayer === "chat" && !typeOnly && target !== "chat/directory.ts") {
        return "net/ imports chat/'s types only (values from chat/directory.ts alone)";
      }
      return undefined;
    case "ui":
      if (targetLayer === "web") return "ui/ never imports web/";
      if (PURE_UI.includes(file) && !typeOnly && target !== "protocol.ts" && target !== file) {
        return `${file} stays pure: it imports only protocol.ts (and types)`;
      }
      return undefined;
    case "web":
      return target === "protocol.ts" || PURE_UI.includes(target) || targetLayer === "web" ||
          typeOnly
        ? undefined
        : "web/ imports only protocol.ts and the pure parts of ui/";
  }
  return undefined;
}

Deno.test("every source file keeps to the layering rules", async () => {
  const broken: string[] = [];
  for (const file of await sourceFiles()) {
    const source = await Deno.readTextFile(new URL(file, ROOT));
    for (const found of importsOf(file, source)) {
      const why = violation(file, found);
      if (why) broken.push(`${file} imports ${found.target}: ${why}`);
    }
  }
  assert.deepEqual(broken, []);
});

Deno.test("protocol.ts and the pure ui/ files touch no Deno API and no node: module", async () => {
  for (const file of ["protocol.ts", ...PURE_UI]) {
    const source = await Deno.readTextFile(new URL(file, ROOT));
    assert.doesNotMatch(source, /\bDeno\./, `${file} uses Deno`);
    assert.doesNotMatch(source, /"node:/, `${file} imports node:`);
  }
  const protocol = await Deno.readTextFile(new URL("protocol.ts", ROOT));
  assert.doesNotMatch(protocol, /^\s*import\b/m, "protocol.ts has an import line");
  assert.doesNotMatch(protocol, /\bimport\s*\(/, "protocol.ts imports dynamically");
});

Deno.test("the layering check itself catches what it forbids", () => {
  const source = [
    'import { Hub } from "../chat/hub.ts";',
    'import type { Member } from "../chat/directory.ts";',
    'import { type ChatStore } from "../chat/store.ts";',
    'import { paint } from "../ui/render.ts";',
    'export { startServer } from "../server.ts";',
  ].join("\n");
  const found = importsOf("net/example.ts", source);
  assert.deepEqual(found, [
    { target: "chat/hub.ts", typeOnly: false },
    { target: "chat/directory.ts", typeOnly: true },
    { target: "chat/store.ts", typeOnly: true },
    { target: "ui/render.ts", typeOnly: false },
    { target: "server.ts", typeOnly: false },
  ]);
  assert.deepEqual(found.map((i) => violation("net/example.ts", i) !== undefined), [
    true,
    false,
    false,
    true,
    true,
  ]);
  assert.ok(violation("chat/x.ts", { target: "net/conn.ts", typeOnly: true }));
  assert.ok(violation("protocol.ts", { target: "node:util", typeOnly: false }));
  assert.ok(violation("ui/render.ts", { target: "node:readline", typeOnly: false }));
});

Deno.test("a browser bundle of protocol.ts has no node: import and no Deno API", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--platform", "browser", "protocol.ts"],
    cwd: ROOT.pathname,
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  const bundle = new TextDecoder().decode(output.stdout);
  assert.match(bundle, /function decodeClientFrame/, "the bundle holds the decoders");
  assert.doesNotMatch(bundle, /node:/);
  assert.doesNotMatch(bundle, /\bDeno\./);
});
