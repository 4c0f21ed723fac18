// How far behind the event loop is, sampled cheaply, for admission control. Past capacity the loop itself is the
// queue: every frame a socket delivers waits its turn whatever the writer's queue says, and a send admitted then is
// answered late even if its batch is quick. A timer that should fire every SAMPLE_MS measures how late it fired;
// the figure kept is the latest lateness, or the recent worst decaying by half every sample, so one slow tick counts
// for a few samples but not for a second.
import { performance } from "node:perf_hooks";

const SAMPLE_MS = 20;

export interface LoopLag {
  /** Recent event-loop lateness, ms (0 when the loop keeps time). */
  readonly lagMs: number;
  stop(): void;
}

export function watchLoopLag(): LoopLag {
  let last = performance.now();
  let lag = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    const late = Math.max(0, now - last - SAMPLE_MS);
    last = now;
    lag = Math.max(late, lag / 2);
  }, SAMPLE_MS).unref();
  return {
    get lagMs() {
      return lag;
    },
    stop: () => clearInterval(timer),
  };
}
