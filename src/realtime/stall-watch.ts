// An event loop blocked for seconds is a lost-traffic risk even though no connection broke: the subscriber's
// messages pile up in Redis (which closes it past client-output-buffer-limit), and commands queued meanwhile time out
// in node-redis. The pieces that can report a loss do; this is the backstop for what none of them saw. A timer that
// should tick every CHECK_MS measures how late it fired: the lateness is how long the loop was blocked.
import { performance } from "node:perf_hooks";

const CHECK_MS = 250;

export interface StallWatch {
  stop(): void;
}

/** Calls `onStall` with the blocked time whenever the event loop was blocked longer than `thresholdMs`. */
export function watchEventLoopStalls(thresholdMs: number, onStall: (blockedMs: number) => void): StallWatch {
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const blocked = now - last - CHECK_MS;
    last = now;
    if (blocked > thresholdMs) onStall(Math.round(blocked));
  }, CHECK_MS).unref();
  return { stop: () => clearInterval(timer) };
}
