// A message committed by a pod that died before its fan-out: the sender's retry with the same clientMsgId finds it
// stored and fans it out again, so the other member's device gets `message:new` and an offline member's push
// decision runs; push still sends one notification for it however often it is retried.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import type { Message } from "@chat-gateway/protocol";
import {
  acceptConversation,
  api,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  registerUser,
  request,
  waitForEvent,
} from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { type PushServices, settle, startPushServices } from "../helpers/push.js";

const GRACE_MS = 300;

describe("a retried send of a stored message fans out again", () => {
  let services: PushServices;
  let cluster: Cluster;
  let db: pg.Client;
  const devices: Device[] = [];
  before(async () => {
    services = await startPushServices();
    cluster = await startGateways(2, { adapter: "sharded", env: { ...services.env, PUSH_GRACE_MS: String(GRACE_MS) } });
    db = new pg.Client({ connectionString: cluster.databaseUrl });
    await db.connect();
  });
  after(async () => {
    for (const d of devices) d.close();
    await db?.end();
    await cluster?.cleanup();
    await services?.stop();
  });

  /** What the writer commits for a send, written directly: the commit happened, the fan-out never did. */
  async function storedWithoutFanOut(conversationId: string, senderId: string, clientMsgId: string): Promise<string> {
    const id = randomUUID();
    await db.query(
      `WITH c AS (UPDATE conversations SET last_seq = last_seq + 1, last_message_at = now() WHERE id = $2
                  RETURNING last_seq)
       INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, content)
       SELECT $1, $2, c.last_seq, $3, $4, 'committed, never fanned out' FROM c`,
      [id, conversationId, senderId, clientMsgId],
    );
    await db.query(
      `UPDATE members SET read_seq = (SELECT last_seq FROM conversations WHERE id = $1)
        WHERE conversation_id = $1 AND user_id = $2`,
      [conversationId, senderId],
    );
    return id;
  }

  test("the other member's device gets message:new for it on the retry", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const [alice, bob] = await Promise.all([registerUser(u0), registerUser(u1)]);
    const conversation = await createConversation(u0, alice.accessToken, { type: "direct", userId: bob.user.id });
    await acceptConversation(u0, bob.accessToken, conversation.id);
    const bobDevice = await connectDevice(u1, bob.accessToken);
    const aliceDevice = await connectDevice(u0, alice.accessToken);
    devices.push(bobDevice, aliceDevice);
    const id = await storedWithoutFanOut(conversation.id, alice.user.id, "lost-fanout");

    const arrives = waitForEvent(bobDevice, "message:new", (m) => m.id === id);
    const ack = await request(aliceDevice, "message:send", {
      conversationId: conversation.id,
      clientMsgId: "lost-fanout",
      content: "committed, never fanned out",
    });
    assert.equal(ack.ok, true);
    assert.equal(ack.message.id, id, "the stored message, not a new one");
    const received = await arrives;
    assert.equal(received.seq, ack.message.seq);
    const { rows } = await db.query("SELECT 1 FROM messages WHERE client_msg_id = 'lost-fanout'");
    assert.equal(rows.length, 1, "still stored once");
  });

  test("an offline member's push decision runs on the retry, and one notification goes out however often", async () => {
    const [u0] = cluster.urls as [string];
    const [alice, bob] = await Promise.all([registerUser(u0), registerUser(u0)]);
    const conversation = await createConversation(u0, alice.accessToken, { type: "direct", userId: bob.user.id });
    await acceptConversation(u0, bob.accessToken, conversation.id);
    const web = services.webPush.subscribe();
    const subscribed = await api(u0, "POST", "/v1/push/subscriptions", {
      token: bob.accessToken,
      body: { type: "webpush", endpoint: web.endpoint, keys: web.keys },
    });
    assert.equal(subscribed.status, 201);
    await storedWithoutFanOut(conversation.id, alice.user.id, "lost-push");

    const retry = () =>
      api<{ message: Message }>(u0, "POST", `/v1/conversations/${conversation.id}/messages`, {
        token: alice.accessToken,
        body: { clientMsgId: "lost-push", content: "committed, never fanned out" },
      });
    assert.equal((await retry()).status, 200);
    await eventually(() => services.webPush.for(web.id).length >= 1, 20_000, "the push");
    for (let i = 0; i < 3; i++) assert.equal((await retry()).status, 200);
    await settle(GRACE_MS);
    assert.equal(services.webPush.for(web.id).length, 1, "one notification for the message");
    assert.deepEqual(services.webPush.for(web.id)[0]!.payload, {
      type: "messages",
      conversationId: conversation.id,
      seq: 1,
      count: 1,
    });
  });
});
