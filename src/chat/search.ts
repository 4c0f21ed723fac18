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
import { badRequest } from "../errors.js";
import type { Message } from "../protocol/types.js";
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
 * The characters searched one by one, the same list as chat_search_text in the migration (a test compares them):
 * Thai, Lao, Myanmar, Hangul Jamo, Khmer, CJK radicals, CJK symbols, Kana, Bopomofo, Hangul compatibility Jamo, CJK
 * ideographs, Hangul syllables, CJK compatibility ideographs, half-width Kana and Hangul, supplementary ideographs.
 */
const UNSPACED_RUN =
  /[\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u2e80-\u2fdf\u3000-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff65-\uffdc\u{20000}-\u{3ffff}]+/gu;

/**
 * The query as websearch_to_tsquery should read it: every run of unspaced-script characters outside quotes becomes a
 * quoted phrase (inside quotes it already is one). An unbalanced quote is closed by websearch_to_tsquery itself.
 */
export function quoteUnspacedRuns(query: string): string {
  return query
    .split('"')
    .map((part, i) => (i % 2 === 1 ? part : part.replace(UNSPACED_RUN, (run) => ` "${run}" `)))
    .join('"');
}

const TSQUERY = `websearch_to_tsquery('simple', chat_search_text($1))`;

export class MessageSearch {
  constructor(
    private readonly db: Db,
    private readonly conversations: Conversations,
  ) {}

  async search(viewerId: string, input: SearchInput): Promise<SearchPage> {
    const limit = input.limit ?? 20;
    const after = input.cursor === undefined ? undefined : decodeKeysetCursor(input.cursor);
    if (input.conversationId !== undefined) await this.conversations.requireMember(viewerId, input.conversationId);
    const query = quoteUnspacedRuns(input.query);
    await this.requireSearchableWords(query);
    const rows = await this.db.$queryRawUnsafe<MessageRow[]>(
      `SELECT ${MESSAGE_COLUMNS}
         FROM messages m
        WHERE m.deleted_at IS NULL
          AND to_tsvector('simple', chat_search_text(m.content)) @@ ${TSQUERY}
          AND m.conversation_id IN (SELECT conversation_id FROM members WHERE user_id = $2::uuid)
          AND ($3::uuid IS NULL OR m.conversation_id = $3::uuid)
          AND ($4::timestamptz IS NULL OR (m.created_at, m.id) < ($4::timestamptz, $5::uuid))
        ORDER BY m.created_at DESC, m.id DESC
        LIMIT $6`,
      query,
      viewerId,
      input.conversationId ?? null,
      after?.time ?? null,
      after?.id ?? null,
      limit + 1,
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
