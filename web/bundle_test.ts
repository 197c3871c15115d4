/**
 * The page's script is TypeScript (`web/app.ts` and the modules it imports), served as the bundle
 * `web/app.js` that is checked in: this test proves the bundle is what a fresh `deno task bundle`
 * makes, so nobody changes the script and forgets to bundle it.
 *
 * @module
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

Deno.test("web/app.js is a fresh bundle of web/app.ts (run `deno task bundle` if not)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-bundle-" });
  try {
    const output = `${dir}/app.js`;
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform", "browser", "--output", output, "web/app.ts"],
      cwd: ROOT,
      env: { DENO_NO_UPDATE_CHECK: "1" },
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const fresh = await Deno.readTextFile(output);
    const committed = await Deno.readTextFile(new URL("web/app.js", ROOT));
    assert.ok(fresh === committed, "web/app.js is out of date: run `deno task bundle`");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the bundle holds no Deno API, node: module or HTML sink", async () => {
  const bundle = await Deno.readTextFile(new URL("web/app.js", ROOT));
  assert.doesNotMatch(bundle, /\bDeno\.|from "node:|require\(/);
  // User text reaches the page through textContent only.
  assert.doesNotMatch(bundle, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
});
