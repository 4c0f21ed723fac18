// Whose presence a user may watch. Privacy: only people they share a conversation with (and themselves). Being
// online is personal: an arbitrary signed-up user must not be able to watch strangers come and go, nor probe which
// ids exist. Ids outside that circle are simply left out of the answer, exactly like ids that name nobody.
//
// Two exceptions narrow the circle: a pending message request does not count for its requester (they would otherwise
// watch whoever they message; message-requests.ts), and a block in either direction hides both from each other
// (blocks.ts). The same rule decides at `presence:subscribe` and when watches are checked again (revocations.ts).
import { isUuid } from "../chat/ports.js";
import type { Db } from "../db/client.js";

export interface WatchPair {
  watcherId: string;
  userId: string;
}

export const pairKey = (p: WatchPair): string => `${p.watcherId}\n${p.userId}`;

/**
 * Which of these (watcher, watched) pairs are visible now, as pairKey()s. One statement: per pair, index lookups on
 * members (the watcher's conversations, the watched user's membership of each) and on the blocks key.
 */
export async function visiblePairs(db: Db, pairs: WatchPair[]): Promise<Set<string>> {
  if (pairs.length === 0) return new Set();
  const rows = await db.$queryRawUnsafe<{ watcher: string; watched: string }[]>(
    `SELECT p.watcher::text, p.watched::text
       FROM unnest($1::uuid[], $2::uuid[]) AS p(watcher, watched)
      WHERE EXISTS (
              SELECT 1 FROM members a
                JOIN members b ON b.conversation_id = a.conversation_id AND b.user_id = p.watched
                JOIN conversations c ON c.id = a.conversation_id
               WHERE a.user_id = p.watcher
                 AND (c.accepted_at IS NOT NULL OR c.requested_by IS DISTINCT FROM p.watcher))
        AND NOT EXISTS (
              SELECT 1 FROM blocks bl
               WHERE (bl.blocker_id = p.watcher AND bl.blocked_id = p.watched)
                  OR (bl.blocker_id = p.watched AND bl.blocked_id = p.watcher))`,
    pairs.map((p) => p.watcherId),
    pairs.map((p) => p.userId),
  );
  return new Set(rows.map((r) => pairKey({ watcherId: r.watcher, userId: r.watched })));
}

export async function watchableUsers(db: Db, watcherId: string, userIds: string[]): Promise<string[]> {
  const wanted = [...new Set(userIds)].filter(isUuid);
  if (wanted.length === 0) return [];
  const others = wanted.filter((id) => id !== watcherId).map((userId) => ({ watcherId, userId }));
  const visible = await visiblePairs(db, others);
  return wanted.filter((userId) => userId === watcherId || visible.has(pairKey({ watcherId, userId })));
}

/**
 * The watches between `userId` and each of `others`, both directions, that are no longer visible: after the two
 * stopped sharing a conversation, or one blocked the other.
 */
export async function lapsedPairs(db: Db, userId: string, others: string[]): Promise<WatchPair[]> {
  const pairs = [...new Set(others)]
    .filter((id) => id !== userId)
    .flatMap((other) => [
      { watcherId: userId, userId: other },
      { watcherId: other, userId },
    ]);
  const visible = await visiblePairs(db, pairs);
  return pairs.filter((p) => !visible.has(pairKey(p)));
}
