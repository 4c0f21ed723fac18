// The README's configuration table is the operator's manual: every variable the config schema reads must have a row
// there, and every row must name a variable the gateway really reads, so neither can drift from the code.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { configVariableNames } from "../../src/config.js";

/** Variables named in the first cell of a README table row: "| `A` |" or "| `A`, `B` |". */
function documentedVariables(readme: string): Set<string> {
  const names = new Set<string>();
  for (const line of readme.split("\n")) {
    const firstCell = /^\|([^|]+)\|/.exec(line)?.[1] ?? "";
    for (const match of firstCell.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.add(match[1] ?? "");
  }
  return names;
}

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
const start = readme.indexOf("\n## Configuration");
const configuration = readme.slice(start, readme.indexOf("\n## ", start + 1));

test("every variable the gateway reads has a row in the README's configuration section", () => {
  const documented = documentedVariables(configuration);
  const missing = configVariableNames().filter((name) => !documented.has(name));
  assert.deepEqual(missing, [], "add these to the README's configuration table");
});

test("every variable in the README's configuration tables is one the gateway reads", () => {
  const read = new Set(configVariableNames());
  // Read by the tooling around the gateway rather than by the gateway's config schema.
  const outside = new Set(["NODE_ENV", "TEST_POSTGRES_URL", "TEST_REDIS_URL"]);
  const stale = [...documentedVariables(configuration)].filter((name) => !read.has(name) && !outside.has(name));
  assert.deepEqual(stale, [], "these rows name variables nothing reads");
});
