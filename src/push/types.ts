// What travels through the push pipeline: the decision job, one delivery per target, the notification a device
// receives, and the outcome a provider reports.
import type { DeliveryOutcome } from "./delivery-outcome.js";

/** One pending decision per (user, conversation): "after the grace period, does this user need a push?" */
export interface DecideJob {
  userId: string;
  conversationId: string;
  /** The newest stored seq when the job was scheduled; the decision reads the database again anyway. */
  seq: number;
}

/**
 * With PUSH_ON_REACTION=on: one pending decision per (author, message), "after the grace period, tell the author
 * about the reactions of others to this message". Reactions collapse into it.
 */
export interface ReactionJob {
  /** The message's author, who would be told. */
  userId: string;
  conversationId: string;
  messageId: string;
}

/** What a device receives: new messages, or (PUSH_ON_REACTION=on) reactions to the user's own message. */
export type PushNotification = MessagesNotification | ReactionNotification;

/**
 * Reactions by others to one of the user's messages. Without PUSH_INCLUDE_CONTENT: ids, the newest reaction's emoji
 * and how many reactions others have on the message, never the message's text or who reacted.
 */
export interface ReactionNotification {
  type: "reaction";
  conversationId: string;
  messageId: string;
  /** The newest reaction's emoji. */
  emoji: string;
  /** Reactions by others (not blocked by the user) on the message, all emoji together. */
  count: number;
  /** Only with PUSH_INCLUDE_CONTENT=on: who reacted last. */
  sender?: { id: string; displayName: string };
  /** Only with PUSH_INCLUDE_CONTENT=on; null for direct conversations. */
  title?: string | null;
  /** Only with PUSH_INCLUDE_CONTENT=on: the message reacted to, truncated. */
  body?: string;
}

/**
 * What a device receives (Web Push payload, FCM data, webhook body). Without PUSH_INCLUDE_CONTENT it names the
 * conversation and how many messages are waiting, never what they say.
 */
export interface MessagesNotification {
  type: "messages";
  conversationId: string;
  /** Newest undelivered seq: the client syncs up to it. */
  seq: number;
  /** Messages from others this user has not received on any device. */
  count: number;
  /** Only with PUSH_INCLUDE_CONTENT=on. */
  sender?: { id: string; displayName: string };
  /** Only with PUSH_INCLUDE_CONTENT=on; null for direct conversations. */
  title?: string | null;
  /** Only with PUSH_INCLUDE_CONTENT=on: the newest message, truncated. For a message request, always
   * MESSAGE_REQUEST_BODY and never the content. */
  body?: string;
  /** A pending message request to this user (message-requests.ts): show "message request", not the content. */
  request?: true;
}

/** One notification to one target. `subscriptionId` is a push_subscriptions id, or "webhook" for the operator hook. */
export interface Delivery {
  subscriptionId: string;
  provider: ProviderName;
  userId: string;
  conversationId: string;
  /** Messages: the newest undelivered seq. Reactions: the message's changeSeq when decided (what it reports). */
  seq: number;
  notification: PushNotification;
}

export type ProviderName = "webpush" | "fcm" | "apns" | "webhook";

/** What a subscription row gives a provider: its address and, for Web Push, its keys. */
export interface PushTarget {
  userId: string;
  endpoint: string;
  p256dh: string | null;
  auth: string | null;
}

/** One push service. `send` classifies the service's answer with delivery-outcome.ts. */
export interface PushProvider {
  readonly name: ProviderName;
  send(target: PushTarget, notification: PushNotification, collapseKey: string): Promise<DeliveryOutcome>;
}
