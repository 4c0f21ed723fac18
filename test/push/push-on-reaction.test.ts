// PUSH_ON_REACTION=on (single node with the in-process queue, and two pods on Redis with BullMQ, where the reactions
// go to the other pod; fake Web Push service): reactions by others to a user's own
// message push to that user, collapsed per message, without content; never one's own reaction, never when muted,
// never from a user the author blocks, and not when the reactions were taken back before the push went out.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Message } from "@chat-gateway/protocol";
import { api, createConversation, eventually, registerUser } from "../helpers/clients.js";
import type { Cluster, GatewayProcess } from "../helpers/gateways.js";
import { type PushGateways, type PushServices, settle, skipLogged, startPushGateways } from "../helpers/push.js";

const GRACE_MS = 1500;

const SETUPS = [
  { name: "single node", pods: 1, options: { adapter: "memory" as const, embedded: true } },
  { name: "two pods, BullMQ", pods: 2, options: { adapter: "sharded" as const } },
];

for (const setup of SETUPS)
  describe(`push on reaction (${setup.name})`, () => {
    let push: PushGateways;
    let services: PushServices;
    let cluster: Cluster;
    let gateway: GatewayProcess;
    /** Where reactions are sent: the other pod when there are two. */
    let reactions: GatewayProcess;

    before(async () => {
      push = await startPushGateways({
        graceMs: GRACE_MS,
        pods: setup.pods,
        cluster: setup.options,
        env: { PUSH_ON_REACTION: "on" },
      });
      ({ services, cluster, gateway } = push);
      reactions = cluster.gateways.at(-1)!;
    });
    after(() => push?.stop());

    /** Alice (subscribed to Web Push) owns a group with Bob and Carol and has sent one message to it. */
    async function group() {
      const [alice, bob, carol] = await Promise.all([1, 2, 3].map(() => registerUser(gateway.url)));
      const conversation = await createConversation(gateway.url, alice!.accessToken, {
        type: "group",
        title: "reactions",
        memberIds: [bob!.user.id, carol!.user.id],
      });
      const web = await push.subscribeWebPush(alice!);
      const sent = await api<{ message: Message }>(
        gateway.url,
        "POST",
        `/v1/conversations/${conversation.id}/messages`,
        {
          token: alice!.accessToken,
          body: { clientMsgId: crypto.randomUUID(), content: "secret plans" },
        },
      );
      assert.equal(sent.status, 201);
      return { alice: alice!, bob: bob!, carol: carol!, conversation, web, message: sent.body.message };
    }

    const react = async (token: string, m: Message, emoji: string, on = true) => {
      const path = `/v1/conversations/${m.conversationId}/messages/${m.id}/reactions/${encodeURIComponent(emoji)}`;
      const res = await api(reactions.url, on ? "PUT" : "DELETE", path, { token });
      assert.equal(res.status, 200, `reaction ${on ? "added" : "removed"}`);
    };

    test("reactions by others push once per message to its author, with the count and no content", async () => {
      const { alice, bob, carol, conversation, web, message } = await group();
      await react(bob.accessToken, message, "👍");
      await react(carol.accessToken, message, "🎉");
      await react(alice.accessToken, message, "🔥"); // her own: not counted, not pushed
      await eventually(() => services.webPush.for(web.id).length >= 1, 20_000, "the reaction push");
      await settle(GRACE_MS);
      const pushes = services.webPush.for(web.id);
      assert.equal(pushes.length, 1, "three reactions within the grace period collapse into one push");
      assert.deepEqual(pushes[0]!.payload, {
        type: "reaction",
        conversationId: conversation.id,
        messageId: message.id,
        emoji: "🎉",
        count: 2,
      });
      assert.equal(pushes[0]!.topic, message.id.replace(/-/g, ""), "collapsed per message");
      assert.ok(!JSON.stringify(pushes[0]!.payload).includes("secret"), "no content without PUSH_INCLUDE_CONTENT");
    });

    test("one's own reaction never pushes", async () => {
      const { alice, web, message } = await group();
      await react(alice.accessToken, message, "👍");
      await settle(GRACE_MS);
      assert.equal(services.webPush.for(web.id).length, 0);
    });

    test("no push while the author has muted the conversation", async () => {
      const { alice, bob, conversation, web, message } = await group();
      const muted = await api(gateway.url, "PATCH", `/v1/conversations/${conversation.id}`, {
        token: alice.accessToken,
        body: { muted: true },
      });
      assert.equal(muted.status, 200);
      await react(bob.accessToken, message, "👍");
      await skipLogged(cluster, alice.user.id, conversation.id, "muted");
      await settle(GRACE_MS);
      assert.equal(services.webPush.for(web.id).length, 0);
    });

    test("reactions from a user the author blocks are not pushed", async () => {
      const { alice, bob, conversation, web, message } = await group();
      const blocked = await api(gateway.url, "PUT", `/v1/users/${bob.user.id}/block`, { token: alice.accessToken });
      assert.equal(blocked.status, 204);
      await react(bob.accessToken, message, "👎");
      await skipLogged(cluster, alice.user.id, conversation.id, "blocked");
      await settle(GRACE_MS);
      assert.equal(services.webPush.for(web.id).length, 0);
    });

    test("a reaction taken back within the grace period is not pushed", async () => {
      const { alice, bob, conversation, web, message } = await group();
      await react(bob.accessToken, message, "👍");
      await react(bob.accessToken, message, "👍", false);
      await skipLogged(cluster, alice.user.id, conversation.id, "withdrawn");
      await settle(GRACE_MS);
      assert.equal(services.webPush.for(web.id).length, 0);
    });
  });
