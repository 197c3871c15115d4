import assert from "node:assert/strict";
import { ERROR_CODES, VERSION } from "./protocol.ts";
import {
  CHAT_COMMANDS,
  commandNames,
  type CommandTable,
  OPERATOR_COMMANDS,
} from "./ui/commands.ts";

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
    rows.push(line.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim()));
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

/** A command table as the README shows it: the command, its aliases, what it does. */
function commandRows<N extends string>(table: CommandTable<N>): Record<string, string[]> {
  return Object.fromEntries(
    commandNames(table).map((name) => [
      `/${`${name} ${table[name].args}`.trim()}`,
      [table[name].aliases.map((alias) => `/${alias}`).join(", "), table[name].help],
    ]),
  );
}

function documentedCommands(heading: string): Record<string, string[]> {
  return Object.fromEntries(
    tableAfter(heading).map(([command, aliases, meaning]) => [
      command!.replaceAll("`", "").replaceAll("\\|", "|"),
      [aliases!.replaceAll("`", ""), meaning!],
    ]),
  );
}

Deno.test("README lists every chat command as the command table describes it", () => {
  assert.deepEqual(
    documentedCommands("<!-- The table below is checked against CHAT_COMMANDS"),
    commandRows(CHAT_COMMANDS),
  );
});

Deno.test("README lists every operator command as the command table describes it", () => {
  assert.deepEqual(
    documentedCommands("<!-- The table below is checked against OPERATOR_COMMANDS"),
    commandRows(OPERATOR_COMMANDS),
  );
});

/** The long options a program's `--help` lists. */
async function helpFlags(script: string): Promise<string[]> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", script, "--help"],
    cwd: new URL(".", import.meta.url).pathname,
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  }).output();
  assert.equal(output.code, 0);
  const help = new TextDecoder().decode(output.stdout);
  return [...new Set(help.match(/(?<![\w-])--[a-z][a-z-]+/g) ?? [])];
}

for (const script of ["server.ts", "client.ts"]) {
  Deno.test(`README documents every option of ${script} --help`, async () => {
    const flags = await helpFlags(script);
    assert.ok(flags.length >= 3, flags.join(" "));
    for (const flag of flags) {
      assert.match(readme, new RegExp(`\`(-\\w, )?${flag}[\\s\`]`), `README lacks ${flag}`);
    }
  });
}
