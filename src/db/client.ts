// The Prisma client factory: PostgreSQL through node-postgres when DATABASE_URL is set, otherwise an embedded
// PostgreSQL (PGlite) in DATA_DIR. The same schema, migrations and queries serve both.
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaClient } from "./generated/client.js";
import { ensurePrivateDir } from "./private-dir.js";

export type Db = PrismaClient;

/**
 * Raw SQL with positional parameters, answering the rows. The hot path (the message writer) uses it: with
 * PostgreSQL it goes straight to the node-postgres pool, because Prisma's raw-query layer cost more per call than the
 * statement itself (measured with --cpu-prof). With PGlite it goes through Prisma, which owns that one connection
 * and its transactions.
 */
export type Sql = <T>(text: string, params: readonly unknown[], options?: { prepare?: string }) => Promise<T[]>;

export interface Database {
  prisma: PrismaClient;
  sql: Sql;
  /**
   * The write path's connections (the message and marker writers): with PostgreSQL a small pool of its own, so that
   * reads and Prisma's queries can never hold every connection while sends wait, and with generic plans forced for
   * its prepared statements (createWriterPool). Optional so a hand-built Database needs no stub; `sql` otherwise.
   */
  writerSql?: Sql;
  /** "postgres" or "pglite": raw SQL on the hot path is the same for both. */
  kind: "postgres" | "pglite";
  /** Answers when the database answers a trivial query; used by /readyz. */
  ping(): Promise<void>;
  /**
   * The node-postgres pool's connections and queued checkouts, for /metrics; undefined for PGlite (no pool).
   * Optional so a hand-built Database (a test's PGlite one) needs no stub.
   */
  poolStats?(): PoolStats | undefined;
  /**
   * Runs `fn` in one transaction on one connection (BEGIN, its statements, COMMIT; ROLLBACK if it throws). With
   * PostgreSQL straight on a pooled node-postgres connection: a few short statements under a row lock cost round
   * trips only, far less than Prisma's interactive transactions (measured: a reaction storm on one message).
   * Optional so a hand-built Database needs no stub; see `inTransaction`.
   */
  transaction?<T>(fn: (sql: Sql) => Promise<T>): Promise<T>;
  /** The streaming replica of DATABASE_READ_URL, for the reads db/reads.ts routes to it; PostgreSQL only. */
  replica?: ReadReplica;
  close(): Promise<void>;
}

export interface ReadReplica {
  prisma: PrismaClient;
  poolStats(): PoolStats;
  close(): Promise<void>;
}

/** `database.transaction`, or Prisma's interactive transaction where the database has none of its own. */
export function inTransaction<T>(database: Database, fn: (sql: Sql) => Promise<T>): Promise<T> {
  if (database.transaction) return database.transaction(fn);
  return database.prisma.$transaction((tx) =>
    fn(<R>(text: string, params: readonly unknown[]) => tx.$queryRawUnsafe<R[]>(text, ...params)),
  );
}

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

export interface DatabaseOptions {
  databaseUrl?: string | undefined;
  /** A streaming replica of databaseUrl for reads that may lag (db/reads.ts); needs databaseUrl. */
  readUrl?: string | undefined;
  dataDir: string;
  poolSize?: number;
  /** Connections of the write path's own pool (PostgreSQL only). @default 3 */
  writerPoolSize?: number;
  /**
   * Deadlines for PostgreSQL (ignored by PGlite), so a stuck database or a held row lock answers `unavailable` within
   * seconds instead of piling up requests. Unset: none, as a migration run wants.
   */
  timeouts?: DatabaseTimeouts | undefined;
  /** Told about errors of idle pooled connections (the database restarting); they are otherwise only dropped. */
  log?: { warn(obj: object, msg: string): void } | undefined;
}

export interface DatabaseTimeouts {
  /** PostgreSQL statement_timeout, ms; 0 is none. */
  statementMs: number;
  /** PostgreSQL lock_timeout, ms: a statement waiting this long for a lock fails (55P03); 0 is none. */
  lockMs: number;
  /** node-postgres query_timeout, ms: the client gives up even when the server never answers; 0 is none. */
  queryMs: number;
  /** node-postgres connectionTimeoutMillis: the longest checkout, waiting for a free pooled connection or a new one. */
  connectMs: number;
}

/**
 * A node-postgres pool with the gateway's deadlines, for the primary or the read replica. Our own pool rather than the
 * adapter's, so /metrics can read its counts.
 */
function createPool(
  url: string,
  poolSize: number,
  timeouts: DatabaseTimeouts | undefined,
  log: DatabaseOptions["log"],
  what: string,
  extra: pg.PoolConfig = {},
): pg.Pool {
  const pool = new pg.Pool({
    ...extra,
    connectionString: url,
    max: poolSize,
    connectionTimeoutMillis: timeouts?.connectMs ?? 5_000,
    idleTimeoutMillis: 30_000,
    // TCP keepalive notices a database host that vanished without closing the connection (a network partition).
    keepAlive: true,
    // Session settings sent at connect: the server itself cancels a statement past the deadline (57014) or one
    // waiting too long for a row lock (55P03), both mapped to `unavailable`. 0 leaves them unset (no limit).
    ...(timeouts?.statementMs ? { statement_timeout: timeouts.statementMs } : {}),
    ...(timeouts?.lockMs ? { lock_timeout: timeouts.lockMs } : {}),
    // The client-side backstop for a server that no longer answers at all; above statement_timeout so the server's
    // own cancellation normally wins and the connection stays usable.
    ...(timeouts?.queryMs ? { query_timeout: timeouts.queryMs } : {}),
  });
  // An idle connection dies when the database restarts; pg then emits "error" on the pool, which would crash the
  // process without a listener (the adapter adds its own only once Prisma connects, and removes it on disconnect).
  // The pool has already discarded that connection, and the next checkout opens a fresh one.
  pool.on("error", (err) => log?.warn({ err }, `idle ${what} connection failed`));
  return pool;
}

/**
 * The write path's pool. Its statements are few, hand-written and prepared (named), and run hundreds of times a
 * second, so they get PostgreSQL's generic plan from their first execution (`plan_cache_mode`): planning the
 * message writer's statement afresh (a custom plan) costs 0.9 ms, more than its whole generic execution with the
 * commit (0.6 ms, measured), and the default mode plans five executions that way and then chooses by estimated cost,
 * which can keep it re-planning. A generic plan is made from the tables' sizes at the time and kept until ANALYZE
 * changes their statistics; on a new deployment that can be a small table still growing fast before autovacuum's
 * first ANALYZE. So the pool's connections live a minute at most: each new one plans from the tables' current size.
 */
function createWriterPool(
  url: string,
  size: number,
  timeouts: DatabaseTimeouts | undefined,
  log: DatabaseOptions["log"],
) {
  return createPool(url, size, timeouts, log, "writer", {
    options: "-c plan_cache_mode=force_generic_plan",
    maxLifetimeSeconds: 60,
  });
}

/** The read replica's Prisma client on its own pool (same deadlines as the primary's), or undefined. */
function createReplica(options: DatabaseOptions): ReadReplica | undefined {
  if (options.readUrl === undefined) return undefined;
  const pool = createPool(options.readUrl, options.poolSize ?? 10, options.timeouts, options.log, "read replica");
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  return {
    prisma,
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    close: async () => {
      try {
        await prisma.$disconnect();
      } finally {
        await pool.end();
      }
    },
  };
}

export async function createDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl === undefined && options.readUrl !== undefined) {
    // config.ts refuses this combination at start; a direct caller gets the same answer.
    throw new Error("a read replica (DATABASE_READ_URL) needs PostgreSQL (DATABASE_URL), not the embedded database");
  }
  if (options.databaseUrl !== undefined) {
    const pool = createPool(options.databaseUrl, options.poolSize ?? 10, options.timeouts, options.log, "database");
    const writerPool = createWriterPool(
      options.databaseUrl,
      options.writerPoolSize ?? 3,
      options.timeouts,
      options.log,
    );
    const replica = createReplica(options);
    const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
    // A named statement is parsed once per connection and then only bound and executed: for the hot path's long
    // statements parsing and planning cost more than the execution (measured: 1.6 ms against 0.5 ms).
    const sqlOn =
      (on: pg.Pool): Sql =>
      async <T>(text: string, params: readonly unknown[], options?: { prepare?: string }) =>
        (await on.query({ text, values: [...params], ...(options?.prepare ? { name: options.prepare } : {}) }))
          .rows as T[];
    return {
      prisma,
      sql: sqlOn(pool),
      writerSql: sqlOn(writerPool),
      kind: "postgres",
      ping: async () => {
        await pool.query("SELECT 1");
      },
      poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
      transaction: async <T>(fn: (sql: Sql) => Promise<T>): Promise<T> => {
        const client = await pool.connect();
        let broken: unknown;
        try {
          await client.query("BEGIN");
          const result = await fn(
            async <R>(text: string, params: readonly unknown[]) => (await client.query(text, [...params])).rows as R[],
          );
          await client.query("COMMIT");
          return result;
        } catch (err) {
          // A connection that failed mid-transaction is not given back to the pool as if it were clean.
          await client.query("ROLLBACK").catch((rollbackErr: unknown) => (broken = rollbackErr));
          throw err;
        } finally {
          client.release(broken instanceof Error ? broken : undefined);
        }
      },
      ...(replica ? { replica } : {}),
      // The adapter leaves an external pool open on dispose (disposeExternalPool is off), so end it ourselves.
      close: async () => {
        try {
          // A replica that fails to close must not keep the primary's pool open.
          await replica?.close().catch(() => undefined);
          await prisma.$disconnect();
        } finally {
          await Promise.all([pool.end(), writerPool.end()]);
        }
      },
    };
  }

  ensurePrivateDir(options.dataDir);
  // Embedded mode only: a pod on PostgreSQL never loads PGlite (its wasm build is megabytes of memory).
  const [{ PGlite }, { PrismaPGlite }] = await Promise.all([
    import("@electric-sql/pglite"),
    import("pglite-prisma-adapter"),
  ]);
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
