// The conventions a developer expects from a server's command line: --help, --version, and a .env file that is read
// when present but never overrides the environment.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { readCommandLine } from "../../src/lifecycle/command-line.js";

const main = new URL("../../src/main.ts", import.meta.url).pathname;
const version = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

function run(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", main, ...args], { encoding: "utf8", timeout: 30_000 });
}

test("--version prints the package version and exits 0 without reading any configuration", () => {
  const result = run("--version");
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.trim(), version);
});

test("--help lists every variable and exits 0; an unknown argument exits 2 with the help", () => {
  const help = run("--help");
  assert.equal(help.status, 0, help.stderr);
  for (const name of ["DATABASE_URL", "REDIS_URL", "JWT_SECRET", "LOG_FORMAT"])
    assert.match(help.stdout, new RegExp(name));
  const unknown = run("--frobnicate");
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown argument: --frobnicate/);
});

test("a .env file in the working directory is read, and never overrides a variable already set", () => {
  const dir = mkdtempSync(join(tmpdir(), "chat-env-"));
  try {
    writeFileSync(join(dir, ".env"), "CHAT_TEST_FROM_FILE=file\nCHAT_TEST_ALREADY_SET=file\n");
    process.env.CHAT_TEST_ALREADY_SET = "environment";
    assert.deepEqual(readCommandLine([], [], dir), { kind: "run" });
    assert.equal(process.env.CHAT_TEST_FROM_FILE, "file");
    assert.equal(process.env.CHAT_TEST_ALREADY_SET, "environment");
  } finally {
    delete process.env.CHAT_TEST_FROM_FILE;
    delete process.env.CHAT_TEST_ALREADY_SET;
    rmSync(dir, { recursive: true, force: true });
  }
});
