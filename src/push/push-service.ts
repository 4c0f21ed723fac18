// The decision and the delivery, independent of the queue that runs them (BullMQ or in-process).
//
// The rule: a message for a member is scheduled as one decision job per (user, conversation), run after the grace
// period (PUSH_GRACE_MS). Never for the sender, never while the membership is muted. When the job runs it reads the
// member's markers: if delivered_seq or read_seq has reached the newest message from someone else, a device has it
// and nothing is sent ("delivered"). Otherwise one notification covers every undelivered message of that
// conversation (collapse key = conversation id), fanned out to each of the user's subscriptions (and the operator
// webhook) as independent deliveries, each retried on its own. Each attempt checks the markers again, so a user
// who came back online while the push service was down does not get a stale notification.
import type { Logger } from "pino";
import type { Db } from "../db/client.js";
import type { Message } from "@chat-gateway/protocol";
import type { PushMetrics, SkipReason } from "./push-metrics.js";
import { readReactionState, reactionNotification, reactionSkipReason } from "./reaction-push.js";
import type {
  DecideJob,
  Delivery,
  PushNotification,
  PushProvider,
  ProviderName,
  PushTarget,
  ReactionJob,
} from "./types.js";

/** The web push payload limit is about 4 KB after encryption: the opted-in text is cut well below it. */
const MAX_BODY_CHARS = 1000;
/** What a notification of a pending message request says, whatever PUSH_INCLUDE_CONTENT is. */
export const MESSAGE_REQUEST_BODY = "message request";
export const WEBHOOK_SUBSCRIPTION = "webhook";

export interface PushServiceDeps {
  db: Db;
  log: Logger;
  metrics: PushMetrics;
  providers: Partial<Record<Exclude<ProviderName, "webhook">, PushProvider>>;
  webhook?: PushProvider | undefined;
  includeContent: boolean;
}

interface MemberState {
  muted: boolean;
  marker: number;
  /** Undelivered messages from others, not counting those from users this member blocks. */
  undelivered: number;
  newest: number | null;
  /** Undelivered messages from users this member blocks: never pushed. */
  fromBlocked: number;
  /** This member received a still pending message request in this conversation. */
  requestPending: boolean;
}

export class PushService {
  constructor(private readonly deps: PushServiceDeps) {}

  /** Which members need a decision job for a newly stored message; the others are counted as skipped now. */
  jobsFor(message: Message, members: { userId: string; muted: boolean }[]): DecideJob[] {
    const jobs: DecideJob[] = [];
    for (const member of members) {
      if (member.userId === message.senderId) {
        // Counted, and logged at debug only: it happens for every message.
        this.deps.metrics.skipped.inc({ reason: "sender" });
        this.deps.log.debug(
          { userId: member.userId, conversationId: message.conversationId, reason: "sender" },
          "push skipped",
        );
      } else if (member.muted) this.skip(member.userId, message.conversationId, "muted");
      else jobs.push({ userId: member.userId, conversationId: message.conversationId, seq: message.seq });
    }
    return jobs;
  }

  /** After the grace period: the deliveries this user needs, or none (and why, in logs and metrics). */
  async decide(job: DecideJob): Promise<Delivery[]> {
    const { userId, conversationId } = job;
    const state = await this.memberState(userId, conversationId);
    if (state === undefined) return this.skip(userId, conversationId, "not_member");
    if (state.muted) return this.skip(userId, conversationId, "muted");
    if (state.newest === null)
      return this.skip(userId, conversationId, state.fromBlocked > 0 ? "blocked" : "delivered");

    const targets = await this.targetsOf(userId);
    if (targets.length === 0) return this.skip(userId, conversationId, "no_subscription");

    const notification = await this.notification(conversationId, state);
    return targets.map((t) => ({ ...t, userId, conversationId, seq: state.newest!, notification }));
  }

  /** PUSH_ON_REACTION, after the grace period: the deliveries telling the author about reactions (reaction-push.ts). */
  async decideReaction(job: ReactionJob): Promise<Delivery[]> {
    const { userId, conversationId } = job;
    const state = await readReactionState(this.deps.db, job);
    const reason = reactionSkipReason(state);
    if (reason !== undefined) return this.skip(userId, conversationId, reason);
    const targets = await this.targetsOf(userId);
    if (targets.length === 0) return this.skip(userId, conversationId, "no_subscription");
    const notification = await reactionNotification(this.deps.db, job, state!, {
      include: this.deps.includeContent,
      maxChars: MAX_BODY_CHARS,
    });
    return targets.map((t) => ({ ...t, userId, conversationId, seq: state!.changeSeq, notification }));
  }

  /** The user's subscriptions of the configured providers, and the operator webhook. */
  private async targetsOf(userId: string): Promise<{ subscriptionId: string; provider: ProviderName }[]> {
    const subscriptions = await this.deps.db.pushSubscription.findMany({
      where: { userId, type: { in: Object.keys(this.deps.providers) as ("webpush" | "fcm" | "apns")[] } },
      select: { id: true, type: true },
    });
    const targets = subscriptions.map((s) => ({ subscriptionId: s.id, provider: s.type as ProviderName }));
    if (this.deps.webhook) targets.push({ subscriptionId: WEBHOOK_SUBSCRIPTION, provider: "webhook" });
    return targets;
  }

  /** Whether a delivery is still wanted at this attempt (the state may have moved since the decision). */
  private async stillWanted(delivery: Delivery): Promise<boolean> {
    const { userId, conversationId, notification } = delivery;
    if (notification.type === "reaction") {
      const state = await readReactionState(this.deps.db, {
        userId,
        conversationId,
        messageId: notification.messageId,
      });
      const reason = reactionSkipReason(state);
      if (reason !== undefined) this.skip(userId, conversationId, reason);
      return reason === undefined;
    }
    const state = await this.memberState(userId, conversationId);
    // Delivered meanwhile, or every undelivered message deleted since the decision: the notification is withdrawn.
    const reason: SkipReason | undefined =
      state === undefined
        ? "not_member"
        : state.muted
          ? "muted"
          : state.marker >= delivery.seq || state.newest === null
            ? "delivered"
            : undefined;
    if (reason !== undefined) this.skip(userId, conversationId, reason);
    return reason === undefined;
  }

  /**
   * One attempt at one delivery. Resolves when finished (sent, skipped, gone, rejected); throws
   * TransientPushError when a retry may succeed.
   */
  async deliver(delivery: Delivery, attempt: number): Promise<void> {
    const { userId, conversationId, subscriptionId } = delivery;
    if (!(await this.stillWanted(delivery))) return;

    const resolved = await this.target(delivery);
    // Unsubscribed meanwhile: nothing to do.
    if (resolved === undefined) return;
    const { provider, target } = resolved;
    const context = { userId, conversationId, subscriptionId, provider: provider.name, seq: delivery.seq, attempt };
    try {
      // Messages collapse per conversation, reactions per message.
      const collapseKey = delivery.notification.type === "reaction" ? delivery.notification.messageId : conversationId;
      const outcome = await provider.send(target, delivery.notification, collapseKey);
      if (outcome.kind === "sent") {
        this.deps.metrics.sent.inc({ provider: provider.name });
        this.deps.log.info(context, "push sent");
      } else if (outcome.kind === "gone") {
        this.deps.metrics.failed.inc({ provider: provider.name, reason: "gone" });
        await this.deps.db.pushSubscription.deleteMany({ where: { id: subscriptionId } });
        this.deps.log.info(context, "push subscription gone: deleted");
      } else {
        this.deps.metrics.failed.inc({ provider: provider.name, reason: "rejected" });
        this.deps.log.warn({ ...context, status: outcome.status }, "push rejected");
      }
    } catch (err) {
      this.deps.metrics.failed.inc({ provider: provider.name, reason: "transient" });
      this.deps.log.warn({ ...context, reason: (err as Error).message }, "push failed: will retry");
      throw err;
    }
  }

  /** The queue gave up on a delivery after its last attempt. */
  exhausted(delivery: Delivery): void {
    this.deps.metrics.failed.inc({ provider: delivery.provider, reason: "exhausted" });
    const { userId, conversationId, subscriptionId, seq } = delivery;
    this.deps.log.error({ userId, conversationId, subscriptionId, seq }, "push failed: attempts exhausted");
  }

  private skip(userId: string, conversationId: string, reason: SkipReason): [] {
    this.deps.metrics.skipped.inc({ reason });
    this.deps.log.info({ userId, conversationId, reason }, "push skipped");
    return [];
  }

  private async memberState(userId: string, conversationId: string): Promise<MemberState | undefined> {
    // The newest message from someone else past both markers: read or delivered on any device counts as received.
    // Messages from users this member blocks are never pushed (blocks.ts): counted apart, by a key lookup each.
    const rows = await this.deps.db.$queryRawUnsafe<
      {
        muted: boolean;
        marker: number;
        undelivered: bigint | number;
        newest: number | null;
        from_blocked: bigint | number;
        request_pending: boolean;
      }[]
    >(
      `SELECT m.muted, GREATEST(m.delivered_seq, m.read_seq) AS marker,
              COUNT(msg.seq) FILTER (WHERE NOT msg.blocked) AS undelivered,
              MAX(msg.seq) FILTER (WHERE NOT msg.blocked) AS newest,
              COUNT(msg.seq) FILTER (WHERE msg.blocked) AS from_blocked,
              (c.accepted_at IS NULL AND c.requested_by IS NOT NULL AND c.requested_by <> m.user_id) AS request_pending
         FROM members m
         JOIN conversations c ON c.id = m.conversation_id
         LEFT JOIN LATERAL (
           SELECT x.seq, EXISTS (SELECT 1 FROM blocks bl WHERE bl.blocker_id = m.user_id AND bl.blocked_id = x.sender_id)
                         AS blocked
             FROM messages x
            WHERE x.conversation_id = m.conversation_id
              AND x.seq > GREATEST(m.delivered_seq, m.read_seq)
              AND x.sender_id <> m.user_id
              AND x.deleted_at IS NULL
         ) msg ON true
        WHERE m.conversation_id = $1::uuid AND m.user_id = $2::uuid
        GROUP BY m.muted, m.delivered_seq, m.read_seq, c.accepted_at, c.requested_by, m.user_id`,
      conversationId,
      userId,
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    return {
      muted: row.muted,
      marker: Number(row.marker),
      undelivered: Number(row.undelivered),
      newest: row.newest === null ? null : Number(row.newest),
      fromBlocked: Number(row.from_blocked),
      requestPending: row.request_pending,
    };
  }

  private async notification(conversationId: string, state: MemberState): Promise<PushNotification> {
    const base: PushNotification = {
      type: "messages",
      conversationId,
      seq: state.newest!,
      count: state.undelivered,
    };
    // A message request says so, and never what it says: the recipient has not agreed to hear from the requester.
    if (state.requestPending) return { ...base, request: true, body: MESSAGE_REQUEST_BODY };
    if (!this.deps.includeContent) return base;
    const rows = await this.deps.db.$queryRawUnsafe<
      { content: string; sender_id: string; display_name: string; title: string | null }[]
    >(
      `SELECT msg.content, msg.sender_id::text, u.display_name, c.title
         FROM messages msg JOIN users u ON u.id = msg.sender_id JOIN conversations c ON c.id = msg.conversation_id
        WHERE msg.conversation_id = $1::uuid AND msg.seq = $2`,
      conversationId,
      state.newest,
    );
    const row = rows[0];
    if (row === undefined) return base;
    return {
      ...base,
      sender: { id: row.sender_id, displayName: row.display_name },
      title: row.title,
      body: [...row.content].slice(0, MAX_BODY_CHARS).join(""),
    };
  }

  private async target(delivery: Delivery): Promise<{ provider: PushProvider; target: PushTarget } | undefined> {
    if (delivery.subscriptionId === WEBHOOK_SUBSCRIPTION) {
      if (!this.deps.webhook) return undefined;
      return {
        provider: this.deps.webhook,
        target: { userId: delivery.userId, endpoint: "", p256dh: null, auth: null },
      };
    }
    const row = await this.deps.db.pushSubscription.findUnique({ where: { id: delivery.subscriptionId } });
    if (row === null || row.userId !== delivery.userId || row.type === "webhook") return undefined;
    const provider = this.deps.providers[row.type];
    if (provider === undefined) return undefined;
    return { provider, target: { userId: row.userId, endpoint: row.endpoint, p256dh: row.p256dh, auth: row.auth } };
  }
}
