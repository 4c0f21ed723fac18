// Prisma's schema engine compiled to WebAssembly, driven through a driver adapter instead of the native binary the
// Prisma CLI would otherwise download. Development tooling only (scripts/migration-new.ts and the migration tests):
// the gateway applies migrations with src/db/migrate.ts and never loads this module at run time.
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
// Not a direct dependency: it comes with @prisma/adapter-pg and pglite-prisma-adapter at the same Prisma version.
import {
  bindMigrationAwareSqlAdapterFactory,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
} from "@prisma/driver-adapter-utils";
import * as bindings from "@prisma/schema-engine-wasm/schema_engine_bg";
import type { MigrationList, SchemaEngine } from "@prisma/schema-engine-wasm";
import pg from "pg";
import { PrismaPGlite } from "pglite-prisma-adapter";

export type { MigrationList, SchemaEngine };

let wasmReady: Promise<void> | undefined;

// The package's entry point does `import * as wasm from "./schema_engine_bg.wasm"` (a bundler-style WebAssembly
// import), which Node 20 cannot load without --experimental-wasm-modules. Instantiating the module ourselves against
// the JS glue is what that import would have done.
function loadWasm(): Promise<void> {
  wasmReady ??= (async () => {
    const require = createRequire(import.meta.url);
    const glue = require.resolve("@prisma/schema-engine-wasm/schema_engine_bg");
    const bytes = await readFile(join(dirname(glue), "schema_engine_bg.wasm"));
    const { instance } = await WebAssembly.instantiate(bytes, { "./schema_engine_bg.js": bindings });
    const exports = instance.exports as unknown as { __wbindgen_start(): void };
    bindings.__wbg_set_wasm(instance.exports);
    exports.__wbindgen_start();
  })();
  return wasmReady;
}

// pglite-prisma-adapter 0.7.2's executeScript neither awaits PGlite.exec nor reports its failure (the rejection is
// unhandled and kills the process), and its shadow database is a PGlite it never closes. Both matter to the engine,
// which replays every migration through executeScript on the shadow database.
function awaitingScripts(adapter: SqlDriverAdapter, pglite: PGlite, onDispose?: () => Promise<void>): SqlDriverAdapter {
  const fixed = Object.create(adapter) as SqlDriverAdapter;
  fixed.executeScript = async (script: string) => {
    try {
      await pglite.exec(script);
    } catch (error) {
      // The adapter's onError turns a PostgreSQL error into the DriverAdapterError the engine reports by its message.
      (adapter as unknown as { onError?: (e: unknown) => never }).onError?.call(adapter, error);
      throw error;
    }
  };
  fixed.dispose = async () => {
    await adapter.dispose();
    await onDispose?.();
  };
  return fixed;
}

function pgliteFactory(pglite: PGlite): SqlMigrationAwareDriverAdapterFactory {
  const base = new PrismaPGlite(pglite);
  return {
    provider: base.provider,
    adapterName: base.adapterName,
    connect: async () => awaitingScripts(await base.connect(), pglite),
    connectToShadowDb: async () => {
      const shadow = await PGlite.create();
      return awaitingScripts(await new PrismaPGlite(shadow).connect(), shadow, () => shadow.close());
    },
  };
}

// adapter-pg rejects columns of PostgreSQL's internal one-byte "char" type (oid 18) as unsupported, and the engine's
// describer reads several of them from pg_catalog (relkind, contype, ...), so without this every introspection of a
// real server fails with "Column type 'char' could not be deserialized". Its text form is the character itself, so
// presenting the column as text loses nothing. performIO is adapter-pg's (untyped) hook between pg and the mapping.
const PG_CHAR_OID = 18;
const PG_TEXT_OID = 25;

type PerformIO = (query: unknown) => Promise<{ fields: { dataTypeID: number }[] }>;

function readsCharAsText(adapter: SqlDriverAdapter): SqlDriverAdapter {
  const io = adapter as unknown as { performIO?: PerformIO };
  const original = io.performIO;
  if (typeof original !== "function") return adapter;
  io.performIO = async (query: unknown) => {
    const result = await original.call(adapter, query);
    for (const field of result.fields) if (field.dataTypeID === PG_CHAR_OID) field.dataTypeID = PG_TEXT_OID;
    return result;
  };
  return adapter;
}

// adapter-pg's own connectToShadowDb creates the scratch database and then connects with { ...config, database },
// but pg lets the connection string win over `database`: with a connectionString (how we configure it) the "shadow"
// pool is the main database, and the engine replays every migration there. So the shadow database is made here.
function pgFactory(url: string): SqlMigrationAwareDriverAdapterFactory {
  const base = new PrismaPg({ connectionString: url, max: 2 });
  return {
    provider: base.provider,
    adapterName: base.adapterName,
    connect: async () => readsCharAsText(await base.connect()),
    connectToShadowDb: async () => {
      const name = `prisma_shadow_${randomUUID().replace(/-/g, "")}`;
      await adminQuery(url, `CREATE DATABASE "${name}"`);
      const shadowUrl = new URL(url);
      shadowUrl.pathname = `/${name}`;
      const adapter = readsCharAsText(await new PrismaPg({ connectionString: shadowUrl.href, max: 2 }).connect());
      const dispose = adapter.dispose.bind(adapter);
      adapter.dispose = async () => {
        await dispose();
        await adminQuery(url, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      };
      return adapter;
    },
  };
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function tracked(factory: SqlMigrationAwareDriverAdapterFactory) {
  const open = new Set<SqlDriverAdapter>();
  const track = (adapter: SqlDriverAdapter) => {
    const dispose = adapter.dispose.bind(adapter);
    adapter.dispose = async () => {
      if (!open.delete(adapter)) return;
      await dispose();
    };
    open.add(adapter);
    return adapter;
  };
  return {
    provider: factory.provider,
    adapterName: factory.adapterName,
    connect: async () => track(await factory.connect()),
    connectToShadowDb: async () => track(await factory.connectToShadowDb()),
    disposeAll: async () => {
      for (const adapter of [...open]) await adapter.dispose();
    },
  };
}

export type EngineTarget =
  /** A PostgreSQL server; the engine's shadow database is a scratch database it creates there and drops. */
  | { url: string }
  /** An open PGlite; the shadow database is a separate in-memory PGlite. */
  | { pglite: PGlite };

export interface EngineHandle {
  engine: SchemaEngine;
  close(): Promise<void>;
}

/** Starts a schema engine whose "live database" is the target. `log` receives the engine's own tracing. */
export async function openSchemaEngine(target: EngineTarget, log?: (line: string) => void): Promise<EngineHandle> {
  await loadWasm();
  const factory = tracked("url" in target ? pgFactory(target.url) : pgliteFactory(target.pglite));
  const bound = bindMigrationAwareSqlAdapterFactory(factory);
  let engine: SchemaEngine;
  try {
    engine = await bindings.SchemaEngine.new({ datamodels: undefined }, (line: string) => log?.(line), bound);
  } catch (error) {
    throw unwrapEngineError(error, bound.errorRegistry);
  }
  return {
    engine: new Proxy(engine, {
      // Hand back the adapter's own exception rather than the engine's opaque reference to it.
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          const result = (value as (...a: unknown[]) => unknown).apply(target, args);
          return result instanceof Promise
            ? result.catch((error: unknown) => {
                throw unwrapEngineError(error, bound.errorRegistry);
              })
            : result;
        };
      },
    }),
    close: async () => {
      engine.free();
      // Freeing the engine does not dispose the connections it opened (a pg pool would keep the process alive).
      await factory.disposeAll();
    },
  };
}

// The engine reports a JS exception thrown inside the adapter only as "External error id#N"; the exception itself
// waits in the registry.
function unwrapEngineError(error: unknown, registry: { consumeError(id: number): { error: unknown } | undefined }) {
  const id = /External error id#(\d+)/.exec((error as Error | undefined)?.message ?? "")?.[1];
  const original = id === undefined ? undefined : registry.consumeError(Number(id));
  return original?.error ?? error;
}

/** The engine's view of a migrations folder (it reads nothing from disk itself). */
export async function migrationList(dir: string, migrations: { name: string; sql: string }[]): Promise<MigrationList> {
  let lock: string | null;
  try {
    lock = await readFile(join(dir, "migration_lock.toml"), "utf8");
  } catch {
    lock = null;
  }
  return {
    baseDir: dir,
    lockfile: { path: "migration_lock.toml", content: lock },
    shadowDbInitScript: "",
    migrationDirectories: migrations.map((m) => ({
      path: m.name,
      migrationFile: { path: "migration.sql", content: { tag: "ok", value: m.sql } },
    })),
  };
}

export async function schemaFiles(path: string): Promise<{ path: string; content: string }[]> {
  return [{ path, content: await readFile(path, "utf8") }];
}
