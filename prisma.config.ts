import { defineConfig } from "prisma/config";

// Used by the Prisma CLI only (generate, and `prisma migrate deploy` where the CLI can reach its engine).
// The gateway itself applies prisma/migrations with src/db/migrate.ts, offline.
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/test" },
});
