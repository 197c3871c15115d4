import assert from "node:assert/strict";
import { ERROR_CODES, VERSION } from "./protocol.ts";

const readme = await Deno.readTextFile(new URL("./README.md", import.meta.url));

/** The rows of the markdown table that follows `heading`, as arrays of cell texts. */
function tableAfter(heading: string): string[][] {
  const start = readme.indexOf(heading);
  assert.notEqual(start, -1, `README has no "${heading}"`);
  const lines = readme.slice(start).split("\n");
  const first = lines.findIndex((line) => line.startsWith("|"));
  const rows = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line.split("|").slice(1, -1).map((cell) => cell.trim()));
  }
  return rows;
}

Deno.test("README lists every error code with the meaning protocol.ts gives it", () => {
  const rows = tableAfter("### Error codes");
  const documented = Object.fromEntries(
    rows.map(([code, meaning]) => [code!.replaceAll("`", ""), meaning]),
  );
  assert.deepEqual(documented, { ...ERROR_CODES });
});

Deno.test("README gives the test command that CI runs", async () => {
  const ci = await Deno.readTextFile(new URL("./.ci/run", import.meta.url));
  assert.match(ci, /^deno task test$/m);
  assert.match(readme, /npx -y deno task test/);
  assert.match(readme, /^deno task test\b/m);
});

Deno.test("README shows the current version in its examples", () => {
  assert.match(readme, new RegExp(`Chat server ${VERSION.replaceAll(".", "\\.")} listening`));
});
