// Generates the Prisma client without network access.
// Every Prisma CLI command first looks for the native schema engine and would try to download it; `generate` does not
// use it, so pointing PRISMA_SCHEMA_ENGINE_BINARY at any existing file lets it run offline.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const env = { ...process.env, PRISMA_HIDE_UPDATE_MESSAGE: "1", CHECKPOINT_DISABLE: "1" };
env.PRISMA_SCHEMA_ENGINE_BINARY ??= fileURLToPath(import.meta.url);
const result = spawnSync(process.execPath, ["node_modules/prisma/build/index.js", "generate"], {
  stdio: "inherit",
  env,
});
process.exit(result.status ?? 1);
