// Writes docs/openapi.json: the OpenAPI document of the HTTP API as a gateway with the default configuration serves
// it at /docs/json (the routes' own zod schemas). test/inprocess/openapi.test.ts fails when the committed file and the
// code differ; run this after changing a route or a schema.
//
//   npm run docs:openapi            (node --import tsx scripts/openapi.ts [--out docs/openapi.json])
import { mkdtempSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { format } from "prettier";
import { createGateway } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createDatabase } from "../src/db/client.js";
import { applyMigrations } from "../src/db/migrate.js";
import { createLogger } from "../src/observability/logger.js";

export const OPENAPI_FILE = new URL("../docs/openapi.json", import.meta.url);

/** The document of a gateway on embedded PGlite with the default configuration (and a throwaway secret). */
export async function generateOpenApi(): Promise<unknown> {
  const dataDir = mkdtempSync(join(tmpdir(), "chat-openapi-"));
  const config = loadConfig({ JWT_SECRET: "openapi-document-generation-only-0123456789", DATA_DIR: dataDir });
  const database = await createDatabase({ databaseUrl: undefined, dataDir, poolSize: 1 });
  try {
    await applyMigrations(database);
    const gateway = await createGateway({ database, log: createLogger("silent") }, config);
    try {
      await gateway.http.ready();
      return gateway.http.swagger();
    } finally {
      await gateway.drain(2_000);
    }
  } finally {
    await database.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The file's text: formatted as the repository's prettier would, so `npm run lint` accepts it as written. */
export async function openApiText(document: unknown): Promise<string> {
  return format(JSON.stringify(document), { parser: "json", printWidth: 120 });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { out: { type: "string" } } });
  const out = values.out ?? OPENAPI_FILE;
  await writeFile(out, await openApiText(await generateOpenApi()));
  console.log(`wrote ${String(out)}`);
}
