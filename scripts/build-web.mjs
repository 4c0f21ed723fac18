// Builds the chat page into dist/web: web/src/main.ts (with the client SDK and socket.io-client) bundled and minified
// by esbuild into one script, plus the static files of web/public. Offline, and fast enough to run before e2e tests.
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist/web");

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync(join(root, "web/public"), out, { recursive: true });

await build({
  entryPoints: [join(root, "web/src/main.ts")],
  outfile: join(out, "app.js"),
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  target: ["es2022", "chrome109", "firefox115", "safari16"],
  sourcemap: "linked",
  legalComments: "none",
  logLevel: "warning",
  tsconfig: join(root, "web/tsconfig.json"),
});

const kib = (file) => (statSync(join(out, file)).size / 1024).toFixed(1);
console.log(`dist/web: app.js ${kib("app.js")} KiB, app.css ${kib("app.css")} KiB`);
