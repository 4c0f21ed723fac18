// PUSH_ON_REACTION=on: a reaction by someone else to a user's own message may push to that user. The rules, apart
// from the message pipeline's (push-service.ts runs both through the same queue, providers and retries):
// - only an added reaction, never one's own, never to a system message (no author to tell);
// - one pending decision per (author, message): a burst of reactions collapses into one push after the grace period
//   (PUSH_GRACE_MS), which reports the newest reaction's emoji and how many reactions others have on the message;
// - nothing when the author muted the conversation, left it, or the message was deleted; reactions from users the
//   author blocks (blocks.ts) are neither counted nor shown, and alone they push nothing;
// - without PUSH_INCLUDE_CONTENT the payload names ids, the emoji and the count, never the text or who reacted.
// Every delivery attempt reads the state again, so reactions taken back meanwhile withdraw the push.
import type { Db } from "../db/client.js";
import type { Message } from "@chat-gateway/protocol";
import type { SkipReason } from "./push-metrics.js";
import type { ReactionJob, ReactionNotification } from "./types.js";

/** What a decision about a reaction push reads, in one statement. */
export interface ReactionState {
  muted: boolean;
  deleted: boolean;
  /** The message's change number now: what the notification reports, and its delivery key. */
  changeSeq: number;
  /** Reactions by others the author does not block. */
  count: number;
  /** Reactions by others, blocked or not (to tell "blocked" from "taken back"). */
  countAll: number;
  /** The newest counted reaction. */
  emoji: string | null;
  reactorId: string | null;
}

/** The decision job an applied reaction schedules, or undefined when it never pushes. */
export function reactionJobFor(
  message: Message,
  actorId: string | null,
  reaction: { emoji: string; on: boolean },
): ReactionJob | undefined {
  if (!reaction.on || actorId === null || actorId === message.senderId) return undefined;
  if (message.deletedAt !== null) return undefined;
  return { userId: message.senderId, conversationId: message.conversationId, messageId: message.id };
}

export async function readReactionState(db: Db, job: ReactionJob): Promise<ReactionState | undefined> {
  const rows = await db.$queryRawUnsafe<
    {
      muted: boolean;
      deleted: boolean;
      change_seq: number;
      count: bigint | number;
      count_all: bigint | number;
      emoji: string | null;
      reactor_id: string | null;
    }[]
  >(
    `WITH others AS (
       SELECT r.emoji, r.user_id, r.created_at,
              EXISTS (SELECT 1 FROM blocks bl WHERE bl.blocker_id = $2::uuid AND bl.blocked_id = r.user_id) AS blocked
         FROM message_reactions r
        WHERE r.message_id = $1::uuid AND r.user_id <> $2::uuid)
     SELECT mb.muted, msg.deleted_at IS NOT NULL AS deleted, msg.change_seq,
            (SELECT count(*) FROM others WHERE NOT blocked) AS count,
            (SELECT count(*) FROM others) AS count_all,
            newest.emoji, newest.user_id::text AS reactor_id
       FROM messages msg
       JOIN members mb ON mb.conversation_id = msg.conversation_id AND mb.user_id = $2::uuid
       LEFT JOIN LATERAL (SELECT o.emoji, o.user_id FROM others o WHERE NOT o.blocked
                           ORDER BY o.created_at DESC LIMIT 1) newest ON true
      WHERE msg.id = $1::uuid AND msg.conversation_id = $3::uuid AND msg.sender_id = $2::uuid`,
    job.messageId,
    job.userId,
    job.conversationId,
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  return {
    muted: row.muted,
    deleted: row.deleted,
    changeSeq: Number(row.change_seq),
    count: Number(row.count),
    countAll: Number(row.count_all),
    emoji: row.emoji,
    reactorId: row.reactor_id,
  };
}

/** Why the author gets no push about this message now, or undefined when they do. */
export function reactionSkipReason(state: ReactionState | undefined): SkipReason | undefined {
  if (state === undefined) return "not_member";
  if (state.muted) return "muted";
  if (state.deleted) return "withdrawn";
  if (state.count === 0) return state.countAll > 0 ? "blocked" : "withdrawn";
  return undefined;
}

/** The notification; with PUSH_INCLUDE_CONTENT=on also who reacted last, the title and the message's text. */
export async function reactionNotification(
  db: Db,
  job: ReactionJob,
  state: ReactionState,
  content: { include: boolean; maxChars: number },
): Promise<ReactionNotification> {
  const base: ReactionNotification = {
    type: "reaction",
    conversationId: job.conversationId,
    messageId: job.messageId,
    emoji: state.emoji!,
    count: state.count,
  };
  if (!content.include || state.reactorId === null) return base;
  const rows = await db.$queryRawUnsafe<{ content: string; display_name: string; title: string | null }[]>(
    `SELECT msg.content, u.display_name, c.title
       FROM messages msg JOIN conversations c ON c.id = msg.conversation_id JOIN users u ON u.id = $2::uuid
      WHERE msg.id = $1::uuid`,
    job.messageId,
    state.reactorId,
  );
  const row = rows[0];
  if (row === undefined) return base;
  return {
    ...base,
    sender: { id: state.reactorId, displayName: row.display_name },
    title: row.title,
    body: [...row.content].slice(0, content.maxChars).join(""),
  };
}
