// Applies prisma/migrations at start-up, offline, to PostgreSQL or PGlite alike.
//
// The Prisma CLI's `migrate deploy` needs its native schema engine, which cannot be downloaded everywhere the gateway
// runs, and the WebAssembly engine applies scripts through the driver adapters, whose executeScript is not usable for
// this (adapter-pg splits on every ";" and runs the pieces on whichever pooled connection is free, outside any
// transaction; pglite-prisma-adapter does not await the script). So this is a small runner of our own that keeps
// Prisma's bookkeeping exactly: the same `_prisma_migrations` table, checksums and advisory lock key, so that
// `prisma migrate deploy` / `migrate status` run later by the real CLI see these migrations as applied.
import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Database } from "./client.js";
import { executableStatements, stripComments } from "./sql-script.js";

/** The key Prisma Migrate takes with pg_advisory_lock: sharing it also serialises us against the real CLI. */
export const PRISMA_MIGRATE_LOCK_KEY = 72707369;

/** Prisma's own DDL for its history table (schema engine, postgres flavour), so both tools read the same rows. */
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)`;

export interface Migration {
  /** The directory name, e.g. "20261122131604_init": Prisma's migration_name. */
  name: string;
  sql: string;
  /** sha256 (hex) of migration.sql's bytes, as Prisma computes it. */
  checksum: string;
}

export interface ApplyOptions {
  /** Defaults to prisma/migrations under the package root. */
  migrationsDir?: string;
  /**
   * Upper bound for one migration's transaction, including the time spent waiting for another process that holds
   * the lock while it applies a migration. Default 10 minutes.
   */
  transactionTimeoutMs?: number;
}

/** The folder holding package.json, found by walking up from this file: src/db under tsx, dist/db when compiled. */
export function packageRoot(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  for (;;) {
    if (existsSync(join(dir, "package.json"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${from}`);
    dir = parent;
  }
}

export function defaultMigrationsDir(): string {
  return join(packageRoot(), "prisma", "migrations");
}

/**
 * The committed migrations in Prisma's order: every sub-directory, sorted by name, must hold a migration.sql.
 * A missing folder means "no migrations yet" rather than an error, as for Prisma.
 */
export async function readMigrations(dir: string = defaultMigrationsDir()): Promise<Migration[]> {
  if (!existsSync(dir)) return [];
  await checkLockfile(dir);
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith("."))
    .map((e) => e.name)
    .sort();
  const migrations: Migration[] = [];
  for (const name of names) {
    const file = join(dir, name, "migration.sql");
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (error) {
      throw new Error(`migration ${name} has no readable migration.sql (${file}): ${(error as Error).message}`, {
        cause: error,
      });
    }
    // Hash the bytes as stored: Prisma's checksum is over the file's content, line endings included.
    const checksum = createHash("sha256").update(bytes).digest("hex");
    migrations.push({ name, sql: bytes.toString("utf8"), checksum });
  }
  return migrations;
}

async function checkLockfile(dir: string): Promise<void> {
  const path = join(dir, "migration_lock.toml");
  if (!existsSync(path)) return;
  const provider = /^\s*provider\s*=\s*"([^"]*)"/m.exec(await readFile(path, "utf8"))?.[1];
  if (provider !== undefined && provider !== "postgresql") {
    throw new Error(`${path} says provider = "${provider}"; these migrations are not for PostgreSQL`);
  }
}

interface HistoryRow {
  migration_name: string;
  checksum: string;
  finished: boolean;
  rolled_back: boolean;
}

/**
 * Applies the committed migrations that the database has not recorded yet and returns their names, in order.
 *
 * Each migration runs in its own transaction together with its `_prisma_migrations` row, so it is either fully
 * applied and recorded or not at all: a failed migration leaves nothing behind to `prisma migrate resolve`, and the
 * next start retries it. Every transaction first takes pg_advisory_xact_lock on Prisma's key and then re-reads the
 * history, so gateways starting together against one PostgreSQL apply each migration exactly once: the others wait,
 * then find it recorded. (A session-level pg_advisory_lock would need one dedicated connection for the whole run; the
 * Prisma client only lends a fixed connection inside a transaction, so the lock is retaken per transaction instead.)
 */
export async function applyMigrations(
  db: Database,
  log: (msg: string) => void = () => {},
  options: ApplyOptions = {},
): Promise<string[]> {
  const dir = options.migrationsDir ?? defaultMigrationsDir();
  const migrations = await readMigrations(dir);
  const statements = new Map(migrations.map((m) => [m.name, executableStatements(m.sql)]));
  const timeout = options.transactionTimeoutMs ?? 10 * 60_000;
  const applied: string[] = [];
  let reportedHistory = false;

  for (;;) {
    const next = await db.prisma.$transaction(
      async (tx) => {
        // executeRaw rather than queryRaw: the function returns `void`, a column type the adapters refuse to map.
        await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${PRISMA_MIGRATE_LOCK_KEY})`);
        const [exists] = await tx.$queryRawUnsafe<{ present: boolean }[]>(
          `SELECT to_regclass('_prisma_migrations') IS NOT NULL AS present`,
        );
        if (exists?.present !== true) await tx.$executeRawUnsafe(CREATE_MIGRATIONS_TABLE);
        const history = await tx.$queryRawUnsafe<HistoryRow[]>(
          `SELECT migration_name, checksum, finished_at IS NOT NULL AS finished,
                  rolled_back_at IS NOT NULL AS rolled_back
             FROM _prisma_migrations ORDER BY started_at`,
        );

        // A row neither finished nor rolled back is a migration the Prisma CLI started and did not complete (ours
        // never leave one): the schema is in an unknown state, and Prisma itself refuses to continue (P3009).
        const failed = history.filter((r) => !r.finished && !r.rolled_back).map((r) => r.migration_name);
        if (failed.length > 0) {
          throw new Error(
            `migration(s) ${failed.join(", ")} failed part-way under the Prisma CLI; repair the database, then ` +
              `run \`prisma migrate resolve --applied|--rolled-back <name>\` before starting again`,
          );
        }
        const done = new Map(history.filter((r) => r.finished && !r.rolled_back).map((r) => [r.migration_name, r]));
        if (!reportedHistory) {
          reportedHistory = true;
          reportHistory(migrations, done, log);
        }

        const migration = migrations.find((m) => !done.has(m.name));
        if (migration === undefined) return undefined;
        for (const statement of statements.get(migration.name) ?? []) {
          try {
            await tx.$executeRawUnsafe(statement);
          } catch (error) {
            throw new Error(
              `migration ${migration.name} failed and was rolled back: ${describe(error)}\n  in: ${excerpt(statement)}`,
              { cause: error },
            );
          }
        }
        // started_at is the transaction's start (now()); finished_at the wall clock at its end, as Prisma records.
        await tx.$executeRawUnsafe(
          `INSERT INTO _prisma_migrations
             (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
           VALUES ($1, $2, clock_timestamp(), $3, NULL, NULL, now(), 1)`,
          randomUUID(),
          migration.checksum,
          migration.name,
        );
        return migration.name;
      },
      { maxWait: 30_000, timeout },
    );
    if (next === undefined) return applied;
    applied.push(next);
    log(`applied migration ${next}`);
  }
}

function reportHistory(migrations: Migration[], done: Map<string, HistoryRow>, log: (msg: string) => void): void {
  const known = new Set(migrations.map((m) => m.name));
  for (const m of migrations) {
    const row = done.get(m.name);
    // Prisma's deploy ignores edited migrations too (only `migrate dev` objects), but an edit that never ran is
    // worth seeing in the logs.
    if (row !== undefined && row.checksum !== m.checksum) {
      log(`warning: migration ${m.name} was modified after it was applied (checksum differs); not re-applied`);
    }
  }
  const unknown = [...done.keys()].filter((name) => !known.has(name));
  // Normal during a rolling deploy: a newer gateway already applied migrations this build does not have.
  if (unknown.length > 0) log(`note: database has migrations this build does not know: ${unknown.join(", ")}`);
}

// Prisma wraps a database error in a raw query as P2010 ("Invalid `prisma.$executeRawUnsafe()` invocation: ...");
// the driver's own code and message are in meta.driverAdapterError.cause.
function describe(error: unknown): string {
  const e = error as { message?: string; meta?: { driverAdapterError?: { cause?: DriverCause } } };
  const cause = e.meta?.driverAdapterError?.cause;
  if (cause?.originalMessage !== undefined) {
    return cause.originalCode !== undefined
      ? `${cause.originalMessage} (SQLSTATE ${cause.originalCode})`
      : cause.originalMessage;
  }
  return e.message ?? String(error);
}

interface DriverCause {
  originalCode?: string;
  originalMessage?: string;
}

function excerpt(statement: string): string {
  const code = stripComments(statement).trim().replace(/\s+/g, " ");
  return code.length > 160 ? `${code.slice(0, 157)}...` : code;
}
