// createGateway wires one gateway from its dependencies: HTTP, Socket.IO, the adapter, the chat domain and the
// handlers. It never reads the environment and never listens: main.ts does both, and tests build gateways directly.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { AccessTokens } from "./auth/access-tokens.js";
import { AccountDeletion } from "./auth/account-deletion.js";
import { Accounts, refreshSuccessorKey } from "./auth/accounts.js";
import { createAuthentication } from "./auth/authentication.js";
import { startRefreshTokenCleanup } from "./auth/token-cleanup.js";
import { Attachments, deleteAttachmentsOfMessage } from "./attachments/attachments.js";
import { startUploadCleanup } from "./attachments/cleanup.js";
import { createStorage, DiskStorage, storageOrigin } from "./attachments/storage.js";
import { Blocks } from "./chat/blocks.js";
import { Conversations } from "./chat/conversations.js";
import { MessageRequests } from "./chat/message-requests.js";
import { MarkerWriter } from "./chat/marker-writer.js";
import { MessageChanges } from "./chat/message-changes.js";
import { ChangeAnnouncer } from "./chat/change-announcer.js";
import { ChangeGate } from "./chat/change-gate.js";
import { MessageWriter } from "./chat/message-writer.js";
import { announceTombstones } from "./chat/sender-tombstones.js";
import { Messages } from "./chat/messages.js";
import { MessageSearch } from "./chat/search.js";
import { ReceiptAnnouncer } from "./chat/receipt-announcer.js";
import type { Config } from "./config.js";
import type { Database } from "./db/client.js";
import { Reads } from "./db/reads.js";
import { createHttpServer } from "./http/http-server.js";
import { createOperationsServer } from "./http/operations.js";
import { accountRoutes } from "./http/routes/account-routes.js";
import { adminRoutes } from "./http/routes/admin-routes.js";
import { attachmentRoutes, diskFileRoutes } from "./http/routes/attachment-routes.js";
import { consentRoutes } from "./http/routes/consent-routes.js";
import { messageChangeRoutes } from "./http/routes/message-change-routes.js";
import { pushRoutes } from "./http/routes/push-routes.js";
import { reportRoutes } from "./http/routes/report-routes.js";
import { searchRoutes } from "./http/routes/search-routes.js";
import { servicePublisher } from "./http/routes/service-routes.js";
import { drainGateway } from "./lifecycle/drain.js";
import { createRateLimiters } from "./limits/rate-limits.js";
import { GatewayMetrics } from "./observability/metrics.js";
import { createPresence } from "./presence/index.js";
import { createPush } from "./push/index.js";
import { userRoom } from "@chat-gateway/protocol";
import { adapterModeFor, createRedisAdapter, type AdapterMode } from "./realtime/adapter.js";
import { PublishBacklog } from "./realtime/publish-backlog.js";
import { guardSocketBuffers } from "./realtime/buffer-guard.js";
import { EventRouter, registerChatHandlers } from "./realtime/handlers.js";
import { registerMessageChangeHandlers } from "./realtime/message-change-handlers.js";
import { LiveResync, resyncAfterRedisOutage } from "./realtime/resync.js";
import { socketNotifier } from "./realtime/notifier.js";
import { originPolicy } from "./realtime/origins.js";
import type { RedisConnections } from "./realtime/redis.js";
import { membershipSignals } from "./realtime/membership-signals.js";
import { endSession, endUserSockets, manageSessionLifetime } from "./realtime/session-lifetime.js";
import { capSocketsPerUser } from "./realtime/socket-cap.js";
import { createSocketServer, type GatewayServer, type GatewaySocket } from "./realtime/socket-server.js";
import { type StallWatch, watchEventLoopStalls } from "./realtime/stall-watch.js";
import { watchLoopLag } from "./limits/loop-lag.js";
import { registerTyping } from "./realtime/typing.js";
import { createSafety } from "./safety/index.js";

export interface GatewayDeps {
  database: Database;
  /** Absent: one node, in-memory adapter. */
  redis?: RedisConnections | undefined;
  log: Logger;
  /** Check every HTTP answer against its schema in the OpenAPI document (the in-process tests). @default false */
  checkAnswers?: boolean | undefined;
}

export interface Gateway {
  http: FastifyInstance;
  io: GatewayServer;
  adapterMode: AdapterMode;
  metrics: GatewayMetrics;
  /** The client events this gateway handles (every other event name is ignored). */
  clientEvents(): string[];
  /** The internal /metrics, /healthz, /readyz server when METRICS_PORT is set (not listening: main.ts does that). */
  operations: FastifyInstance | undefined;
  /** Fail readiness, tell clients to reconnect elsewhere, finish in-flight sends, close everything. */
  drain(timeoutMs: number): Promise<void>;
}

// dist/web beside the compiled app, or the built page when running src/ through tsx.
const WEB_ROOTS = [new URL("./web/", import.meta.url), new URL("../dist/web/", import.meta.url)].map((u) =>
  fileURLToPath(u),
);

export async function createGateway(deps: GatewayDeps, config: Readonly<Config>): Promise<Gateway> {
  const { database, redis, log } = deps;
  const db = database.prisma;
  const metrics = new GatewayMetrics();
  // History, search, user search, conversation lists and sync go to the read replica when there is one (db/reads.ts).
  const reads = new Reads(db, database.replica?.prisma, {
    log,
    onRead: (read, source, reason) => metrics.dbRead(read, source, reason),
  });
  const origins = originPolicy(config.CORS_ORIGINS);
  const limits = createRateLimiters(
    {
      enabled: config.RATE_LIMITS,
      sendPerSec: config.RATE_LIMIT_SEND_PER_SEC,
      loginPerMin: config.RATE_LIMIT_LOGIN_PER_MIN,
      loginFailuresPerAccount: config.RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT,
      refreshPerMin: config.RATE_LIMIT_REFRESH_PER_MIN,
      servicePerSec: config.RATE_LIMIT_SERVICE_PER_SEC,
      eventsPerSec: config.RATE_LIMIT_EVENTS_PER_SEC,
      httpPerMin: config.RATE_LIMIT_HTTP_PER_MIN,
      groupsPerMin: config.RATE_LIMIT_GROUPS_PER_MIN,
      searchPerMin: config.RATE_LIMIT_SEARCH_PER_MIN,
      reportsPerHour: config.RATE_LIMIT_REPORTS_PER_HOUR,
      redisTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
      onRedisTimeout: () => metrics.redisFailures.inc({ client: "pub", op: "rate_limit_timeout" }),
    },
    redis && { client: redis.pub, keyPrefix: redis.names.rateLimit },
  );
  const tokens = new AccessTokens({
    secret: config.JWT_SECRET,
    serviceSecret: config.SERVICE_JWT_SECRET,
    serviceKeys: config.SERVICE_KEYS,
    serviceMaxTtlSeconds: config.SERVICE_TOKEN_MAX_TTL_S,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    ttlSeconds: config.ACCESS_TOKEN_TTL,
  });
  const tokenCleanup = startRefreshTokenCleanup({
    sql: database.sql,
    intervalMs: config.REFRESH_TOKEN_CLEANUP_MS,
    onError: (err) => log.warn({ err }, "could not delete expired refresh tokens"),
  });
  const accounts = new Accounts(
    db,
    tokens,
    {
      ttlSeconds: config.REFRESH_TOKEN_TTL,
      reuseGraceSeconds: config.REFRESH_REUSE_GRACE_S,
      successorKey: refreshSuccessorKey(config.JWT_SECRET),
    },
    database.sql,
  );
  const auth = await createAuthentication(config, { db, sql: database.sql, tokens, accounts });
  const deletion = new AccountDeletion(db, accounts, {
    messages: config.ACCOUNT_DELETION_MESSAGES,
    maxTokenAgeSeconds: config.ACCOUNT_DELETION_MAX_TOKEN_AGE_S,
  });

  let draining = false;
  const readiness = async () => {
    // A writer stuck on the database (a batch in flight, or a send queued, past WRITER_STUCK_MS) fails
    // readiness too, so the load balancer stops sending new clients to a pod that can only refuse their sends.
    const checks: Record<string, boolean> = { notDraining: !draining, writer: !writer.health().stuck };
    const probe = async (name: string, ping: () => Promise<void>) => {
      checks[name] = await ping().then(
        () => true,
        () => false,
      );
      metrics.dependencyUp.set({ dependency: name }, checks[name] ? 1 : 0);
    };
    await Promise.all([
      probe("database", () => database.ping()),
      redis ? probe("redis", () => redis.ping()) : Promise.resolve(),
    ]);
    return { ready: Object.values(checks).every(Boolean), checks };
  };

  // The notifier needs the Socket.IO server, which needs the HTTP server, which needs the domain: the getter is
  // only called once sockets exist.
  const adapterMode: AdapterMode = redis ? adapterModeFor(redis, config.REDIS_ADAPTER) : "memory";
  const notifier = socketNotifier(() => server, {
    togetherFromUsers: adapterMode === "sharded" ? config.FANOUT_SHARED_CHANNEL_MIN_USERS : 2,
  });
  const loopLag = watchLoopLag();
  const publishBacklog = new PublishBacklog();
  const writePath = database.writerSql ?? database.sql;
  const writer = new MessageWriter(writePath, {
    maxQueue: config.WRITER_MAX_QUEUE,
    maxWaitMs: config.WRITER_MAX_WAIT_MS,
    stuckAfterMs: config.WRITER_STUCK_MS,
    // PGlite is one connection: a second batch in flight would only queue behind the first.
    concurrency: database.kind === "pglite" ? 1 : config.WRITER_CONCURRENCY,
    backlogs: [
      { reason: "loop_lag", gauge: loopLag, maxMs: config.WRITER_MAX_LOOP_LAG_MS },
      { reason: "publish_lag", gauge: publishBacklog, maxMs: config.WRITER_MAX_PUBLISH_LAG_MS },
    ],
  });
  const markerWriter = new MarkerWriter(writePath, {
    smallAudienceMax: config.RECEIPTS_PER_MEMBER_MAX_MEMBERS,
  });
  const receipts = new ReceiptAnnouncer(database.sql, notifier, {
    flushMs: config.RECEIPTS_FLUSH_MS,
    detailMaxMembers: config.RECEIPTS_DETAIL_MAX_MEMBERS,
    onError: (err) => log.warn({ err }, "could not announce read/delivery markers"),
  });
  markerWriter.onMoved((moved) => receipts.announce(moved));
  const conversations = new Conversations(
    db,
    notifier,
    config.GROUP_MAX_MEMBERS,
    config.MAX_CONVERSATIONS_PER_USER,
    reads,
  );
  // A removed member's cached membership (typing, presence watches) ends on every pod.
  const membership = membershipSignals({ crossPod: redis !== undefined, log });
  conversations.onMemberRemoved((conversationId, userId) => membership.removed(conversationId, userId));
  const safety = createSafety({ db, accounts, log }, config);
  const storage = createStorage(config);
  const attachments = new Attachments(database.sql, storage, {
    maxBytes: config.UPLOAD_MAX_BYTES,
    allowedTypes: config.UPLOAD_ALLOWED_TYPES,
    uploadUrlTtlS: config.UPLOAD_URL_TTL_S,
    downloadUrlTtlS: config.ATTACHMENT_URL_TTL_S,
    unattachedTtlS: config.UPLOAD_UNATTACHED_TTL_S,
    maxPending: config.UPLOAD_MAX_PENDING,
  });
  const uploadCleanup = startUploadCleanup({
    attachments,
    intervalMs: config.UPLOAD_CLEANUP_INTERVAL_MS,
    onError: (err) => log.warn({ err }, "could not delete unattached uploads"),
  });
  const messages = new Messages(
    db,
    writer,
    markerWriter,
    conversations,
    notifier,
    config.MESSAGE_MAX_CHARS,
    attachments,
    reads,
  );
  // Edits, deletions and reactions (and, through deleteMessage, the operator API's deletions).
  const changeAnnouncer = new ChangeAnnouncer(notifier, {
    windowMs: config.REACTIONS_FLUSH_MS,
    onError: (err) => log.warn({ err }, "could not announce gathered reactions; members get them by sync"),
  });
  const changes = new MessageChanges({
    database,
    announcer: changeAnnouncer,
    editWindowS: config.MESSAGE_EDIT_WINDOW_S,
    maxChars: config.MESSAGE_MAX_CHARS,
    // A quarter of the pool at most, so a reaction storm never starves the send writer of connections.
    gate: new ChangeGate({
      maxConcurrent: Math.max(1, Math.floor(config.DATABASE_POOL_SIZE / 4)),
      maxQueue: 1000,
      maxWaitMs: 2000,
    }),
  });
  // A deleted message's files go once the deletion committed (by its sender, a group admin or an operator); a failure
  // leaves the rows for the upload cleanup job, which also sweeps files of deleted messages.
  changes.onChanged((message, kind) => {
    if (kind !== "delete") return;
    deleteAttachmentsOfMessage(attachments, message.id).catch((err: unknown) =>
      log.warn({ err, messageId: message.id }, "could not delete a deleted message's files; the cleanup job retries"),
    );
  });
  // A deleted account's tombstones reach online members like any deletion, and its files go (after the commit).
  deletion.onErased((userId, tombstoned) => {
    announceTombstones(database.sql, notifier, tombstoned).catch((err: unknown) =>
      log.warn({ err }, "could not announce a deleted account's tombstones; members see them on sync"),
    );
    attachments
      .deleteOfUploader(userId)
      .catch((err: unknown) =>
        log.warn({ err }, "could not delete a deleted account's files; the cleanup job retries attached ones"),
      );
  });
  const requests = new MessageRequests(db, conversations);
  const blocks = new Blocks(db);
  // onStored runs right after the fan-out emit, so this is commit-to-emit on this pod.
  messages.onStored((message, _members, { repeated }) => {
    if (repeated) return;
    metrics.messagesStored.inc();
    metrics.storeToEmit.observe(Math.max(0, Date.now() - Date.parse(message.createdAt)) / 1000);
  });
  metrics.watchWriter(writer);
  metrics.watchDatabasePool(() => database.poolStats?.());
  metrics.watchReplicaPool(() => database.replica?.poolStats());
  const push = createPush({ db, log, registry: metrics.registry }, config);
  messages.onStored((message, members) => push.onStored(message, members));
  changes.onChanged((message, kind, actorId, reaction) => {
    if (kind === "react" && reaction !== undefined) push.onReacted(message, actorId, reaction);
  });
  if (redis) metrics.watchRedis({ pub: redis.pub, sub: redis.sub });

  const http = createHttpServer({
    db,
    reads,
    accounts,
    conversations,
    messages,
    limits,
    auth,
    ownAccounts: config.OWN_ACCOUNTS,
    apiDocs: config.API_DOCS,
    checkAnswers: deps.checkAnswers,
    log,
    metrics,
    origins,
    bodyLimit: config.HTTP_BODY_LIMIT,
    trustProxy: config.TRUST_PROXY,
    requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
    webRoot: WEB_ROOTS.find((root) => existsSync(join(root, "index.html"))),
    readiness,
    metricsOnMainPort: config.METRICS_PORT === undefined,
    publishAsService: servicePublisher({ db, messages }),
    extraRoutes: [
      (api) => pushRoutes(api, push),
      (api) => attachmentRoutes(api, attachments),
      (api) => accountRoutes(api, { deletion, limits }),
      (api) => searchRoutes(api, { search: new MessageSearch(db, conversations, reads), limits }),
      (api) => messageChangeRoutes(api, { changes, limits }),
      (api) => consentRoutes(api, { requests, blocks }),
      (api) => reportRoutes(api, { reports: safety.reports, limits }),
      (api) => adminRoutes(api, { ...safety, changes }),
    ],
    storageOrigin: storageOrigin(config),
  });
  if (storage instanceof DiskStorage) diskFileRoutes(http, storage);

  const server = createSocketServer(http.server, {
    maxPayloadBytes: config.SOCKET_MAX_PAYLOAD,
    origins,
    auth,
    log,
  });
  // Client events, registered once for every socket.
  const router = new EventRouter({ limits, log, metrics });
  registerChatHandlers(router, { reads, messages, limits });
  registerMessageChangeHandlers(router, { changes, limits });
  const stopTyping = registerTyping(router, {
    db,
    conversations,
    notifier,
    onMemberRemoved: (listener) => membership.onRemoved(listener),
  });
  const sessions = manageSessionLifetime(router, {
    ttlSeconds: tokens.ttlSeconds,
    authenticateUser: (token) => auth.user(token),
  });
  const presence = await createPresence({
    db,
    router,
    redis,
    log,
    heartbeatMs: config.PRESENCE_HEARTBEAT_MS,
    ttlMs: config.PRESENCE_TTL_MS,
    readTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
    failures: metrics.redisFailures,
  });
  // Presence watches are checked when made; these are the changes that can take that permission away.
  conversations.onMembershipEnded((userId, formerCoMembers) => presence.recheck(userId, formerCoMembers));
  blocks.onBlocked((blockerId, blockedId) => presence.recheck(blockerId, [blockedId]));
  membership.onRemoved((_conversationId, userId) => presence.revisit(userId));
  let stallWatch: StallWatch | undefined;
  if (redis) {
    const resync = new LiveResync(server, log, metrics.resyncs, () => redis.pub.isReady);
    const { adapter } = createRedisAdapter(redis, config.REDIS_ADAPTER, {
      resync,
      log,
      failures: metrics.redisFailures,
      received: metrics.adapterMessagesReceived,
      backlog: publishBacklog,
    });
    server.adapter(adapter);
    resyncAfterRedisOutage(redis, resync);
    stallWatch = watchEventLoopStalls(config.EVENT_LOOP_STALL_MS, (blockedMs) => {
      log.warn({ blockedMs }, "event loop stalled: resyncing this pod's sockets");
      resync.localSockets("event_loop_stall");
    });
  }

  membership.listen(server);

  const bufferGuard = guardSocketBuffers(server, {
    maxBytes: config.SOCKET_MAX_BUFFERED_BYTES,
    log,
    onOverflow: () => metrics.socketBufferOverflows.inc(),
  });

  // One listener of each kind shared by every socket (Socket.IO calls them with the socket as `this`), so an idle
  // connection carries no closures of ours.
  function onDisconnect(this: GatewaySocket, reason: string): void {
    metrics.socketsConnected.dec();
    metrics.socketDisconnects.inc({ reason });
    sessions.forget(this);
    presence.detach(this);
  }
  const capSockets = capSocketsPerUser(server, config.MAX_SOCKETS_PER_USER);
  server.on("connection", (socket) => {
    capSockets(socket);
    metrics.socketsConnected.inc();
    metrics.socketConnections.inc();
    socket.on("disconnect", onDisconnect);
    router.attach(socket);
    sessions.watch(socket);
    presence.attach(socket);
  });

  // Logout or a revoked refresh family ends that login's live sockets, on whichever pod they are; sessionId null (all
  // sessions revoked, the account deleted) ends every socket of the user.
  accounts.onSessionRevoked((userId, sessionId, reason) => {
    void server
      .in(userRoom(userId))
      .fetchSockets()
      .then((sockets) => {
        for (const s of sockets) if (sessionId === null || s.data.sessionId === sessionId) endSession(s, reason);
      })
      .catch((err: unknown) => {
        // Redis slow or away: the other pods' answers did not come in time. Those sockets still end by their access
        // token's expiry at the latest, since auth:refresh checks that the session is active.
        metrics.redisFailures.inc({ client: "pub", op: "fetch_sockets" });
        log.warn({ err }, "could not end revoked sessions");
      });
  });
  // A suspension ends every socket of the user the same way (its sessions are refused from then on anyway).
  safety.suspensions.onSuspended((userId) => {
    endUserSockets(server, userId, "suspended", () => true).catch((err: unknown) => {
      metrics.redisFailures.inc({ client: "pub", op: "fetch_sockets" });
      log.warn({ err }, "could not end a suspended user's sockets");
    });
  });

  const operations =
    config.METRICS_PORT === undefined ? undefined : createOperationsServer({ log, metrics, readiness });

  return {
    http,
    operations,
    io: server,
    adapterMode,
    metrics,
    clientEvents: () => router.events(),
    async drain(timeoutMs: number) {
      draining = true;
      metrics.draining.set(1);
      presence.stop();
      tokenCleanup.stop();
      uploadCleanup.stop();
      stopTyping();
      bufferGuard.stop();
      stallWatch?.stop();
      loopLag.stop();
      // Queued markers are committed and acked before their sockets are let go, like queued sends; gathered reactions
      // are announced.
      const writers = {
        idle: () => {
          changeAnnouncer.flushAll();
          return Promise.all([writer.idle(), markerWriter.idle()]).then(() => undefined);
        },
      };
      await drainGateway({ io: server, http, writer: writers, log }, { timeoutMs });
      // After the writer is idle, so the last stored messages are scheduled too.
      await push.close();
      await safety.close();
    },
  };
}
