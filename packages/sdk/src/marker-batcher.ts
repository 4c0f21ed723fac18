// Read and delivery markers only move forward, so only the highest seq per conversation is worth sending: a burst of
// a hundred messages costs one `message:delivered`, not a hundred.
import { backoffDelay } from "./backoff.js";
import { type Clock, systemClock, TimerSet, type TimerHandle } from "./clock.js";
import { type ChatApiError, isPermanent, toChatApiError } from "./errors.js";

export interface MarkerBatcherOptions {
  send: (conversationId: string, seq: number) => Promise<void>;
  /** How long to gather markers before sending. */
  delayMs: number;
  /** A marker the gateway refused for good (e.g. `not_found` after leaving the conversation). */
  onError?: (conversationId: string, seq: number, error: ChatApiError) => void;
  clock?: Clock;
}

export class MarkerBatcher {
  private readonly pending = new Map<string, number>();
  private readonly acked = new Map<string, number>();
  private readonly timers: TimerSet;
  private timer: TimerHandle | undefined;
  private failures = 0;
  private online = false;
  private closed = false;

  constructor(private readonly options: MarkerBatcherOptions) {
    this.timers = new TimerSet(options.clock ?? systemClock);
  }

  note(conversationId: string, seq: number): void {
    if (this.closed || seq <= (this.acked.get(conversationId) ?? 0)) return;
    if (seq <= (this.pending.get(conversationId) ?? 0)) return;
    this.pending.set(conversationId, seq);
    this.schedule(this.options.delayMs);
  }

  /** The highest seq the gateway acknowledged (or is known to hold, see `heldAt`) for this conversation. */
  ackedSeq(conversationId: string): number {
    return this.acked.get(conversationId) ?? 0;
  }

  /**
   * The gateway already holds this marker at `seq` or past it: sending a message moves the sender's own markers to it,
   * and another device of the same user may have moved them (its announcement came back). A pending marker up to
   * `seq` is dropped, and later ones up to it are never sent: the gateway would answer ok and change nothing.
   */
  heldAt(conversationId: string, seq: number): void {
    if (seq > (this.acked.get(conversationId) ?? 0)) this.acked.set(conversationId, seq);
    if ((this.pending.get(conversationId) ?? Infinity) <= seq) this.pending.delete(conversationId);
  }

  setOnline(online: boolean): void {
    this.online = online;
    if (online) {
      this.failures = 0;
      this.schedule(0);
    }
  }

  close(): void {
    this.closed = true;
    this.timers.clearAll();
    this.timer = undefined;
  }

  private schedule(delayMs: number): void {
    if (!this.online || this.closed || this.timer !== undefined || this.pending.size === 0) return;
    this.timer = this.timers.set(() => {
      this.timer = undefined;
      this.flush();
    }, delayMs);
  }

  private flush(): void {
    if (!this.online || this.closed) return;
    const batch = [...this.pending];
    this.pending.clear();
    for (const [conversationId, seq] of batch) {
      this.options.send(conversationId, seq).then(
        () => {
          this.failures = 0;
          if (seq > (this.acked.get(conversationId) ?? 0)) this.acked.set(conversationId, seq);
        },
        (error: unknown) => this.failed(conversationId, seq, toChatApiError(error)),
      );
    }
  }

  private failed(conversationId: string, seq: number, error: ChatApiError): void {
    if (isPermanent(error)) {
      this.options.onError?.(conversationId, seq, error);
      return;
    }
    if (seq > (this.pending.get(conversationId) ?? 0)) this.pending.set(conversationId, seq);
    this.failures += 1;
    const retryAfter = error.code === "rate_limited" ? error.retryAfterMs : undefined;
    this.schedule(retryAfter ?? backoffDelay(this.failures));
  }
}
