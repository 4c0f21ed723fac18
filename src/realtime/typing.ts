// Typing indicators: ephemeral, never stored, throttled per user and conversation, only to the other members.
import type { Conversations } from "../chat/conversations.js";
import type { Notifier } from "../chat/ports.js";
import { TypingPayload } from "../chat/schemas.js";
import type { Db } from "../db/client.js";
import type { EventRouter } from "./handlers.js";

/** A "typing" start is forwarded at most once per this many ms per user and conversation; stops always pass. */
export const TYPING_THROTTLE_MS = 2_000;

export function registerTyping(
  router: EventRouter,
  deps: { db: Db; conversations: Conversations; notifier: Notifier },
): () => void {
  // user + conversation -> when its last start was forwarded; shared by all the user's sockets on this pod.
  const lastStart = new Map<string, number>();
  // Entries older than the throttle decide nothing any more: drop them, so the map holds only recent typists.
  const prune = setInterval(() => {
    const cutoff = Date.now() - TYPING_THROTTLE_MS;
    for (const [key, at] of lastStart) if (at < cutoff) lastStart.delete(key);
  }, 10 * TYPING_THROTTLE_MS).unref();

  router.on("typing", TypingPayload, async (socket, { conversationId, isTyping }) => {
    const userId = socket.data.userId;
    await deps.conversations.requireMember(userId, conversationId);
    const key = `${userId}\n${conversationId}`;
    const now = Date.now();
    if (isTyping) {
      if (now - (lastStart.get(key) ?? 0) < TYPING_THROTTLE_MS) return {};
      lastStart.set(key, now);
    } else {
      lastStart.delete(key);
    }
    const others = await deps.db.member.findMany({
      where: { conversationId, userId: { not: userId } },
      select: { userId: true },
    });
    deps.notifier.toUsers(
      others.map((m) => m.userId),
      "typing",
      { conversationId, userId, isTyping },
    );
    return {};
  });
  return () => clearInterval(prune);
}
