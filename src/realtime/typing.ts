// Typing indicators: ephemeral, never stored, throttled per user and conversation, only to the other members.
import type { Conversations } from "../chat/conversations.js";
import type { Notifier } from "../chat/ports.js";
import { TypingPayload } from "../chat/schemas.js";
import type { Db } from "../db/client.js";
import type { Handle } from "./handlers.js";

/** A "typing" start is forwarded at most once per this many ms per user and conversation; stops always pass. */
export const TYPING_THROTTLE_MS = 2_000;

export function registerTyping(
  handle: Handle,
  userId: string,
  deps: { db: Db; conversations: Conversations; notifier: Notifier },
): void {
  const lastStart = new Map<string, number>();
  handle("typing", TypingPayload, async ({ conversationId, isTyping }) => {
    await deps.conversations.requireMember(userId, conversationId);
    const now = Date.now();
    if (isTyping) {
      if (now - (lastStart.get(conversationId) ?? 0) < TYPING_THROTTLE_MS) return {};
      lastStart.set(conversationId, now);
    } else {
      lastStart.delete(conversationId);
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
}
