// Message search: full-text over the messages of the conversations the caller is a member of now, newest first,
// paged by an opaque (createdAt, id) cursor. Deleted messages are left out (and are not even in the index); an edit
// replaces `content` in place, so only the current text of a message is ever found.
//
// How text is tokenized lives in the database (migration 20261202100100_message_search): chat_search_text puts
// spaces around every character of a script written without spaces (Han, Kana, Thai, ...) and of Hangul, and the
// `simple` configuration makes lower-cased words of the rest; the result is stored in messages.search_vector, a
// generated column (migration 20261202120000_message_search_vector) with a GIN index. The query goes through the same
// function and through websearch_to_tsquery, so quoted phrases, `or` and `-word` work as on a search engine; here we
// only quote each run of those characters, so "会议" must appear as written (the phrase '会' <-> '议'), not as two
// characters anywhere.
//
// Cost: three ways to answer, chosen per query on the database's estimates (estimateSearchPlan):
// - collect: every match in the caller's conversations through the GIN index, then the newest. Grows with the
//   matches: a word in one message of five would be 2M rows at 10M messages. For rare words.
// - walk each conversation: each of the caller's conversations newest-first, a page of matches at most from each.
//   For a common word and a caller in a few conversations (or one conversation), however large they are.
// - walk the table: the newest messages of the whole table backwards on (created_at, id), keeping the caller's
//   matches, stopping at a page of them. For a common word and a caller in many conversations. It reads at most a
//   budget of rows; when that is not enough (the estimates were off), one of the other two answers instead, so the
//   answer is the same.
import type { Db } from "../db/client.js";
import { Reads } from "../db/reads.js";
import { badRequest } from "../errors.js";
import type { Message } from "@chat-gateway/protocol";
import type { Conversations } from "./conversations.js";
import { decodeKeysetCursor, encodeKeysetCursor } from "./keyset-cursor.js";
import { MESSAGE_COLUMNS, type MessageRow, toMessage } from "./message-rows.js";

export interface SearchInput {
  query: string;
  conversationId?: string | undefined;
  /** @default 20 */
  limit?: number | undefined;
  cursor?: string | undefined;
}

export interface SearchPage {
  messages: Message[];
  nextCursor: string | null;
}

/**
 * The code point ranges searched one character at a time, the same list as chat_search_text in the migration (a test
 * compares them): Thai and Lao, Myanmar, Hangul Jamo, Khmer, CJK radicals, CJK symbols with Kana, Bopomofo, Hangul
 * compatibility Jamo and the ideographs, Hangul Jamo extended-A, Hangul syllables, CJK compatibility ideographs,
 * half-width Kana and Hangul, supplementary ideographs.
 */
export const UNSPACED_RANGES: readonly (readonly [number, number])[] = [
  [0x0e00, 0x0eff],
  [0x1000, 0x109f],
  [0x1100, 0x11ff],
  [0x1780, 0x17ff],
  [0x2e80, 0x2fdf],
  [0x3000, 0x9fff],
  [0xa960, 0xa97f],
  [0xac00, 0xd7ff],
  [0xf900, 0xfaff],
  [0xff65, 0xffdc],
  [0x20000, 0x3ffff],
];

const hex = (cp: number) => `\\u{${cp.toString(16)}}`;
const UNSPACED_CLASS = `[${UNSPACED_RANGES.map(([lo, hi]) => `${hex(lo)}-${hex(hi)}`).join("")}]`;
/** A run of those characters, with the `-` that excludes it when one starts the word. */
const UNSPACED_RUN = new RegExp(`(?:(?<=^|\\s)(-))?(${UNSPACED_CLASS}+)`, "gu");

/**
 * The query as websearch_to_tsquery should read it: every run of unspaced-script characters outside quotes becomes a
 * quoted phrase (inside quotes it already is one). An unbalanced quote is closed by websearch_to_tsquery itself.
 */
export function quoteUnspacedRuns(query: string): string {
  return query
    .split('"')
    .map((part, i) =>
      i % 2 === 1
        ? part
        : part.replace(UNSPACED_RUN, (_, sign: string | undefined, run: string) => ` ${sign ?? ""}"${run}" `),
    )
    .join('"');
}

const TSQUERY = `websearch_to_tsquery('simple', chat_search_text($1))`;

/** Parameters of the search statements: $1 the query (after quoteUnspacedRuns), $2 the caller, $3 the page size plus one. */
interface Filters {
  conversation: boolean;
  cursor: boolean;
}

/** The conditions on a message besides the words: $4 a conversation, then the cursor's createdAt and id. */
function scope({ conversation, cursor }: Filters): { member: string; after: string } {
  const at = conversation ? 5 : 4;
  return {
    member:
      `m.conversation_id IN (SELECT conversation_id FROM members WHERE user_id = $2::uuid)` +
      (conversation ? ` AND m.conversation_id = $4::uuid` : ""),
    after: cursor ? `(m.created_at, m.id) < ($${at}::timestamptz, $${at + 1}::uuid)` : "TRUE",
  };
}

/**
 * Every match in the caller's conversations, then the newest: the words' GIN index (rare words) or the caller's
 * conversations one by one (a caller with few messages), whichever the planner finds cheaper; MATERIALIZED keeps it
 * from walking the whole table in time order for a word it thinks common. Exported for the EXPLAIN test.
 */
export function collectSql(filters: Filters): string {
  const { member, after } = scope(filters);
  return `WITH hits AS MATERIALIZED (
  SELECT m.id FROM messages m
   WHERE m.deleted_at IS NULL AND m.search_vector @@ ${TSQUERY} AND ${member} AND ${after})
SELECT ${MESSAGE_COLUMNS}
  FROM hits h JOIN messages m ON m.id = h.id
 ORDER BY m.created_at DESC, m.id DESC
 LIMIT $3`;
}

/**
 * Each of the caller's conversations walked newest-first on (conversation_id, created_at, id), a page of matches at
 * most from each, then the newest of those: for a common word and a caller in a few conversations, however large.
 * Exact, no budget: a conversation's walk ends at a page of matches or at its first message. Exported for tests.
 */
export function eachConversationSql(filters: Filters): string {
  const { after } = scope(filters);
  return `SELECT ${MESSAGE_COLUMNS}
  FROM (SELECT w.id, w.created_at
          FROM members mb
         CROSS JOIN LATERAL (
               SELECT m.id, m.created_at FROM messages m
                WHERE m.conversation_id = mb.conversation_id AND m.deleted_at IS NULL
                  AND m.search_vector @@ ${TSQUERY} AND ${after}
                ORDER BY m.created_at DESC, m.id DESC
                LIMIT $3) w
         WHERE mb.user_id = $2::uuid${filters.conversation ? " AND mb.conversation_id = $4::uuid" : ""}
         ORDER BY w.created_at DESC, w.id DESC
         LIMIT $3) h
  JOIN messages m ON m.id = h.id
 ORDER BY m.created_at DESC, m.id DESC
 LIMIT $3`;
}

/**
 * The newest messages of the whole table, walked backwards on (created_at, id) and never more than the budget (the
 * last parameter), kept when they are the caller's and match: for a common word, a page of matches comes early and
 * the walk stops there. Fewer matches than asked means "not within the budget", not "no more": the caller then
 * collects instead. Exported for the EXPLAIN test.
 */
export function walkSql(filters: Filters): string {
  const { member, after } = scope(filters);
  const budget = 4 + (filters.conversation ? 1 : 0) + (filters.cursor ? 2 : 0);
  return `SELECT ${MESSAGE_COLUMNS}
  FROM (SELECT m.id, m.conversation_id, m.created_at, m.search_vector FROM messages m
         WHERE m.deleted_at IS NULL AND ${after}
         ORDER BY m.created_at DESC, m.id DESC
         LIMIT $${budget}) w
  JOIN messages m ON m.id = w.id
 WHERE w.search_vector @@ ${TSQUERY} AND ${member.replaceAll("m.conversation_id", "w.conversation_id")}
 ORDER BY w.created_at DESC, w.id DESC
 LIMIT $3`;
}

/** The walk is tried only when it is expected to stop this many times sooner than collecting would. */
const WALK_ADVANTAGE = 2;
/**
 * Its budget: this many times the rows it is expected to need, so an estimate several times off still finds a page
 * (the newest messages need not be spread over the conversations as the whole table is). Walking is cheap per row:
 * the b-tree in order, then the row (measured: ~1 ms per 1,000 rows, bench/RESULTS.md).
 */
const WALK_SLACK = 16;
/** And never more rows than this, whatever the estimates say. */
const WALK_MAX_ROWS = 100_000;

/**
 * The figures the choice between walking and collecting rests on, all estimates: messages not deleted, how many of
 * them hold the words (the planner's estimate from the search_vector statistics), and how many are in the
 * conversations searched (their sequence numbers, tombstones included).
 */
const ESTIMATE_SQL = `EXPLAIN (FORMAT JSON) SELECT 1 FROM messages m WHERE m.deleted_at IS NULL AND m.search_vector @@ ${TSQUERY}`;
const TOTAL_SQL = `SELECT reltuples::float8 AS total FROM pg_class WHERE oid = 'messages'::regclass`;
const MINE_SQL = `SELECT coalesce(sum(n), 0)::float8 AS mine, coalesce(sum(least(n, $3::float8)), 0)::float8 AS each
  FROM (SELECT (SELECT c.last_seq FROM conversations c WHERE c.id = mb.conversation_id) AS n
          FROM members mb
         WHERE mb.user_id = $1::uuid AND ($2::uuid IS NULL OR mb.conversation_id = $2::uuid)) x`;

/**
 * How many newest messages the walk may read, or null to collect: the walk needs about (page / (share of messages
 * matching × share of messages the caller's)) rows; collecting reads the matches or the caller's messages, whichever
 * is fewer. Exported for the unit test.
 */
export function walkBudget(page: number, total: number, matching: number, mine: number): number | null {
  if (!(total > 0) || !(matching > 0) || !(mine > 0)) return null;
  const needed = page / ((Math.min(matching, total) / total) * (Math.min(mine, total) / total));
  if (needed * WALK_ADVANTAGE > Math.min(matching, mine, WALK_MAX_ROWS)) return null;
  return Math.min(Math.ceil(needed * WALK_SLACK), WALK_MAX_ROWS);
}

export interface SearchPlan {
  /** Walk the newest messages of the whole table first, reading at most this many; null: do not. */
  walk: number | null;
  /** Then (or else) walk each of the caller's conversations newest-first rather than collect every match. */
  eachConversation: boolean;
}

/** The choice on the database's estimates for this query and caller. Exported for the EXPLAIN test. */
export async function estimateSearchPlan(
  db: Db,
  query: string,
  viewerId: string,
  conversationId: string | undefined,
  page: number,
): Promise<SearchPlan> {
  const [plan] = await db.$queryRawUnsafe<{ "QUERY PLAN": unknown }[]>(ESTIMATE_SQL, query);
  const raw = plan?.["QUERY PLAN"];
  const parsed = (typeof raw === "string" ? JSON.parse(raw) : raw) as [{ Plan: { "Plan Rows": number } }] | undefined;
  const matching = parsed?.[0]?.Plan["Plan Rows"] ?? 0;
  const [sized] = await db.$queryRawUnsafe<{ total: number }[]>(TOTAL_SQL);
  const total = sized?.total ?? 0;
  if (!(total > 0) || !(matching > 0)) return { walk: null, eachConversation: false };
  // Rows a conversation is walked for at most: enough for a page when the words are spread evenly.
  const perConversation = Math.ceil(page / (Math.min(matching, total) / total));
  // A word too rare to walk for even if every message were the caller's: no need to count theirs.
  if (walkBudget(page, total, matching, total) === null && perConversation >= matching) {
    return { walk: null, eachConversation: false };
  }
  const [share] = await db.$queryRawUnsafe<{ mine: number; each: number }[]>(
    MINE_SQL,
    viewerId,
    conversationId ?? null,
    perConversation,
  );
  const mine = share?.mine ?? 0;
  const each = share?.each ?? 0;
  const walk = walkBudget(page, total, matching, mine);
  const eachConversation = each < Math.min(matching, mine);
  // Walking the table expects walk / WALK_SLACK rows; walking each conversation at most `each`: the fewer first.
  if (walk !== null && eachConversation && each <= walk / WALK_SLACK) return { walk: null, eachConversation };
  return { walk, eachConversation };
}

export class MessageSearch {
  constructor(
    private readonly db: Db,
    private readonly conversations: Conversations,
    private readonly reads: Reads = new Reads(db),
  ) {}

  async search(viewerId: string, input: SearchInput): Promise<SearchPage> {
    const limit = input.limit ?? 20;
    const after = input.cursor === undefined ? undefined : decodeKeysetCursor(input.cursor);
    if (input.conversationId !== undefined) await this.conversations.requireMember(viewerId, input.conversationId);
    const query = quoteUnspacedRuns(input.query);
    await this.requireSearchableWords(query);
    const filters: Filters = { conversation: input.conversationId !== undefined, cursor: after !== undefined };
    const params: unknown[] = [
      query,
      viewerId,
      limit + 1,
      ...(input.conversationId !== undefined ? [input.conversationId] : []),
      ...(after !== undefined ? [after.time, after.id] : []),
    ];
    // From the read replica when there is one: search finds what is indexed there, a moment behind at most.
    const rows = await this.reads.read("search", async (db) => {
      const plan = await estimateSearchPlan(db, query, viewerId, input.conversationId, limit + 1);
      if (plan.walk !== null) {
        const walked = await db.$queryRawUnsafe<MessageRow[]>(walkSql(filters), ...params, plan.walk);
        if (walked.length > limit) return walked;
      }
      return db.$queryRawUnsafe<MessageRow[]>(
        plan.eachConversation ? eachConversationSql(filters) : collectSql(filters),
        ...params,
      );
    });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      messages: page.map(toMessage),
      nextCursor: rows.length > limit && last ? encodeKeysetCursor(new Date(last.created_at), last.id) : null,
    };
  }

  /**
   * A query needs at least one word to look up in the index: one of only punctuation has none, and one of only
   * exclusions (`-word`) would match nearly every message and read them all. Both are `bad_request`.
   */
  private async requireSearchableWords(query: string): Promise<void> {
    const [row] = await this.db.$queryRawUnsafe<{ tree: string }[]>(`SELECT querytree(${TSQUERY}) AS tree`, query);
    if (row === undefined || row.tree === "" || row.tree === "T") {
      throw badRequest("the query has no word to search for", [
        { field: "query", problem: "needs at least one word that is not excluded" },
      ]);
    }
  }
}
