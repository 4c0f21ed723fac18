// The imperative shell: read the configuration, connect the database and Redis, build the gateway, listen, and
// drain on SIGTERM/SIGINT (a second signal, or the drain timeout, forces the exit).
import { ConfigError, configVariableNames, loadConfig, redisTarget } from "./config.js";
import { createDatabase } from "./db/client.js";
import { applyMigrations } from "./db/migrate.js";
import { createGateway } from "./app.js";
import { readCommandLine } from "./lifecycle/command-line.js";
import { installLastResort } from "./lifecycle/last-resort.js";
import { createLogger, logFormat } from "./observability/logger.js";
import { connectRedis } from "./realtime/redis.js";

async function main(): Promise<void> {
  const action = readCommandLine(process.argv.slice(2), configVariableNames(), process.cwd());
  if (action.kind !== "run") {
    (action.kind === "print" ? process.stdout : process.stderr).write(action.text);
    process.exit(action.kind === "print" ? 0 : 2);
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.LOG_LEVEL, logFormat(config.LOG_FORMAT));
  for (const warning of config.warnings) log.warn(warning);
  // From here on, an error nobody handled is logged and counted instead of killing the pod.
  const lastResort = installLastResort(log);

  const statementMs = config.DATABASE_STATEMENT_TIMEOUT_MS;
  const database = await createDatabase({
    databaseUrl: config.DATABASE_URL,
    readUrl: config.DATABASE_READ_URL,
    dataDir: config.DATA_DIR,
    poolSize: config.DATABASE_POOL_SIZE,
    // One connection per write batch in flight, and one for the marker writer's.
    writerPoolSize: config.WRITER_CONCURRENCY + 1,
    timeouts: {
      statementMs,
      lockMs: config.DATABASE_LOCK_TIMEOUT_MS,
      queryMs: config.DATABASE_QUERY_TIMEOUT_MS || (statementMs > 0 ? statementMs + 1_000 : 0),
      connectMs: config.DATABASE_CONNECT_TIMEOUT_MS,
    },
    log,
  });
  if (config.MIGRATE_ON_START) {
    // Migrations run on their own connections without the request deadlines: an index build, or waiting for another
    // pod's migration, may rightly take minutes. (Embedded PGlite has no deadlines and allows one client only.)
    const migrator = config.embedded
      ? database
      : await createDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: 2, log });
    try {
      const applied = await applyMigrations(migrator, (msg) => log.info(msg));
      if (applied.length > 0) log.info({ applied }, "migrations applied");
    } finally {
      if (migrator !== database) await migrator.close();
    }
  }
  const target = redisTarget(config);
  const redis = target
    ? await connectRedis(target, log, {
        commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
        prefix: config.REDIS_PREFIX,
      })
    : undefined;
  const gateway = await createGateway({ database, redis, log }, config);
  lastResort.countInto(gateway.metrics.uncaughtErrors);

  // The operations port first: probes aimed at it must find it as soon as the public port takes traffic.
  if (gateway.operations !== undefined) {
    const internal = await gateway.operations.listen({ port: config.METRICS_PORT, host: config.HOST });
    log.info({ port: Number(new URL(internal).port) }, "operations listening");
  }
  const address = await gateway.http.listen({ port: config.PORT, host: config.HOST });
  const url = address.replace("0.0.0.0", "localhost").replace("[::]", "localhost");
  log.info(
    { url, port: Number(new URL(address).port), adapter: gateway.adapterMode, database: database.kind },
    "listening",
  );
  if (config.embedded) console.error(`\n  chat gateway ready: open ${url}\n`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, timeoutMs: config.DRAIN_TIMEOUT_MS }, "draining");
    const force = setTimeout(() => {
      log.error("drain timed out: exiting");
      process.exit(1);
    }, config.DRAIN_TIMEOUT_MS + 2_000);
    force.unref();
    try {
      await gateway.drain(config.DRAIN_TIMEOUT_MS);
      await redis?.close();
      await database.close();
      // Last: probes keep reading the draining 503 and Prometheus scrapes the final counters until the very end.
      await gateway.operations?.close();
      log.info("drained");
      process.exit(0);
    } catch (err) {
      log.error({ err }, "drain failed");
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((err: unknown) => {
  console.error("gateway failed to start:", err instanceof Error ? err.message : err);
  process.exit(1);
});
