// Message search: full-text over the messages of the conversations the caller is a member of now, newest first,
// paged by an opaque (createdAt, id) cursor. Deleted messages are left out (and are not even in the index); an edit
// replaces `content` in place, so only the current text of a message is ever found.
//
// How text is tokenized lives in the database (migration 20261202100100_message_search): chat_search_text puts
// spaces around every character of a script written without spaces (Han, Kana, Thai, ...) and of Hangul, and the
// `simple` configuration makes lower-cased words of the rest. The query goes through the same function and through
// websearch_to_tsquery, so quoted phrases, `or` and `-word` work as on a search engine; here we only quote each run
// of those characters, so "会议" must appear as written (the phrase '会' <-> '议'), not as two characters anywhere.
//
// Cost: one GIN index scan for the query's words (over every conversation), filtered to the caller's conversations,
// then a sort of the matches by time; so it grows with how many messages contain the words, not with table size.
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

/**
 * The search statement. $1 the query (after quoteUnspacedRuns), $2 the caller, $3 a conversation or null, $4 and $5
 * the cursor's createdAt and id or nulls, $6 the page size plus one. Exported for the EXPLAIN test.
 */
export const SEARCH_SQL = `SELECT ${MESSAGE_COLUMNS}
  FROM messages m
 WHERE m.deleted_at IS NULL
   AND to_tsvector('simple', chat_search_text(m.content)) @@ ${TSQUERY}
   AND m.conversation_id IN (SELECT conversation_id FROM members WHERE user_id = $2::uuid)
   AND ($3::uuid IS NULL OR m.conversation_id = $3::uuid)
   AND ($4::timestamptz IS NULL OR (m.created_at, m.id) < ($4::timestamptz, $5::uuid))
 ORDER BY m.created_at DESC, m.id DESC
 LIMIT $6`;

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
    // From the read replica when there is one: search finds what is indexed there, a moment behind at most.
    const rows = await this.reads.read("search", (db) =>
      db.$queryRawUnsafe<MessageRow[]>(
        SEARCH_SQL,
        query,
        viewerId,
        input.conversationId ?? null,
        after?.time ?? null,
        after?.id ?? null,
        limit + 1,
      ),
    );
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
