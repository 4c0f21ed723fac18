// Push counters, registered on the gateway's registry so they appear on /metrics beside the rest.
import { Counter, type Registry } from "prom-client";

export type SkipReason =
  | "delivered"
  | "muted"
  | "sender"
  | "no_subscription"
  | "not_member"
  | "blocked"
  /** PUSH_ON_REACTION: the reactions were taken back, or the message deleted, before the push went out. */
  | "withdrawn";

export class PushMetrics {
  readonly sent: Counter<"provider">;
  readonly skipped: Counter<"reason">;
  readonly failed: Counter<"provider" | "reason">;

  constructor(registry: Registry) {
    this.sent = new Counter({
      name: "chat_push_sent_total",
      help: "Notifications accepted by a push service, by provider",
      labelNames: ["provider"] as const,
      registers: [registry],
    });
    this.skipped = new Counter({
      name: "chat_push_skipped_total",
      help: "Pushes not sent to a member, by reason (delivered, muted, sender, no_subscription, not_member)",
      labelNames: ["reason"] as const,
      registers: [registry],
    });
    this.failed = new Counter({
      name: "chat_push_failed_total",
      help: "Push attempts that failed, by provider and reason (gone, rejected, transient, exhausted)",
      labelNames: ["provider", "reason"] as const,
      registers: [registry],
    });
  }
}
