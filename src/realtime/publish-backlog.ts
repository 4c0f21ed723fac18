// How far behind this pod's fan-out is: the age of the oldest adapter publish Redis has not answered yet. Past
// capacity Redis (or the link to it) is a queue too: the writer can commit more sends than the pod can publish, and
// every one admitted then waits behind the publishes ahead of it until node-redis times them out, and a publish that
// times out sends its recipients back to `sync`. The writer refuses new sends while this age is over its limit
// (WRITER_MAX_PUBLISH_LAG_MS), so what is admitted can still be fanned out in time.
//
// Cost: O(1) per publish. Publishes are kept in the order they started; one that settles is only marked, and the
// settled ones at the head are dropped when the age is read.

interface InFlight {
  startedAt: number;
  settled: boolean;
}

export class PublishBacklog {
  private entries: InFlight[] = [];
  private head = 0;

  /** Call when a publish is sent; call `settle` on what it returns when Redis answers or the publish fails. */
  begin(): { settle(): void } {
    const entry: InFlight = { startedAt: performance.now(), settled: false };
    this.entries.push(entry);
    return {
      settle: () => {
        entry.settled = true;
      },
    };
  }

  /** Age of the oldest publish still waiting for Redis, ms (0 when none is). */
  get lagMs(): number {
    while (this.head < this.entries.length && this.entries[this.head]!.settled) this.head++;
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
      return 0;
    }
    // Drop the settled head now and then, so the array does not grow with every publish ever made.
    if (this.head > 1024 && this.head > this.entries.length / 2) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return performance.now() - this.entries[this.head]!.startedAt;
  }

  /** Publishes waiting for Redis (settled ones behind an unsettled head count until it settles). */
  get pending(): number {
    return this.entries.length - this.head;
  }
}
