// Typing indicators: ephemeral, never stored, throttled per user and conversation, only to the other members.
//
// One typing event may reach a whole group, so both directions are throttled: a start is forwarded at most once per
// TYPING_THROTTLE_MS per user and conversation, and a stop only when the last event forwarded was a start (a stop
// right after a start passes once; repeated stops, and stops for starts that were never forwarded, are dropped). At
// most two events per window leave the pod, whatever the client sends.
//
// Who the other members are is cached per conversation for TYPING_MEMBERS_CACHE_MS, so a typing event costs no
// database query while cached. Membership comes from the same cache: a user missing from a cached list is looked up
// again (just added); a removal drops the conversation's entry on every pod (realtime/membership-signals.ts).
//
// Who must not see it is read fresh for each event that is forwarded (at most two per window per user and
// conversation, so one indexed query each): anyone with a block between them and the typer (blocks.ts), and, when the
// typer received a pending message request, its requester (message-requests.ts).
import type { Notifier } from "../chat/ports.js";
import { TypingPayload } from "@chat-gateway/protocol/schemas";
import type { Db } from "../db/client.js";
import type { EventRouter } from "./handlers.js";
import type { Conversations } from "../chat/conversations.js";

/** A "typing" start is forwarded at most once per this many ms per user and conversation. */
export const TYPING_THROTTLE_MS = 2_000;
/** How long a conversation's member list serves typing events before it is read again. */
export const TYPING_MEMBERS_CACHE_MS = 5_000;
/** How long the last forwarded state is kept (a stop long after its start has no indicator left to clear). */
const TYPING_STATE_MS = 30_000;
/** Bound on cached member lists per pod; past it the oldest are dropped. */
const MEMBER_CACHE_MAX = 10_000;

interface TypingState {
  /** When the last start was forwarded. */
  startAt: number;
  /** Whether the last event forwarded was a start. */
  typing: boolean;
}

export function registerTyping(
  router: EventRouter,
  deps: {
    db: Db;
    conversations: Conversations;
    notifier: Notifier;
    /** Subscribes to member removals (on any pod), which end the conversation's cached member list here. */
    onMemberRemoved?: (listener: (conversationId: string) => void) => void;
  },
): () => void {
  // user + conversation -> what was last forwarded; shared by all the user's sockets on this pod.
  const state = new Map<string, TypingState>();
  // conversation -> its members and when they were read.
  const members = new Map<string, { userIds: string[]; at: number }>();
  const prune = setInterval(() => {
    const now = Date.now();
    for (const [key, s] of state) if (s.startAt < now - TYPING_STATE_MS) state.delete(key);
    for (const [id, m] of members) if (m.at < now - TYPING_MEMBERS_CACHE_MS) members.delete(id);
  }, TYPING_THROTTLE_MS * 5).unref();
  deps.onMemberRemoved?.((conversationId) => void members.delete(conversationId));

  async function membersOf(userId: string, conversationId: string): Promise<string[]> {
    const cached = members.get(conversationId);
    if (cached && cached.at > Date.now() - TYPING_MEMBERS_CACHE_MS && cached.userIds.includes(userId)) {
      return cached.userIds;
    }
    await deps.conversations.requireMember(userId, conversationId);
    const rows = await deps.db.member.findMany({ where: { conversationId }, select: { userId: true } });
    const userIds = rows.map((r) => r.userId);
    members.delete(conversationId);
    members.set(conversationId, { userIds, at: Date.now() });
    if (members.size > MEMBER_CACHE_MAX) members.delete(members.keys().next().value!);
    return userIds;
  }

  router.on("typing", TypingPayload, async (socket, { conversationId, isTyping }) => {
    const userId = socket.data.userId;
    const userIds = await membersOf(userId, conversationId);
    const key = `${userId}\n${conversationId}`;
    const now = Date.now();
    const last = state.get(key);
    if (isTyping) {
      if (last !== undefined && now - last.startAt < TYPING_THROTTLE_MS) return {};
      state.set(key, { startAt: now, typing: true });
    } else {
      if (last === undefined || !last.typing) return {};
      last.typing = false;
    }
    const hidden = await hiddenFrom(deps.db, userId, conversationId);
    deps.notifier.toUsers(
      userIds.filter((id) => id !== userId && !hidden.has(id)),
      "typing",
      { conversationId, userId, isTyping },
    );
    return {};
  });
  return () => clearInterval(prune);
}

/** Members who must not see this user type here: blocks either way, and the requester of a pending request. */
async function hiddenFrom(db: Db, userId: string, conversationId: string): Promise<Set<string>> {
  const rows = await db.$queryRawUnsafe<{ other: string }[]>(
    `SELECT blocked_id::text AS other FROM blocks WHERE blocker_id = $1::uuid
     UNION SELECT blocker_id::text FROM blocks WHERE blocked_id = $1::uuid
     UNION SELECT requested_by::text FROM conversations
            WHERE id = $2::uuid AND accepted_at IS NULL AND requested_by <> $1::uuid`,
    userId,
    conversationId,
  );
  return new Set(rows.map((r) => r.other));
}
