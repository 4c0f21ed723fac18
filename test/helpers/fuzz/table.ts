// The fuzz table: one entry per client socket event and one per HTTP route the gateway serves. The fuzz test fails
// when the gateway has an event or a route without an entry here, so every new one is fuzzed from the day it lands.
//
// Adding an entry takes a few lines: name the event (or "METHOD /path" exactly as Fastify prints it, `:param`
// included), then describe its input with `field(valid, invalid, optional?)` per field, using the shared
// arbitraries (test/helpers/fuzz/arbitraries.ts) and the context's known ids. `valid` values must each be
// acceptable on their own; `invalid` values must each get the input refused (a 4xx / an ack with ok: false), whatever
// the other fields hold: the generator always breaks at least one thing and keeps the rest valid.
import fc from "fast-check";
import {
  badId,
  badInteger,
  badText,
  blank,
  junkId,
  notArray,
  notBoolean,
  notObject,
  notString,
  tooLong,
  tooLongText,
  unknownUuid,
  withControl,
  withInnerControl,
  withLoneSurrogate,
  withNul,
} from "./arbitraries.js";
import { isSingleEmoji } from "../../../src/chat/emoji.js";
import { field, type Shape } from "./model.js";

/** What the entries may refer to: the fuzzing user's own things, other people's, and forged credentials. */
export interface FuzzContext {
  /** The user every input is sent as (alice). */
  token: string;
  userId: string;
  /** Other users: bob shares conversations with alice, carol shares none. */
  otherUserIds: string[];
  /** Carol: in none of alice's conversations. */
  strangerUserId: string;
  /** A direct and a group conversation alice is in, with a few messages each. */
  memberConversationIds: string[];
  groupConversationId: string;
  directConversationId: string;
  /** A conversation between bob and carol: alice must get not_found for it, exactly as for one that does not exist. */
  foreignConversationId: string;
  /** A username that is taken. */
  takenUsername: string;
  /** Alice's push subscription, and bob's (not hers to delete). */
  pushSubscriptionId: string;
  foreignPushSubscriptionId: string;
  /** Valid access tokens of someone else (bob) and of alice's other login: auth:refresh must refuse them. */
  otherLoginTokens: string[];
  /** A valid service token (role "service"), accepted only where an entry says so. */
  serviceToken: string;
  /** Access tokens that must be refused: expired, wrong key, alg none, a refresh token, garbage... */
  badTokens: string[];
  /** Alice's own messages in her conversations (the last of each carries a file), and one of bob and carol's. */
  ownMessageIds: string[];
  /** Those of them in the group: a message and its conversation are valid together only as a pair. */
  ownGroupMessageIds: string[];
  foreignMessageId: string;
  /** Bob's message in the group: alice may report it. */
  bobMessageId: string;
  /** The file of one of alice's messages (attached: it cannot be attached again). */
  attachmentId: string;
  /** Signed /files URLs: the download of that file, and the upload of one never sent (nothing written yet). */
  fileGet: SignedFileUrl;
  filePut: SignedFileUrl;
  /** An open report (alice about carol), for the admin API. */
  reportId: string;
  /** A valid admin token (role "admin", signed by an admin key): the only caller the /v1/admin routes accept. */
  adminToken: string;
  /** Highest seq in each of alice's conversations. */
  maxSeq: number;
  messageMaxChars: number;
}

export interface SignedFileUrl {
  dir: string;
  id: string;
  query: Record<string, string>;
}

export interface SocketEntry {
  event: string;
  payload: Shape;
}

export interface HttpEntry {
  /** "METHOD /path" as Fastify prints the route. */
  route: string;
  /** Behind bearer authentication: a bad Authorization header is one of the ways to break the request. */
  auth: boolean;
  /** A service token is a valid caller too (service publishing); elsewhere it is one more bad token. */
  acceptsServiceTokens?: boolean;
  /** Only an admin token is a valid caller (the /v1/admin routes); user and service tokens are bad ones here. */
  adminOnly?: boolean;
  params?: Record<string, ReturnType<typeof field>>;
  query?: Shape;
  /** The JSON body; several shapes for a union (each malformed input breaks one of them). */
  body?: Shape | Shape[];
  /**
   * For routes with no input to refuse (health, metrics, CORS preflight): the statuses any junk query or header may
   * get. Such an entry sends junk and checks it is answered without an error of ours and changes nothing.
   */
  answers?: number[];
  /** Registered only in some set-ups (the built chat page): no failure when the gateway does not serve it. */
  optional?: boolean;
}

// Shared field descriptions.
const seqField = (ctx: FuzzContext) => field(fc.integer({ min: 0, max: ctx.maxSeq }), badInteger);
/** Someone else's copy of a real id: upper-cased, or with a character more. Ids are opaque; only the exact one names. */
const variantsOf = (ids: string[]) =>
  fc.constantFrom(...ids.flatMap((id) => [id.toUpperCase(), ` ${id}`, `${id}\u0000`]));
const notVisibleConversation = (ctx: FuzzContext) =>
  fc.oneof(badId, fc.constant(ctx.foreignConversationId), variantsOf(ctx.memberConversationIds));
const memberConversation = (ctx: FuzzContext) =>
  field(fc.constantFrom(...ctx.memberConversationIds), notVisibleConversation(ctx));
const clientMsgId = field(
  fc.uuid(),
  fc.oneof(notString, fc.constant(""), tooLong(128), withControl, withLoneSurrogate),
);
const content = (ctx: FuzzContext) =>
  field(
    fc.stringMatching(/^[a-zA-Z0-9 ,.!?éü\n]{0,30}[a-z]$/),
    fc.oneof(notString, blank, withNul, withLoneSurrogate, tooLong(ctx.messageMaxChars)),
  );
const knownUserIds = (ctx: FuzzContext) => fc.constantFrom(ctx.userId, ...ctx.otherUserIds);
/** A param in a URL path: junk (encoded), unknown or someone else's. */
const pathId = fc.oneof(junkId, unknownUuid);
const queryInt = fc.integer({ min: 1, max: 100 }).map(String);
const badQueryInt = fc.oneof(
  fc.constantFrom("", "0", "-1", "1.5", "1e2", "NaN", "Infinity", "0x10", " 5", "99999999999", "2147483648"),
  fc.string({ maxLength: 12 }).filter((s) => !/^\d+$/.test(s)),
  fc.array(queryInt, { minLength: 2, maxLength: 3 }),
);
const badSeqQuery = badQueryInt.filter((v) => v !== "0");
const b64 = (bytes: number) =>
  fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString("base64url"));

/** A message alice may act on, or one she cannot see (someone else's conversation, unknown, junk, a variant). */
const notVisibleMessage = (ctx: FuzzContext) =>
  fc.oneof(badId, fc.constant(ctx.foreignMessageId), variantsOf(ctx.ownMessageIds));
/**
 * A message of alice's in the group and the group itself: the valid pair, so that what refuses an input is what the
 * generator broke and not a message of another conversation. That is one of the ways to break it, too.
 */
const groupMessageConversation = (ctx: FuzzContext) =>
  field(
    fc.constant(ctx.groupConversationId),
    fc.oneof(notVisibleConversation(ctx), fc.constant(ctx.directConversationId)),
  );
const ownMessage = (ctx: FuzzContext) => field(fc.constantFrom(...ctx.ownGroupMessageIds), notVisibleMessage(ctx));
const ownMessageParam = (ctx: FuzzContext) =>
  field(
    fc.constantFrom(...ctx.ownGroupMessageIds),
    fc.oneof(pathId, fc.constant(ctx.foreignMessageId), variantsOf(ctx.ownMessageIds)),
  );
const validEmoji = fc.constantFrom("👍", "❤️", "😀", "🎉", "👍🏽", "🇫🇷", "👩‍💻");
/** Not one emoji: text, two emoji, an emoji with text, too long, a bare modifier or joiner. */
const badEmoji = fc
  .oneof(
    fc.string({ minLength: 1, maxLength: 8 }),
    fc.constantFrom("👍👍", "a👍", "👍 ", "\u200d", "\ud83c\udffd", "\ufe0f", ":+1:", "1", "#", "©"),
    tooLong(32),
    withInnerControl,
    withLoneSurrogate,
  )
  .filter((e) => !isSingleEmoji(e));
/** message:send's and the HTTP send's reply and files: valid ones are a message of alice's in the group, no file. */
const replyToId = (ctx: FuzzContext) => field(fc.constantFrom(...ctx.ownGroupMessageIds), notVisibleMessage(ctx), true);
const attachmentIdsField = (ctx: FuzzContext) =>
  field(
    fc.constant([]),
    fc.oneof(
      notArray,
      fc.array(badId, { minLength: 1, maxLength: 3 }),
      // Already attached to a message: a file is sent once.
      fc.constant([ctx.attachmentId]),
      fc.constant([ctx.attachmentId, ctx.attachmentId]),
      fc.array(fc.uuid(), { minLength: 11, maxLength: 14 }),
    ),
    true,
  );

export function socketEntries(ctx: FuzzContext): SocketEntry[] {
  const marker: Shape = { fields: { conversationId: memberConversation(ctx), seq: seqField(ctx) } };
  return [
    {
      event: "message:send",
      payload: {
        fields: {
          // The group: replyToId's valid values are its messages.
          conversationId: field(fc.constant(ctx.groupConversationId), notVisibleConversation(ctx)),
          clientMsgId,
          content: content(ctx),
          replyToId: replyToId(ctx),
          attachmentIds: attachmentIdsField(ctx),
        },
      },
    },
    {
      event: "message:edit",
      payload: {
        fields: { conversationId: groupMessageConversation(ctx), messageId: ownMessage(ctx), content: content(ctx) },
      },
    },
    {
      event: "message:delete",
      payload: { fields: { conversationId: groupMessageConversation(ctx), messageId: ownMessage(ctx) } },
    },
    {
      event: "message:react",
      payload: {
        fields: {
          conversationId: groupMessageConversation(ctx),
          messageId: ownMessage(ctx),
          emoji: field(validEmoji, fc.oneof(badEmoji, notString, fc.constant(""))),
          on: field(fc.boolean(), notBoolean),
        },
      },
    },
    { event: "message:read", payload: marker },
    { event: "message:delivered", payload: marker },
    {
      event: "typing",
      payload: { fields: { conversationId: memberConversation(ctx), isTyping: field(fc.boolean(), notBoolean) } },
    },
    {
      event: "sync",
      payload: {
        fields: {
          cursors: field(
            fc.dictionary(fc.constantFrom(...ctx.memberConversationIds), fc.integer({ min: 0, max: ctx.maxSeq })),
            fc.oneof(
              notObject,
              fc.dictionary(fc.constantFrom(...ctx.memberConversationIds), badInteger, { minKeys: 1 }),
              fc.dictionary(fc.oneof(fc.constant(""), tooLong(64)), fc.nat(), { minKeys: 1 }),
              fc
                .integer({ min: 10_001, max: 10_050 })
                .map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`c${i}`, 0]))),
            ),
          ),
          limit: field(fc.integer({ min: 1, max: 1000 }), fc.oneof(badInteger, fc.constantFrom(0, 1001)), true),
        },
      },
    },
    {
      event: "presence:subscribe",
      payload: {
        fields: {
          userIds: field(
            fc.array(knownUserIds(ctx), { maxLength: 3 }),
            fc.oneof(
              notArray,
              fc.array(
                badText(64).filter((v) => typeof v !== "string" || v === "" || v.length > 64),
                { minLength: 1, maxLength: 3 },
              ),
              fc.integer({ min: 1001, max: 1100 }).map((n) => Array.from({ length: n }, () => ctx.userId)),
            ),
          ),
        },
      },
    },
    {
      event: "auth:refresh",
      payload: {
        fields: {
          token: field(
            fc.constant(ctx.token),
            fc.oneof(
              notString,
              fc.constant(""),
              tooLong(4096),
              fc.constantFrom(...ctx.badTokens, ...ctx.otherLoginTokens),
              fc.string(),
            ),
          ),
        },
      },
    },
  ];
}

export function httpEntries(ctx: FuzzContext): HttpEntry[] {
  const username = fc.stringMatching(/^[a-z0-9_.-]{3,32}$/);
  const password = fc.string({ minLength: 8, maxLength: 40 });
  const badUsername = fc.oneof(
    notString,
    fc.string({ maxLength: 2 }),
    tooLongText(32),
    withControl,
    withLoneSurrogate,
    fc.constantFrom("a b c", "Ω-ω-Ω", "name@example.com"),
  );
  const badPassword = fc.oneof(notString, fc.string({ maxLength: 7 }), tooLong(256));
  const displayName = field(fc.stringMatching(/^[A-Za-z][A-Za-z ]{0,20}$/), badText(64), true);
  const refreshToken: Shape = {
    strict: true,
    fields: {
      refreshToken: field(
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.oneof(notString, fc.constant(""), tooLong(512)),
      ),
    },
  };
  const conversationParam = {
    id: field(
      fc.constantFrom(...ctx.memberConversationIds),
      fc.oneof(pathId, fc.constant(ctx.foreignConversationId), variantsOf(ctx.memberConversationIds)),
    ),
  };
  const otherUser = field(fc.constantFrom(...ctx.otherUserIds), fc.oneof(badId, variantsOf(ctx.otherUserIds)));
  // A preflight without Origin or Access-Control-Request-Method is refused by @fastify/cors with a 400 and a text
  // body of its own (strictPreflight): the one 4xx without the error envelope, and not an API answer.
  const open = [200, 204, 400, 404];
  return [
    { route: "GET /healthz", auth: false, answers: [200] },
    { route: "GET /readyz", auth: false, answers: [200] },
    { route: "GET /metrics", auth: false, answers: [200] },
    { route: "OPTIONS *", auth: false, answers: open },
    { route: "GET /*", auth: false, answers: [200, 404], optional: true },
    // The OpenAPI document and its Swagger UI (API_DOCS): static answers, nothing to refuse; index.html redirects (fetch follows).
    ...["/docs", "/docs/", "/docs/static/swagger-initializer.js", "/docs/json", "/docs/yaml"].map((path) => ({
      route: `GET ${path}`,
      auth: false,
      answers: [200],
      optional: true,
    })),
    { route: "GET /docs/static/index.html", auth: false, answers: [200, 302], optional: true },
    // Swagger UI's static files: a malformed file path (a backslash, say) is 400 bad_request, an unknown one 404.
    { route: "GET /docs/*", auth: false, answers: [200, 400, 404], optional: true },
    {
      route: "POST /v1/auth/register",
      auth: false,
      body: {
        strict: true,
        fields: {
          // A valid username is always the taken one: a new one with a valid password would be an account.
          username: field(fc.constant(ctx.takenUsername), badUsername),
          password: field(password, badPassword),
          displayName,
        },
      },
    },
    {
      route: "POST /v1/auth/login",
      auth: false,
      body: {
        strict: true,
        fields: {
          username: field(fc.oneof(username, fc.constant(ctx.takenUsername)), badUsername),
          // Never the right password: every login here must fail.
          password: field(
            password.filter((p) => p !== "correct horse battery"),
            badPassword,
          ),
          deviceName: field(
            fc.string({ maxLength: 10 }).filter((s) => !/[\p{Cc}\p{Cs}]/u.test(s)),
            badText(64).filter((v) => v !== "" && (typeof v !== "string" || v.trim() !== "")),
            true,
          ),
        },
      },
    },
    { route: "POST /v1/auth/refresh", auth: false, body: refreshToken },
    {
      route: "POST /v1/auth/logout",
      auth: false,
      body: refreshToken,
    },
    { route: "GET /v1/users/me", auth: true },
    {
      route: "GET /v1/users",
      auth: true,
      query: {
        fields: {
          query: field(
            fc.stringMatching(/^[a-z]{1,10}$/),
            fc.oneof(
              blank,
              tooLongText(32),
              withInnerControl,
              withLoneSurrogate,
              fc.array(fc.constant("ab"), { minLength: 2, maxLength: 3 }),
            ),
          ),
        },
      },
    },
    {
      route: "POST /v1/conversations",
      auth: true,
      body: [
        {
          strict: true,
          fields: {
            type: field(fc.constant("group"), fc.oneof(notString, fc.constantFrom("channel", "GROUP", "", "direct "))),
            title: field(fc.stringMatching(/^[A-Za-z][A-Za-z ]{0,20}$/), badText(64)),
            memberIds: field(
              fc.array(fc.constantFrom(...ctx.otherUserIds), { maxLength: 2 }),
              fc.oneof(notArray, fc.array(otherUser.invalid, { minLength: 1, maxLength: 3 })),
            ),
          },
        },
        {
          strict: true,
          fields: {
            type: field(fc.constant("direct"), fc.oneof(notString, fc.constantFrom("Direct", "", "dm"))),
            // Valid: bob, with whom alice already has one (200, nothing new). Invalid: alice herself, and the rest.
            userId: field(fc.constant(ctx.otherUserIds[0]), fc.oneof(otherUser.invalid, fc.constant(ctx.userId))),
          },
        },
      ],
    },
    {
      route: "GET /v1/conversations",
      auth: true,
      query: {
        fields: {
          limit: field(queryInt, badQueryInt, true),
          cursor: field(
            fc.constant(undefined),
            fc.oneof(
              fc.string({ minLength: 1, maxLength: 200 }),
              tooLong(200),
              withControl,
              fc.base64String({ minLength: 4, maxLength: 80 }),
            ),
            true,
          ),
        },
      },
    },
    { route: "GET /v1/conversations/:id", auth: true, params: conversationParam },
    {
      route: "PATCH /v1/conversations/:id",
      auth: true,
      params: conversationParam,
      body: {
        strict: true,
        fields: {
          muted: field(fc.boolean(), notBoolean, true),
          title: field(fc.stringMatching(/^[A-Za-z][A-Za-z ]{0,20}$/), badText(64), true),
        },
      },
    },
    {
      route: "POST /v1/conversations/:id/members",
      auth: true,
      params: conversationParam,
      body: { strict: true, fields: { userId: otherUser } },
    },
    {
      route: "DELETE /v1/conversations/:id/members/:userId",
      auth: true,
      params: {
        ...conversationParam,
        userId: field(
          fc.constant(ctx.userId),
          fc.oneof(pathId, fc.constant(ctx.strangerUserId), variantsOf([ctx.userId])),
        ),
      },
    },
    {
      route: "GET /v1/conversations/:id/messages",
      auth: true,
      params: conversationParam,
      query: {
        fields: {
          // A seq may be 0 (badQueryInt's "0" is for limits, which start at 1).
          before: field(fc.integer({ min: 0, max: ctx.maxSeq }).map(String), badSeqQuery, true),
          after: field(fc.integer({ min: 0, max: ctx.maxSeq }).map(String), badSeqQuery, true),
          limit: field(queryInt, badQueryInt, true),
        },
      },
    },
    {
      route: "POST /v1/conversations/:id/messages",
      auth: true,
      acceptsServiceTokens: true,
      // A service posts into any conversation that exists, bob and carol's included: not an invalid id here. The
      // group only is valid: replyToId's valid values are its messages.
      params: {
        id: field(fc.constant(ctx.groupConversationId), fc.oneof(pathId, variantsOf(ctx.memberConversationIds))),
      },
      body: {
        strict: true,
        fields: {
          clientMsgId,
          content: content(ctx),
          replyToId: replyToId(ctx),
          attachmentIds: attachmentIdsField(ctx),
        },
      },
    },
    {
      route: "POST /v1/conversations/:id/read",
      auth: true,
      params: conversationParam,
      body: { strict: true, fields: { seq: seqField(ctx) } },
    },
    { route: "GET /v1/push/vapid-public-key", auth: true },
    {
      route: "POST /v1/push/subscriptions",
      auth: true,
      body: {
        fields: {
          type: field(fc.constant("webpush"), fc.oneof(notString, fc.constantFrom("fcm", "webhook", "apns", ""))),
          endpoint: field(
            fc.uuid().map((id) => `https://127.0.0.1:8443/push/${id}`),
            fc.oneof(
              notString,
              tooLong(2048),
              withControl,
              fc.constantFrom(
                "http://127.0.0.1:8443/push/x",
                "https://169.254.169.254/latest/meta-data",
                "https://evil.invalid/push",
                "javascript:alert(1)",
                "https://127.0.0.1:6379/",
                "not a url",
              ),
            ),
          ),
          keys: field(
            fc.record({ p256dh: b64(65), auth: b64(16) }),
            fc.oneof(
              notObject,
              fc.record({ p256dh: fc.oneof(b64(64), notString, withControl), auth: b64(16) }),
              fc.record({ p256dh: b64(65), auth: fc.oneof(b64(15), notString) }),
            ),
          ),
        },
      },
    },
    ...messageChangeEntries(ctx, conversationParam),
    ...safetyEntries(ctx, conversationParam),
    ...adminEntries(ctx),
    ...attachmentEntries(ctx),
    {
      route: "PATCH /v1/conversations/:id/members/:userId",
      auth: true,
      params: {
        // Roles exist in groups only: the direct conversation is refused (forbidden) like one alice cannot see.
        id: field(
          fc.constant(ctx.groupConversationId),
          fc.oneof(
            pathId,
            fc.constantFrom(ctx.foreignConversationId, ctx.directConversationId),
            variantsOf([ctx.groupConversationId]),
          ),
        ),
        userId: field(
          fc.constant(ctx.otherUserIds[0]!),
          fc.oneof(pathId, fc.constant(ctx.strangerUserId), variantsOf([ctx.otherUserIds[0]!])),
        ),
      },
      body: {
        strict: true,
        fields: {
          role: field(
            fc.constantFrom("admin", "member"),
            fc.oneof(notString, fc.constantFrom("owner", "Admin", "", " admin", "moderator")),
          ),
        },
      },
    },
    {
      route: "GET /v1/search/messages",
      auth: true,
      query: {
        fields: {
          query: field(
            fc.stringMatching(/^[a-z]{2,10}( [a-z]{2,10})?$/),
            fc.oneof(
              blank,
              tooLongText(200),
              withInnerControl,
              withLoneSurrogate,
              fc.array(fc.constant("ab"), { minLength: 2, maxLength: 3 }),
            ),
          ),
          conversationId: field(
            fc.constantFrom(...ctx.memberConversationIds),
            fc.oneof(
              fc.constant(ctx.foreignConversationId),
              unknownUuid,
              variantsOf(ctx.memberConversationIds),
              fc.constant(""),
              tooLong(64),
            ),
            true,
          ),
          limit: field(
            fc.integer({ min: 1, max: 50 }).map(String),
            fc.oneof(badQueryInt, fc.constantFrom("51", "100")),
            true,
          ),
          cursor: field(
            fc.constant(undefined),
            fc.oneof(
              fc.string({ minLength: 1, maxLength: 200 }),
              tooLong(200),
              withControl,
              fc.base64String({ minLength: 4, maxLength: 80 }),
            ),
            true,
          ),
        },
      },
    },
    {
      route: "DELETE /v1/push/subscriptions/:id",
      auth: true,
      params: {
        id: field(fc.constant(ctx.pushSubscriptionId), fc.oneof(pathId, fc.constant(ctx.foreignPushSubscriptionId))),
      },
    },
  ];
}

type ParamFields = Record<string, ReturnType<typeof field>>;

/** Editing, deleting and reacting to a message over HTTP: alice's own messages, never all of it valid at once. */
function messageChangeEntries(ctx: FuzzContext, conversationParam: ParamFields): HttpEntry[] {
  const params = {
    id: field(
      fc.constant(ctx.groupConversationId),
      fc.oneof(conversationParam.id!.invalid, fc.constant(ctx.directConversationId)),
    ),
    messageId: ownMessageParam(ctx),
  };
  // In a path an emoji is percent-encoded text; junk, two emoji or none at all are refused.
  const emojiParam = field(validEmoji, fc.oneof(badEmoji, fc.constant("")));
  return [
    {
      route: "PATCH /v1/conversations/:id/messages/:messageId",
      auth: true,
      params,
      body: { strict: true, fields: { content: content(ctx) } },
    },
    { route: "DELETE /v1/conversations/:id/messages/:messageId", auth: true, params },
    {
      route: "PUT /v1/conversations/:id/messages/:messageId/reactions/:emoji",
      auth: true,
      params: { ...params, emoji: emojiParam },
    },
    {
      route: "DELETE /v1/conversations/:id/messages/:messageId/reactions/:emoji",
      auth: true,
      params: { ...params, emoji: emojiParam },
    },
    // An operator deletes any message: only with an admin token, and never with every part valid (nothing deleted).
    { route: "DELETE /v1/admin/conversations/:id/messages/:messageId", auth: true, adminOnly: true, params },
  ];
}

/** Consent and safety: message requests, blocks, reports, deleting one's account. */
function safetyEntries(ctx: FuzzContext, conversationParam: ParamFields): HttpEntry[] {
  const blockable = field(
    fc.constantFrom(...ctx.otherUserIds),
    fc.oneof(pathId, fc.constant(ctx.userId), variantsOf(ctx.otherUserIds)),
  );
  const reason = field(fc.stringMatching(/^[A-Za-z][A-Za-z .,]{0,40}$/), badText(1000));
  return [
    { route: "POST /v1/conversations/:id/accept", auth: true, params: conversationParam },
    { route: "GET /v1/users/me/blocks", auth: true },
    { route: "PUT /v1/users/:id/block", auth: true, params: { id: blockable } },
    { route: "DELETE /v1/users/:id/block", auth: true, params: { id: blockable } },
    {
      route: "POST /v1/reports",
      auth: true,
      body: [
        {
          strict: true,
          fields: {
            // Alice's own message is refused (bad_request), as one she cannot see (not_found): bob's is valid.
            messageId: field(
              fc.constant(ctx.bobMessageId),
              fc.oneof(notVisibleMessage(ctx), fc.constantFrom(...ctx.ownMessageIds)),
            ),
            reason,
          },
        },
        {
          strict: true,
          fields: {
            userId: field(
              fc.constantFrom(...ctx.otherUserIds),
              fc.oneof(badId, fc.constant(ctx.userId), variantsOf(ctx.otherUserIds)),
            ),
            reason,
          },
        },
      ],
    },
    {
      route: "DELETE /v1/users/me",
      auth: true,
      // Never the real password (that would delete alice): every value here is a wrong one, and a missing password
      // is refused too (a password account must prove it). The account must survive every input.
      body: {
        strict: true,
        fields: {
          password: field(
            fc.string({ minLength: 1, maxLength: 40 }).filter((p) => p !== "correct horse battery"),
            fc.oneof(notString, fc.constant(""), tooLong(256)),
            true,
          ),
        },
      },
    },
  ];
}

/** The operator API: an admin token is the valid caller; user and plain service tokens are refused. */
function adminEntries(ctx: FuzzContext): HttpEntry[] {
  const page = {
    limit: field(queryInt, badQueryInt, true),
    cursor: field(
      fc.constant(undefined),
      fc.oneof(fc.string({ minLength: 1, maxLength: 200 }), tooLong(200), withControl),
      true,
    ),
  };
  const note = (max: number) => field(fc.stringMatching(/^[a-z][a-z ]{0,20}$/), badText(max), true);
  const suspendable = field(fc.constant(ctx.strangerUserId), fc.oneof(pathId, variantsOf([ctx.strangerUserId])));
  return [
    {
      route: "GET /v1/admin/reports",
      auth: true,
      adminOnly: true,
      query: {
        fields: {
          status: field(
            fc.constantFrom("open", "resolved"),
            fc.oneof(fc.constantFrom("", "OPEN", "closed", "all"), withControl),
            true,
          ),
          ...page,
        },
      },
    },
    {
      route: "POST /v1/admin/reports/:id/resolve",
      auth: true,
      adminOnly: true,
      params: { id: field(fc.constant(ctx.reportId), fc.oneof(pathId, variantsOf([ctx.reportId]))) },
      body: { strict: true, fields: { action: note(64), note: note(1000) } },
    },
    {
      route: "POST /v1/admin/users/:id/suspend",
      auth: true,
      adminOnly: true,
      params: { id: suspendable },
      body: { strict: true, fields: { reason: note(1000) } },
    },
    { route: "DELETE /v1/admin/users/:id/suspend", auth: true, adminOnly: true, params: { id: suspendable } },
    { route: "GET /v1/admin/audit", auth: true, adminOnly: true, query: { fields: page } },
  ];
}

/** Uploads, attachments, and the embedded storage's signed file URLs (no bearer token: the signature is the key). */
function attachmentEntries(ctx: FuzzContext): HttpEntry[] {
  /** A signed URL's path and query: any change to a signed part, an extra or a missing one, is refused. */
  const signed = (url: SignedFileUrl, otherMethod: string): Pick<HttpEntry, "params" | "query"> => ({
    params: {
      dir: field(fc.constant(url.dir), fc.oneof(junkId, fc.constantFrom(url.dir === "files" ? "uploads" : "files"))),
      id: field(fc.constant(url.id), fc.oneof(pathId, variantsOf([url.id]))),
    },
    query: {
      strict: true,
      fields: Object.fromEntries(
        Object.entries(url.query).map(([key, value]) => [
          key,
          field(
            fc.constant(value),
            fc
              .oneof(
                fc.string({ maxLength: 20 }),
                tooLong(value.length + 10),
                fc.constant(value.toUpperCase() === value ? value.toLowerCase() : value.toUpperCase()),
                fc.constant(key === "m" ? otherMethod : `${value}0`),
                fc.array(fc.constant(value), { minLength: 2, maxLength: 3 }),
              )
              .filter((v) => v !== value),
          ),
        ]),
      ),
    },
  });
  return [
    {
      route: "POST /v1/uploads",
      auth: true,
      body: {
        strict: true,
        fields: {
          name: field(fc.stringMatching(/^[a-z]{1,12}\.(txt|png|pdf)$/), badText(255)),
          mimeType: field(
            fc.constantFrom("text/plain", "image/png", "application/pdf"),
            fc.oneof(
              notString,
              fc.constantFrom("", "text", "text/", "/plain", "text/html", "application/x-msdownload", "image/svg+xml"),
              tooLong(255),
              withControl,
            ),
          ),
          size: field(
            fc.integer({ min: 1, max: 1_000_000 }),
            fc.oneof(badInteger, fc.constant(0), fc.integer({ min: 25 * 1024 * 1024 + 1, max: 2 ** 40 })),
          ),
        },
      },
    },
    {
      route: "GET /v1/attachments/:id",
      auth: true,
      params: { id: field(fc.constant(ctx.attachmentId), fc.oneof(pathId, variantsOf([ctx.attachmentId]))) },
    },
    { route: "GET /files/:dir/:id", auth: false, ...signed(ctx.fileGet, "PUT") },
    { route: "PUT /files/:dir/:id", auth: false, ...signed(ctx.filePut, "GET") },
  ];
}
