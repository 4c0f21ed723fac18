// Apps call setTyping(true) on every keystroke; the wire should carry one `typing` per few seconds per conversation,
// and a `false` when the user stops, even if the app never says so.
import { type Clock, systemClock, TimerSet, type TimerHandle } from "./clock.js";

export interface TypingThrottleOptions {
  send: (conversationId: string, isTyping: boolean) => void;
  /**
   * Least time between two `isTyping: true` for one conversation; repeats within it are dropped.
   * @default 3000
   */
  throttleMs?: number;
  /**
   * After this long without a `setTyping(true)`, a `false` is sent on the app's behalf.
   * @default 5000
   */
  idleMs?: number;
  clock?: Clock;
}

interface TypingState {
  lastSentAt: number;
  idleTimer: TimerHandle | undefined;
}

export class TypingThrottle {
  private readonly typing = new Map<string, TypingState>();
  private readonly clock: Clock;
  private readonly timers: TimerSet;
  private readonly throttleMs: number;
  private readonly idleMs: number;

  constructor(private readonly options: TypingThrottleOptions) {
    this.clock = options.clock ?? systemClock;
    this.timers = new TimerSet(this.clock);
    this.throttleMs = options.throttleMs ?? 3000;
    this.idleMs = options.idleMs ?? 5000;
  }

  set(conversationId: string, isTyping: boolean): void {
    const state = this.typing.get(conversationId);
    if (!isTyping) {
      if (!state) return;
      this.timers.clear(state.idleTimer);
      this.typing.delete(conversationId);
      this.options.send(conversationId, false);
      return;
    }
    const now = this.clock.now();
    if (!state || now - state.lastSentAt >= this.throttleMs) {
      this.options.send(conversationId, true);
      if (state) state.lastSentAt = now;
    }
    const current = state ?? { lastSentAt: now, idleTimer: undefined };
    this.timers.clear(current.idleTimer);
    current.idleTimer = this.timers.set(() => this.set(conversationId, false), this.idleMs);
    this.typing.set(conversationId, current);
  }

  /** Forgets every conversation without sending: after a disconnect the server has dropped them anyway. */
  reset(): void {
    this.timers.clearAll();
    this.typing.clear();
  }
}
