// Reads the environment once, validates it, and freezes the result. A bad start lists every bad variable at once.
// Each field's default and meaning is documented here and in the README's configuration table.
import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { z } from "zod";
import { ensurePrivateDir } from "./db/private-dir.js";
import { DEFAULT_UPLOAD_TYPES } from "./attachments/types.js";
import { DEFAULT_PUSH_ENDPOINT_ALLOWLIST } from "./push/endpoint-policy.js";
import { parseClusterNodes } from "./realtime/cluster-nodes.js";
import { defaultPushQueuePrefix, hasHashTag, REDIS_PREFIX_PATTERN } from "./realtime/redis-names.js";

const bool = (fallback: "on" | "off") =>
  z
    .enum(["on", "off", "true", "false", "1", "0"])
    .default(fallback)
    .transform((v) => v === "on" || v === "true" || v === "1");

const int = (fallback: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(fallback);

const csv = z
  .string()
  .optional()
  .transform((v) =>
    (v ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  );

/** An IPv4/IPv6 address, optionally with a /prefix. */
function isIpOrCidr(value: string): boolean {
  const [address = "", prefix, extra] = value.split("/");
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

export interface ServiceKey {
  kid: string;
  secret: string;
  /** The service names (`sub`, posting as `system:<name>`) this key's tokens may use. */
  names: string[];
  /** Whether this key may sign `role: "admin"` tokens (the /v1/admin moderation API). @default false */
  admin?: boolean;
}

const KID = /^[A-Za-z0-9_.-]{1,64}$/;
const SERVICE_NAME = /^[a-z0-9_.-]{1,64}$/;

/** SERVICE_KEYS as JSON or as `kid:secret:name1|name2,...`; a string is the problem found. */
export function parseServiceKeys(value: string): ServiceKey[] | string {
  let keys: ServiceKey[];
  const text = value.trim();
  if (text.startsWith("{")) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return "not valid JSON";
    }
    if (json === null || typeof json !== "object" || Array.isArray(json)) return 'expected {"<kid>": {secret, names}}';
    keys = Object.entries(json as Record<string, unknown>).map(([kid, entry]) => {
      const e = (entry ?? {}) as { secret?: unknown; names?: unknown; admin?: unknown };
      return {
        kid,
        secret: typeof e.secret === "string" ? e.secret : "",
        names: Array.isArray(e.names) ? e.names.map(String) : [],
        ...(e.admin === true ? { admin: true } : {}),
      };
    });
  } else {
    keys = [];
    for (const entry of text
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean)) {
      const parts = entry.split(":");
      if (parts.length !== 3 && !(parts.length === 4 && parts[3] === "admin")) {
        return "each entry is kid:secret:name1|name2 (or kid:secret:names:admin)";
      }
      keys.push({
        kid: parts[0]!,
        secret: parts[1]!,
        names: parts[2]!.split("|").filter(Boolean),
        ...(parts[3] === "admin" ? { admin: true } : {}),
      });
    }
  }
  if (keys.length === 0) return "no keys";
  const kids = new Set<string>();
  for (const key of keys) {
    if (!KID.test(key.kid)) return `kid "${key.kid}": 1 to 64 of A-Z a-z 0-9 _ . -`;
    if (kids.has(key.kid)) return `kid "${key.kid}" appears twice`;
    kids.add(key.kid);
    if (key.secret.length < 32) return `kid "${key.kid}": the secret must be at least 32 characters`;
    if (key.names.length === 0 || !key.names.every((n) => SERVICE_NAME.test(n))) {
      return `kid "${key.kid}": names are 1 to 64 of a-z 0-9 _ . -, at least one`;
    }
  }
  return keys;
}

/** Whoever can answer the JWKS fetch can sign in as anyone: https, or http to this machine only. */
function isSafeKeySource(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false; // .url() reports it
  }
  if (url.protocol === "https:") return true;
  return url.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
}

/** Asymmetric JWS algorithms an external provider's tokens may use; HS* and `none` never. */
export const EXTERNAL_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "EdDSA",
] as const;
export type ExternalAlgorithm = (typeof EXTERNAL_ALGORITHMS)[number];

const EnvSchema = z.object({
  /** @default 3000 */
  PORT: int(3000, 0, 65535),
  /** @default "0.0.0.0" */
  HOST: z.string().min(1).default("0.0.0.0"),
  /** Internal port for /metrics, /healthz and /readyz (same HOST); unset: all three on PORT. 0 picks a free port. */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** The OpenAPI document and its Swagger UI at /docs (and /docs/json); `off` leaves /docs unrouted. @default on */
  API_DOCS: bool("on"),
  /** PostgreSQL URL. Unset: embedded PGlite in DATA_DIR. */
  DATABASE_URL: z.string().url().optional(),
  /** A streaming replica of DATABASE_URL (PostgreSQL only) for history, search, user search, conversation lists and
   * the bulk of sync; answers it has not caught up on come from the primary. Unset: every read on the primary. */
  DATABASE_READ_URL: z.string().url().optional(),
  /** Where the embedded database lives. @default "./data" */
  DATA_DIR: z.string().min(1).default("./data"),
  /** Pool size per gateway process for DATABASE_URL. @default 10 */
  DATABASE_POOL_SIZE: int(10, 1, 200),
  /** PostgreSQL statement_timeout of the gateway's connections, in ms (0: none). @default 5000 */
  DATABASE_STATEMENT_TIMEOUT_MS: int(5000, 0, 3_600_000),
  /** PostgreSQL lock_timeout of the gateway's connections, in ms (0: none). @default 2000 */
  DATABASE_LOCK_TIMEOUT_MS: int(2000, 0, 3_600_000),
  /** Client-side query timeout, in ms, a backstop for a server that stops answering; 0 means statement timeout plus a
   * second (none when that is 0 too). @default 0 */
  DATABASE_QUERY_TIMEOUT_MS: int(0, 0, 3_600_000),
  /** Longest wait for a database connection (a free pooled one or a new one), in ms. @default 2000 */
  DATABASE_CONNECT_TIMEOUT_MS: int(2000, 100, 600_000),
  /** Most sends queued in one pod's message writer; more are refused with `unavailable`. @default 2000 */
  WRITER_MAX_QUEUE: int(2000, 1, 1_000_000),
  /** Longest a send may wait for its batch, in ms; one that would wait longer is refused with `unavailable`. @default 200 */
  WRITER_MAX_WAIT_MS: int(200, 1, 600_000),
  /** Sends are refused with `unavailable` while the event loop runs this late, in ms (the pod is past capacity and
   * every frame already waits this long before it is read); 0 turns this off. @default 150 */
  WRITER_MAX_LOOP_LAG_MS: int(150, 0, 600_000),
  /** Sends are refused with `unavailable` while the oldest fan-out publish has waited this long for Redis, in ms (the
   * pod commits faster than it can fan out); 0 turns this off. Above WRITER_MAX_LOOP_LAG_MS: the wait includes the
   * event loop's own delay in reading Redis's answer. @default 250 */
  WRITER_MAX_PUBLISH_LAG_MS: int(250, 0, 600_000),
  /** A write batch in flight longer than this, in ms, fails /readyz. @default 5000 */
  WRITER_STUCK_MS: int(5000, 100, 3_600_000),
  /** Apply prisma/migrations at start-up. @default on in embedded mode, off with DATABASE_URL */
  MIGRATE_ON_START: z.enum(["on", "off", "true", "false", "1", "0"]).optional(),
  /** Redis URL. Unset: one node with the in-memory adapter. */
  REDIS_URL: z.string().url().optional(),
  /** classic or sharded (Redis 7 sharded pub/sub). @default sharded when the server supports it */
  REDIS_ADAPTER: z.enum(["classic", "sharded"]).optional(),
  /** Redis Cluster seed nodes, `host:port` (or `redis://[user]:password@host:port` for a cluster with AUTH) separated
   * by commas, instead of REDIS_URL: every Redis use of the gateway then runs on the cluster (sharded adapter only). */
  REDIS_CLUSTER_NODES: csv.superRefine((entries, ctx) => {
    if (entries.length === 0) return;
    const parsed = parseClusterNodes(entries);
    if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: parsed });
  }),
  /** Prefix of every Redis key and channel of the gateway; deployments sharing a Redis need different ones.
   * @default "chat" */
  REDIS_PREFIX: z.string().regex(REDIS_PREFIX_PATTERN, "1 to 64 of A-Z a-z 0-9 _ . -").default("chat"),
  /** HS256 secret for access tokens, at least 32 characters. Required with DATABASE_URL or Redis. */
  JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  /** @default "chat-gateway" */
  JWT_ISSUER: z.string().min(1).default("chat-gateway"),
  /** @default "chat-gateway" */
  JWT_AUDIENCE: z.string().min(1).default("chat-gateway"),
  /** Register, login and refresh with the gateway's own accounts (passwords); `off` refuses them with `forbidden`,
   * leaving sign-in to the identity provider of JWT_JWKS_URL. @default on */
  OWN_ACCOUNTS: bool("on"),
  /** JWKS URL of an external identity provider (Auth0, Cognito, Keycloak, Firebase Auth): its access tokens are
   * accepted, their `sub` mapped to a gateway user created on first sight. Unset: only the gateway's own tokens. */
  JWT_JWKS_URL: z
    .string()
    .url()
    .refine(isSafeKeySource, "must be an https URL (plain http only on a loopback host, for tests)")
    .optional(),
  /** The `iss` of the provider's tokens (exact); required with JWT_JWKS_URL and different from JWT_ISSUER. */
  JWT_JWKS_ISSUER: z.string().min(1).optional(),
  /** The `aud` the provider's tokens must carry (or `client_id`, for tokens without `aud` such as Cognito's access
   * tokens); required with JWT_JWKS_URL. */
  JWT_JWKS_AUDIENCE: z.string().min(1).optional(),
  /** The only signature algorithms accepted from the provider, comma-separated, asymmetric only. @default "RS256,ES256" */
  JWT_JWKS_ALGORITHMS: z
    .string()
    .default("RS256,ES256")
    .transform((v, ctx) => {
      const list = v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      const bad = list.filter((a) => !(EXTERNAL_ALGORITHMS as readonly string[]).includes(a));
      if (list.length === 0 || bad.length > 0) {
        ctx.addIssue({
          code: "custom",
          message: `allowed: ${EXTERNAL_ALGORITHMS.join(", ")} (bad: ${bad.join(", ")})`,
        });
        return z.NEVER;
      }
      return list as ExternalAlgorithm[];
    }),
  /** Least time between two fetches of the JWKS, in ms: a token with an unknown `kid` refetches at most this often.
   * @default 30000 */
  JWT_JWKS_COOLDOWN_MS: int(30_000, 0, 3_600_000),
  /** How long fetched keys are used before they are fetched again, in ms. @default 600000 */
  JWT_JWKS_CACHE_MAX_AGE_MS: int(600_000, 1000, 86_400_000),
  /** Longest a JWKS fetch may take, in ms. @default 5000 */
  JWT_JWKS_TIMEOUT_MS: int(5000, 100, 60_000),
  /** What deleting an account does to its messages: `tombstone` keeps every one as a tombstone (content "",
   * `deletedAt` set); `delete` also deletes the conversations nobody else is left in, outright. @default tombstone */
  ACCOUNT_DELETION_MESSAGES: z.enum(["tombstone", "delete"]).default("tombstone"),
  /** An account without a password (external identity) is deleted only with an access token issued (`iat`) this
   * recently, in seconds. @default 300 */
  ACCOUNT_DELETION_MAX_TOKEN_AGE_S: int(300, 10, 86_400),
  /** Access token lifetime in seconds. @default 900 */
  ACCESS_TOKEN_TTL: int(900, 5, 86_400),
  /** Refresh token lifetime in seconds. @default 2592000 (30 days) */
  REFRESH_TOKEN_TTL: int(30 * 86_400, 60, 365 * 86_400),
  /** How long a just-spent refresh token still answers its successor (a retry after a lost answer, or a concurrent
   * refresh), in seconds; later reuse revokes the login. 0: any reuse revokes. @default 30 */
  REFRESH_REUSE_GRACE_S: int(30, 0, 3600),
  /** Legacy: one secret for service tokens (`role: "service"`) without a `kid`, allowed any sender name. Prefer
   * SERVICE_KEYS. Unset (and no SERVICE_KEYS): service tokens are refused. */
  SERVICE_JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  /** Service keys, each bound to the sender names (`system:<name>`) its tokens may use; a token names its key in the
   * JWT header `kid`. JSON `{"<kid>": {"secret": "...", "names": ["billing"], "admin"?: true}}`, or
   * `kid:secret:name1|name2[:admin]` entries separated by commas. Only a key marked admin may sign `role: "admin"`
   * tokens (the moderation API). */
  SERVICE_KEYS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return [];
      const parsed = parseServiceKeys(v);
      if (typeof parsed === "string") {
        ctx.addIssue({ code: "custom", message: parsed });
        return z.NEVER;
      }
      return parsed;
    }),
  /** Reports (POST /v1/reports) a user may file per hour, across pods. @default 20 */
  RATE_LIMIT_REPORTS_PER_HOUR: int(20, 1, 100_000),
  /** Operator webhook receiving every new report as signed JSON (x-report-signature). Unset: reports are only in the
   * admin API. */
  REPORT_WEBHOOK_URL: z.string().url().optional(),
  /** HMAC-SHA256 secret for REPORT_WEBHOOK_URL, at least 32 characters. */
  REPORT_WEBHOOK_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  /** Longest lifetime (`exp - iat`) a service token may have, in seconds; a longer one, or one without `exp` or
   * `iat`, is refused. @default 3600 */
  SERVICE_TOKEN_MAX_TTL_S: int(3600, 1, 7 * 86_400),
  /** Service-token calls per service key (kid) per second, across pods. @default 50 */
  RATE_LIMIT_SERVICE_PER_SEC: int(50, 1, 100_000),
  /** Longest message content, in Unicode code points. @default 4000 */
  MESSAGE_MAX_CHARS: int(4000, 1, 100_000),
  /** How long after sending its sender may edit a message, in seconds. @default 172800 (2 days) */
  MESSAGE_EDIT_WINDOW_S: int(2 * 86_400, 1, 10 * 365 * 86_400),
  /** S3-compatible endpoint URL (MinIO, R2, ...). Unset: AWS S3 for S3_REGION. */
  S3_ENDPOINT: z.string().url().optional(),
  /** Bucket for attachments. Unset: files are kept in DATA_DIR/uploads and served by the gateway (embedded). */
  S3_BUCKET: z.string().min(1).optional(),
  /** @default "us-east-1" */
  S3_REGION: z.string().min(1).default("us-east-1"),
  /** Unset: the AWS SDK's default credential chain (environment, instance role, ...). */
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  /** Path-style URLs (`endpoint/bucket/key`), as MinIO and most self-hosted servers want. @default off */
  S3_FORCE_PATH_STYLE: bool("off"),
  /** Largest upload, in bytes; a larger declared size is refused with `payload_too_large`. @default 26214400 (25 MiB) */
  UPLOAD_MAX_BYTES: int(25 * 1024 * 1024, 1, 5 * 1024 * 1024 * 1024),
  /** Comma-separated MIME types an upload may declare. @default common images, pdf, text, zip, mp4 audio/video */
  UPLOAD_ALLOWED_TYPES: csv.transform((list) =>
    list.length > 0 ? list.map((t) => t.toLowerCase()) : [...DEFAULT_UPLOAD_TYPES],
  ),
  /** How long an upload URL (the presigned PUT) stays valid, in seconds. @default 900 */
  UPLOAD_URL_TTL_S: int(900, 1, 7 * 86_400),
  /** How long a download URL (`url`, `thumbnailUrl`) stays valid, in seconds. @default 300 */
  ATTACHMENT_URL_TTL_S: int(300, 1, 7 * 86_400),
  /** An upload never attached to a message is deleted after this many seconds. @default 86400 */
  UPLOAD_UNATTACHED_TTL_S: int(86_400, 1, 365 * 86_400),
  /**
   * Uploads a user may hold that no sent message carries yet (younger than UPLOAD_UNATTACHED_TTL_S); past it
   * `POST /v1/uploads` is refused `rate_limited` until one is sent or expires, so one account cannot fill the storage
   * with a day's worth of presigned uploads. @default 100
   */
  UPLOAD_MAX_PENDING: int(100, 1, 1_000_000),
  /** How often each pod looks for unattached uploads to delete, in ms. @default 600000 */
  UPLOAD_CLEANUP_INTERVAL_MS: int(600_000, 100, 86_400_000),
  /** With the sharded adapter, an event for at least this many users (a group's message, its receipts) is published
   * once on the channel every pod reads instead of once per user's room; smaller audiences stay on their rooms'
   * channels, which only the pods holding those users read. The classic and in-memory adapters always publish once.
   * @default 16 */
  FANOUT_SHARED_CHANNEL_MIN_USERS: int(16, 2, 100_000),
  /** Message-writer batches in flight at once per pod, over disjoint conversations: the next batch starts while the
   * previous one commits (a conversation is in one batch at a time, so its seqs follow arrival order). 1 makes sends
   * wait for the batch in flight (see bench/RESULTS.md). @default 2 */
  WRITER_CONCURRENCY: int(2, 1, 16),
  /** Largest group, creator included. @default 1000 */
  GROUP_MAX_MEMBERS: int(1000, 2, 10_000),
  /** How long moved read/delivery markers of a larger conversation gather before one `conversation:markers` event
   * per conversation goes out from each pod, in ms. Longer means fewer events and later receipts. @default 500 */
  RECEIPTS_FLUSH_MS: int(500, 10, 60_000),
  /** After a reaction to a message goes out as `message:updated`, further reactions to it gather on each pod for this
   * long and go out as ONE event (the newest copy, with `changeRanges`); 0 sends every reaction at once. Keep it well
   * under the SDK's `gapFillDelayMs` (1 s), which is how long a client waits for a hole in change numbers to close.
   * @default 250 */
  REACTIONS_FLUSH_MS: int(250, 0, 500),
  /** Conversations with at most this many members keep per-member `conversation:read` / `conversation:delivered`
   * events to every member instead of `conversation:markers`. @default 4 */
  RECEIPTS_PER_MEMBER_MAX_MEMBERS: int(4, 0, 10_000),
  /** Up to this many members `conversation:markers` names each moved marker; larger conversations get counts per
   * seq instead, so the event does not grow with the group. @default 256 */
  RECEIPTS_DETAIL_MAX_MEMBERS: int(256, 0, 10_000),
  /** Longest an HTTP request may take to arrive (headers and body), in ms (Fastify's requestTimeout); a slow client
   * holding connections open is cut off. 0: no limit. @default 30000 */
  HTTP_REQUEST_TIMEOUT_MS: int(30_000, 0, 3_600_000),
  /** How often each pod deletes expired refresh tokens (in batches of 1000 rows), in ms. @default 600000 */
  REFRESH_TOKEN_CLEANUP_MS: int(600_000, 100, 86_400_000),
  /** Largest HTTP body in bytes. @default 65536 */
  HTTP_BODY_LIMIT: int(64 * 1024, 1024, 10 * 1024 * 1024),
  /** Largest Socket.IO frame in bytes (Socket.IO's maxHttpBufferSize; its default of 1 MB is far too generous). @default 65536 */
  SOCKET_MAX_PAYLOAD: int(64 * 1024, 1024, 10 * 1024 * 1024),
  /** Bytes a socket may have waiting to be written to it (a client that stopped reading) before it is disconnected;
   * it reconnects and catches up through `sync`. @default 1048576 */
  SOCKET_MAX_BUFFERED_BYTES: int(1024 * 1024, 1024, 1024 * 1024 * 1024),
  /** Comma-separated exact browser origins allowed for HTTP and Socket.IO. @default the gateway's own origin only */
  CORS_ORIGINS: csv,
  /** on, or off for benchmarks and deployments that limit in front of the gateway. @default on */
  RATE_LIMITS: bool("on"),
  /** Messages a user may send per second (all devices), with bursts up to twice that. @default 20 */
  RATE_LIMIT_SEND_PER_SEC: int(20, 1, 100_000),
  /** Register and login attempts per client IP per minute, sized for an office behind one NAT address. @default 300 */
  RATE_LIMIT_LOGIN_PER_MIN: int(300, 1, 100_000),
  /** Failed logins per account (lower-cased username) in 15 minutes; then that account's logins are refused with
   * `rate_limited` until the window ends. Successful logins do not count. @default 10 */
  RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: int(10, 1, 100_000),
  /** Refreshes per login (refresh family) per minute. @default 10 */
  RATE_LIMIT_REFRESH_PER_MIN: int(10, 1, 100_000),
  /** Which proxies' X-Forwarded-For to believe for the client address (rate limits, logs): unset trusts none (the
   * socket's peer is the client); a hop count like `1` takes the address that many hops from the right; or
   * comma-separated proxy addresses and CIDRs. */
  TRUST_PROXY: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return false as const;
      if (/^\d+$/.test(v.trim())) return Number(v.trim());
      const list = v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      const bad = list.filter((s) => !isIpOrCidr(s));
      if (list.length === 0 || bad.length > 0) {
        ctx.addIssue({ code: "custom", message: `a hop count or comma-separated IPs/CIDRs (bad: ${bad.join(", ")})` });
        return z.NEVER;
      }
      return list;
    }),
  /** Other socket events (sync, read, typing, ...) per socket per second. @default 50 */
  RATE_LIMIT_EVENTS_PER_SEC: int(50, 1, 100_000),
  /** HTTP API calls per user per minute. @default 600 */
  RATE_LIMIT_HTTP_PER_MIN: int(600, 1, 1_000_000),
  /** Groups a user may create per minute (all pods together); more are `rate_limited`. @default 30 */
  RATE_LIMIT_GROUPS_PER_MIN: int(30, 1, 100_000),
  /** Message searches a user may make per minute (all pods together); more are `rate_limited`. @default 30 */
  RATE_LIMIT_SEARCH_PER_MIN: int(30, 1, 100_000),
  /** Sockets one user may hold on each pod; a new one past it disconnects the user's oldest on that pod. @default 10 */
  MAX_SOCKETS_PER_USER: int(10, 1, 10_000),
  /** Most conversations one user may be a member of; creating or being added past it is `forbidden`. @default 1000 */
  MAX_CONVERSATIONS_PER_USER: int(1000, 1, 1_000_000),
  /** How often each pod refreshes its sockets' presence in Redis and sweeps lapsed ones, in ms. @default 10000 */
  PRESENCE_HEARTBEAT_MS: int(10_000, 100, 600_000),
  /** How long a socket counts as live without a heartbeat (a killed pod's users go offline within this plus one
   * heartbeat); must exceed PRESENCE_HEARTBEAT_MS. @default 30000 */
  PRESENCE_TTL_MS: int(30_000, 300, 3_600_000),
  /** How long after a message a member's devices have to ack `message:delivered` before a push is sent, in ms. @default 3000 */
  PUSH_GRACE_MS: int(3000, 0, 3_600_000),
  /** Put the sender's name, the conversation title and the message text in push payloads. @default off */
  PUSH_INCLUDE_CONTENT: bool("off"),
  /** Push a reaction by someone else to a user's own message (collapsed per message, never when muted or blocked). @default off */
  PUSH_ON_REACTION: bool("off"),
  /** Attempts per push delivery before giving up (transient failures only). @default 8 */
  PUSH_MAX_ATTEMPTS: int(8, 1, 100),
  /** First retry delay of a failed push delivery, doubled on each attempt (capped at 10 minutes). @default 1000 */
  PUSH_RETRY_BASE_MS: int(1000, 10, 3_600_000),
  /** How long push services keep an undelivered notification (Web Push TTL, FCM ttl), in seconds. @default 86400 */
  PUSH_TTL_SECONDS: int(86_400, 0, 28 * 86_400),
  /** How long a running push job stays locked to its pod (BullMQ lock, renewed at half of it, and the stalled-job
   * check interval): a job left running by a pod that died is run again by another pod within about three times
   * this. Shorter recovers sooner but costs more Redis calls, and an event loop blocked for half of it makes a
   * job run twice. @default 30000 */
  PUSH_JOB_LOCK_MS: int(30_000, 1000, 600_000),
  /** Redis key prefix of the push job queue (BullMQ). On a cluster it needs a hash tag (`{chat-push}`) so the queue's
   * keys share a slot. @default "<REDIS_PREFIX>-push", "{<REDIS_PREFIX>-push}" with REDIS_CLUSTER_NODES */
  PUSH_QUEUE_PREFIX: z
    .string()
    .min(1)
    .regex(/^[^:]+$/, "must not contain ':'")
    .optional(),
  /** Comma-separated Web Push service hosts endpoints may point at: `host` (and its subdomains) or `*.host`
   * (subdomains only), on port 443 unless written `host:port`. @default the major browsers' push services */
  PUSH_ENDPOINT_ALLOWLIST: z
    .string()
    .optional()
    .transform((v) =>
      v === undefined
        ? [...DEFAULT_PUSH_ENDPOINT_ALLOWLIST]
        : v
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean),
    ),
  /** Tests only: allow Web Push endpoints on private, loopback and link-local addresses. @default off */
  PUSH_ALLOW_PRIVATE_ENDPOINTS: bool("off"),
  /** Push subscriptions kept per user; registering one more replaces the user's oldest. @default 10 */
  PUSH_MAX_SUBSCRIPTIONS_PER_USER: int(10, 1, 1000),
  /** Operator webhook receiving every push as signed JSON (x-push-signature). Unset: no webhook. */
  PUSH_WEBHOOK_URL: z.string().url().optional(),
  /** HMAC-SHA256 secret for PUSH_WEBHOOK_URL, at least 32 characters. */
  PUSH_WEBHOOK_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  /** Web Push VAPID public key (base64url). Unset: generated and kept in DATA_DIR in embedded mode, else no Web Push. */
  VAPID_PUBLIC_KEY: z.string().min(1).optional(),
  /** Web Push VAPID private key (base64url), set together with VAPID_PUBLIC_KEY. */
  VAPID_PRIVATE_KEY: z.string().min(1).optional(),
  /** VAPID contact, a mailto: or https: URL. @default "mailto:push@localhost" */
  VAPID_SUBJECT: z
    .string()
    .regex(/^(mailto:|https:\/\/)/, "must be a mailto: or https: URL")
    .default("mailto:push@localhost"),
  /** FCM service account JSON (the file's content). Unset: no FCM. */
  FCM_SERVICE_ACCOUNT: z.string().min(1).optional(),
  /** FCM HTTP v1 base URL. @default "https://fcm.googleapis.com" */
  FCM_ENDPOINT: z.string().url().default("https://fcm.googleapis.com"),
  /** OAuth token URL for FCM. @default the service account's token_uri */
  FCM_TOKEN_URL: z.string().url().optional(),
  /** What Apple devices get, through FCM or APNs: `alert` (visible, mutable-content) or `silent` (background,
   * priority 5, the app shows it). @default "alert" */
  PUSH_IOS_STYLE: z.enum(["alert", "silent"]).default("alert"),
  /** APNs auth key (.p8 file content, PEM). Unset: no direct APNs. Set with APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC. */
  APNS_KEY: z.string().min(1).optional(),
  /** The auth key's id (10 characters, from Apple's developer account). */
  APNS_KEY_ID: z
    .string()
    .regex(/^[A-Z0-9]{10}$/, "must be the 10-character key id")
    .optional(),
  /** The Apple developer team id. */
  APNS_TEAM_ID: z
    .string()
    .regex(/^[A-Z0-9]{10}$/, "must be the 10-character team id")
    .optional(),
  /** The app's bundle id, the push topic. */
  APNS_TOPIC: z
    .string()
    .regex(/^[A-Za-z0-9.-]{1,155}$/, "must be a bundle id")
    .optional(),
  /** APNs server: production, or https://api.sandbox.push.apple.com for development builds. */
  APNS_ENDPOINT: z.string().url().default("https://api.push.apple.com"),
  /** How long a Redis command may wait before it fails: node-redis's queue timeout for every command, and the
   * deadline of Redis calls a request waits on (rate limits, presence reads). @default 5000 */
  REDIS_COMMAND_TIMEOUT_MS: int(5_000, 100, 600_000),
  /** An event loop blocked longer than this (ms) makes the pod tell its sockets to sync, since live traffic may have
   * been lost meanwhile. @default 5000 */
  EVENT_LOOP_STALL_MS: int(5_000, 100, 600_000),
  /** How long a graceful drain may take before the process exits anyway, in ms. @default 20000 */
  DRAIN_TIMEOUT_MS: int(20_000, 0, 600_000),
  /** pino level: fatal, error, warn, info, debug, trace, silent. @default info */
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** `pretty` (readable, for a terminal), `json` (for log collectors), or `auto`: pretty on a terminal outside production. */
  LOG_FORMAT: z.enum(["auto", "pretty", "json"]).default("auto"),
});

export type Env = z.infer<typeof EnvSchema>;

export interface Config extends Omit<Env, "JWT_SECRET" | "MIGRATE_ON_START" | "PUSH_QUEUE_PREFIX"> {
  JWT_SECRET: string;
  MIGRATE_ON_START: boolean;
  /** The push queue's BullMQ prefix: as set, or derived from REDIS_PREFIX. */
  PUSH_QUEUE_PREFIX: string;
  /** True when no DATABASE_URL is set: PGlite in DATA_DIR. */
  embedded: boolean;
  /** Warnings to log once the logger exists (e.g. a generated secret). */
  warnings: string[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

type RawEnv = Record<string, string>;
/** A rule between variables: the problem it finds, if any. `e` is undefined when some variable failed its own check. */
type CrossFieldRule = (raw: RawEnv, e: Env | undefined) => string | undefined;

/** Variables that only work together: all of them set, or none. */
function together(...names: string[]): CrossFieldRule {
  return (raw) => {
    const set = names.filter((name) => raw[name] !== undefined).length;
    if (set === 0 || set === names.length) return undefined;
    return `${names.join(", ")}: set ${names.length === 2 ? "both or neither" : `all ${names.length} or none`}`;
  };
}

/** Every rule between variables; all are checked, so a bad start lists every problem, not the first one. */
const CROSS_FIELD_RULES: CrossFieldRule[] = [
  (raw) =>
    raw.JWT_SECRET === undefined &&
    (raw.DATABASE_URL !== undefined || raw.REDIS_URL !== undefined || raw.REDIS_CLUSTER_NODES !== undefined)
      ? "JWT_SECRET: required when DATABASE_URL, REDIS_URL or REDIS_CLUSTER_NODES is set (at least 32 characters)"
      : undefined,
  (_, e) =>
    e !== undefined && e.PRESENCE_TTL_MS <= e.PRESENCE_HEARTBEAT_MS
      ? "PRESENCE_TTL_MS: must be greater than PRESENCE_HEARTBEAT_MS"
      : undefined,
  (_, e) =>
    e?.METRICS_PORT !== undefined && e.METRICS_PORT !== 0 && e.METRICS_PORT === e.PORT
      ? "METRICS_PORT: must differ from PORT"
      : undefined,
  (raw) =>
    raw.DATABASE_READ_URL !== undefined && raw.DATABASE_URL === undefined
      ? "DATABASE_READ_URL: needs DATABASE_URL (the embedded database has no replicas)"
      : undefined,
  together("VAPID_PUBLIC_KEY", "VAPID_PRIVATE_KEY"),
  together("APNS_KEY", "APNS_KEY_ID", "APNS_TEAM_ID", "APNS_TOPIC"),
  together("PUSH_WEBHOOK_URL", "PUSH_WEBHOOK_SECRET"),
  together("REPORT_WEBHOOK_URL", "REPORT_WEBHOOK_SECRET"),
  together("S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"),
];

/** Parses the environment (process.env by default). Throws ConfigError listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  // Empty strings mean "unset", as they do in most deployment tools.
  const raw = Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ""),
  );
  const parsed = EnvSchema.safeParse(raw);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
  for (const rule of CROSS_FIELD_RULES) {
    const problem = rule(raw, parsed.success ? parsed.data : undefined);
    if (problem !== undefined) problems.push(problem);
  }
  if (parsed.success) problems.push(...redisConfigProblems(parsed.data), ...externalIdentityProblems(parsed.data));
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);

  const e = parsed.data;
  const embedded = e.DATABASE_URL === undefined;
  const warnings: string[] = [];
  let secret = e.JWT_SECRET;
  if (secret === undefined) {
    secret = embeddedSecret(e.DATA_DIR, warnings);
    warnings.push(`JWT_SECRET is not set: using a generated one kept in ${e.DATA_DIR} (embedded mode only)`);
  }
  const migrate = e.MIGRATE_ON_START === undefined ? embedded : ["on", "true", "1"].includes(e.MIGRATE_ON_START);
  const pushQueuePrefix =
    e.PUSH_QUEUE_PREFIX ?? defaultPushQueuePrefix(e.REDIS_PREFIX, e.REDIS_CLUSTER_NODES.length > 0);
  return Object.freeze({
    ...e,
    JWT_SECRET: secret,
    MIGRATE_ON_START: migrate,
    PUSH_QUEUE_PREFIX: pushQueuePrefix,
    embedded,
    warnings,
  });
}

/** Where Redis is: one server, a cluster's seed nodes, or none (one node, everything in memory). */
export function redisTarget(
  config: Pick<Config, "REDIS_URL" | "REDIS_CLUSTER_NODES">,
): { url: string } | { clusterNodes: string[] } | undefined {
  if (config.REDIS_CLUSTER_NODES.length > 0) return { clusterNodes: config.REDIS_CLUSTER_NODES };
  return config.REDIS_URL === undefined ? undefined : { url: config.REDIS_URL };
}

/** Redis settings that cannot go together; every one is listed. */
function redisConfigProblems(e: Env): string[] {
  if (e.REDIS_CLUSTER_NODES.length === 0) return [];
  const problems: string[] = [];
  if (e.REDIS_URL !== undefined) problems.push("REDIS_URL, REDIS_CLUSTER_NODES: set one or the other, not both");
  if (e.REDIS_ADAPTER === "classic") {
    problems.push(
      "REDIS_ADAPTER: classic cannot run on a Redis Cluster (its pub/sub would go to every node); use sharded",
    );
  }
  if (e.PUSH_QUEUE_PREFIX !== undefined && !hasHashTag(e.PUSH_QUEUE_PREFIX)) {
    problems.push("PUSH_QUEUE_PREFIX: needs a hash tag on a Redis Cluster, like {chat-push}");
  }
  return problems;
}

/** Every variable the gateway reads, for `--help` and the README check. */
export function configVariableNames(): string[] {
  return Object.keys(EnvSchema.shape).sort();
}

/** The variables of an external identity provider go together, and some way to sign in must remain. */
function externalIdentityProblems(e: Env): string[] {
  const problems: string[] = [];
  if (e.JWT_JWKS_URL !== undefined) {
    if (e.JWT_JWKS_ISSUER === undefined) problems.push("JWT_JWKS_ISSUER: required with JWT_JWKS_URL");
    if (e.JWT_JWKS_AUDIENCE === undefined) problems.push("JWT_JWKS_AUDIENCE: required with JWT_JWKS_URL");
    // Tokens are routed to a verifier by their issuer: one issuer must name one key source.
    if (e.JWT_JWKS_ISSUER === e.JWT_ISSUER) problems.push("JWT_JWKS_ISSUER: must differ from JWT_ISSUER");
  } else if (e.JWT_JWKS_ISSUER !== undefined || e.JWT_JWKS_AUDIENCE !== undefined) {
    problems.push("JWT_JWKS_URL: required with JWT_JWKS_ISSUER and JWT_JWKS_AUDIENCE");
  }
  if (!e.OWN_ACCOUNTS && e.JWT_JWKS_URL === undefined) {
    problems.push("OWN_ACCOUNTS: off needs JWT_JWKS_URL, or nobody could sign in");
  }
  return problems;
}

/** The shortest JWT secret accepted, configured or generated. */
export const MIN_SECRET_LENGTH = 32;

/**
 * The embedded mode's generated secret, kept beside the database (DATA_DIR, mode 0700) so tokens survive a restart.
 * A kept secret shorter than 32 characters (truncated, or written by hand) is replaced, which ends existing logins.
 */
function embeddedSecret(dataDir: string, warnings: string[]): string {
  const file = join(dataDir, "jwt-secret");
  const dirWarning = ensurePrivateDir(dataDir);
  if (dirWarning !== undefined) warnings.push(dirWarning);
  let kept: string | undefined;
  try {
    kept = readFileSync(file, "utf8").trim();
  } catch {
    kept = undefined;
  }
  if (kept !== undefined && kept.length >= MIN_SECRET_LENGTH) return kept;
  if (kept !== undefined) {
    warnings.push(`${file} held a secret shorter than ${MIN_SECRET_LENGTH} characters: generated a new one`);
  }
  const secret = randomBytes(32).toString("base64url");
  writeFileSync(file, secret, { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}
