// Conversations and their membership: create (direct or group), list, read one, add and remove members, update.
// Every method takes the acting user first and checks membership itself: a conversation the caller is not in is
// `not_found`, exactly like one that does not exist.
import { randomUUID } from "node:crypto";
import type { Db } from "../db/client.js";
import { Reads } from "../db/reads.js";
import type { Prisma } from "../db/generated/client.js";
import { badRequest, conflict, forbidden, isUniqueViolation, notFound } from "../errors.js";
import type { Conversation } from "@chat-gateway/protocol";
import { isBlockedBy } from "./blocks.js";
import { loadConversationView, loadConversationViews, loadViewsForMembers } from "./conversation-views.js";
import { decodeKeysetCursor, encodeKeysetCursor } from "./keyset-cursor.js";
import { isUuid, type Notifier } from "./ports.js";

export type CreateConversationInput =
  { type: "direct"; userId: string } | { type: "group"; title: string; memberIds: string[] };

export interface ConversationPage {
  conversations: Conversation[];
  nextCursor: string | null;
}

/**
 * Told after `userId` left a conversation whose other members were `formerCoMembers`: people who may no longer share
 * any conversation with them, so presence watches between them are checked again. Awaited before the leave answers
 * (it must not reject), so that what happens after the answer is already subject to it.
 */
export type MembershipEndedListener = (userId: string, formerCoMembers: string[]) => Promise<void>;

export class Conversations {
  private readonly membershipEnded: MembershipEndedListener[] = [];
  private readonly removedListeners: ((conversationId: string, userId: string) => void)[] = [];

  constructor(
    private readonly db: Db,
    private readonly notifier: Notifier,
    private readonly groupMaxMembers: number,
    private readonly maxConversationsPerUser = 1000,
    private readonly reads: Reads = new Reads(db),
  ) {}

  onMembershipEnded(listener: MembershipEndedListener): void {
    this.membershipEnded.push(listener);
  }

  /** Sends every member their own view of the conversation (`conversation:updated`), e.g. after a request is accepted. */
  async announceChange(conversationId: string): Promise<void> {
    await this.announce(conversationId);
  }

  /** Creates a conversation; `created` is false when the direct conversation already existed. */
  async create(
    actorId: string,
    input: CreateConversationInput,
  ): Promise<{ conversation: Conversation; created: boolean }> {
    if (input.type === "direct") return this.openDirect(actorId, input.userId);

    const memberIds = [...new Set(input.memberIds.filter((id) => id !== actorId))];
    if (memberIds.length + 1 > this.groupMaxMembers) {
      throw badRequest(`a group has at most ${this.groupMaxMembers} members`, [
        { field: "memberIds", problem: `at most ${this.groupMaxMembers - 1} others` },
      ]);
    }
    await this.requireUsers(memberIds);
    await this.requireRoomFor([actorId, ...memberIds]);
    const id = randomUUID();
    await this.db.conversation.create({
      data: {
        id,
        type: "group",
        title: input.title,
        members: {
          create: [
            { userId: actorId, role: "admin" },
            ...memberIds.map((userId) => ({ userId, role: "member" as const })),
          ],
        },
      },
    });
    await this.announce(id);
    return { conversation: await loadConversationView(this.db, actorId, id), created: true };
  }

  /**
   * The viewer's conversations, most recent activity first. May come from the read replica as it is, a moment behind
   * the primary: what changes meanwhile (a new message, a new conversation) reaches the client live.
   */
  async list(viewerId: string, limit: number, cursor: string | undefined): Promise<ConversationPage> {
    const after = cursor === undefined ? undefined : decodeKeysetCursor(cursor);
    return this.reads.read("conversation_list", async (db) => {
      // Keyset paging on (last activity, id): stable while new messages reorder the list.
      const rows = await db.$queryRawUnsafe<{ id: string; activity: Date }[]>(
        `SELECT c.id::text, COALESCE(c.last_message_at, c.created_at) AS activity
           FROM members mb JOIN conversations c ON c.id = mb.conversation_id
          WHERE mb.user_id = $1::uuid
            AND ($2::timestamptz IS NULL OR (COALESCE(c.last_message_at, c.created_at), c.id) < ($2::timestamptz, $3::uuid))
          ORDER BY activity DESC, c.id DESC
          LIMIT $4`,
        viewerId,
        after?.time ?? null,
        after?.id ?? "00000000-0000-0000-0000-000000000000",
        limit + 1,
      );
      const page = rows.slice(0, limit);
      const views = await loadConversationViews(
        db,
        viewerId,
        page.map((r) => r.id),
      );
      const last = page.at(-1);
      return {
        conversations: page.map((r) => views.get(r.id)).filter((c): c is Conversation => c !== undefined),
        nextCursor: rows.length > limit && last ? encodeKeysetCursor(new Date(last.activity), last.id) : null,
      };
    });
  }

  async get(viewerId: string, conversationId: string): Promise<Conversation> {
    await this.requireMember(viewerId, conversationId);
    return loadConversationView(this.db, viewerId, conversationId);
  }

  /** Only a group's admins add people; direct conversations have exactly two members. */
  async addMember(actorId: string, conversationId: string, userId: string): Promise<Conversation> {
    const conversation = await this.requireMember(actorId, conversationId);
    if (conversation.type === "direct") throw forbidden("members cannot be added to a direct conversation");
    await this.requireAdmin(actorId, conversationId);
    await this.requireUsers([userId]);
    const already = await this.db.member.findUnique({
      where: { conversationId_userId: { conversationId, userId } },
      select: { userId: true },
    });
    if (already !== null) return loadConversationView(this.db, actorId, conversationId);
    const count = await this.db.member.count({ where: { conversationId } });
    if (count >= this.groupMaxMembers) throw forbidden(`a group has at most ${this.groupMaxMembers} members`);
    await this.requireRoomFor([userId]);
    try {
      await this.db.member.create({ data: { conversationId, userId, role: "member" } });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      // Added by someone else meanwhile: adding is idempotent, and that addition was announced.
      return loadConversationView(this.db, actorId, conversationId);
    }
    // Only a real change is announced: re-adding a member would otherwise send the whole group its views again.
    await this.announce(conversationId);
    return loadConversationView(this.db, actorId, conversationId);
  }

  /**
   * Anyone may remove themselves (leave); only a group's admins remove others. A group left by its last admin
   * promotes its oldest member (by join time) in the same transaction, so a group is never without an admin.
   */
  async removeMember(actorId: string, conversationId: string, userId: string): Promise<void> {
    const conversation = await this.requireMember(actorId, conversationId);
    const leaving = userId === actorId;
    if (conversation.type === "direct") {
      throw forbidden(leaving ? "you cannot leave a direct conversation" : "you can only remove yourself");
    }
    if (!isUuid(userId)) throw notFound("member");
    await this.db.$transaction(async (tx) => {
      const roles = await lockGroupRoles(tx, conversationId, [actorId, userId]);
      if (!leaving) {
        if (roles.get(actorId) !== "admin") throw forbidden("only a group admin can remove members");
        if (!roles.has(userId)) throw notFound("member");
      } else if (!roles.has(userId)) {
        throw notFound();
      }
      await tx.member.delete({ where: { conversationId_userId: { conversationId, userId } } });
      // The last admin gone: the oldest remaining member becomes admin, under the same conversation row lock.
      await tx.$executeRawUnsafe(
        `UPDATE members SET role = 'admin'
          WHERE conversation_id = $1::uuid
            AND NOT EXISTS (SELECT 1 FROM members WHERE conversation_id = $1::uuid AND role = 'admin')
            AND user_id = (SELECT user_id FROM members WHERE conversation_id = $1::uuid
                            ORDER BY joined_at, user_id LIMIT 1)`,
        conversationId,
      );
    });
    for (const listener of this.removedListeners) listener(conversationId, userId);
    // The one removed still learns the new state, so their devices drop the conversation.
    const views = await loadViewsForMembers(this.db, conversationId);
    const anyView = [...views.values()][0];
    this.announceViews(views);
    // Presence watches between the one removed and the members left are re-checked (published to every pod).
    await Promise.all(this.membershipEnded.map((listener) => listener(userId, [...views.keys()])));
    if (anyView)
      this.notifier.toUsers([userId], "conversation:updated", {
        conversation: { ...anyView, unreadCount: 0, muted: false },
      });
  }

  /** Only a group's admins promote or demote; the last admin cannot step down (leaving promotes someone instead). */
  async setRole(
    actorId: string,
    conversationId: string,
    userId: string,
    role: "admin" | "member",
  ): Promise<Conversation> {
    const conversation = await this.requireMember(actorId, conversationId);
    if (conversation.type === "direct") throw forbidden("a direct conversation has no roles");
    if (!isUuid(userId)) throw notFound("member");
    const changed = await this.db.$transaction(async (tx) => {
      const roles = await lockGroupRoles(tx, conversationId, [actorId, userId]);
      if (roles.get(actorId) !== "admin") throw forbidden("only a group admin can change roles");
      const current = roles.get(userId);
      if (current === undefined) throw notFound("member");
      if (current === role) return false;
      if (role === "member") {
        const admins = await tx.member.count({ where: { conversationId, role: "admin" } });
        if (admins <= 1) throw conflict("a group needs an admin: promote someone else first");
      }
      await tx.member.update({ where: { conversationId_userId: { conversationId, userId } }, data: { role } });
      return true;
    });
    if (changed) await this.announce(conversationId);
    return loadConversationView(this.db, actorId, conversationId);
  }

  /** Told after a member is removed or leaves (committed), so transports can forget cached membership everywhere. */
  onMemberRemoved(listener: (conversationId: string, userId: string) => void): void {
    this.removedListeners.push(listener);
  }

  async update(
    actorId: string,
    conversationId: string,
    patch: { muted?: boolean | undefined; title?: string | undefined },
  ): Promise<Conversation> {
    const conversation = await this.requireMember(actorId, conversationId);
    if (patch.title !== undefined) {
      if (conversation.type === "direct") throw forbidden("a direct conversation has no title");
      await this.requireAdmin(actorId, conversationId);
      await this.db.conversation.update({ where: { id: conversationId }, data: { title: patch.title } });
    }
    if (patch.muted !== undefined) {
      await this.db.member.update({
        where: { conversationId_userId: { conversationId, userId: actorId } },
        data: { muted: patch.muted },
      });
    }
    if (patch.title !== undefined) await this.announce(conversationId);
    else {
      // Muting is personal: only the actor's own devices hear of it.
      const view = await loadConversationView(this.db, actorId, conversationId);
      this.notifier.toUsers([actorId], "conversation:updated", { conversation: view });
    }
    return loadConversationView(this.db, actorId, conversationId);
  }

  /** The conversation if the user is a member; otherwise `not_found`, whether or not it exists. */
  async requireMember(userId: string, conversationId: string): Promise<{ type: "direct" | "group"; lastSeq: number }> {
    if (!isUuid(conversationId)) throw notFound();
    const member = await this.db.member.findUnique({
      where: { conversationId_userId: { conversationId, userId } },
      select: { conversation: { select: { type: true, lastSeq: true } } },
    });
    if (member === null) throw notFound();
    return member.conversation;
  }

  /**
   * `requireMember` that also answers the conversation's change counter, in one primary read: the watermark a read
   * replica's answer about this conversation must reach (db/reads.ts).
   */
  async requireMemberWatermark(
    userId: string,
    conversationId: string,
  ): Promise<{ lastSeq: number; changeSeq: number }> {
    if (!isUuid(conversationId)) throw notFound();
    const [row] = await this.db.$queryRawUnsafe<{ last_seq: number; change_seq: number }[]>(
      `SELECT c.last_seq, coalesce(k.change_seq, 0) AS change_seq
         FROM members mb
         JOIN conversations c ON c.id = mb.conversation_id
         LEFT JOIN message_change_counters k ON k.conversation_id = mb.conversation_id
        WHERE mb.conversation_id = $1::uuid AND mb.user_id = $2::uuid`,
      conversationId,
      userId,
    );
    if (row === undefined) throw notFound();
    return { lastSeq: Number(row.last_seq), changeSeq: Number(row.change_seq) };
  }

  /** `forbidden` unless the member is an admin of the group. */
  private async requireAdmin(userId: string, conversationId: string): Promise<void> {
    const member = await this.db.member.findUnique({
      where: { conversationId_userId: { conversationId, userId } },
      select: { role: true },
    });
    if (member?.role !== "admin") throw forbidden("only a group admin can do this");
  }

  private async openDirect(
    actorId: string,
    otherId: string,
  ): Promise<{ conversation: Conversation; created: boolean }> {
    if (otherId === actorId)
      throw badRequest("cannot open a direct conversation with yourself", [{ field: "userId", problem: "is you" }]);
    await this.requireUsers([otherId]);
    // Blocked by the other person: neither a new direct conversation nor the existing one (blocks.ts).
    if (await isBlockedBy(this.db, actorId, otherId)) throw forbidden("you cannot message this user");
    const directKey = [actorId, otherId].sort().join(":");
    const existing = await this.db.conversation.findUnique({ where: { directKey }, select: { id: true } });
    if (existing) return { conversation: await loadConversationView(this.db, actorId, existing.id), created: false };
    await this.requireRoomFor([actorId, otherId]);
    const id = randomUUID();
    try {
      await this.db.conversation.create({
        data: {
          id,
          type: "direct",
          directKey,
          // A message request from the opener until the other member replies or accepts (message-requests.ts).
          requestedBy: actorId,
          members: { create: [{ userId: actorId }, { userId: otherId }] },
        },
      });
    } catch (err) {
      // Both people opened it at once: the unique direct key lets exactly one win; the other gets the winner's.
      if (!isUniqueViolation(err)) throw err;
      const winner = await this.db.conversation.findUniqueOrThrow({ where: { directKey }, select: { id: true } });
      return { conversation: await loadConversationView(this.db, actorId, winner.id), created: false };
    }
    await this.announce(id);
    return { conversation: await loadConversationView(this.db, actorId, id), created: true };
  }

  private async requireUsers(userIds: string[]): Promise<void> {
    const valid = userIds.filter(isUuid);
    const found =
      valid.length === 0
        ? 0
        : await this.db.user.count({ where: { id: { in: valid }, isSystem: false, deletedAt: null } });
    if (found !== userIds.length) throw notFound("user");
  }

  /** `forbidden` when any of these users is already in MAX_CONVERSATIONS_PER_USER conversations. A check before the
   * insert, not a constraint: concurrent creations may overshoot by a few, which bounds the cost all the same. */
  private async requireRoomFor(userIds: string[]): Promise<void> {
    const full = await this.db.member.groupBy({
      by: ["userId"],
      where: { userId: { in: userIds } },
      _count: { _all: true },
      having: { userId: { _count: { gte: this.maxConversationsPerUser } } },
    });
    if (full.length > 0) {
      throw forbidden(`a user may be in at most ${this.maxConversationsPerUser} conversations`);
    }
  }

  private async announce(conversationId: string): Promise<void> {
    this.announceViews(await loadViewsForMembers(this.db, conversationId));
  }

  private announceViews(views: Map<string, Conversation>): void {
    for (const [userId, conversation] of views)
      this.notifier.toUsers([userId], "conversation:updated", { conversation });
  }
}

/**
 * Locks the conversation row (role changes and removals of one group run one at a time, so two admins stepping away
 * at once cannot leave it without one) and reads the roles of the given users; absent ones are not members.
 */
async function lockGroupRoles(
  tx: Prisma.TransactionClient,
  conversationId: string,
  userIds: string[],
): Promise<Map<string, "admin" | "member">> {
  await tx.$queryRawUnsafe("SELECT id FROM conversations WHERE id = $1::uuid FOR UPDATE", conversationId);
  const rows = await tx.member.findMany({
    where: { conversationId, userId: { in: userIds } },
    select: { userId: true, role: true },
  });
  return new Map(rows.map((r) => [r.userId, r.role]));
}
