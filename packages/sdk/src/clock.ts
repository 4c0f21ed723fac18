// Time as a dependency, so retry and refresh schedules can be tested without waiting for real minutes.

export type TimerHandle = unknown;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Timers that can all be cancelled at once, so `close()` leaves nothing behind to keep a process alive. */
export class TimerSet {
  private readonly handles = new Set<TimerHandle>();

  constructor(private readonly clock: Clock) {}

  set(fn: () => void, ms: number): TimerHandle {
    const handle = this.clock.setTimeout(
      () => {
        this.handles.delete(handle);
        fn();
      },
      Math.max(0, ms),
    );
    this.handles.add(handle);
    return handle;
  }

  clear(handle: TimerHandle | undefined): void {
    if (handle === undefined) return;
    this.handles.delete(handle);
    this.clock.clearTimeout(handle);
  }

  clearAll(): void {
    for (const handle of this.handles) this.clock.clearTimeout(handle);
    this.handles.clear();
  }
}

export function sleep(timers: TimerSet, ms: number): Promise<void> {
  return new Promise((resolve) => timers.set(resolve, ms));
}
