// docs/asyncapi.yaml, the AsyncAPI 3 description of the Socket.IO API: valid for the AsyncAPI parser (its own
// document checks and Spectral rules, no error and no warning), complete (every event of the typed maps, every client
// event with its ack as a reply), and exactly what scripts/asyncapi.ts makes of the protocol package today.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { Parser } from "@asyncapi/parser";
import { stringify } from "yaml";
import { ASYNCAPI_PATH, buildAsyncapi, renderAsyncapi } from "../../scripts/asyncapi.js";

const committed = readFileSync(ASYNCAPI_PATH, "utf8");
const parser = new Parser();
// Error = 0, Warning = 1 (Spectral's DiagnosticSeverity); information and hints are advice.
const serious = (diagnostics: { severity: number }[]) => diagnostics.filter((d) => d.severity <= 1);

test("the committed docs/asyncapi.yaml is what the generator makes of the protocol (npm run asyncapi)", () => {
  assert.equal(committed, renderAsyncapi(), "docs/asyncapi.yaml is out of date: run `npm run asyncapi`");
});

test("the AsyncAPI parser accepts it without errors or warnings", async () => {
  const { document, diagnostics } = await parser.parse(committed);
  assert.deepEqual(
    serious(diagnostics).map((d) => `${(d as { message?: string }).message} at ${(d as { path?: string[] }).path}`),
    [],
  );
  assert.ok(document, "no document");
  assert.match(document.version(), /^3\./);
});

test("every client event is a receive operation with its ack as the reply; every server event a send", async () => {
  const { document } = await parser.parse(committed);
  assert.ok(document);
  const byEvent = new Map<string, { action: string; reply: string[] }>();
  for (const op of document.operations()) {
    for (const message of op.messages()) {
      const replies = op.reply()?.messages().all() ?? [];
      byEvent.set(`${op.action()} ${message.name()}`, {
        action: op.action(),
        reply: replies.map((m) => m.name() ?? ""),
      });
    }
  }
  const client = [
    "message:send",
    "message:read",
    "message:delivered",
    "typing",
    "sync",
    "message:edit",
    "message:delete",
    "message:react",
    "presence:subscribe",
    "auth:refresh",
  ];
  for (const event of client) {
    assert.deepEqual(byEvent.get(`receive ${event}`)?.reply, [`${event} ack`], `receive ${event}`);
  }
  for (const event of ["message:new", "message:updated", "conversation:markers", "sync:required", "session:ended"]) {
    assert.ok(byEvent.has(`send ${event}`), `send ${event}`);
  }
  // The error envelope and every contract code.
  const schemas = (buildAsyncapi().components as { schemas: Record<string, { properties?: Record<string, unknown> }> })
    .schemas;
  assert.deepEqual(schemas.WireError?.properties?.code, { $ref: "#/components/schemas/ErrorCode" });
  const code = (schemas.ErrorCode ?? {}) as { enum?: string[] };
  assert.deepEqual(code.enum?.sort(), [
    "bad_request",
    "conflict",
    "forbidden",
    "internal",
    "not_found",
    "payload_too_large",
    "rate_limited",
    "unauthorized",
    "unavailable",
  ]);
});

test("the schemas are zod's: the send payload's limits come from the schema the gateway validates with", () => {
  const schemas = (buildAsyncapi().components as { schemas: Record<string, Record<string, unknown>> }).schemas;
  const send = schemas.SendPayload as { properties: Record<string, { maxItems?: number }>; required: string[] };
  assert.deepEqual(send.required.sort(), ["clientMsgId", "conversationId"]);
  assert.equal(send.properties.attachmentIds?.maxItems, 10);
});

test("the parser check is live: a broken document is refused", async () => {
  const doc = buildAsyncapi() as { operations: Record<string, { action: string }> };
  const first = Object.values(doc.operations)[0];
  assert.ok(first);
  first.action = "publish"; // AsyncAPI 2's word, not 3's
  const { diagnostics } = await parser.parse(stringify(doc));
  assert.ok(serious(diagnostics).length > 0, "an operation with action `publish` passed");
});
