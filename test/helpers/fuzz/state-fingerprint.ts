// A fingerprint of everything the gateway stored: for each table (found in the catalog, so tables added later are
// covered too), its row count and a hash of all its rows. Refused input must leave it unchanged: no row added,
// removed or updated (a read marker moved, a title renamed). Cheap while the tables stay small, as in the fuzz test.
import pg from "pg";

export interface StateFingerprint {
  read(): Promise<Record<string, string>>;
  close(): Promise<void>;
}

export async function stateFingerprint(databaseUrl: string): Promise<StateFingerprint> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const { rows } = await client.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> '_prisma_migrations'
      ORDER BY table_name`,
  );
  const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
  const text = rows
    .map(
      ({ name }) =>
        `(SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM ${quote(name)} t) AS ${quote(name)}`,
    )
    .join(", ");
  return {
    read: async () => (await client.query<Record<string, string>>(`SELECT ${text}`)).rows[0]!,
    close: () => client.end(),
  };
}
