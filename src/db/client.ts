// The Prisma client factory: PostgreSQL through node-postgres when DATABASE_URL is set, otherwise an embedded
// PostgreSQL (PGlite) in DATA_DIR. The same schema, migrations and queries serve both.
import { mkdirSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { PrismaClient } from "./generated/client.js";

export type Db = PrismaClient;

/**
 * Raw SQL with positional parameters, answering the rows. The hot path (the message writer) uses it: with
 * PostgreSQL it goes straight to the node-postgres pool, because Prisma's raw-query layer cost more per call than the
 * statement itself (measured with --cpu-prof). With PGlite it goes through Prisma, which owns that one connection
 * and its transactions.
 */
export type Sql = <T>(text: string, params: readonly unknown[]) => Promise<T[]>;

export interface Database {
  prisma: PrismaClient;
  sql: Sql;
  /** "postgres" or "pglite": raw SQL on the hot path is the same for both. */
  kind: "postgres" | "pglite";
  /** Answers when the database answers a trivial query; used by /readyz. */
  ping(): Promise<void>;
  /**
   * The node-postgres pool's connections and queued checkouts, for /metrics; undefined for PGlite (no pool).
   * Optional so a hand-built Database (a test's PGlite one) needs no stub.
   */
  poolStats?(): PoolStats | undefined;
  close(): Promise<void>;
}

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

export interface DatabaseOptions {
  databaseUrl?: string | undefined;
  dataDir: string;
  poolSize?: number;
  /** Told about errors of idle pooled connections (the database restarting); they are otherwise only dropped. */
  log?: { warn(obj: object, msg: string): void } | undefined;
}

export async function createDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl !== undefined) {
    // Our own pool rather than the adapter's, so /metrics can read its counts.
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
    });
    // An idle connection dies when the database restarts; pg then emits "error" on the pool, which would crash the
    // process without a listener (the adapter adds its own only once Prisma connects, and removes it on disconnect).
    // The pool has already discarded that connection, and the next checkout opens a fresh one.
    pool.on("error", (err) => options.log?.warn({ err }, "idle database connection failed"));
    const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
    return {
      prisma,
      sql: async <T>(text: string, params: readonly unknown[]) => (await pool.query(text, [...params])).rows as T[],
      kind: "postgres",
      ping: async () => {
        await pool.query("SELECT 1");
      },
      poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
      // The adapter leaves an external pool open on dispose (disposeExternalPool is off), so end it ourselves.
      close: async () => {
        try {
          await prisma.$disconnect();
        } finally {
          await pool.end();
        }
      },
    };
  }

  mkdirSync(options.dataDir, { recursive: true });
  const pglite = await PGlite.create(`${options.dataDir}/pgdata`);
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) });
  return {
    prisma,
    sql: <T>(text: string, params: readonly unknown[]) => prisma.$queryRawUnsafe<T[]>(text, ...params),
    kind: "pglite",
    ping: async () => {
      await prisma.$queryRaw`SELECT 1`;
    },
    poolStats: () => undefined,
    close: async () => {
      await prisma.$disconnect();
      await pglite.close();
    },
  };
}
