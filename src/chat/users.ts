// Finding people to talk to: prefix search on usernames (and display names), never exposing system accounts.
import type { Db } from "../db/client.js";
import type { PublicUser } from "@chat-gateway/protocol";

export async function searchUsers(db: Db, prefix: string, limit = 20): Promise<PublicUser[]> {
  const needle = prefix.toLowerCase();
  return db.user.findMany({
    where: {
      isSystem: false,
      deletedAt: null,
      OR: [{ username: { startsWith: needle } }, { displayName: { startsWith: prefix, mode: "insensitive" } }],
    },
    select: { id: true, username: true, displayName: true },
    orderBy: { username: "asc" },
    take: limit,
  });
}
