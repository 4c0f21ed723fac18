// Keeps message changes (edits, deletions, reactions) from taking the database pool away from sends.
//
// Why: the pool (DATABASE_POOL_SIZE per pod) is shared with the send writer and the marker writer. Changes to one
// message serialize on its row lock in PostgreSQL, so in a reaction storm (every member of a big group reacting to
// one message at once) each waiting reaction would hold a pooled connection while it waits for the lock: the pool
// runs dry and sends in every other conversation wait for a connection. The bench's reaction-storm scenario showed
// it (1:1 send→ack p50 up 28 times with 10 reactors). Here, changes to the same message run one at a time on a pod
// (they would wait for each other in the database anyway) and all changes together use at most `maxConcurrent`
// connections; the rest wait in memory, bounded: a change that would wait past `maxWaitMs`, or find `maxQueue`
// already waiting, is refused with `unavailable` and a jittered `retryAfterMs`, never written.
import { unavailable } from "../errors.js";

export interface ChangeGateOptions {
  /** Changes running at once on this pod (connections they may hold). */
  maxConcurrent: number;
  /** Changes waiting at once; past it a change is refused at once. */
  maxQueue: number;
  /** Longest wait before running; a change that waited longer is refused without running. */
  maxWaitMs: number;
  /** Jittered retry hint of a refusal. */
  retryAfter?: { min: number; max: number };
  random?: () => number;
}

interface Waiting {
  key: string;
  since: number;
  start: () => void;
  refuse: () => void;
}

export class ChangeGate {
  private readonly waiting: Waiting[] = [];
  private readonly runningKeys = new Set<string>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: ChangeGateOptions) {
    // Expires waiters that no finishing change got to (a stuck database): they answer instead of hanging.
    this.timer = setInterval(() => this.pump(), Math.max(50, Math.floor(options.maxWaitMs / 4)));
    this.timer.unref();
  }

  /** Runs `task` once no other change of `key` runs on this pod and a slot is free; rejects `unavailable` if not soon. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    if (this.waiting.length >= this.options.maxQueue) return Promise.reject(this.refusal());
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({
        key,
        since: Date.now(),
        start: () => {
          this.runningKeys.add(key);
          task()
            .then(resolve, reject)
            .finally(() => {
              this.runningKeys.delete(key);
              this.pump();
            });
        },
        refuse: () => reject(this.refusal()),
      });
      this.pump();
    });
  }

  /** Changes running and waiting now (for tests and metrics). */
  get load(): { running: number; waiting: number } {
    return { running: this.runningKeys.size, waiting: this.waiting.length };
  }

  close(): void {
    clearInterval(this.timer);
  }

  private pump(): void {
    const now = Date.now();
    for (let i = 0; i < this.waiting.length;) {
      const w = this.waiting[i]!;
      if (now - w.since > this.options.maxWaitMs) {
        this.waiting.splice(i, 1);
        w.refuse();
      } else if (this.runningKeys.size < this.options.maxConcurrent && !this.runningKeys.has(w.key)) {
        this.waiting.splice(i, 1);
        w.start();
      } else i++;
    }
  }

  private refusal() {
    const { min, max } = this.options.retryAfter ?? { min: 500, max: 1500 };
    const random = this.options.random ?? Math.random;
    return unavailable("too many message changes at once, retry later", {
      retryAfterMs: Math.round(min + random() * (max - min)),
    });
  }
}
