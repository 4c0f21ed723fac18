// The committed migrations against real PostgreSQL (scratch databases on TEST_DATABASE_URL's server, default
// 127.0.0.1:5432) and against an in-memory PGlite, and what Prisma's own schema engine thinks of the result.
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { createDatabase, type Database } from "../../src/db/client.js";
import { PrismaClient } from "../../src/db/generated/client.js";
import { applyMigrations, defaultMigrationsDir, packageRoot, readMigrations } from "../../src/db/migrate.js";
import { executableStatements, splitSqlStatements } from "../../src/db/sql-script.js";
import { migrationList, openSchemaEngine, schemaFiles } from "../../scripts/schema-engine.js";

const SERVER_URL =
  process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/test";
const SCHEMA_PATH = join(packageRoot(), "prisma", "schema.prisma");
const NO_FILTERS = { externalTables: [], externalEnums: [] };

const scratchNames: string[] = [];
const openDatabases: Database[] = [];

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: SERVER_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A new empty database on the server, dropped when the file's tests end. */
async function scratchDatabase(): Promise<string> {
  const name = `migtest_${process.pid}_${randomBytes(4).toString("hex")}`;
  await admin(`CREATE DATABASE "${name}"`);
  scratchNames.push(name);
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return url.href;
}

async function connect(url: string): Promise<Database> {
  const db = await createDatabase({ databaseUrl: url, dataDir: "unused", poolSize: 3 });
  openDatabases.push(db);
  return db;
}

after(async () => {
  await Promise.allSettled(openDatabases.map((db) => db.close()));
  for (const name of scratchNames) await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
});

const committed = await readMigrations();
const committedNames = committed.map((m) => m.name);

test("the committed migrations exist and are in Prisma's layout", () => {
  assert.ok(committed.length > 0, `no migrations in ${defaultMigrationsDir()}`);
  for (const m of committed) assert.match(m.name, /^\d{14}_[A-Za-z0-9_]+$/);
});

test("applied to PostgreSQL they produce exactly schema.prisma, recorded as Prisma Migrate records them", async () => {
  const url = await scratchDatabase();
  const db = await connect(url);
  const logs: string[] = [];
  assert.deepEqual(await applyMigrations(db, (m) => logs.push(m)), committedNames);
  assert.equal(logs.filter((l) => l.startsWith("applied migration")).length, committed.length);

  const rows = await db.prisma.$queryRawUnsafe<
    { migration_name: string; checksum: string; done: boolean; logs: string | null; rb: boolean; steps: number }[]
  >(
    `SELECT migration_name, checksum, finished_at >= started_at AS done, logs, rolled_back_at IS NOT NULL AS rb,
            applied_steps_count AS steps
       FROM _prisma_migrations ORDER BY migration_name`,
  );
  assert.deepEqual(
    rows,
    committed.map((m) => ({
      migration_name: m.name,
      checksum: m.checksum,
      done: true,
      logs: null,
      rb: false,
      steps: 1,
    })),
  );

  // Prisma's schema engine (the code behind `migrate diff`, `migrate status` and `migrate deploy`) on the result.
  const { engine, close } = await openSchemaEngine({ url });
  try {
    const files = await schemaFiles(SCHEMA_PATH);
    const diff = await engine.diff({
      from: { tag: "schemaDatasource", files, configDir: packageRoot() },
      to: { tag: "schemaDatamodel", files },
      script: false,
      exitCode: true,
      filters: NO_FILTERS,
    });
    assert.equal(diff.exitCode, 0, `database differs from schema.prisma:\n${diff.stdout}`);

    const migrationsList = await migrationList(defaultMigrationsDir(), committed);
    const status = await engine.diagnoseMigrationHistory({
      migrationsList,
      optInToShadowDatabase: false,
      filters: NO_FILTERS,
    });
    assert.deepEqual(status, {
      editedMigrationNames: [],
      failedMigrationNames: [],
      hasMigrationsTable: true,
      history: null,
    });
    // What `prisma migrate deploy` would do now: nothing.
    assert.deepEqual(await engine.applyMigrations({ migrationsList, filters: NO_FILTERS }), {
      appliedMigrationNames: [],
    });
  } finally {
    await close();
  }

  // Applying again finds everything recorded.
  assert.deepEqual(await applyMigrations(db), []);
  const [count] = await db.prisma.$queryRawUnsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM _prisma_migrations`);
  assert.equal(count?.n, committed.length);
});

test("gateways migrating one fresh database at once each succeed and apply every migration once", async () => {
  const url = await scratchDatabase();
  const dbs = await Promise.all([connect(url), connect(url), connect(url)]);
  const results = await Promise.all(dbs.map((db) => applyMigrations(db)));
  assert.deepEqual(results.flat().sort(), committedNames);

  const probe = dbs[0] as Database;
  const [row] = await probe.prisma.$queryRawUnsafe<{ history: number; users: number }[]>(
    `SELECT (SELECT count(*)::int FROM _prisma_migrations) AS history,
            (SELECT count(*)::int FROM pg_class WHERE relname = 'users' AND relkind = 'r') AS users`,
  );
  assert.deepEqual(row, { history: committed.length, users: 1 });
});

test("a failing migration is rolled back whole, left unrecorded, and applies once fixed", async () => {
  const dir = await mkdtemp(join(tmpdir(), "migrations-"));
  try {
    await cp(defaultMigrationsDir(), dir, { recursive: true });
    const broken = join(dir, "29991231235959_broken");
    await cp(join(dir, committedNames[0] as string), broken, { recursive: true });
    // Prisma emits BEGIN/COMMIT around some enum changes: the runner's own transaction must still cover everything.
    await writeFile(join(broken, "migration.sql"), "BEGIN;\nCREATE TABLE half_done (id int);\nCOMMIT;\nSELECT 1/0;\n");
    const db = await connect(await scratchDatabase());
    await assert.rejects(
      applyMigrations(db, undefined, { migrationsDir: dir }),
      /29991231235959_broken.*division by zero/s,
    );

    const [state] = await db.prisma.$queryRawUnsafe<{ half: boolean; names: string[] }[]>(
      `SELECT to_regclass('half_done') IS NOT NULL AS half,
              (SELECT array_agg(migration_name ORDER BY migration_name) FROM _prisma_migrations) AS names`,
    );
    assert.deepEqual(state, { half: false, names: committedNames });

    await writeFile(join(broken, "migration.sql"), "CREATE TABLE half_done (id int);\n");
    assert.deepEqual(await applyMigrations(db, undefined, { migrationsDir: dir }), ["29991231235959_broken"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the same migrations apply to PGlite, where Prisma queries and array parameters work", async () => {
  const pglite = await PGlite.create();
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) });
  const db: Database = {
    prisma,
    sql: <T>(text: string, params: readonly unknown[]) => prisma.$queryRawUnsafe<T[]>(text, ...params),
    kind: "pglite",
    ping: async () => {
      await prisma.$queryRaw`SELECT 1`;
    },
    close: async () => {
      await prisma.$disconnect();
      await pglite.close();
    },
  };
  try {
    assert.deepEqual(await applyMigrations(db), committedNames);
    assert.deepEqual(await applyMigrations(db), []);

    const alice = randomUUID();
    const bob = randomUUID();
    await prisma.user.createMany({
      data: [
        { id: alice, username: "alice", displayName: "Alice", passwordHash: "x" },
        { id: bob, username: "bob", displayName: "Bob", passwordHash: "x" },
      ],
    });
    const conversation = await prisma.conversation.create({
      data: { id: randomUUID(), type: "direct", members: { create: [{ userId: alice }, { userId: bob }] } },
      include: { members: { orderBy: { joinedAt: "asc" } } },
    });
    assert.equal(conversation.members.length, 2);
    assert.equal(conversation.lastSeq, 0);

    // The hot path passes id lists as one array parameter.
    const found = await prisma.$queryRawUnsafe<{ id: string; ord: bigint }[]>(
      `SELECT u.id::text AS id, x.ord FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, ord)
         JOIN users u ON u.id = x.id ORDER BY x.ord`,
      [bob, alice],
    );
    assert.deepEqual(
      found.map((r) => r.id),
      [bob, alice],
    );
  } finally {
    await db.close();
  }
});

test("scripts split into statements the way PostgreSQL reads them", () => {
  const sql = `-- a comment; with a semicolon
CREATE TABLE "a;b" (v text DEFAULT 'x;''y', w text DEFAULT E'\\';');
/* block /* nested; */ still comment; */
CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $fn$ BEGIN RETURN 1; END; $fn$;
CREATE FUNCTION g(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END; SELECT 2; END;
SELECT $1::int;
-- trailing comment only`;
  const statements = splitSqlStatements(sql);
  assert.equal(statements.length, 4);
  assert.match(statements[0] as string, /^-- a comment; with a semicolon\nCREATE TABLE "a;b" .*E'\\';'\)$/);
  assert.match(statements[1] as string, /^\/\* block .*\*\/\nCREATE FUNCTION f\(\).*\$fn\$$/s);
  assert.match(statements[2] as string, /^CREATE FUNCTION g.*SELECT 2; END$/);
  assert.equal(statements[3], "SELECT $1::int");

  assert.deepEqual(executableStatements("BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\nEND;\n-- x\nSTART TRANSACTION;"), [
    "CREATE TABLE t (id int)",
  ]);
});
