// One gateway in this process, on PostgreSQL (a scratch database) or embedded PGlite (a temp DATA_DIR), listening on
// port 0, with the Database handle exposed: for tests that must reach under the API (seed thousands of rows, mark a
// message deleted before that API exists, EXPLAIN a query), which a spawned gateway's PGlite would not allow.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGateway } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createDatabase, type Database } from "../../src/db/client.js";
import { applyMigrations } from "../../src/db/migrate.js";
import { createLogger } from "../../src/observability/logger.js";
import { createScratchDatabase, TEST_JWT_SECRET } from "./gateways.js";

export type DatabaseKind = "postgres" | "pglite";

export interface InProcessGateway {
  url: string;
  database: Database;
  stop(): Promise<void>;
}

export async function startInProcessGateway(
  kind: DatabaseKind,
  env: Record<string, string> = {},
): Promise<InProcessGateway> {
  const scratch = kind === "postgres" ? await createScratchDatabase() : undefined;
  const dataDir = mkdtempSync(join(tmpdir(), "gw-inproc-"));
  const config = loadConfig({
    JWT_SECRET: TEST_JWT_SECRET,
    DATA_DIR: dataDir,
    LOG_LEVEL: "silent",
    RATE_LIMITS: "off",
    ...(scratch ? { DATABASE_URL: scratch.url } : {}),
    ...env,
  });
  const database = await createDatabase({ databaseUrl: config.DATABASE_URL, dataDir, poolSize: 4 });
  const cleanup = async () => {
    await database.close().catch(() => undefined);
    await scratch?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await applyMigrations(database);
    const gateway = await createGateway({ database, log: createLogger("silent") }, config);
    const address = await gateway.http.listen({ port: 0, host: "127.0.0.1" });
    return {
      url: address,
      database,
      stop: async () => {
        await gateway.drain(2_000);
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
