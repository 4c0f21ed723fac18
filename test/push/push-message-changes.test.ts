// Push and messages that change (single node, in-process queue): a message deleted before its push went out is not
// pushed (the pending push is withdrawn), and edits and reactions never push.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Message } from "@chat-gateway/protocol";
import { api, createConversation, eventually, registerUser } from "../helpers/clients.js";
import type { Cluster, GatewayProcess } from "../helpers/gateways.js";
import { type PushGateways, type PushServices, settle, skipLogged, startPushGateways } from "../helpers/push.js";

const GRACE_MS = 1500;

describe("push and messages that change", () => {
  let push: PushGateways;
  let services: PushServices;
  let cluster: Cluster;
  let gateway: GatewayProcess;

  before(async () => {
    push = await startPushGateways({ graceMs: GRACE_MS });
    ({ services, cluster, gateway } = push);
  });
  after(() => push?.stop());

  async function pair() {
    const alice = await registerUser(gateway.url);
    const bob = await registerUser(gateway.url);
    const conversation = await createConversation(gateway.url, alice.accessToken, {
      type: "direct",
      userId: bob.user.id,
    });
    const web = await push.subscribeWebPush(bob);
    return { alice, bob, conversation, web };
  }

  const post = async (token: string, conversationId: string, content: string) =>
    (
      await api<{ message: Message }>(gateway.url, "POST", `/v1/conversations/${conversationId}/messages`, {
        token,
        body: { clientMsgId: crypto.randomUUID(), content },
      })
    ).body.message;
  const path = (m: Message) => `/v1/conversations/${m.conversationId}/messages/${m.id}`;

  test("a message deleted within the grace period is never pushed", async () => {
    const { alice, bob, conversation, web } = await pair();
    const message = await post(alice.accessToken, conversation.id, "sent by mistake");
    const deleted = await api(gateway.url, "DELETE", path(message), { token: alice.accessToken });
    assert.equal(deleted.status, 200);
    await skipLogged(cluster, bob.user.id, conversation.id, "delivered");
    await settle(GRACE_MS);
    assert.equal(services.webPush.for(web.id).length, 0, "no push for a deleted message");
  });

  test("edits and reactions never push", async () => {
    const { alice, bob, conversation, web } = await pair();
    const message = await post(alice.accessToken, conversation.id, "hello");
    await eventually(() => services.webPush.for(web.id).length === 1, 20_000, "the message's push");
    // Bob's devices got nothing: Alice edits and reacts, Bob reacts to his own... nothing more is pushed.
    const edited = await api(gateway.url, "PATCH", path(message), {
      token: alice.accessToken,
      body: { content: "hi" },
    });
    assert.equal(edited.status, 200);
    const reacted = await api(gateway.url, "PUT", `${path(message)}/reactions/${encodeURIComponent("👍")}`, {
      token: bob.accessToken,
    });
    assert.equal(reacted.status, 200);
    const mine = await post(bob.accessToken, conversation.id, "my own");
    await api(gateway.url, "PUT", `${path(mine)}/reactions/${encodeURIComponent("🎉")}`, { token: alice.accessToken });
    await settle(GRACE_MS);
    assert.equal(services.webPush.for(web.id).length, 1, "only the message itself was pushed");
  });
});
