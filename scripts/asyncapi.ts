// Writes docs/asyncapi.yaml, the AsyncAPI 3 description of the Socket.IO API, from the protocol package: the request
// schemas the gateway validates (schemas.ts) and the shapes it answers with (shapes.ts), turned into JSON Schema by
// zod's own z.toJSONSchema. The document describes the gateway: a client event is an operation the gateway
// `receive`s, its ack the operation's `reply`; a server event is one it `send`s. Socket.IO has no AsyncAPI binding, so
// the event name is each message's `name` and an ack is a reply on the same channel.
//
//   npm run asyncapi            rewrite docs/asyncapi.yaml
//   npm run asyncapi -- --check exit 1 when the committed file differs (test/ops/asyncapi.test.ts does the same)
import type { ClientToServerEvents, ServerToClientEvents } from "@chat-gateway/protocol";
import { ERROR_STATUS } from "@chat-gateway/protocol";
import * as requests from "@chat-gateway/protocol/schemas";
import * as shapes from "@chat-gateway/protocol/shapes";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { z } from "zod";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const ASYNCAPI_PATH = join(root, "docs/asyncapi.yaml");

interface ClientEventDoc {
  summary: string;
  payload: z.ZodType;
  /** The `{ok: true, ...}` half of the ack. */
  result: z.ZodType;
}
interface ServerEventDoc {
  summary: string;
  /** Absent for an event without arguments. */
  payload?: z.ZodType;
}

// `satisfies Record<keyof …>`: an event added to (or removed from) the typed maps fails the type-check here until it
// is described.
const clientEvents = {
  "message:send": {
    summary: "Send a message; retry with the same clientMsgId until acked (idempotent).",
    payload: requests.SendPayload,
    result: shapes.MessageResult,
  },
  "message:read": {
    summary: "Move the caller's read marker forward (never back).",
    payload: requests.MarkerPayload,
    result: shapes.EmptyResult,
  },
  "message:delivered": {
    summary: "Move the caller's delivered marker forward (never back).",
    payload: requests.MarkerPayload,
    result: shapes.EmptyResult,
  },
  typing: {
    summary: "Start or stop the typing indicator in a conversation.",
    payload: requests.TypingPayload,
    result: shapes.EmptyResult,
  },
  sync: {
    summary: "Everything missed since the cursors: conversations with news, messages above each cursor, changes.",
    payload: requests.SyncPayload,
    result: shapes.SyncResult,
  },
  "message:edit": {
    summary: "Edit one's own message; the ack carries the message as it is now.",
    payload: requests.EditPayload,
    result: shapes.MessageResult,
  },
  "message:delete": {
    summary: "Delete one's own message; the ack carries the tombstone.",
    payload: requests.MessageRefPayload,
    result: shapes.MessageResult,
  },
  "message:react": {
    summary: "Add (on: true) or remove (on: false) the caller's reaction.",
    payload: requests.ReactPayload,
    result: shapes.MessageResult,
  },
  "presence:subscribe": {
    summary: "Watch users' presence; the ack has their current state, `presence` events follow.",
    payload: requests.PresenceSubscribePayload,
    result: shapes.PresenceResult,
  },
  "auth:refresh": {
    summary: "Put a fresh access token on the open socket before the old one expires.",
    payload: requests.AuthRefreshPayload,
    result: shapes.AuthRefreshResult,
  },
} satisfies Record<keyof ClientToServerEvents, ClientEventDoc>;

const serverEvents = {
  "message:new": { summary: "A new message in one of the user's conversations.", payload: shapes.Message },
  "message:updated": {
    summary:
      "A message after an edit, deletion or reaction(s); its changeSeq orders the changes, changeRanges lists the reactions one event coalesces.",
    payload: shapes.MessageUpdate,
  },
  "conversation:read": { summary: "A member's read marker moved.", payload: shapes.MarkerEvent },
  "conversation:delivered": { summary: "A member's delivered marker moved.", payload: shapes.MarkerEvent },
  "conversation:markers": {
    summary: "Receipts of a larger conversation, coalesced per window.",
    payload: shapes.MarkersEvent,
  },
  "conversation:updated": {
    summary: "A conversation changed (members, roles, title, request accepted).",
    payload: shapes.ConversationUpdatedEvent,
  },
  typing: { summary: "Someone started or stopped typing.", payload: shapes.TypingEvent },
  presence: { summary: "A watched user went online or offline.", payload: shapes.PresenceEvent },
  "auth:expiring": {
    summary: "The socket's access token expires soon: send auth:refresh.",
    payload: shapes.AuthExpiringEvent,
  },
  "sync:required": { summary: "Live delivery may have missed this socket: run `sync` with the current cursors." },
  "session:ended": {
    summary: "The server is about to disconnect this socket on purpose; the reason says whether to reconnect.",
    payload: shapes.SessionEndedEvent,
  },
} satisfies Record<keyof ServerToClientEvents, ServerEventDoc>;

/** "message:send" -> "messageSend", so that names fit AsyncAPI's component keys. */
const camel = (event: string): string => event.replace(/[:_-](\w)/g, (_, c: string) => c.toUpperCase());
const pascal = (event: string): string => camel(event).replace(/^\w/, (c) => c.toUpperCase());
const ref = (path: string) => ({ $ref: path });
const CHANNEL = "#/channels/socket";

/** Every schema named once under components.schemas, cross-referenced by $ref (Message inside SyncResult, …). */
function componentSchemas(named: Map<z.ZodType, string>): Record<string, unknown> {
  const registry = z.registry<{ id: string }>();
  for (const [schema, id] of named) registry.add(schema, { id });
  const out = z.toJSONSchema(registry, {
    target: "draft-07",
    io: "input",
    unrepresentable: "any",
    uri: (id) => `#/components/schemas/${id}`,
  }) as { schemas: Record<string, Record<string, unknown>> };
  const schemas: Record<string, unknown> = {};
  for (const id of [...named.values()].sort()) {
    // Each entry is a schema of its own to zod; inside an AsyncAPI document it is a component, not a resource.
    const { $id: _id, $schema: _schema, ...schema } = out.schemas[id] ?? {};
    schemas[id] = schema;
  }
  return schemas;
}

export function buildAsyncapi(): Record<string, unknown> {
  const { version } = JSON.parse(readFileSync(join(root, "packages/protocol/package.json"), "utf8")) as {
    version: string;
  };
  const named = new Map<z.ZodType, string>();
  const nameOf = (schema: z.ZodType): string => {
    const found = Object.entries({ ...requests, ...shapes }).find(([, s]) => s === schema);
    if (!found) throw new Error("a schema of the Socket.IO API is not exported by the protocol package");
    named.set(schema, found[0]);
    return found[0];
  };
  // Every shape gets its component, so that one used inside another (Conversation in SyncResult) is a $ref.
  for (const [name, value] of Object.entries(shapes)) if (value instanceof z.ZodType) named.set(value, name);

  const messages: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const channelMessages: Record<string, unknown> = {};
  for (const [event, doc] of Object.entries(clientEvents) as [string, ClientEventDoc][]) {
    const key = camel(event);
    messages[key] = {
      name: event,
      title: `${event} (client to gateway)`,
      summary: doc.summary,
      payload: ref(`#/components/schemas/${nameOf(doc.payload)}`),
    };
    messages[`${key}Ack`] = {
      name: `${event} ack`,
      title: `${event} ack`,
      summary: `The answer to ${event}, passed to the client's ack callback: {ok: true, …} or the error envelope.`,
      payload: {
        oneOf: [
          { allOf: [ref("#/components/schemas/AckOk"), ref(`#/components/schemas/${nameOf(doc.result)}`)] },
          ref("#/components/schemas/AckFailure"),
        ],
      },
      "x-socketio-ack": true,
    };
    channelMessages[key] = ref(`#/components/messages/${key}`);
    channelMessages[`${key}Ack`] = ref(`#/components/messages/${key}Ack`);
    operations[`on${pascal(event)}`] = {
      action: "receive",
      channel: ref(CHANNEL),
      summary: doc.summary,
      messages: [ref(`${CHANNEL}/messages/${key}`)],
      reply: { channel: ref(CHANNEL), messages: [ref(`${CHANNEL}/messages/${key}Ack`)] },
    };
  }
  for (const [event, doc] of Object.entries(serverEvents) as [string, ServerEventDoc][]) {
    const key = `${camel(event)}Event`;
    messages[key] = {
      name: event,
      title: `${event} (gateway to client)`,
      summary: doc.summary,
      ...(doc.payload ? { payload: ref(`#/components/schemas/${nameOf(doc.payload)}`) } : {}),
    };
    channelMessages[key] = ref(`#/components/messages/${key}`);
    operations[`emit${pascal(event)}`] = {
      action: "send",
      channel: ref(CHANNEL),
      summary: doc.summary,
      messages: [ref(`${CHANNEL}/messages/${key}`)],
    };
  }

  const codes = Object.entries(ERROR_STATUS)
    .map(([code, status]) => `\`${code}\` (${status})`)
    .join(", ");
  return {
    asyncapi: "3.1.0",
    info: {
      title: "Chat gateway Socket.IO API",
      version,
      description:
        "The realtime half of the chat gateway (the HTTP half is docs/openapi.json). Socket.IO v5 (Engine.IO 4) " +
        "on path `/socket.io/`, namespace `/`. Every client event takes an ack callback whose single argument is " +
        "`{ok: true, …}` or `{ok: false, error: {code, message, details?}}`; a client retries until it gets an ack. " +
        `Error codes and the HTTP status each stands for: ${codes}. ` +
        "Generated by scripts/asyncapi.ts from @chat-gateway/protocol; do not edit by hand.",
      license: { name: "MIT" },
    },
    defaultContentType: "application/json",
    servers: {
      gateway: {
        host: "chat.example.com",
        protocol: "wss",
        pathname: "/socket.io/",
        description:
          "Any gateway pod behind the load balancer. Connect with `auth: {token: accessToken}`; a missing or bad " +
          "token fails the handshake with a `connect_error` whose message is `unauthorized` (`unavailable` when " +
          "a dependency is down). Long-polling needs sticky sessions; WebSocket-only clients do not.",
        security: [ref("#/components/securitySchemes/accessToken")],
      },
    },
    channels: {
      socket: {
        address: "/",
        title: "The default namespace",
        description:
          "Each socket joins the room `user:<userId>` and nothing else: events reach every device of a user. " +
          "Acks travel back on the same socket as Socket.IO ack packets.",
        servers: [ref("#/servers/gateway")],
        messages: channelMessages,
      },
    },
    operations,
    components: {
      schemas: {
        ...componentSchemas(named),
        AckOk: {
          type: "object",
          required: ["ok"],
          properties: { ok: { const: true } },
          description: "The success half of every ack; the event's result fields sit beside `ok`.",
        },
        AckFailure: {
          type: "object",
          required: ["ok", "error"],
          properties: { ok: { const: false }, error: ref("#/components/schemas/WireError") },
          additionalProperties: false,
          description: "The failure half of every ack: the contract's error envelope.",
        },
      },
      messages,
      securitySchemes: {
        accessToken: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description:
            "The access token from POST /v1/auth/login or /v1/auth/refresh, sent in the Socket.IO handshake's " +
            "`auth` object as `{token}` (not as an HTTP header); renewed on an open socket with `auth:refresh`.",
        },
      },
    },
  };
}

export function renderAsyncapi(): string {
  const header = "# Generated by scripts/asyncapi.ts (npm run asyncapi) from @chat-gateway/protocol: do not edit.\n";
  return header + stringify(buildAsyncapi(), { lineWidth: 120, aliasDuplicateObjects: false });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = renderAsyncapi();
  if (process.argv.includes("--check")) {
    const committed = readFileSync(ASYNCAPI_PATH, "utf8");
    if (committed !== text) {
      console.error("docs/asyncapi.yaml is out of date: run `npm run asyncapi`");
      process.exit(1);
    }
  } else {
    writeFileSync(ASYNCAPI_PATH, text);
    console.log(`wrote ${ASYNCAPI_PATH}`);
  }
}
