// UPLOAD_MAX_PENDING: a user holds at most that many uploads no sent message carries; the next one is refused
// `rate_limited` (with when room comes back) and nothing is stored for it; sending one frees its place; other users
// are not affected. In process, embedded storage (files under DATA_DIR, written through the gateway's own route).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { ChatHttpApi } from "../../packages/sdk/src/http-api.js";
import { uploadFile } from "../../packages/sdk/src/uploads.js";
import type { AuthResult, UploadTicket } from "@chat-gateway/protocol";
import { connectDevice, createConversation, request } from "../helpers/clients.js";
import { type InProcessGateway, startInProcessGateway } from "../helpers/in-process.js";

const MAX_PENDING = 3;
const TTL_S = 3600;
let gw: InProcessGateway;
let alice: AuthResult;
let bob: AuthResult;

before(async () => {
  gw = await startInProcessGateway({
    env: { UPLOAD_MAX_PENDING: String(MAX_PENDING), UPLOAD_UNATTACHED_TTL_S: String(TTL_S) },
  });
  alice = await gw.register();
  bob = await gw.register();
});
after(async () => gw?.close());

const declare = (user: AuthResult, name: string) =>
  gw.request<{ upload?: UploadTicket; error?: { code: string; details?: Record<string, number> } }>(
    "POST",
    "/v1/uploads",
    { token: user.accessToken, body: { name, mimeType: "text/plain", size: 5 } },
  );

async function attachmentRows(userId: string): Promise<number> {
  const rows = await gw.database.sql<{ n: number }>(
    "SELECT count(*)::int AS n FROM attachments WHERE uploader_id = $1::uuid",
    [userId],
  );
  return rows[0]!.n;
}

test("past UPLOAD_MAX_PENDING unsent uploads the next is refused until one is sent", async () => {
  const sdk = new ChatHttpApi({ baseUrl: gw.url, getAccessToken: async () => alice.accessToken });
  const first = await uploadFile(sdk, new TextEncoder().encode("hello"), { name: "a.txt", mimeType: "text/plain" });
  for (let i = 2; i <= MAX_PENDING; i++) assert.equal((await declare(alice, `${i}.txt`)).status, 201);
  assert.equal(await attachmentRows(alice.user.id), MAX_PENDING);

  const refused = await declare(alice, "one-too-many.txt");
  assert.equal(refused.status, 429);
  assert.equal(refused.body.error?.code, "rate_limited");
  assert.equal(refused.body.error?.details?.maxPending, MAX_PENDING);
  const retryAfterMs = refused.body.error?.details?.retryAfterMs ?? 0;
  assert.ok(retryAfterMs > 0 && retryAfterMs <= TTL_S * 1000, `retryAfterMs ${retryAfterMs} within the upload TTL`);
  assert.equal(await attachmentRows(alice.user.id), MAX_PENDING, "nothing stored for the refused upload");

  // Someone else's uploads do not count.
  assert.equal((await declare(bob, "bobs.txt")).status, 201);

  // Sending one frees its place.
  const conversation = await createConversation(gw.url, alice.accessToken, { type: "direct", userId: bob.user.id });
  const device = await connectDevice(gw.url, alice.accessToken);
  try {
    const ack = await request(device, "message:send", {
      conversationId: conversation.id,
      clientMsgId: randomUUID(),
      content: "",
      attachmentIds: [first.id],
    });
    assert.equal(ack.ok, true, JSON.stringify(ack));
  } finally {
    device.close();
  }
  assert.equal((await declare(alice, "now-there-is-room.txt")).status, 201);
  assert.equal((await declare(alice, "and-no-more.txt")).status, 429);
});
