// `npm run db:migrate [migrations-dir]`: applies prisma/migrations to DATABASE_URL, or to the embedded PGlite in
// DATA_DIR (default ./data) when DATABASE_URL is unset, and says what it did.
// It reads those two variables itself instead of loading the gateway's config, so that migrating does not require
// the secrets (JWT_SECRET, ...) that only a running gateway needs.
import { createDatabase } from "./client.js";
import { applyMigrations, defaultMigrationsDir } from "./migrate.js";

const databaseUrl = process.env.DATABASE_URL?.trim() || undefined;
const dataDir = process.env.DATA_DIR?.trim() || "./data";
const migrationsDir = process.argv[2] ?? defaultMigrationsDir();
const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const target = databaseUrl !== undefined ? redact(databaseUrl) : `PGlite in ${dataDir}`;
  const db = await createDatabase({ databaseUrl, dataDir, poolSize: 2 });
  try {
    say(`migrating ${target} from ${migrationsDir}`);
    const applied = await applyMigrations(db, say, { migrationsDir });
    say(applied.length === 0 ? "database is up to date" : `applied ${applied.length} migration(s)`);
  } finally {
    await db.close();
  }
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.href;
  } catch {
    return "DATABASE_URL";
  }
}

try {
  await main();
} catch (error) {
  const e = error as Error & { cause?: unknown };
  process.stderr.write(`db:migrate failed: ${e.message ?? String(error)}\n`);
  if (e.cause instanceof Error && e.cause.stack !== undefined) process.stderr.write(`${e.cause.stack}\n`);
  process.exitCode = 1;
}
