// A real streaming replica of the local PostgreSQL 15 (127.0.0.1:5432) for the read-replica tests: a second cluster
// made with `pg_basebackup -R` in a temp folder, on a free port of 127.0.0.1, run by pg_ctl as the postgres user. It
// replicates the whole primary, so a scratch database created on the primary appears on it within moments.
//
// The primary must allow replication connections from 127.0.0.1 (wal_level replica or logical, max_wal_senders > 0,
// and a `replication` line in pg_hba.conf). The first two need a restart of the primary, so they are only checked and
// explained; the pg_hba.conf line is added (with a notice, and a reload) when it is missing and the file is writable,
// since this machine's own test server is ours to configure.
//
// No replication slot is used: a slot left behind by a test that died would make the primary keep WAL forever. A
// replica whose replay is paused keeps receiving WAL all the same, so nothing it needs is recycled meanwhile.
import { spawnSync } from "node:child_process";
import { appendFileSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "./free-port.js";

const BIN = "/usr/lib/postgresql/15/bin";
const PRIMARY = { host: "127.0.0.1", port: 5432, user: "postgres" };
const PRIMARY_URL = `postgres://${PRIMARY.user}@${PRIMARY.host}:${PRIMARY.port}/postgres`;
const HBA_LINE = "host replication all 127.0.0.1/32 trust";

export interface PostgresReplica {
  port: number;
  /** The URL of the same database as `primaryUrl` (a database of the local primary), on the replica. */
  urlFor(primaryUrl: string): string;
  /** Runs one statement on the replica's `postgres` database. */
  query<T extends object = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Waits until the replica has replayed everything the primary has written so far. */
  waitForCatchUp(timeoutMs?: number): Promise<void>;
  /** `pg_wal_replay_pause()`: the replica keeps answering, with what it had replayed, and stops moving on. */
  pauseReplay(): Promise<void>;
  resumeReplay(): Promise<void>;
  /** Stops the server at once (`pg_ctl stop -m immediate`), as a crash would; the folder stays until `cleanup`. */
  stop(): void;
  /** Stops the server if it runs and deletes its folder; safe to call twice. */
  cleanup(): void;
}

/** Starts a replica of the local primary; throws an explanation when the primary does not allow replication. */
export async function startPostgresReplica(): Promise<PostgresReplica> {
  const settings = await checkPrimary();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "pg-replica-"));
  const data = join(dir, "data");
  let running = false;
  const stop = () => {
    if (!running) return;
    running = false;
    asPostgres(`${BIN}/pg_ctl`, ["-D", data, "-m", "immediate", "-w", "stop"]);
  };
  const cleanup = () => {
    stop();
    rmSync(dir, { recursive: true, force: true });
    process.off("exit", cleanup);
  };
  // A test process that dies without its after() hooks still stops the server and deletes the folder.
  process.on("exit", cleanup);
  try {
    chownSync(dir, uid("postgres"), gid("postgres"));
    run(
      asPostgres(`${BIN}/pg_basebackup`, [
        "-h",
        PRIMARY.host,
        "-p",
        String(PRIMARY.port),
        "-U",
        PRIMARY.user,
        "-D",
        data,
        "-R", // standby.signal and primary_conninfo: start as a streaming standby of the primary
        "-X",
        "stream",
        "-c",
        "fast",
      ]),
      "pg_basebackup",
    );
    // A Debian cluster keeps postgresql.conf and pg_hba.conf in /etc, so the copy has neither: write the replica's.
    // A hot standby needs these limits at least as high as the primary's, or it refuses to start.
    const conf = [
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${dir}'`,
      "hot_standby = on",
      "fsync = off",
      `max_connections = ${settings.max_connections}`,
      `max_worker_processes = ${settings.max_worker_processes}`,
      `max_wal_senders = ${settings.max_wal_senders}`,
      `max_prepared_transactions = ${settings.max_prepared_transactions}`,
      `max_locks_per_transaction = ${settings.max_locks_per_transaction}`,
      "shared_buffers = 32MB",
    ];
    writeOwned(join(data, "postgresql.conf"), `${conf.join("\n")}\n`);
    writeOwned(join(data, "pg_hba.conf"), "local all all trust\nhost all all 127.0.0.1/32 trust\n");
    writeOwned(join(data, "pg_ident.conf"), "");
    run(
      asPostgres(`${BIN}/pg_ctl`, ["-D", data, "-l", join(dir, "server.log"), "-w", "-t", "60", "start"]),
      "pg_ctl start",
    );
    running = true;
  } catch (err) {
    cleanup();
    throw err;
  }

  const query = async <T extends object>(text: string, params: unknown[] = []): Promise<T[]> => {
    const client = new pg.Client({ host: "127.0.0.1", port, user: "postgres", database: "postgres" });
    await client.connect();
    try {
      return (await client.query(text, params)).rows as T[];
    } finally {
      await client.end();
    }
  };
  const replica: PostgresReplica = {
    port,
    urlFor(primaryUrl) {
      const url = new URL(primaryUrl);
      url.hostname = "127.0.0.1";
      url.port = String(port);
      return url.toString();
    },
    query,
    async waitForCatchUp(timeoutMs = 120_000) {
      const [{ lsn }] = (await primaryQuery<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn")) as [
        { lsn: string },
      ];
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const [row] = await query<{ caught: boolean }>(
          "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) AS caught",
          [lsn],
        );
        if (row?.caught) return;
        if (Date.now() > deadline) throw new Error(`the replica did not replay up to ${lsn} in ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async pauseReplay() {
      await query("SELECT pg_wal_replay_pause()");
      // The pause takes effect at the next record: wait until replay has really stopped.
      for (let i = 0; i < 200; i++) {
        const [row] = await query<{ state: string }>("SELECT pg_get_wal_replay_pause_state() AS state");
        if (row?.state === "paused") return;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      throw new Error("the replica did not pause its replay");
    },
    async resumeReplay() {
      await query("SELECT pg_wal_replay_resume()");
    },
    stop,
    cleanup,
  };
  try {
    await replica.waitForCatchUp(180_000);
  } catch (err) {
    const log = readFileSync(join(dir, "server.log"), "utf8").split("\n").slice(-20).join("\n");
    cleanup();
    throw new Error(`${(err as Error).message}; the replica's log ends:\n${log}`, { cause: err });
  }
  return replica;
}

interface PrimarySettings {
  max_connections: string;
  max_worker_processes: string;
  max_wal_senders: string;
  max_prepared_transactions: string;
  max_locks_per_transaction: string;
}

/** What a standby needs of the primary: checked, explained, and the pg_hba.conf line added if missing. */
async function checkPrimary(): Promise<PrimarySettings> {
  const settings = Object.fromEntries(
    (
      await primaryQuery<{ name: string; setting: string }>(
        `SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'max_wal_senders', 'hba_file',
           'max_connections', 'max_worker_processes', 'max_prepared_transactions', 'max_locks_per_transaction')`,
      )
    ).map((r) => [r.name, r.setting]),
  ) as Record<string, string> & PrimarySettings;
  const restart = (what: string) =>
    new Error(
      `the PostgreSQL at ${PRIMARY.host}:${PRIMARY.port} cannot feed a streaming replica: ${what}. Set it in ` +
        `postgresql.conf and restart the server (pg_ctlcluster 15 main restart).`,
    );
  if (!["replica", "logical"].includes(settings.wal_level ?? "")) {
    throw restart(`wal_level is ${settings.wal_level}, needs replica`);
  }
  if (Number(settings.max_wal_senders) < 1) throw restart("max_wal_senders is 0, needs at least 1");
  const rules = await primaryQuery<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_hba_file_rules
      WHERE error IS NULL AND 'replication' = ANY(database)
        AND (type = 'local' OR address IN ('127.0.0.1', 'all', 'samehost') OR address = '0.0.0.0')`,
  );
  if ((rules[0]?.n ?? 0) === 0) {
    const file = settings.hba_file!;
    try {
      appendFileSync(
        file,
        `\n# Added by test/helpers/postgres-replica.ts: the read-replica tests stream from here.\n${HBA_LINE}\n`,
      );
    } catch (err) {
      throw new Error(
        `the PostgreSQL at ${PRIMARY.host}:${PRIMARY.port} allows no replication connection from 127.0.0.1, and ` +
          `${file} could not be changed (${(err as Error).message}). Add "${HBA_LINE}" to it and reload ` +
          `(SELECT pg_reload_conf()).`,
        { cause: err },
      );
    }
    await primaryQuery("SELECT pg_reload_conf()");
    console.warn(`postgres-replica: added "${HBA_LINE}" to ${file} and reloaded the server`);
    // The reload is asynchronous: the postmaster rereads pg_hba.conf on SIGHUP, a moment later.
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return settings;
}

async function primaryQuery<T extends object>(text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: PRIMARY_URL });
  await client.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

function asPostgres(command: string, args: string[]): ReturnType<typeof spawnSync> {
  return spawnSync("runuser", ["-u", "postgres", "--", command, ...args], { encoding: "utf8", timeout: 300_000 });
}

function run(result: ReturnType<typeof spawnSync>, what: string): void {
  if (result.status !== 0) {
    throw new Error(
      `${what} failed (${result.status ?? result.signal}): ${String(result.stderr)}${String(result.stdout)}`,
    );
  }
}

function writeOwned(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chownSync(file, uid("postgres"), gid("postgres"));
}

function uid(user: string): number {
  return Number(spawnSync("id", ["-u", user], { encoding: "utf8" }).stdout.trim());
}

function gid(user: string): number {
  return Number(spawnSync("id", ["-g", user], { encoding: "utf8" }).stdout.trim());
}
