// Prometheus metrics on /metrics (prom-client), one registry per gateway so tests can run several in one process.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The writer's own times, sub-millisecond (an idle batch) to a second (a deadline refuses sooner). */
const WRITER_SECONDS_BUCKETS = [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1];

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly socketsConnected = new Gauge({
    name: "chat_sockets_connected",
    help: "Socket.IO connections open on this pod",
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: "chat_socket_events_total",
    help: "Client events handled, by event and outcome (ok or error code)",
    labelNames: ["event", "outcome"] as const,
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: "chat_http_requests_total",
    help: "HTTP requests, by route and status",
    labelNames: ["route", "method", "status"] as const,
    registers: [this.registry],
  });
  readonly messagesStored = new Counter({
    name: "chat_messages_stored_total",
    help: "Messages committed to the database by this pod",
    registers: [this.registry],
  });
  readonly sendToAck = new Histogram({
    name: "chat_send_to_ack_seconds",
    help: "From a message:send arriving to its ack (includes the batched commit)",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly writerPending = new Gauge({
    name: "chat_message_writer_pending",
    help: "Sends queued or in flight in the batched writer",
    registers: [this.registry],
    collect: () => {
      const pending = this.sources.writerPending?.();
      if (pending !== undefined) this.writerPending.set(pending);
    },
  });
  readonly writerOldestQueued = new Gauge({
    name: "chat_message_writer_oldest_queued_seconds",
    help: "Age of the oldest send waiting in the batched writer's queue (0 when empty)",
    registers: [this.registry],
    collect: () => {
      const ms = this.sources.writerOldestQueuedMs?.();
      if (ms !== undefined) this.writerOldestQueued.set(ms / 1000);
    },
  });
  readonly writerRefused = new Counter({
    name: "chat_message_writer_refused_total",
    help: "Sends refused for capacity (unavailable with retryAfterMs), by reason: queue_full, wait, expired, loop_lag, publish_lag",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly writerBatchSeconds = new Histogram({
    name: "chat_message_writer_batch_seconds",
    help: "One write batch's statement, from sending it to its rows being back in the pod",
    buckets: WRITER_SECONDS_BUCKETS,
    registers: [this.registry],
  });
  readonly writerBatchSize = new Histogram({
    name: "chat_message_writer_batch_size",
    help: "Sends in one write batch",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });
  readonly writerQueueWait = new Histogram({
    name: "chat_message_writer_queue_wait_seconds",
    help: "A send's wait in the writer's queue before its batch started",
    buckets: WRITER_SECONDS_BUCKETS,
    registers: [this.registry],
  });
  readonly socketBufferOverflows = new Counter({
    name: "chat_socket_buffer_overflow_disconnects_total",
    help: "Sockets disconnected because too much output was waiting for them (a client that stopped reading)",
    registers: [this.registry],
  });
  readonly dbPoolConnections = new Gauge({
    name: "chat_db_pool_connections",
    help: "Database pool connections, total (open or opening) and idle; absent with embedded PGlite",
    labelNames: ["state"] as const,
    registers: [this.registry],
    collect: () => {
      const stats = this.sources.dbPool?.();
      if (stats === undefined) return;
      this.dbPoolConnections.set({ state: "total" }, stats.total);
      this.dbPoolConnections.set({ state: "idle" }, stats.idle);
    },
  });
  readonly dbPoolWaiting = new Gauge({
    name: "chat_db_pool_waiting",
    help: "Queries queued for a database pool connection (all connections busy)",
    registers: [this.registry],
    collect: () => {
      const stats = this.sources.dbPool?.();
      if (stats !== undefined) this.dbPoolWaiting.set(stats.waiting);
    },
  });
  readonly dbReads = new Counter({
    name: "chat_db_reads_total",
    help: "Reads that may go to the read replica (DATABASE_READ_URL), by read, by the server that answered (replica or primary), and for the primary why: behind (the replica had not caught up), error (the replica failed), down (resting after a failure); only with a replica",
    labelNames: ["read", "source", "reason"] as const,
    registers: [this.registry],
  });
  readonly dbReplicaPoolConnections = new Gauge({
    name: "chat_db_replica_pool_connections",
    help: "Read replica pool connections, total (open or opening) and idle; absent without DATABASE_READ_URL",
    labelNames: ["state"] as const,
    registers: [this.registry],
    collect: () => {
      const stats = this.sources.replicaPool?.();
      if (stats === undefined) return;
      this.dbReplicaPoolConnections.set({ state: "total" }, stats.total);
      this.dbReplicaPoolConnections.set({ state: "idle" }, stats.idle);
    },
  });
  readonly storeToEmit = new Histogram({
    name: "chat_store_to_emit_seconds",
    help: "From a message's created_at (database clock, inside the commit) to its fan-out emit on this pod",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly socketConnections = new Counter({
    name: "chat_socket_connections_total",
    help: "Socket.IO connections accepted by this pod",
    registers: [this.registry],
  });
  readonly socketDisconnects = new Counter({
    name: "chat_socket_disconnects_total",
    help: "Socket.IO disconnections, by Socket.IO reason",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly redisReconnects = new Counter({
    name: "chat_redis_reconnects_total",
    help: "Reconnection attempts of a Redis connection (pub or sub)",
    labelNames: ["client"] as const,
    registers: [this.registry],
  });
  readonly draining = new Gauge({
    name: "chat_draining",
    help: "1 while this pod is draining",
    registers: [this.registry],
  });
  readonly dependencyUp = new Gauge({
    name: "chat_dependency_up",
    help: "1 when a dependency answered its last readiness check",
    labelNames: ["dependency"] as const,
    registers: [this.registry],
  });

  readonly resyncs = new Counter({
    name: "chat_resyncs_total",
    help: "Times this pod told sockets to sync because live traffic may have been lost, by reason",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly adapterMessagesReceived = new Counter({
    name: "chat_adapter_messages_received_total",
    help: "Socket.IO adapter pub/sub messages this pod received from Redis, by channel (shared: the one every pod reads; room: a one-room channel of the sharded adapter, or a one-room emit of the classic one; other: requests and responses)",
    labelNames: ["channel"] as const,
    registers: [this.registry],
  });
  readonly redisFailures = new Counter({
    name: "chat_redis_command_failures_total",
    help: "Redis commands of the live path that failed or timed out, by client and operation",
    labelNames: ["client", "op"] as const,
    registers: [this.registry],
  });
  readonly uncaughtErrors = new Counter({
    name: "chat_uncaught_errors_total",
    help: "Errors that reached the process-level safety net (unhandledRejection, uncaughtException)",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });

  /** Read at scrape time, set once the parts they read exist. */
  private readonly sources: {
    writerPending?: () => number;
    writerOldestQueuedMs?: () => number;
    dbPool?: () => { total: number; idle: number; waiting: number } | undefined;
    replicaPool?: () => { total: number; idle: number; waiting: number } | undefined;
  } = {};

  constructor() {
    // Includes nodejs_eventloop_lag_seconds and the monitorEventLoopDelay percentiles (nodejs_eventloop_lag_p99_seconds).
    collectDefaultMetrics({ register: this.registry });
  }

  /** Reports the writer's queue depth and oldest queued send at every scrape, and counts its refusals. */
  watchWriter(writer: {
    readonly pending: number;
    health(): { oldestQueuedMs: number };
    onRefused(listener: (reason: string) => void): void;
    onBatch(listener: (report: { size: number; waitsMs: number[]; statementMs: number }) => void): void;
  }): void {
    this.sources.writerPending = () => writer.pending;
    this.sources.writerOldestQueuedMs = () => writer.health().oldestQueuedMs;
    for (const reason of ["queue_full", "wait", "expired", "loop_lag", "publish_lag"])
      this.writerRefused.inc({ reason }, 0);
    writer.onRefused((reason) => this.writerRefused.inc({ reason }));
    writer.onBatch(({ size, waitsMs, statementMs }) => {
      this.writerBatchSeconds.observe(statementMs / 1000);
      this.writerBatchSize.observe(size);
      for (const ms of waitsMs) this.writerQueueWait.observe(ms / 1000);
    });
  }

  /** Reports the database pool's connections and waiting queries at every scrape (no-op for PGlite). */
  watchDatabasePool(stats: () => { total: number; idle: number; waiting: number } | undefined): void {
    this.sources.dbPool = stats;
  }

  /** Reports the read replica pool's connections at every scrape (nothing without a replica). */
  watchReplicaPool(stats: () => { total: number; idle: number; waiting: number } | undefined): void {
    this.sources.replicaPool = stats;
  }

  /** Counts a read that could go to the replica: where it went, and why the primary when it did. */
  dbRead(read: string, source: "replica" | "primary", reason?: string): void {
    this.dbReads.inc({ read, source, reason: reason ?? "" });
  }

  /** Counts reconnects of node-redis clients (their "reconnecting" event). */
  watchRedis(clients: Record<string, { on(event: "reconnecting", listener: () => void): unknown }>): void {
    for (const [client, redis] of Object.entries(clients)) {
      this.redisReconnects.inc({ client }, 0);
      redis.on("reconnecting", () => this.redisReconnects.inc({ client }));
    }
  }

  event(event: string, outcome: string): void {
    this.events.inc({ event, outcome });
  }
}
