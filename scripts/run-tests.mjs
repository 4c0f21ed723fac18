// Runs the test files under test/ with Node's own test runner (TypeScript through tsx).
// `node scripts/run-tests.mjs` runs every tier; `node scripts/run-tests.mjs unit integration` only those folders.
// Files run one at a time: most start several gateway processes and a machine here has two cores.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function findTests(dir) {
  let out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== "helpers" && name !== "fixtures") out = out.concat(findTests(path));
    } else if (name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

const tiers = process.argv.slice(2);
const roots = tiers.length > 0 ? tiers.map((t) => join("test", t)) : ["test"];
const files = roots.flatMap(findTests);
if (files.length === 0) {
  console.error(`no test files under ${roots.join(", ")}`);
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=1", "--test-reporter=spec", ...files],
  { stdio: "inherit", env: { ...process.env, NODE_ENV: "test" } },
);
process.exit(result.status ?? 1);
