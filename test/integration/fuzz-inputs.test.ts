// Property-based fuzzing of every socket event and every HTTP route with malformed input (fast-check): at least
// FUZZ_RUNS (default 10,000) generated inputs per run, each of which must be refused with a contract error code
// (never `internal`, never a 5xx), leave the database exactly as it was, keep the socket connected and the gateway
// answering /healthz. Events without an ack and unknown events must be ignored.
//
// The inputs come from the table in test/helpers/fuzz/table.ts; this file fails when the gateway serves an event or
// a route the table has no entry for. A failure prints its seed and path: replay it with
//   FUZZ_SEED=<seed> FUZZ_RUNS=<runs> node --import tsx --test test/integration/fuzz-inputs.test.ts
// (FUZZ_ONLY=<part of an event or route name> runs only those entries, with the same runs each as in the full run.)
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import jwt from "jsonwebtoken";
import { io } from "socket.io-client";
import webpush from "web-push";
import { ERROR_STATUS } from "@chat-gateway/protocol";
import type { AuthResult } from "@chat-gateway/protocol";
import { api, connectDevice, createConversation, type Device, registerUser } from "../helpers/clients.js";
import { TEST_JWT_SECRET } from "../helpers/gateways.js";
import { type InProcessGateway, listRoutes, startInProcessGateway } from "../helpers/in-process.js";
import { type HttpCase, httpCases, type SocketCase, socketCases } from "../helpers/fuzz/requests.js";
import { type StateFingerprint, stateFingerprint } from "../helpers/fuzz/state-fingerprint.js";
import { type FuzzContext, httpEntries, type SignedFileUrl, socketEntries } from "../helpers/fuzz/table.js";
import { ChatHttpApi } from "../../packages/sdk/src/http-api.js";
import { uploadFile } from "../../packages/sdk/src/uploads.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
/** Runs only the entries whose name contains this (a replay); the count of inputs is then not asserted. */
const ONLY = process.env.FUZZ_ONLY;
const BODY_LIMIT = 16 * 1024;
const SERVICE_JWT_SECRET = "service-secret-that-is-long-enough-for-hs256-0123";
/** An admin key (SERVICE_KEYS): the /v1/admin routes are fuzzed with its tokens as the valid caller. */
const ADMIN_KEY = { kid: "fuzz-admin", secret: "admin-secret-that-is-long-enough-for-hs256-4567", name: "ops" };
const MESSAGE_MAX_CHARS = 200;
/** Socket.IO refuses to send these names; the server's parser refuses them too (see socket.io-parser). */
const RESERVED_EVENTS = new Set([
  "connect",
  "connect_error",
  "disconnect",
  "disconnecting",
  "newListener",
  "removeListener",
]);

const selected = (name: string) => ONLY === undefined || name.includes(ONLY);

type WireAnswer = { ok?: unknown; error?: { code?: unknown; message?: unknown } };

describe("fuzzing every input with malformed values", { timeout: 300_000 }, () => {
  let gw: InProcessGateway;
  let ctx: FuzzContext;
  let state: StateFingerprint;
  let device: Device;
  let baseline: Record<string, string>;
  const disconnects: string[] = [];
  let inputs = 0;
  let dataDir: string;

  before(async () => {
    console.log(`fuzz: FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS} (set either to replay or to fuzz longer)`);
    dataDir = await mkdtemp(join(tmpdir(), "fuzz-data-"));
    const vapid = webpush.generateVAPIDKeys();
    gw = await startInProcessGateway({
      database: "postgres",
      redis: true,
      captureLogs: "warn",
      env: {
        MESSAGE_MAX_CHARS: String(MESSAGE_MAX_CHARS),
        HTTP_BODY_LIMIT: String(BODY_LIMIT),
        SOCKET_MAX_PAYLOAD: String(256 * 1024),
        VAPID_PUBLIC_KEY: vapid.publicKey,
        VAPID_PRIVATE_KEY: vapid.privateKey,
        PUSH_ENDPOINT_ALLOWLIST: "127.0.0.1:8443",
        PUSH_ALLOW_PRIVATE_ENDPOINTS: "on",
        // The set-up's messages would be pushed to endpoints that do not exist, and the failures logged as errors.
        PUSH_GRACE_MS: "3600000",
        SERVICE_JWT_SECRET,
        SERVICE_KEYS: `${ADMIN_KEY.kid}:${ADMIN_KEY.secret}:${ADMIN_KEY.name}:admin`,
        // Embedded file storage (the /files routes) in a scratch directory, not in the working tree.
        DATA_DIR: dataDir,
      },
    });
    ctx = await buildContext(gw.url);
    state = await stateFingerprint(gw.databaseUrl!);
    device = await connectDevice(gw.url, ctx.token);
    device.on("disconnect", (reason) => disconnects.push(reason));
    // The set-up's own writes (markers, fan-out) settle before the baseline is taken.
    await new Promise((r) => setTimeout(r, 200));
    baseline = await state.read();
  });
  after(async () => {
    device?.close();
    await state?.close();
    await gw?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  let logsSeen = 0;
  /** Each entry starts from the state the previous one left, so one finding does not fail every entry after it. */
  async function beginEntry(): Promise<void> {
    if (!device.connected) {
      device.close();
      device = await connectDevice(gw.url, ctx.token);
      device.on("disconnect", (reason) => disconnects.push(reason));
    }
    disconnects.length = 0;
    logsSeen = gw.logs.length;
    baseline = await state.read();
  }

  /** The checks every input ends with: nothing stored, nothing logged as a bug, the socket and the gateway up. */
  async function assertUnharmed(what: string): Promise<void> {
    inputs++;
    assert.deepEqual(await state.read(), baseline, `${what}: the database changed`);
    const bugs = gw.logs.slice(logsSeen).filter((l) => typeof l.level === "number" && l.level >= 50);
    assert.deepEqual(bugs, [], `${what}: the gateway logged an error`);
    assert.deepEqual(disconnects, [], `${what}: the socket was disconnected`);
    if (inputs % 50 === 0) assert.equal((await fetch(`${gw.url}/healthz`)).status, 200, "healthz");
  }

  const numRuns = (entries: number) => Math.ceil(RUNS / entries);
  let entryCount = 0;

  test("every client event and every HTTP route has a fuzz entry, and every entry a target", async () => {
    const routes = await listRoutes(gw.gateway.http);
    const http = httpEntries(ctx);
    const events = gw.gateway.clientEvents();
    const sockets = socketEntries(ctx);
    const missingRoutes = routes.filter((r) => !http.some((e) => e.route === r));
    const missingEvents = events.filter((e) => !sockets.some((s) => s.event === e));
    assert.deepEqual(missingRoutes, [], "routes without an entry in test/helpers/fuzz/table.ts httpEntries");
    assert.deepEqual(missingEvents, [], "events without an entry in test/helpers/fuzz/table.ts socketEntries");
    const staleRoutes = http.filter((e) => !e.optional && !routes.includes(e.route)).map((e) => e.route);
    const staleEvents = sockets.filter((s) => !events.includes(s.event)).map((s) => s.event);
    assert.deepEqual([...staleRoutes, ...staleEvents], [], "entries for routes or events the gateway does not have");
    // Only the entries the gateway serves are fuzzed; one more share each goes to unknown events, handshakes and raw
    // frames.
    entryCount = routes.length + events.length + 3;
  });

  test("socket events: each malformed payload is refused by its ack, stores nothing, keeps the socket", async (t) => {
    assert.ok(entryCount > 0, "the coverage test ran first");
    for (const entry of socketEntries(ctx).filter((e) => selected(e.event))) {
      await t.test(entry.event, async () => {
        await beginEntry();
        await fc.assert(
          fc.asyncProperty(socketCases(entry), async (c) => {
            const answer = await emitCase(entry.event, c);
            const what = `${entry.event} (${c.broken})`;
            assertRefusal(answer, what);
            assert.ok(device.connected, `${what}: socket still connected`);
            await assertUnharmed(what);
          }),
          { seed: SEED, numRuns: numRuns(entryCount), includeErrorInReport: true },
        );
      });
    }
  });

  test("unknown events, with or without an ack, are ignored", { skip: !selected("unknown events") }, async () => {
    const known = new Set(gw.gateway.clientEvents());
    const name = fc
      .oneof(
        fc.string({ maxLength: 30 }),
        fc.constantFrom(
          "__proto__",
          "constructor",
          "toString",
          "hasOwnProperty",
          "MESSAGE:SEND",
          "message:send ",
          "message",
          " sync",
        ),
        fc.constantFrom(...known).map((e) => e.toUpperCase()),
      )
      .filter((n) => !known.has(n) && !RESERVED_EVENTS.has(n));
    await beginEntry();
    const args = fc.array(
      fc.oneof(
        fc.anything({ maxDepth: 3 }),
        fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.from(b)),
      ),
      { maxLength: 3 },
    );
    await fc.assert(
      fc.asyncProperty(name, args, fc.boolean(), async (event, values, withAck) => {
        let acked = false;
        const raw = device as unknown as { emit(event: string, ...args: unknown[]): void };
        raw.emit(event, ...values.map(jsonSafe), ...(withAck ? [() => (acked = true)] : []));
        // The next event is answered, so the unknown one before it was handled (ignored) without harm.
        const probe = await device.timeout(5_000).emitWithAck("typing", null as never);
        assertRefusal(probe as WireAnswer, `after unknown event ${JSON.stringify(event)}`);
        assert.equal(acked, false, "an unknown event is never acked");
        await assertUnharmed(`unknown event ${JSON.stringify(event)}`);
      }),
      { seed: SEED, numRuns: numRuns(entryCount), includeErrorInReport: true },
    );
  });

  test(
    "socket handshakes with bad credentials are refused with connect_error unauthorized",
    { skip: !selected("handshake") },
    async () => {
      await beginEntry();
      const token = fc.oneof(
        fc.constantFrom(...ctx.badTokens),
        fc.string({ maxLength: 100 }),
        fc.string({ minLength: 4097, maxLength: 6000 }),
        fc.oneof(fc.integer(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }), fc.object({ maxDepth: 2 })),
      );
      const auth = fc.oneof(
        token.map((t) => ({ token: t })),
        fc.constant({}),
        fc
          .tuple(token, fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 2 }))
          .map(([t, extra]) => ({ ...extra, token: t })),
      );
      await fc.assert(
        fc.asyncProperty(auth, async (credentials) => {
          const socket = io(gw.url, {
            auth: credentials,
            transports: ["websocket"],
            reconnection: false,
            forceNew: true,
          });
          const outcome = await new Promise<string>((resolve) => {
            socket.once("connect", () => resolve("connected"));
            socket.once("connect_error", (err) => resolve(err.message));
          });
          socket.close();
          assert.equal(outcome, "unauthorized", `handshake with ${JSON.stringify(credentials).slice(0, 200)}`);
          await assertUnharmed("handshake");
        }),
        { seed: SEED, numRuns: numRuns(entryCount), includeErrorInReport: true },
      );
    },
  );

  test(
    "raw frames that are not valid Socket.IO packets close at most their own connection",
    { skip: !selected("raw frames") },
    async () => {
      await beginEntry();
      // Socket.IO's parser closes a connection whose packet it cannot decode (a client library never sends one); the
      // contract asks that the gateway and every other connection carry on, and that nothing is stored or logged.
      const json = fc.oneof(
        fc.json({ maxDepth: 3 }),
        fc.constantFrom("[null]", "[{}]", '["typing"', '{"a":1}', "[1,2]"),
      );
      const frame = fc.oneof(
        fc.string({ maxLength: 40 }),
        fc
          .tuple(
            fc.constantFrom("0", "1", "2", "3", "4", "5", "6", "7", "9"),
            fc.constantFrom("", "/", "/admin,", "/nope,"),
            fc.constantFrom("", "0", "7", "99999999999999999999", "-1"),
            json,
          )
          .map(([type, nsp, id, data]) => `${type}${nsp}${id}${data}`),
        fc.tuple(fc.constantFrom("5-", "51-", "6-"), json).map(([head, data]) => head + data),
      );
      let raw = await connectDevice(gw.url, ctx.token);
      try {
        await fc.assert(
          fc.asyncProperty(frame, async (text) => {
            if (!raw.connected) {
              raw.close();
              raw = await connectDevice(gw.url, ctx.token);
            }
            (raw as unknown as { io: { engine: { write(data: string): void } } }).io.engine.write(text);
            const probe = await device.timeout(5_000).emitWithAck("typing", null as never);
            assertRefusal(probe as WireAnswer, `after raw frame ${JSON.stringify(text)}`);
            await assertUnharmed(`raw frame ${JSON.stringify(text)}`);
          }),
          { seed: SEED, numRuns: numRuns(entryCount), includeErrorInReport: true },
        );
      } finally {
        raw.close();
      }
    },
  );

  test("HTTP routes: each malformed request gets a 4xx with the error envelope and stores nothing", async (t) => {
    const routes = await listRoutes(gw.gateway.http);
    for (const entry of httpEntries(ctx).filter((e) => routes.includes(e.route) && selected(e.route))) {
      await t.test(entry.route, async () => {
        await beginEntry();
        await fc.assert(
          fc.asyncProperty(httpCases(entry, ctx, BODY_LIMIT), async (c) => {
            const what = `${entry.route} (broken: ${c.broken.join(", ")})`;
            const res = await sendHttp(gw.url, c);
            if (entry.answers) {
              assert.ok(entry.answers.includes(res.status), `${what}: status ${res.status}`);
            } else {
              assert.ok(
                res.status >= 400 && res.status < 500,
                `${what}: status ${res.status} ${res.text.slice(0, 300)}`,
              );
              const body = parseJson(res.text) as WireAnswer | undefined;
              assertEnvelope(body?.error, what);
              assert.equal(
                ERROR_STATUS[body!.error!.code as keyof typeof ERROR_STATUS],
                res.status,
                `${what}: code matches status`,
              );
            }
            await assertUnharmed(what);
          }),
          { seed: SEED, numRuns: numRuns(entryCount), includeErrorInReport: true },
        );
      });
    }
  });

  test(`at least FUZZ_RUNS inputs ran, and the gateway still answers`, async () => {
    console.log(`fuzz: ${inputs} inputs`);
    if (ONLY === undefined) assert.ok(inputs >= RUNS, `${inputs} inputs, wanted ${RUNS}`);
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
    assert.ok(device.connected);
  });

  async function emitCase(event: string, c: SocketCase): Promise<WireAnswer> {
    const raw = device as unknown as {
      emit(event: string, ...args: unknown[]): void;
      timeout(ms: number): { emitWithAck(event: string, ...args: unknown[]): Promise<WireAnswer> };
    };
    if (c.ackless) raw.emit(event, ...c.ackless);
    return raw.timeout(10_000).emitWithAck(event, ...c.args);
  }
});

function assertEnvelope(error: WireAnswer["error"], what: string): void {
  assert.ok(error && typeof error === "object", `${what}: an error object`);
  assert.equal(typeof error.message, "string", `${what}: error.message`);
  assert.ok(
    typeof error.code === "string" && error.code in ERROR_STATUS,
    `${what}: a catalogued code, got ${String(error.code)}`,
  );
  assert.notEqual(error.code, "internal", `${what}: internal`);
}

function assertRefusal(answer: WireAnswer, what: string): void {
  assert.equal(answer?.ok, false, `${what}: refused, got ${JSON.stringify(answer)?.slice(0, 300)}`);
  assertEnvelope(answer.error, what);
}

async function sendHttp(url: string, c: HttpCase): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { ...c.headers };
  let body: string | undefined;
  if (c.body && "json" in c.body) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(c.body.json) ?? "null";
  } else if (c.body) {
    if (c.body.contentType) headers["content-type"] = c.body.contentType;
    body = c.body.raw;
  }
  const res = await fetch(`${url}${c.path}`, { method: c.method, headers, body });
  return { status: res.status, text: await res.text() };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** fc.anything makes values JSON cannot carry (undefined, -0, symbols-free but with getters...): send what JSON can. */
function jsonSafe(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value;
  const text = JSON.stringify(value);
  return text === undefined ? null : JSON.parse(text);
}

/** A signed /files URL as the fuzz table takes it: the key's two path segments and the signed query. */
function signedFile(url: string): SignedFileUrl {
  const parsed = new URL(url, "http://gateway");
  const [, files, dir, id] = parsed.pathname.split("/");
  assert.equal(files, "files", url);
  return { dir: dir!, id: id!, query: Object.fromEntries(parsed.searchParams) };
}

/** An upload of a few bytes of text, through the SDK (ticket, PUT), not yet sent: its id. */
async function uploadText(url: string, who: AuthResult): Promise<string> {
  const sdk = new ChatHttpApi({ baseUrl: url, getAccessToken: async () => who.accessToken });
  const uploaded = await uploadFile(sdk, Buffer.from("fuzz\n"), { name: "fuzz.txt", mimeType: "text/plain" });
  return uploaded.id;
}

async function buildContext(url: string): Promise<FuzzContext> {
  const attachments: { id: string; url: string }[] = [];
  const [alice, bob, carol] = (await Promise.all([registerUser(url), registerUser(url), registerUser(url)])) as [
    AuthResult,
    AuthResult,
    AuthResult,
  ];
  const direct = await createConversation(url, alice.accessToken, { type: "direct", userId: bob.user.id });
  const group = await createConversation(url, alice.accessToken, {
    type: "group",
    title: "fuzz group",
    memberIds: [bob.user.id],
  });
  const foreign = await createConversation(url, bob.accessToken, { type: "direct", userId: carol.user.id });
  const maxSeq = 3;
  const messageIds = new Map<string, string[]>();
  for (const conversation of [direct, group, foreign]) {
    const sender = conversation === foreign ? bob : alice;
    messageIds.set(conversation.id, []);
    for (let i = 1; i <= maxSeq; i++) {
      // The last message of alice's conversations carries a file: its download URL and id are fuzzed too.
      const attachmentIds = conversation !== foreign && i === maxSeq ? [await uploadText(url, alice)] : undefined;
      const res = await api<{ message: { id: string; attachments: { id: string; url: string }[] } }>(
        url,
        "POST",
        `/v1/conversations/${conversation.id}/messages`,
        {
          token: sender.accessToken,
          body: { clientMsgId: `setup-${conversation.id}-${i}`, content: `message ${i}`, attachmentIds },
        },
      );
      assert.equal(res.status, 201, JSON.stringify(res.body));
      messageIds.get(conversation.id)!.push(res.body.message.id);
      if (attachmentIds) attachments.push(res.body.message.attachments[0]!);
    }
  }
  const bobs = await api<{ message: { id: string } }>(url, "POST", `/v1/conversations/${group.id}/messages`, {
    token: bob.accessToken,
    body: { clientMsgId: "setup-bob", content: "from bob" },
  });
  assert.equal(bobs.status, 201, JSON.stringify(bobs.body));
  // An upload never sent: its signed PUT URL is valid (nothing written yet).
  const ticket = await api<{ upload: { url: string } }>(url, "POST", "/v1/uploads", {
    token: alice.accessToken,
    body: { name: "never-sent.txt", mimeType: "text/plain", size: 5 },
  });
  assert.equal(ticket.status, 201, JSON.stringify(ticket.body));
  // An open report (alice about carol) for the admin routes to resolve.
  const report = await api<{ report: { id: string } }>(url, "POST", "/v1/reports", {
    token: alice.accessToken,
    body: { userId: carol.user.id, reason: "fuzz set-up" },
  });
  assert.equal(report.status, 201, JSON.stringify(report.body));
  const subscribe = async (who: AuthResult) => {
    const res = await api<{ id: string }>(url, "POST", "/v1/push/subscriptions", {
      token: who.accessToken,
      body: {
        type: "webpush",
        endpoint: `https://127.0.0.1:8443/push/${who.user.id}`,
        keys: { p256dh: Buffer.alloc(65, 4).toString("base64url"), auth: Buffer.alloc(16, 1).toString("base64url") },
      },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id;
  };
  const login = await api<AuthResult>(url, "POST", "/v1/auth/login", {
    body: { username: alice.user.username, password: "correct horse battery" },
  });
  assert.equal(login.status, 200);
  const secondLogin = login.body;
  const claims = jwt.decode(alice.accessToken) as { sid: string; sub: string };
  const sign = (secret: string, options: jwt.SignOptions, payload: object = { sid: claims.sid }) =>
    jwt.sign(payload, secret, { subject: claims.sub, issuer: "chat-gateway", audience: "chat-gateway", ...options });
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return {
    token: alice.accessToken,
    userId: alice.user.id,
    otherUserIds: [bob.user.id, carol.user.id],
    strangerUserId: carol.user.id,
    memberConversationIds: [direct.id, group.id],
    directConversationId: direct.id,
    groupConversationId: group.id,
    foreignConversationId: foreign.id,
    takenUsername: alice.user.username,
    ownMessageIds: [direct.id, group.id].flatMap((id) => messageIds.get(id)!),
    ownGroupMessageIds: messageIds.get(group.id)!,
    bobMessageId: bobs.body.message.id,
    foreignMessageId: messageIds.get(foreign.id)![0]!,
    attachmentId: attachments[0]!.id,
    fileGet: signedFile(attachments[0]!.url),
    filePut: signedFile(ticket.body.upload.url),
    reportId: report.body.report.id,
    adminToken: jwt.sign({ role: "admin" }, ADMIN_KEY.secret, {
      subject: ADMIN_KEY.name,
      issuer: "chat-gateway",
      audience: "chat-gateway",
      expiresIn: 3600,
      keyid: ADMIN_KEY.kid,
    }),
    pushSubscriptionId: await subscribe(alice),
    foreignPushSubscriptionId: await subscribe(bob),
    otherLoginTokens: [bob.accessToken, secondLogin.accessToken],
    serviceToken: jwt.sign({ role: "service" }, SERVICE_JWT_SECRET, {
      subject: "fuzzer",
      issuer: "chat-gateway",
      audience: "chat-gateway",
      expiresIn: 3600,
    }),
    badTokens: [
      sign("another-secret-that-is-long-enough-for-hs256-xyz", { expiresIn: 600 }),
      sign(TEST_JWT_SECRET, {}, { sid: claims.sid, exp: Math.floor(Date.now() / 1000) - 60 }),
      sign(TEST_JWT_SECRET, { expiresIn: 600, audience: "someone-else" }),
      sign(TEST_JWT_SECRET, { expiresIn: 600 }, { sid: claims.sid, role: "service" }),
      sign(TEST_JWT_SECRET, { expiresIn: 600 }, {}),
      `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: claims.sub, sid: claims.sid, exp: 9_999_999_999 })}.`,
      alice.refreshToken,
      "not.a.token",
    ],
    maxSeq,
    messageMaxChars: MESSAGE_MAX_CHARS,
  };
}
