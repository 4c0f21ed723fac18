// The two queues behind push: BullMQ when Redis is there (jobs live in Redis, so a pending notification survives
// the crash of the pod that scheduled it, and any pod's worker runs it), and an in-process equivalent for a single
// node. Both give the same semantics:
// - one pending decision per (user, conversation): a burst of messages collapses into one job, run once the grace
//   period after the first message has passed; a message arriving while that job runs schedules the next one;
// - each delivery (one subscription) is its own job, retried with exponential backoff on transient failures, so
//   one dead push service never holds back the others.
import { type ConnectionOptions, type Job, Queue, Worker } from "bullmq";
import { Cluster } from "ioredis";
import type { Logger } from "pino";
import { parseClusterNodes } from "../realtime/cluster-nodes.js";
import type { PushService } from "./push-service.js";
import { isRetryable, isTransientPushFailure } from "./delivery-outcome.js";
import type { DecideJob, Delivery, ReactionJob } from "./types.js";

export interface PushQueue {
  schedule(job: DecideJob): Promise<void>;
  /** PUSH_ON_REACTION: one pending decision per (author, message); reactions arriving meanwhile collapse into it. */
  scheduleReaction(job: ReactionJob): Promise<void>;
  /** Stops taking work and waits for what is running (bounded by the caller's drain deadline). */
  close(): Promise<void>;
}

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
}

const MAX_BACKOFF_MS = 10 * 60_000;
const dedupKey = (job: DecideJob) => `${job.userId}_${job.conversationId}`;
const reactionKey = (job: ReactionJob) => `${job.userId}_${job.messageId}_reaction`;
// The same notification (subscription, conversation, newest seq; for reactions: message and its change number) is
// sent once even when two decisions overlap.
const deliveryKey = (d: Delivery) =>
  d.notification.type === "reaction"
    ? `${d.subscriptionId}_${d.notification.messageId}_reaction_${d.seq}`
    : `${d.subscriptionId}_${d.conversationId}_${d.seq}`;
const DELIVERY_KEY_TTL_MS = 3600_000;

export function backoffMs(policy: RetryPolicy, attemptsMade: number): number {
  const exponential = Math.min(MAX_BACKOFF_MS, policy.baseDelayMs * 2 ** Math.max(0, attemptsMade - 1));
  // Jitter keeps many subscriptions of one recovering service from retrying in lockstep.
  return Math.round(exponential * (0.75 + Math.random() * 0.5));
}

type JobData =
  { kind: "decide"; job: DecideJob } | { kind: "reaction"; job: ReactionJob } | { kind: "deliver"; delivery: Delivery };

/** Where the queue lives: one Redis, or a Redis Cluster through its seed nodes. */
export type QueueRedis = { url: string } | { clusterNodes: string[] };

/**
 * BullMQ's connection: options for one Redis (BullMQ makes and closes its connections), or an ioredis Cluster it
 * shares, which the returned `close` ends. On a cluster the queue's prefix must be hash-tagged (config.ts checks).
 */
function bullConnection(redis: QueueRedis): { connection: ConnectionOptions; close(): Promise<void> } {
  if ("url" in redis) return { connection: { url: redis.url, maxRetriesPerRequest: null }, close: async () => {} };
  const seeds = parseClusterNodes(redis.clusterNodes);
  if (typeof seeds === "string") throw new Error(`REDIS_CLUSTER_NODES: ${seeds}`);
  const { nodes, ...credentials } = seeds;
  // BullMQ's workers block on Redis and must wait out a failover rather than fail their commands.
  const cluster = new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: null, ...credentials } });
  return {
    connection: cluster,
    close: async () => {
      await cluster.quit().catch(() => cluster.disconnect());
    },
  };
}

export class BullPushQueue implements PushQueue {
  private readonly queue: Queue<JobData>;
  private readonly worker: Worker<JobData>;
  private readonly connections: { close(): Promise<void> }[];

  constructor(
    private readonly service: PushService,
    options: { redis: QueueRedis; prefix: string; graceMs: number; lockMs: number; retry: RetryPolicy; log: Logger },
  ) {
    const forQueue = bullConnection(options.redis);
    const forWorker = bullConnection(options.redis);
    this.connections = [forQueue, forWorker];
    this.queue = new Queue<JobData>("push", { connection: forQueue.connection, prefix: options.prefix });
    this.queue.on("error", (err) => options.log.warn({ err }, "push queue error"));
    const retry = options.retry;
    this.worker = new Worker<JobData>("push", (job) => this.process(job), {
      connection: forWorker.connection,
      prefix: options.prefix,
      concurrency: 16,
      // A job whose pod died mid-run keeps its lock until it lapses; every pod checks for such jobs this often.
      lockDuration: options.lockMs,
      stalledInterval: options.lockMs,
      settings: { backoffStrategy: (attemptsMade: number) => backoffMs(retry, attemptsMade) },
    });
    this.worker.on("error", (err) => options.log.warn({ err }, "push worker error"));
    this.worker.on("failed", (job, err) => {
      if (job?.data.kind !== "deliver" || !isTransientPushFailure(err)) {
        if (job?.data.kind !== "deliver") options.log.warn({ err }, "push decision failed");
        return;
      }
      if (job.attemptsMade >= (job.opts.attempts ?? 1)) this.service.exhausted(job.data.delivery);
    });
    this.grace = options.graceMs;
    this.retry = retry;
  }

  private readonly grace: number;
  private readonly retry: RetryPolicy;

  schedule(job: DecideJob): Promise<void> {
    return this.addDecision({ kind: "decide", job }, dedupKey(job));
  }

  scheduleReaction(job: ReactionJob): Promise<void> {
    return this.addDecision({ kind: "reaction", job }, reactionKey(job));
  }

  private async addDecision(data: Exclude<JobData, { kind: "deliver" }>, key: string): Promise<void> {
    await this.queue.add(data.kind, data, {
      delay: this.grace,
      deduplication: { id: key, keepLastIfActive: true },
      attempts: this.retry.attempts,
      backoff: { type: "custom" },
      removeOnComplete: true,
      removeOnFail: { age: 24 * 3600 },
    });
  }

  private async process(job: Job<JobData>): Promise<void> {
    const data = job.data;
    if (data.kind === "deliver") return this.service.deliver(data.delivery, job.attemptsMade + 1);
    const deliveries =
      data.kind === "reaction" ? await this.service.decideReaction(data.job) : await this.service.decide(data.job);
    await this.queue.addBulk(
      deliveries.map((delivery) => ({
        name: "deliver",
        data: { kind: "deliver" as const, delivery },
        opts: {
          // Idempotent if this decision is retried after some deliveries were added.
          jobId: deliveryKey(delivery),
          attempts: this.retry.attempts,
          backoff: { type: "custom" },
          removeOnComplete: { age: 3600 },
          removeOnFail: { age: 24 * 3600 },
        },
      })),
    );
  }

  async close(): Promise<void> {
    // Delayed and waiting jobs stay in Redis for the other pods (or this one after a restart).
    await this.worker.close();
    await this.queue.close();
    await Promise.all(this.connections.map((c) => c.close()));
  }
}

/**
 * One node, no Redis: timers and retries in memory. Pending decisions and retries do not survive a crash of the
 * node; on a graceful drain the pending decisions are run at once instead of being dropped.
 */
export class InProcessPushQueue implements PushQueue {
  private readonly pending = new Map<string, { timer: NodeJS.Timeout; decide: () => Promise<Delivery[]> }>();
  private readonly running = new Set<Promise<void>>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  /** Delivery keys already queued, with when: the in-memory twin of BullMQ's retained job ids. */
  private readonly queued = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly service: PushService,
    private readonly options: { graceMs: number; retry: RetryPolicy; log: Logger },
  ) {}

  async schedule(job: DecideJob): Promise<void> {
    this.pend(dedupKey(job), () => this.service.decide(job));
  }

  async scheduleReaction(job: ReactionJob): Promise<void> {
    this.pend(reactionKey(job), () => this.service.decideReaction(job));
  }

  private pend(key: string, decide: () => Promise<Delivery[]>): void {
    if (this.closed || this.pending.has(key)) return;
    const timer = setTimeout(() => this.runDecision(key), this.options.graceMs);
    this.pending.set(key, { timer, decide });
  }

  private runDecision(key: string): void {
    const entry = this.pending.get(key);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    // Leaving `pending` before running: a message stored from now on schedules the next decision.
    this.pending.delete(key);
    this.track(
      this.attempt(
        () => entry.decide(),
        1,
        (deliveries) => {
          for (const delivery of deliveries) {
            if (!this.firstTime(deliveryKey(delivery))) continue;
            this.track(
              this.attempt(
                (n) => this.service.deliver(delivery, n),
                1,
                () => undefined,
                () => this.service.exhausted(delivery),
              ),
            );
          }
        },
        (err) => this.options.log.warn({ err }, "push decision failed"),
      ),
    );
  }

  private firstTime(key: string): boolean {
    const now = Date.now();
    if (this.queued.size > 10_000) {
      for (const [k, at] of this.queued) if (now - at > DELIVERY_KEY_TTL_MS) this.queued.delete(k);
    }
    if (this.queued.has(key)) return false;
    this.queued.set(key, now);
    return true;
  }

  private async attempt<T>(
    run: (attempt: number) => Promise<T>,
    attempt: number,
    onDone: (value: T) => void,
    onGiveUp: (err: unknown) => void,
  ): Promise<void> {
    try {
      onDone(await run(attempt));
    } catch (err) {
      if (!isRetryable(err) || attempt >= this.options.retry.attempts || this.closed) return onGiveUp(err);
      const timer = setTimeout(
        () => {
          this.retryTimers.delete(timer);
          this.track(this.attempt(run, attempt + 1, onDone, onGiveUp));
        },
        backoffMs(this.options.retry, attempt),
      );
      this.retryTimers.add(timer);
    }
  }

  private track(promise: Promise<void>): void {
    this.running.add(promise);
    void promise.finally(() => this.running.delete(promise));
  }

  async close(): Promise<void> {
    for (const key of [...this.pending.keys()]) this.runDecision(key);
    this.closed = true;
    for (const timer of this.retryTimers) clearTimeout(timer);
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
