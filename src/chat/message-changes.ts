// Messages that change after they were sent: edits, deletions (tombstones) and reactions. The one domain code behind
// the socket events, the HTTP routes and (deleteMessage) the operator API.
//
// Ordering: every change takes the next number of its conversation's change counter (message_change_counters) and
// stamps it on the message (messages.change_seq), in one transaction that first locks the message row and then the
// counter row, always in that order (so two changes never deadlock). The counter row stays locked until commit, so
// change numbers become visible in increasing order, exactly like seq: a reader that sees change k already sees every
// change below k. That is what lets sync hand out "changes after k" with a plain cursor (sync.ts). The counter lives
// in its own table, not on the conversations row, so a reaction storm never waits for the send hot path's lock.
//
// Idempotency: the operations are naturally idempotent, so a retried change (a lost ack) is applied once: an edit to
// the content the message already has, a reaction already there (or already gone), a second deletion change nothing,
// take no change number and fan out nothing; they answer the current message.
import { randomUUID } from "node:crypto";
import type { Db } from "../db/client.js";
import { badRequest, conflict, forbidden, notFound, payloadTooLarge } from "../errors.js";
import type { Message } from "../protocol/types.js";
import { MESSAGE_COLUMNS, type MessageRow, toMessage } from "./message-rows.js";
import { isUuid, type Notifier } from "./ports.js";
import { isSingleEmoji } from "./emoji.js";

/** At most this many different emoji on one message. */
export const MAX_DISTINCT_REACTIONS = 20;

export interface MessageChangeDeps {
  db: Db;
  notifier: Notifier;
  /** How long after sending the sender may edit, in seconds (MESSAGE_EDIT_WINDOW_S). */
  editWindowS: number;
  /** Longest content, in code points (MESSAGE_MAX_CHARS). */
  maxChars: number;
}

export interface MessageRef {
  conversationId: string;
  messageId: string;
}

/** Told after commit about each applied change (not about no-op repeats). */
export type MessageChangedListener = (message: Message, kind: "edit" | "delete" | "react", actorId: string | null) => void;

type Tx = Parameters<Parameters<Db["$transaction"]>[0]>[0];

/** The locked message as a change sees it, with the actor's role in its conversation (null: not a member). */
interface LockedMessage {
  sender_id: string;
  content: string;
  deleted: boolean;
  age_s: number;
  conversation_type: "direct" | "group";
  actor_role: "admin" | "member" | null;
}

/** What one change did: the message after it, and whether anything changed (false: a no-op repeat). */
interface Outcome {
  message: Message;
  changed: boolean;
  members: string[];
}

// Transactions here are a handful of short statements; waiting longer than this for a pooled connection or a lock
// means the database is overloaded, answered `unavailable` by the error mapping.
const TX_OPTIONS = { maxWait: 5_000, timeout: 10_000 };

export class MessageChanges {
  private readonly listeners: MessageChangedListener[] = [];

  constructor(private readonly deps: MessageChangeDeps) {}

  onChanged(listener: MessageChangedListener): void {
    this.listeners.push(listener);
  }

  /** Replaces the content. Only the sender, within the edit window, of a message not deleted. */
  async edit(actorId: string, ref: MessageRef, content: string): Promise<Message> {
    const length = [...content].length;
    if (length > this.deps.maxChars) {
      throw payloadTooLarge(`content is longer than ${this.deps.maxChars} characters`, {
        field: "content",
        maxChars: this.deps.maxChars,
        length,
      });
    }
    return this.apply(ref, actorId, "edit", async (tx, locked) => {
      if (locked.actor_role === null) throw notFound("message");
      if (locked.sender_id !== actorId) throw forbidden("only the sender may edit a message");
      if (locked.deleted) throw conflict("the message is deleted");
      if (locked.age_s > this.deps.editWindowS) throw forbidden("the message is too old to edit");
      if (locked.content === content) return undefined;
      const changeSeq = await nextChangeSeq(tx, ref.conversationId);
      await tx.$executeRawUnsafe(
        `INSERT INTO message_edits (id, message_id, editor_id, previous_content) VALUES ($1::uuid, $2::uuid, $3::uuid, $4)`,
        randomUUID(),
        ref.messageId,
        actorId,
        locked.content,
      );
      await tx.$executeRawUnsafe(
        `UPDATE messages SET content = $2, edited_at = now(), change_seq = $3 WHERE id = $1::uuid`,
        ref.messageId,
        content,
        changeSeq,
      );
      return changeSeq;
    });
  }

  /** Tombstones the message: the sender, or an admin of the group (see deleteMessage). */
  delete(actorId: string, ref: MessageRef): Promise<Message> {
    return deleteMessage(this, { ...ref, actorId, asModerator: false });
  }

  /** Adds (`on`) or removes the caller's reaction with one emoji. */
  async react(actorId: string, ref: MessageRef & { emoji: string; on: boolean }): Promise<Message> {
    if (!isSingleEmoji(ref.emoji)) throw badRequest("emoji must be one emoji", [{ field: "emoji", problem: "not one emoji" }]);
    return this.apply(ref, actorId, "react", async (tx, locked) => {
      if (locked.actor_role === null) throw notFound("message");
      if (locked.deleted) throw conflict("the message is deleted");
      if (ref.on) {
        // Under the message's row lock this statement sees every reaction committed before it: the cap is exact.
        const [state] = await tx.$queryRawUnsafe<{ kinds: number; has_emoji: boolean; mine: boolean }[]>(
          `SELECT count(DISTINCT emoji)::int AS kinds, coalesce(bool_or(emoji = $2), false) AS has_emoji,
                  coalesce(bool_or(emoji = $2 AND user_id = $3::uuid), false) AS mine
             FROM message_reactions WHERE message_id = $1::uuid`,
          ref.messageId,
          ref.emoji,
          actorId,
        );
        if (state!.mine) return undefined;
        if (!state!.has_emoji && state!.kinds >= MAX_DISTINCT_REACTIONS) {
          throw conflict(`a message has at most ${MAX_DISTINCT_REACTIONS} different reactions`);
        }
        await tx.$executeRawUnsafe(
          `INSERT INTO message_reactions (message_id, user_id, emoji) VALUES ($1::uuid, $2::uuid, $3)`,
          ref.messageId,
          actorId,
          ref.emoji,
        );
      } else {
        const removed = await tx.$executeRawUnsafe(
          `DELETE FROM message_reactions WHERE message_id = $1::uuid AND user_id = $2::uuid AND emoji = $3`,
          ref.messageId,
          actorId,
          ref.emoji,
        );
        if (removed === 0) return undefined;
      }
      const changeSeq = await nextChangeSeq(tx, ref.conversationId);
      await tx.$executeRawUnsafe(`UPDATE messages SET change_seq = $2 WHERE id = $1::uuid`, ref.messageId, changeSeq);
      return changeSeq;
    });
  }

  /**
   * Locks the message, lets `change` decide and write (answering its change number, or undefined for a no-op), then
   * reads the message back and, after commit, fans it out as `message:updated` to every member's devices.
   * @internal also used by deleteMessage
   */
  async apply(
    ref: MessageRef,
    actorId: string | null,
    kind: "edit" | "delete" | "react",
    change: (tx: Tx, locked: LockedMessage) => Promise<number | undefined>,
  ): Promise<Message> {
    if (!isUuid(ref.conversationId)) throw notFound();
    if (!isUuid(ref.messageId)) throw notFound("message");
    const outcome = await this.deps.db.$transaction(async (tx): Promise<Outcome> => {
      const [locked] = await tx.$queryRawUnsafe<LockedMessage[]>(
        `SELECT m.sender_id::text, m.content, m.deleted_at IS NOT NULL AS deleted,
                extract(epoch FROM now() - m.created_at)::float8 AS age_s,
                c.type::text AS conversation_type, mb.role::text AS actor_role
           FROM messages m
           JOIN conversations c ON c.id = m.conversation_id
           LEFT JOIN members mb ON mb.conversation_id = m.conversation_id AND mb.user_id = $3::uuid
          WHERE m.id = $1::uuid AND m.conversation_id = $2::uuid
          FOR NO KEY UPDATE OF m`,
        ref.messageId,
        ref.conversationId,
        actorId,
      );
      // A non-member learns nothing: the same answer whether or not the conversation or the message exists.
      if (locked === undefined) throw notFound("message");
      const changeSeq = await change(tx, locked);
      const [row] = await tx.$queryRawUnsafe<MessageRow[]>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.id = $1::uuid`,
        ref.messageId,
      );
      const members =
        changeSeq === undefined
          ? []
          : (
              await tx.$queryRawUnsafe<{ user_id: string }[]>(
                `SELECT user_id::text FROM members WHERE conversation_id = $1::uuid`,
                ref.conversationId,
              )
            ).map((m) => m.user_id);
      return { message: toMessage(row!), changed: changeSeq !== undefined, members };
    }, TX_OPTIONS);
    if (outcome.changed) {
      this.deps.notifier.toUsers(outcome.members, "message:updated", outcome.message);
      for (const listener of this.listeners) listener(outcome.message, kind, actorId);
    }
    return outcome.message;
  }
}

/**
 * Tombstones a message: content emptied, reactions removed, `deletedAt` set; it keeps its seq and id. Answers the
 * tombstone; deleting a deleted message answers it again and changes nothing. Fans out `message:updated` to every
 * member's devices, like every change.
 *
 * - `actorId` set, `asModerator` false: the sender, or an admin of the group; a non-member gets `not_found`, another
 *   member `forbidden`.
 * - `asModerator` true: an operator (the admin API) may delete any message; `actorId` may be null (recorded nowhere
 *   but the listeners).
 *
 * The earlier contents kept in message_edits stay there for moderation; the message's own text is overwritten.
 */
export async function deleteMessage(
  changes: MessageChanges,
  request: MessageRef & { actorId: string | null; asModerator: boolean },
): Promise<Message> {
  const { actorId, asModerator } = request;
  const ref = { conversationId: request.conversationId, messageId: request.messageId };
  return changes.apply(ref, actorId, "delete", async (tx, locked) => {
    if (!asModerator) {
      if (locked.actor_role === null) throw notFound("message");
      const isAdmin = locked.conversation_type === "group" && locked.actor_role === "admin";
      if (locked.sender_id !== actorId && !isAdmin) throw forbidden("only the sender or a group admin may delete it");
    }
    if (locked.deleted) return undefined;
    const changeSeq = await nextChangeSeq(tx, request.conversationId);
    await tx.$executeRawUnsafe(`DELETE FROM message_reactions WHERE message_id = $1::uuid`, request.messageId);
    await tx.$executeRawUnsafe(
      `UPDATE messages SET content = '', deleted_at = now(), change_seq = $2 WHERE id = $1::uuid`,
      request.messageId,
      changeSeq,
    );
    return changeSeq;
  });
}

/** The conversation's next change number; its counter row stays locked until the transaction commits. */
async function nextChangeSeq(tx: Tx, conversationId: string): Promise<number> {
  const [row] = await tx.$queryRawUnsafe<{ change_seq: number }[]>(
    `INSERT INTO message_change_counters (conversation_id, change_seq) VALUES ($1::uuid, 1)
     ON CONFLICT (conversation_id) DO UPDATE SET change_seq = message_change_counters.change_seq + 1
     RETURNING change_seq`,
    conversationId,
  );
  return Number(row!.change_seq);
}
