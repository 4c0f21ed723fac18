// `npm run bench:history-at-size -- [--sizes 1000000,10000000] [--conversations 100000] [--users 50000] [--keep]`
//
// Do history pages, sync, search and the conversation list stay index-bound as `messages` grows? Creates a database
// of its own from our migrations, seeds it (bench/history-seed.ts) to each size in turn, and at each size runs the
// gateway's own code (Messages.history, syncAfterCursors, MessageSearch.search, Conversations.list) against it while
// recording every statement that code sends to PostgreSQL; then runs each recorded statement, with its parameters,
// under EXPLAIN (ANALYZE, BUFFERS) and prints time and buffers touched per statement, per size, with any node that
// reads many rows the slow way (a sequential scan of a big table, a large sort). Plans go to bench/results/.
// The database is dropped at the end unless --keep. Seeding runs its PostgreSQL backend at nice 19 / idle I/O class.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import pg from "pg";
import { createDatabase, type Database } from "../src/db/client.js";
import { applyMigrations } from "../src/db/migrate.js";
import { loadViewsForMembers } from "../src/chat/conversation-views.js";
import { Conversations } from "../src/chat/conversations.js";
import { Messages } from "../src/chat/messages.js";
import type { Notifier } from "../src/chat/ports.js";
import { MessageSearch } from "../src/chat/search.js";
import { syncAfterCursors } from "../src/chat/sync.js";
import type { SyncCursor } from "@chat-gateway/protocol";
import { Reads } from "../src/db/reads.js";
import { growTo, preparePlan, type SeedShape } from "./history-seed.js";

const { values: flags } = parseArgs({
  options: {
    sizes: { type: "string", default: "1000000,10000000" },
    conversations: { type: "string", default: "100000" },
    users: { type: "string", default: "50000" },
    database: { type: "string", default: "chat_growth_bench" },
    admin: { type: "string", default: process.env.BENCH_ADMIN_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres" },
    out: { type: "string" },
    keep: { type: "boolean", default: false },
    "reuse-seed": { type: "boolean", default: false },
    /** Operations to leave out, a regular expression on their names (e.g. "search" on a slow machine). */
    skip: { type: "string" },
  },
});

const sizes = flags.sizes.split(",").map(Number);
if (sizes.some((n) => !Number.isInteger(n) || n < 1000) || sizes.some((n, i) => i > 0 && n <= sizes[i - 1]!))
  throw new Error("--sizes: ascending integers of at least 1000");
const shape: SeedShape = {
  conversations: Number(flags.conversations),
  users: Number(flags.users),
  finalMessages: sizes.at(-1)!,
};
const adminUrl = new URL(flags.admin);
const benchUrl = new URL(flags.admin);
benchUrl.pathname = `/${flags.database}`;
const lines: string[] = [];
const say = (line: string) => {
  lines.push(line);
  console.log(line);
};

// Every statement the code under test sends, with its parameters, while `recording` is on. Prisma's adapter and our
// raw queries both end in pg.Client#query, so this sees exactly what the gateway would run.
let recording: { text: string; values: unknown[] }[] | undefined;
const originalQuery = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  const [first, second] = args;
  if (recording !== undefined) {
    const text = typeof first === "string" ? first : (first as { text: string }).text;
    const values = (Array.isArray(second) ? second : (first as { values?: unknown[] }).values) ?? [];
    if (!/^(BEGIN|COMMIT|ROLLBACK|SELECT 1$|DEALLOCATE)/i.test(text.trim())) recording.push({ text, values });
  }
  return (originalQuery as (...a: unknown[]) => unknown).apply(this, args);
} as typeof pg.Client.prototype.query;

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl.href });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A connection whose backend runs at the lowest CPU and I/O priority: the seed must not starve other work. */
async function lowPriorityClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: benchUrl.href });
  await client.connect();
  const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
  const pid = String(rows[0]!.pid);
  try {
    execFileSync("renice", ["-n", "19", "-p", pid], { stdio: "ignore" });
    execFileSync("ionice", ["-c", "3", "-p", pid], { stdio: "ignore" });
  } catch {
    say("(could not lower the seeding backend's priority: not allowed here)");
  }
  // One core for the seed (no parallel workers), memory enough to sort a batch and build an index without spilling.
  await client.query(`SET max_parallel_workers_per_gather = 0; SET max_parallel_maintenance_workers = 0;
    SET work_mem = '512MB'; SET maintenance_work_mem = '1GB'; SET synchronous_commit = off;
    SET session_replication_role = replica`);
  return client;
}

interface Measured {
  size: number;
  operation: string;
  statement: number;
  sql: string;
  ms: number;
  planningMs: number;
  buffers: number;
  read: number;
  rows: number;
  flags: string[];
  plan: string;
}

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Actual Rows": number;
  "Actual Loops": number;
  "Sort Method"?: string;
  "Shared Hit Blocks": number;
  "Shared Read Blocks": number;
  Plans?: PlanNode[];
}

/** What in a plan grows with the table rather than with the answer: big sequential scans and big sorts. */
function suspicious(node: PlanNode, out: string[] = []): string[] {
  const rows = node["Actual Rows"] * node["Actual Loops"];
  if (node["Node Type"] === "Seq Scan" && rows > 1000) out.push(`Seq Scan ${node["Relation Name"]} ${rows} rows`);
  if (node["Node Type"] === "Sort" && rows > 5000) out.push(`Sort ${rows} rows (${node["Sort Method"]})`);
  if (node["Node Type"] === "Bitmap Heap Scan" && rows > 20000)
    out.push(`Bitmap Heap Scan ${node["Relation Name"]} ${rows} rows`);
  if (node["Node Type"] === "Aggregate" && (node.Plans?.[0]?.["Actual Rows"] ?? 0) > 20000)
    out.push(`Aggregate over ${node.Plans![0]!["Actual Rows"] * node.Plans![0]!["Actual Loops"]} rows`);
  for (const child of node.Plans ?? []) suspicious(child, out);
  return out;
}

async function explain(
  client: pg.Client,
  size: number,
  operation: string,
  statements: { text: string; values: unknown[] }[],
): Promise<Measured[]> {
  const out: Measured[] = [];
  for (const [i, s] of statements.entries()) {
    // An EXPLAIN the code sends (search asks the planner how common the words are) costs its planning only.
    const asked = /^EXPLAIN \(FORMAT JSON\) /.exec(s.text);
    if (asked) {
      const inner = s.text.slice(asked[0].length);
      await client.query(s.text, s.values);
      const json = await client.query<{
        "QUERY PLAN": [
          {
            Plan: PlanNode;
            Planning?: { "Shared Hit Blocks": number; "Shared Read Blocks": number };
            "Planning Time": number;
          },
        ];
      }>(`EXPLAIN (SUMMARY, BUFFERS, FORMAT JSON) ${inner}`, s.values);
      const [top] = json.rows[0]!["QUERY PLAN"];
      out.push({
        size,
        operation,
        statement: i + 1,
        sql: s.text,
        ms: top["Planning Time"],
        planningMs: top["Planning Time"],
        buffers: (top.Planning?.["Shared Hit Blocks"] ?? 0) + (top.Planning?.["Shared Read Blocks"] ?? 0),
        read: top.Planning?.["Shared Read Blocks"] ?? 0,
        rows: 1,
        flags: [],
        plan: "(planned only)",
      });
      continue;
    }
    // Run it once first: the figures are for a warm cache, as a steady server sees its hot pages.
    await client.query(s.text, s.values);
    const json = await client.query<{
      "QUERY PLAN": [{ Plan: PlanNode; "Execution Time": number; "Planning Time": number }];
    }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${s.text}`, s.values);
    const text = await client.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, BUFFERS) ${s.text}`, s.values);
    const [top] = json.rows[0]!["QUERY PLAN"];
    out.push({
      size,
      operation,
      statement: i + 1,
      sql: s.text,
      ms: top["Execution Time"],
      planningMs: top["Planning Time"],
      buffers: top.Plan["Shared Hit Blocks"] + top.Plan["Shared Read Blocks"],
      read: top.Plan["Shared Read Blocks"],
      rows: top.Plan["Actual Rows"],
      flags: suspicious(top.Plan),
      plan: text.rows.map((r) => r["QUERY PLAN"]).join("\n"),
    });
  }
  return out;
}

const silent: Notifier = new Proxy({} as Notifier, { get: () => () => undefined });

/** Runs each operation through the gateway's code, recording its statements, then explains them. */
async function measure(database: Database, client: pg.Client, size: number): Promise<Measured[]> {
  const db = database.prisma;
  const conversations = new Conversations(db, silent, 1000);
  // History needs only the database and the membership check: the writer and markers are never reached.
  const messages = new Messages(db, undefined as never, undefined as never, conversations, silent, 4000);
  const search = new MessageSearch(db, conversations);
  const q = async <T extends pg.QueryResultRow>(sql: string, values: unknown[] = []) =>
    (await client.query<T>(sql, values)).rows;

  const heavy = (await q<{ id: string }>(`SELECT md5('u0')::uuid::text AS id`))[0]!.id;
  // A typical user: the median number of conversations.
  const typical = (
    await q<{ user_id: string; n: number }>(`
      SELECT user_id::text, n FROM (SELECT user_id, count(*) AS n FROM members GROUP BY user_id) x
       ORDER BY n, user_id OFFSET (SELECT count(DISTINCT user_id) / 2 FROM members) LIMIT 1`)
  )[0]!;
  const [busiest] = await q<{ id: string; last_seq: number }>(
    `SELECT id::text, last_seq FROM conversations ORDER BY last_seq DESC LIMIT 1`,
  );
  const [small] = await q<{ id: string; last_seq: number }>(
    `SELECT c.id::text, c.last_seq FROM conversations c JOIN members mb ON mb.conversation_id = c.id
      WHERE mb.user_id = $1::uuid ORDER BY c.last_seq, c.id LIMIT 1`,
    [typical.user_id],
  );
  const [counts] = await q<{ messages: string; heavy_convs: string }>(
    `SELECT (SELECT count(*) FROM messages) AS messages,
            (SELECT count(*) FROM members WHERE user_id = $1::uuid) AS heavy_convs`,
    [heavy],
  );
  say(
    `\n== ${Number(counts!.messages).toLocaleString("en")} messages: busiest conversation ${busiest!.last_seq} ` +
      `messages; heavy user in ${counts!.heavy_convs} conversations, typical user in ${typical.n}`,
  );
  // Words by how many of the 100,000 bodies hold them: a common one (~1 message in 5), a middling one (~1 in 300) and
  // the rarest (~1 in 10,000: each body is shared by size/100,000 messages).
  const words = await q<{ word: string; n: number }>(`
    WITH w AS (SELECT word, ndoc FROM ts_stat($$SELECT to_tsvector('simple', content) FROM bench_texts$$))
    (SELECT word, ndoc AS n FROM w WHERE ndoc <= 20000 ORDER BY ndoc DESC LIMIT 1)
    UNION ALL (SELECT word, ndoc FROM w WHERE ndoc <= 300 ORDER BY ndoc DESC LIMIT 1)
    UNION ALL (SELECT word, ndoc FROM w ORDER BY ndoc, word LIMIT 1)`);
  const [common, middling, rare] = words.map((w) => w.word) as [string, string, string];
  say(`search words (bodies holding them): ${words.map((w) => `${w.word} (${w.n})`).join(", ")}`);

  const deep = Math.max(2, Math.floor(busiest!.last_seq / 10));
  const membership = await q<{ id: string; last_seq: number; change_seq: number }>(
    `SELECT mb.conversation_id::text AS id, c.last_seq, coalesce(k.change_seq, 0) AS change_seq
       FROM members mb JOIN conversations c ON c.id = mb.conversation_id
       LEFT JOIN message_change_counters k ON k.conversation_id = mb.conversation_id WHERE mb.user_id = $1::uuid`,
    [heavy],
  );
  // A device back after a while: one conversation in ten has 1-5 new messages and a change it has not seen.
  const cursors: Record<string, SyncCursor> = {};
  for (const [i, m] of membership.entries()) {
    const behind = i % 10 === 0;
    cursors[m.id] = {
      seq: behind ? Math.max(0, m.last_seq - (1 + (i % 5))) : m.last_seq,
      changes: behind ? Math.max(0, m.change_seq - 1) : m.change_seq,
    };
  }

  const operations: [string, () => Promise<unknown>][] = [
    ["history newest page (busiest conversation)", () => messages.history(heavy, busiest!.id, {})],
    ["history deep page (busiest, before last_seq/10)", () => messages.history(heavy, busiest!.id, { before: deep })],
    [
      "history after a seq (gap fill, busiest)",
      () => messages.history(heavy, busiest!.id, { after: busiest!.last_seq - 30 }),
    ],
    ["history newest page (small conversation)", () => messages.history(typical.user_id, small!.id, {})],
    ["sync (heavy user, a cursor each, 1 in 10 behind)", () => syncAfterCursors(new Reads(db), heavy, cursors)],
    ["sync (typical user, no cursors: a new device)", () => syncAfterCursors(new Reads(db), typical.user_id, {})],
    ["conversation:updated views (busiest, every member)", () => loadViewsForMembers(db, busiest!.id)],
    ["conversation list first page (heavy user)", () => conversations.list(heavy, 50, undefined)],
    ["conversation list first page (typical user)", () => conversations.list(typical.user_id, 50, undefined)],
    [`search rare word (heavy user)`, () => search.search(heavy, { query: rare })],
    [`search middling word (heavy user)`, () => search.search(heavy, { query: middling })],
    [`search common word (heavy user)`, () => search.search(heavy, { query: common })],
    [`search common word (typical user)`, () => search.search(typical.user_id, { query: common })],
    [
      `search common word in one conversation`,
      () => search.search(heavy, { query: common, conversationId: busiest!.id }),
    ],
  ];
  const results: Measured[] = [];
  const skip = flags.skip === undefined ? undefined : new RegExp(flags.skip);
  for (const [name, run] of operations) {
    if (skip?.test(name)) continue;
    recording = [];
    await run();
    const statements = recording;
    recording = undefined;
    results.push(...(await explain(client, size, name, statements)));
  }
  return results;
}

async function dropDatabase(): Promise<void> {
  await adminQuery(`DROP DATABASE IF EXISTS ${flags.database} WITH (FORCE)`);
}

async function main(): Promise<void> {
  const started = new Date();
  say(
    `history-at-size ${started.toISOString()}: ${cpus().length} x ${cpus()[0]?.model ?? "?"}, ` +
      `${Math.round(totalmem() / 2 ** 30)} GiB, sizes ${sizes.join(" -> ")}`,
  );
  if (!flags["reuse-seed"]) {
    await dropDatabase();
    await adminQuery(`CREATE DATABASE ${flags.database}`);
  }
  const database = await createDatabase({ databaseUrl: benchUrl.href, dataDir: "./data", poolSize: 4 });
  const seeder = await lowPriorityClient();
  const probe = new pg.Client({ connectionString: benchUrl.href });
  await probe.connect();
  const all: Measured[] = [];
  try {
    if (!flags["reuse-seed"]) {
      await applyMigrations(database);
      await seeder.query(`CREATE EXTENSION IF NOT EXISTS pageinspect`);
      await preparePlan(seeder, shape, say);
    }
    for (const size of sizes) {
      const seeded = Number((await seeder.query(`SELECT count(*) AS n FROM messages`)).rows[0].n);
      if (seeded < size * 0.9) {
        const t0 = Date.now();
        // Bulk load: drop the secondary indexes of messages, insert, build them again (the primary key stays, the
        // tables referencing it need it). Building an index once is several times faster than growing it row by row.
        const { rows: indexes } = await seeder.query<{ indexname: string; indexdef: string }>(
          `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'messages' AND indexname <> 'messages_pkey'`,
        );
        for (const ix of indexes) await seeder.query(`DROP INDEX "${ix.indexname}"`);
        await growTo(seeder, shape, size, say);
        for (const ix of indexes) {
          const t = Date.now();
          await seeder.query(ix.indexdef);
          say(`  index ${ix.indexname}: ${((Date.now() - t) / 1000).toFixed(0)} s`);
        }
        await seeder.query(`VACUUM (ANALYZE) messages, members, conversations, message_reactions, message_edits,
                            message_change_counters, users`);
        say(`seeded to ${size.toLocaleString("en")} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      }
      say(await sizesReport(probe));
      all.push(...(await measure(database, probe, size)));
      report(all);
      await vacuumAfterChurn(seeder);
    }
  } finally {
    await seeder.end();
    await probe.end();
    await database.close();
    if (!flags.keep) await dropDatabase();
  }
  const out = flags.out ?? `bench/results/${started.toISOString().slice(0, 10)}-history-at-size.txt`;
  mkdirSync("bench/results", { recursive: true });
  const plans = all.map(
    (m) => `--- ${m.size.toLocaleString("en")} | ${m.operation} | statement ${m.statement}\n${m.sql}\n\n${m.plan}\n`,
  );
  writeFileSync(out, `${lines.join("\n")}\n\n# Plans\n\n${plans.join("\n")}`);
  console.log(`\nplans and figures written to ${out}`);
}

/**
 * What upkeep costs at this size: edit 1% of the messages (spread over the whole table, as edits, deletions and
 * reactions land), then time the VACUUM that cleans up after them. A vacuum scans every index of the table in full
 * whatever the number of dead rows, so its time grows with the table: the figure partitioning would divide.
 */
async function vacuumAfterChurn(client: pg.Client): Promise<void> {
  let t = Date.now();
  const updated = await client.query(
    `UPDATE messages SET content = content || ' (edited)', edited_at = created_at + interval '1 minute'
      WHERE seq % 100 = 37`,
  );
  const updateS = (Date.now() - t) / 1000;
  t = Date.now();
  await client.query(`SET session_replication_role = origin`);
  await client.query(`VACUUM messages`);
  const vacuumS = (Date.now() - t) / 1000;
  await client.query(`SET session_replication_role = replica`);
  say(
    `upkeep: ${updated.rowCount} messages edited (seq % 100 = 37) in ${updateS.toFixed(0)} s; ` +
      `VACUUM messages then took ${vacuumS.toFixed(1)} s (nice 19, one core)`,
  );
}

async function sizesReport(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ name: string; size: string }>(`
    SELECT c.relname AS name, pg_size_pretty(pg_relation_size(c.oid)) AS size
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND (c.relname IN ('messages', 'members', 'message_reactions')
        OR c.relname LIKE 'messages\\_%' AND c.relkind = 'i')
     ORDER BY pg_relation_size(c.oid) DESC`);
  const { rows: depth } = await client.query<{ name: string; level: number }>(`
    SELECT indexrelid::regclass::text AS name, (bt_metap(indexrelid::regclass::text)).level
      FROM pg_index WHERE indrelid = 'messages'::regclass AND indexrelid::regclass::text NOT IN ('messages_search_idx', 'messages_search_vector_idx')`);
  return (
    `sizes: ${rows.map((r) => `${r.name} ${r.size}`).join(", ")}\n` +
    `b-tree levels below the root: ${depth.map((d) => `${d.name} ${d.level}`).join(", ")}`
  );
}

/** One row per operation: statements, total ms and buffers at each size, and what looked table-bound. */
function report(all: Measured[]): void {
  const measuredSizes = [...new Set(all.map((m) => m.size))];
  const operations = [...new Set(all.map((m) => m.operation))];
  const head = `| operation | statements | ${measuredSizes.map((s) => `ms @${short(s)} | buffers @${short(s)}`).join(" | ")} | not index-bound |`;
  const rule = `|${"---|".repeat(2 + measuredSizes.length * 2 + 1)}`;
  const rows = operations.map((op) => {
    const cells = measuredSizes.map((size) => {
      const ms = all.filter((m) => m.operation === op && m.size === size);
      if (ms.length === 0) return "– | –";
      const time = ms.reduce((a, m) => a + m.ms, 0);
      const buffers = ms.reduce((a, m) => a + m.buffers, 0);
      return `${time.toFixed(2)} | ${buffers}`;
    });
    const last = all.filter((m) => m.operation === op && m.size === measuredSizes.at(-1));
    const flagged = [...new Set(last.flatMap((m) => m.flags.map((f) => `#${m.statement}: ${f}`)))].join("; ");
    return `| ${op} | ${last.length} | ${cells.join(" | ")} | ${flagged || "–"} |`;
  });
  const detail = all
    .filter((m) => m.size === measuredSizes.at(-1))
    .map(
      (m) =>
        `  ${m.operation} #${m.statement}: ${m.ms.toFixed(2)} ms, ${m.buffers} buffers (${m.read} read), ${m.rows} rows; ${m.sql.replace(/\s+/g, " ").slice(0, 110)}`,
    );
  say(
    `\n${head}\n${rule}\n${rows.join("\n")}\n\nper statement at ${short(measuredSizes.at(-1)!)}:\n${detail.join("\n")}`,
  );
}

const short = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n));

await main();
