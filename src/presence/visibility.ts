// Whose presence a user may watch. Privacy: only people they share a conversation with (and themselves). Being
// online is personal: an arbitrary signed-up user must not be able to watch strangers come and go, nor probe which
// ids exist. Ids outside that circle are simply left out of the answer, exactly like ids that name nobody.
import { isUuid } from "../chat/ports.js";
import type { Db } from "../db/client.js";

export async function watchableUsers(db: Db, watcherId: string, userIds: string[]): Promise<string[]> {
  const wanted = [...new Set(userIds)].filter(isUuid);
  if (wanted.length === 0) return [];
  const rows = await db.member.findMany({
    where: { userId: { in: wanted }, conversation: { members: { some: { userId: watcherId } } } },
    select: { userId: true },
    distinct: ["userId"],
  });
  const allowed = new Set(rows.map((r) => r.userId));
  if (wanted.includes(watcherId)) allowed.add(watcherId);
  return wanted.filter((id) => allowed.has(id));
}
