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
import { type Database, inTransaction, type Sql } from "../db/client.js";
import { badRequest, conflict, forbidden, notFound, payloadTooLarge } from "../errors.js";
import type { Message } from "@chat-gateway/protocol";
import { MESSAGE_COLUMNS, type MessageRow, toMessage } from "./message-rows.js";
import { isUuid } from "./ports.js";
import { isSingleEmoji } from "./emoji.js";
import type { ChangeGate } from "./change-gate.js";
import type { ChangeAnnouncer } from "./change-announcer.js";

/** A message as a change leaves it, with the members to tell (read under the change's lock). */
type ChangedRow = MessageRow & { member_ids: string[] | null };
const MESSAGE_WITH_MEMBERS = `SELECT ${MESSAGE_COLUMNS},
  (SELECT array_agg(user_id::text) FROM members WHERE conversation_id = m.conversation_id) AS member_ids
  FROM messages m WHERE m.id = $1::uuid`;

/** At most this many different emoji on one message. */
export const MAX_DISTINCT_REACTIONS = 20;

export interface MessageChangeDeps {
  database: Database;
  /** Sends `message:updated` after each change, a message's reactions coalesced per window (change-announcer.ts). */
  announcer: ChangeAnnouncer;
  /** How long after sending the sender may edit, in seconds (MESSAGE_EDIT_WINDOW_S). */
  editWindowS: number;
  /** Longest content, in code points (MESSAGE_MAX_CHARS). */
  maxChars: number;
  /** Keeps changes from holding the pool's connections while they wait for a row lock (change-gate.ts). */
  gate?: ChangeGate;
}

export interface MessageRef {
  conversationId: string;
  messageId: string;
}

/** Told after commit about each applied change (not about no-op repeats); `reaction` is set for reactions. */
export type MessageChangedListener = (
  message: Message,
  kind: "edit" | "delete" | "react",
  actorId: string | null,
  reaction?: { emoji: string; on: boolean },
) => void;

/** The locked message as a change sees it, with the actor's role in its conversation (null: not a member). */
interface LockedMessage {
  sender_id: string;
  content: string;
  deleted: boolean;
  age_s: number;
  conversation_type: "direct" | "group";
  actor_role: "admin" | "member" | null;
}

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
    return this.apply(ref, actorId, "edit", async (sql, locked) => {
      if (locked.actor_role === null) throw notFound("message");
      if (locked.sender_id !== actorId) throw forbidden("only the sender may edit a message");
      if (locked.deleted) throw conflict("the message is deleted");
      if (locked.age_s > this.deps.editWindowS) throw forbidden("the message is too old to edit");
      if (locked.content === content) return undefined;
      const [row] = await sql<{ change_seq: number }>(
        `WITH ${NEXT_CHANGE_SEQ},
         history AS (INSERT INTO message_edits (id, message_id, editor_id, previous_content)
                     VALUES ($3::uuid, $1::uuid, $4::uuid, $5)),
         updated AS (UPDATE messages SET content = $6, edited_at = now(), change_seq = (SELECT change_seq FROM counter)
                      WHERE id = $1::uuid)
         SELECT change_seq FROM counter`,
        [ref.messageId, ref.conversationId, randomUUID(), actorId, locked.content, content],
      );
      return Number(row!.change_seq);
    });
  }

  /** Tombstones the message: the sender, or an admin of the group (see deleteMessage). */
  delete(actorId: string, ref: MessageRef): Promise<Message> {
    return deleteMessage(this, { ...ref, actorId, asModerator: false });
  }

  /** Adds (`on`) or removes the caller's reaction with one emoji. */
  async react(actorId: string, ref: MessageRef & { emoji: string; on: boolean }): Promise<Message> {
    if (!isSingleEmoji(ref.emoji)) {
      throw badRequest("emoji must be one emoji", [{ field: "emoji", problem: "must be one emoji" }]);
    }
    if (!isUuid(ref.conversationId) || !isUuid(ref.messageId)) throw notFound("message");
    // One round trip (the react_to_message function, in the migration): a storm of reactions on one message holds
    // its row lock for microseconds each, never across a client round trip, and the cap of distinct emoji is exact.
    const [row] = await this.gated(ref.messageId, () =>
      this.deps.database.sql<{
        r_outcome: string;
        r_change_seq: number | null;
        r_message: ChangedRow | string | null;
      }>(
        `SELECT r_outcome, r_change_seq, r_message FROM react_to_message($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, $7)`,
        [ref.messageId, ref.conversationId, actorId, ref.emoji, ref.on, MAX_DISTINCT_REACTIONS, MESSAGE_WITH_MEMBERS],
      ),
    );
    switch (row!.r_outcome) {
      case "not_found":
        throw notFound("message");
      case "deleted":
        throw conflict("the message is deleted");
      case "capped":
        throw conflict(`a message has at most ${MAX_DISTINCT_REACTIONS} different reactions`);
    }
    const message = row!.r_message!;
    const changed = typeof message === "string" ? (JSON.parse(message) as ChangedRow) : message;
    return this.publish(changed, row!.r_change_seq !== null, "react", actorId, { emoji: ref.emoji, on: ref.on });
  }

  /**
   * Locks the message and reads what the rules need, lets `change` decide and write (answering its change number, or
   * undefined for a no-op), commits, then publishes (below). Edits and deletions are rare per message: two
   * statements under the row lock are fine for them.
   * @internal also used by deleteMessage
   */
  async apply(
    ref: MessageRef,
    actorId: string | null,
    kind: "edit" | "delete" | "react",
    change: (sql: Sql, locked: LockedMessage) => Promise<number | undefined>,
  ): Promise<Message> {
    if (!isUuid(ref.conversationId) || !isUuid(ref.messageId)) throw notFound("message");
    const outcome = await this.gated(ref.messageId, () => this.transact(ref, actorId, change));
    return this.publish(outcome.row, outcome.changed, kind, actorId);
  }

  private gated<T>(messageId: string, task: () => Promise<T>): Promise<T> {
    return this.deps.gate ? this.deps.gate.run(messageId, task) : task();
  }

  private transact(
    ref: MessageRef,
    actorId: string | null,
    change: (sql: Sql, locked: LockedMessage) => Promise<number | undefined>,
  ): Promise<{ row: ChangedRow; changed: boolean }> {
    return inTransaction(this.deps.database, async (sql) => {
      const [locked] = await sql<LockedMessage>(
        `SELECT m.sender_id::text, m.content, m.deleted_at IS NOT NULL AS deleted,
                extract(epoch FROM now() - m.created_at)::float8 AS age_s,
                c.type::text AS conversation_type, mb.role::text AS actor_role
           FROM messages m
           JOIN conversations c ON c.id = m.conversation_id
           LEFT JOIN members mb ON mb.conversation_id = m.conversation_id AND mb.user_id = $3::uuid
          WHERE m.id = $1::uuid AND m.conversation_id = $2::uuid
          FOR NO KEY UPDATE OF m`,
        [ref.messageId, ref.conversationId, actorId],
      );
      // A non-member learns nothing: the same answer whether or not the conversation or the message exists.
      if (locked === undefined) throw notFound("message");
      const changeSeq = await change(sql, locked);
      // Still under the lock: exactly the state this change made.
      const [row] = await sql<ChangedRow>(MESSAGE_WITH_MEMBERS, [ref.messageId]);
      return { row: row!, changed: changeSeq !== undefined };
    });
  }

  /**
   * After a change (not a no-op repeat), fans the message out as `message:updated` to every member's devices: an edit
   * or deletion at once, a reaction coalesced with the other reactions to that message (change-announcer.ts).
   */
  private publish(
    row: ChangedRow,
    changed: boolean,
    kind: "edit" | "delete" | "react",
    actorId: string | null,
    reaction?: { emoji: string; on: boolean },
  ): Message {
    const message = toMessage(row);
    if (changed) {
      const memberIds = row.member_ids ?? [];
      if (kind === "react") this.deps.announcer.reaction(message, memberIds);
      else this.deps.announcer.now(message, memberIds);
      for (const listener of this.listeners) listener(message, kind, actorId, reaction);
    }
    return message;
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
  request: MessageRef & {
    actorId: string | null;
    asModerator: boolean;
    /** Runs in the deleting transaction when the message is actually deleted now (the operator API's audit row). */
    inTransaction?: (sql: Sql) => Promise<void>;
  },
): Promise<Message> {
  const { actorId, asModerator } = request;
  const ref = { conversationId: request.conversationId, messageId: request.messageId };
  return changes.apply(ref, actorId, "delete", async (sql, locked) => {
    if (!asModerator) {
      if (locked.actor_role === null) throw notFound("message");
      const isAdmin = locked.conversation_type === "group" && locked.actor_role === "admin";
      if (locked.sender_id !== actorId && !isAdmin) throw forbidden("only the sender or a group admin may delete it");
    }
    if (locked.deleted) return undefined;
    const [row] = await sql<{ change_seq: number }>(
      `WITH ${NEXT_CHANGE_SEQ},
       reactions AS (DELETE FROM message_reactions WHERE message_id = $1::uuid),
       tombstone AS (UPDATE messages SET content = '', deleted_at = now(), change_seq = (SELECT change_seq FROM counter)
                      WHERE id = $1::uuid)
       SELECT change_seq FROM counter`,
      [ref.messageId, ref.conversationId],
    );
    await request.inTransaction?.(sql);
    return Number(row!.change_seq);
  });
}

// The conversation's next change number, as a CTE named `counter` ($2: the conversation id). Its counter row stays
// locked until the transaction commits, so change numbers become visible in increasing order.
const NEXT_CHANGE_SEQ = `counter AS (
  INSERT INTO message_change_counters (conversation_id, change_seq) VALUES ($2::uuid, 1)
  ON CONFLICT (conversation_id) DO UPDATE SET change_seq = message_change_counters.change_seq + 1
  RETURNING change_seq)`;
