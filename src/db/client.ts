// The Prisma client factory: PostgreSQL through node-postgres when DATABASE_URL is set, otherwise an embedded
// PostgreSQL (PGlite) in DATA_DIR. The same schema, migrations and queries serve both.
import { mkdirSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { PrismaClient } from "./generated/client.js";

export type Db = PrismaClient;

export interface Database {
  prisma: PrismaClient;
  /** "postgres" or "pglite": raw SQL on the hot path is the same for both. */
  kind: "postgres" | "pglite";
  /** Answers when the database answers a trivial query; used by /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl?: string | undefined;
  dataDir: string;
  poolSize?: number;
}

export async function createDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl !== undefined) {
    const adapter = new PrismaPg({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
    });
    const prisma = new PrismaClient({ adapter });
    return {
      prisma,
      kind: "postgres",
      ping: async () => {
        await prisma.$queryRaw`SELECT 1`;
      },
      close: () => prisma.$disconnect(),
    };
  }

  mkdirSync(options.dataDir, { recursive: true });
  const pglite = await PGlite.create(`${options.dataDir}/pgdata`);
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) });
  return {
    prisma,
    kind: "pglite",
    ping: async () => {
      await prisma.$queryRaw`SELECT 1`;
    },
    close: async () => {
      await prisma.$disconnect();
      await pglite.close();
    },
  };
}
