// The users whose presence the app follows, and what the SDK last heard of each: asked for again on every
// (re)connection, since the gateway forgets a socket's subscriptions when it closes.
import type { Conversation, PresenceState } from "@chat-gateway/protocol";
import type { TimerSet } from "./clock.js";
import type { ChatApiError } from "./errors.js";
import { retrying } from "./retry.js";

export interface PresenceFollowerDeps {
  /** `presence:subscribe` on the current socket. */
  subscribe(userIds: string[]): Promise<{ presence: Record<string, PresenceState> }>;
  timers: TimerSet;
  /** The current connection's number: answers for an older connection are dropped. */
  epoch(): number;
  connected(): boolean;
  emit(event: { userId: string } & PresenceState): void;
  failed(error: ChatApiError): void;
}

export class PresenceFollower {
  private readonly followed = new Set<string>();
  private readonly states = new Map<string, PresenceState>();

  constructor(private readonly deps: PresenceFollowerDeps) {}

  follow(userIds: string[]): void {
    const added = userIds.filter((id) => !this.followed.has(id));
    for (const id of added) this.followed.add(id);
    if (added.length > 0 && this.deps.connected()) this.subscribeOnServer(added, this.deps.epoch());
  }

  unfollow(userIds: string[]): void {
    for (const id of userIds) {
      this.followed.delete(id);
      this.states.delete(id);
    }
  }

  stateOf(userId: string): PresenceState | undefined {
    return this.states.get(userId);
  }

  /** A live `presence` event; only followed users reach the app. */
  receive(event: { userId: string } & PresenceState): void {
    if (!this.followed.has(event.userId)) return;
    this.states.set(event.userId, { online: event.online, lastSeenAt: event.lastSeenAt });
    this.deps.emit(event);
  }

  /** A new connection: the gateway knows none of the subscriptions yet. */
  connected(epoch: number): void {
    if (this.followed.size > 0) this.subscribeOnServer([...this.followed], epoch);
  }

  /**
   * A message request this user sent was accepted: the gateway left the recipient out of earlier presence answers, so
   * the members this client follows are asked for again.
   */
  watchAgainIfAccepted(conversation: Conversation): void {
    if (conversation.request?.state !== "accepted" || !this.deps.connected()) return;
    const followed = conversation.members.map((m) => m.id).filter((id) => this.followed.has(id));
    if (followed.length > 0) this.subscribeOnServer(followed, this.deps.epoch());
  }

  private subscribeOnServer(userIds: string[], epoch: number): void {
    void (async () => {
      const current = () => epoch === this.deps.epoch();
      const outcome = await retrying(() => this.deps.subscribe(userIds), {
        timers: this.deps.timers,
        active: current,
      });
      if (outcome.status === "failed") return this.deps.failed(outcome.error);
      if (outcome.status !== "done" || !current()) return;
      for (const [userId, state] of Object.entries(outcome.value.presence)) {
        if (!this.followed.has(userId)) continue;
        this.states.set(userId, state);
        this.deps.emit({ userId, ...state });
      }
    })();
  }
}
