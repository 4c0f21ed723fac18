// Socket.IO's security floor: the installed transport packages must be at or above the versions with the fixes.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { test } from "node:test";

const FLOOR: Record<string, [number, number, number]> = {
  "engine.io": [6, 6, 9],
  ws: [8, 21, 0],
  "socket.io-parser": [4, 2, 6],
};

// Resolve each package as socket.io itself does, so a nested copy cannot hide behind a newer top-level one.
const fromSocketIo = createRequire(createRequire(import.meta.url).resolve("socket.io"));
const fromEngineIo = createRequire(fromSocketIo.resolve("engine.io"));

// Some of these do not export their package.json: walk up from the entry point to the package's own manifest.
function installedVersion(resolver: NodeJS.Require, name: string): [number, number, number] {
  let dir = dirname(resolver.resolve(name));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, "utf8")) as { name?: string; version: string };
      if (pkg.name === name)
        return pkg.version.split(".").map((n) => Number.parseInt(n, 10)) as [number, number, number];
    }
    if (dirname(dir) === dir) throw new Error(`no package.json for ${name}`);
    dir = dirname(dir);
  }
}

for (const [name, floor] of Object.entries(FLOOR)) {
  test(`${name} is at or above ${floor.join(".")}`, () => {
    const resolver = name === "ws" ? fromEngineIo : fromSocketIo;
    const version = installedVersion(resolver, name);
    const cmp = version[0] - floor[0] || version[1] - floor[1] || version[2] - floor[2];
    assert.ok(cmp >= 0, `${name} ${version.join(".")} is below the floor ${floor.join(".")}`);
  });
}
