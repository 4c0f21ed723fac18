// Push and consent, on one node with embedded PGlite and PUSH_INCLUDE_CONTENT=on (so content would otherwise be
// shown): a pending message request is pushed as "message request" without its content, and a blocked user causes
// no push to the blocker, in groups too, while other members are pushed as usual.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { AuthResult } from "@chat-gateway/protocol";
import { acceptConversation, api, createConversation, eventually, registerUser } from "../helpers/clients.js";
import type { Cluster, GatewayProcess } from "../helpers/gateways.js";
import { type PushGateways, type PushServices, send, settle, skipLogged, startPushGateways } from "../helpers/push.js";

const GRACE_MS = 800;

describe("push: message requests and blocks (single node)", () => {
  let push: PushGateways;
  let services: PushServices;
  let cluster: Cluster;
  let gateway: GatewayProcess;

  before(async () => {
    push = await startPushGateways({ graceMs: GRACE_MS, env: { PUSH_INCLUDE_CONTENT: "on" } });
    ({ services, cluster, gateway } = push);
  });
  after(() => push?.stop());

  /** A Web Push subscription for this user (offline: no device acks anything). */
  async function subscribe(user: AuthResult) {
    const web = await push.subscribeWebPush(user);
    return () => services.webPush.for(web.id).map((p) => p.payload);
  }

  test("a pending request is pushed as 'message request', never with its content; after accepting, as usual", async () => {
    const [alice, bob] = await Promise.all([registerUser(gateway.url), registerUser(gateway.url)]);
    const pushesToBob = await subscribe(bob);
    const direct = await createConversation(gateway.url, alice.accessToken, { type: "direct", userId: bob.user.id });
    await send(gateway.url, alice.accessToken, direct.id, "buy my crypto course");
    await eventually(() => pushesToBob().length === 1, 20_000, "the request's push");
    assert.deepEqual(pushesToBob()[0], {
      type: "messages",
      conversationId: direct.id,
      seq: 1,
      count: 1,
      request: true,
      body: "message request",
    });

    await acceptConversation(gateway.url, bob.accessToken, direct.id);
    await send(gateway.url, alice.accessToken, direct.id, "thanks for accepting");
    await eventually(() => pushesToBob().length === 2, 20_000, "the next push");
    assert.deepEqual(pushesToBob()[1], {
      type: "messages",
      conversationId: direct.id,
      seq: 2,
      count: 2,
      sender: { id: alice.user.id, displayName: alice.user.displayName },
      title: null,
      body: "thanks for accepting",
    });
    assert.deepEqual(services.webPush.refused, []);
  });

  test("a blocked user's group message pushes the other members, not the blocker; unblocking restores it", async () => {
    const [alice, bob, carol] = await Promise.all([0, 1, 2].map(() => registerUser(gateway.url)));
    const [toAlice, toCarol] = await Promise.all([subscribe(alice!), subscribe(carol!)]);
    const group = await createConversation(gateway.url, carol!.accessToken, {
      type: "group",
      title: "hikers",
      memberIds: [alice!.user.id, bob!.user.id],
    });
    const blocked = await api(gateway.url, "PUT", `/v1/users/${bob!.user.id}/block`, { token: alice!.accessToken });
    assert.equal(blocked.status, 204);

    await send(gateway.url, bob!.accessToken, group.id, "anyone up for saturday?");
    await eventually(() => toCarol().length === 1, 20_000, "carol's push");
    await skipLogged(cluster, alice!.user.id, group.id, "blocked");
    await settle(GRACE_MS);
    assert.deepEqual(toAlice(), [], "no push to the blocker");

    const lifted = await api(gateway.url, "DELETE", `/v1/users/${bob!.user.id}/block`, { token: alice!.accessToken });
    assert.equal(lifted.status, 204);
    await send(gateway.url, bob!.accessToken, group.id, "still on?");
    await eventually(() => toAlice().length === 1, 20_000, "alice's push after unblocking");
    // Counted from her marker: both of bob's messages are undelivered to her now that neither is hidden.
    assert.equal(toAlice()[0]!.count, 2);
  });
});
