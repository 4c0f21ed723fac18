// Two users with two devices each, spread over three gateway processes on the real Redis: every device receives
// every message exactly once, with both adapters; concurrent sends from several pods get gapless seqs.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Message } from "@chat-gateway/protocol";
import {
  api,
  collect,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  registerUser,
  request,
} from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";

for (const adapter of ["classic", "sharded"] as const) {
  describe(`cross-pod delivery (${adapter} adapter)`, () => {
    let cluster: Cluster;
    const devices: Device[] = [];
    before(async () => {
      cluster = await startGateways(3, { adapter });
    });
    after(async () => {
      for (const d of devices) d.close();
      await cluster.cleanup();
    });

    test("every device of every member gets every message exactly once", async () => {
      const [u0, u1, u2] = cluster.urls as [string, string, string];
      const alice = await registerUser(u0);
      const bob = await registerUser(u1);
      const conversation = await createConversation(u0, alice.accessToken, { type: "direct", userId: bob.user.id });

      // alice on pods 0 and 1, bob on pods 1 and 2.
      const aliceDevices = [await connectDevice(u0, alice.accessToken), await connectDevice(u1, alice.accessToken)];
      const bobDevices = [await connectDevice(u1, bob.accessToken), await connectDevice(u2, bob.accessToken)];
      devices.push(...aliceDevices, ...bobDevices);
      const inboxes = [...aliceDevices, ...bobDevices].map((d) => collect(d, "message:new"));
      // With the sharded adapter a pod subscribes to a room's channel when the room's first socket joins, without
      // waiting for Redis to confirm: what another pod publishes before then reaches that device only by a sync
      // (the gateway sends `sync:required` when a confirmation comes late, and the SDK syncs on every connect), which
      // these raw clients never run. Let the subscriptions settle.
      await new Promise((r) => setTimeout(r, 300));

      const senders = [
        { device: aliceDevices[0]!, tag: "a0" },
        { device: aliceDevices[1]!, tag: "a1" },
        { device: bobDevices[0]!, tag: "b0" },
        { device: bobDevices[1]!, tag: "b1" },
      ];
      const perDevice = 10;
      const acks = await Promise.all(
        senders.flatMap(({ device, tag }) =>
          Array.from({ length: perDevice }, (_, i) =>
            request(device, "message:send", {
              conversationId: conversation.id,
              clientMsgId: `${tag}-${i}`,
              content: `hello ${tag} ${i}`,
            }),
          ),
        ),
      );
      assert.ok(
        acks.every((a) => a.ok),
        JSON.stringify(acks.find((a) => !a.ok)),
      );
      const total = senders.length * perDevice;

      await eventually(() => inboxes.every((inbox) => inbox.length >= total), 10_000, "all deliveries");
      await new Promise((r) => setTimeout(r, 300)); // duplicates would arrive late: give them the chance
      for (const inbox of inboxes) {
        assert.equal(inbox.length, total, "exactly once per device");
        assert.equal(new Set(inbox.map((m) => m.id)).size, total);
        assert.deepEqual(
          inbox.map((m) => m.seq).sort((a, b) => a - b),
          Array.from({ length: total }, (_, i) => i + 1),
        );
      }

      // History returns the same messages, ascending.
      const history = await api<{ messages: Message[]; hasMore: boolean }>(
        u2,
        "GET",
        `/v1/conversations/${conversation.id}/messages?limit=100`,
        { token: bob.accessToken },
      );
      assert.equal(history.status, 200);
      assert.deepEqual(
        history.body.messages.map((m) => m.seq),
        Array.from({ length: total }, (_, i) => i + 1),
      );
      assert.equal(history.body.hasMore, false);
    });

    test("200 concurrent sends from several pods get seq 1..200 with no gap or duplicate", async () => {
      const users = await Promise.all(cluster.urls.map((u) => registerUser(u)));
      const [owner, ...others] = users;
      const group = await createConversation(cluster.urls[0]!, owner!.accessToken, {
        type: "group",
        title: "load",
        memberIds: others.map((u) => u.user.id),
      });
      const senders = await Promise.all(users.map((u, i) => connectDevice(cluster.urls[i]!, u.accessToken)));
      devices.push(...senders);
      const acks = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          request(senders[i % senders.length]!, "message:send", {
            conversationId: group.id,
            clientMsgId: `c-${i}`,
            content: `m${i}`,
          }),
        ),
      );
      assert.ok(acks.every((a) => a.ok));
      assert.deepEqual(
        acks.map((a) => a.message.seq).sort((a, b) => a - b),
        Array.from({ length: 200 }, (_, i) => i + 1),
      );
      const seqs: number[] = [];
      let afterSeq = 0;
      for (;;) {
        const page = await api<{ messages: Message[]; hasMore: boolean }>(
          cluster.urls[1]!,
          "GET",
          `/v1/conversations/${group.id}/messages?after=${afterSeq}&limit=100`,
          { token: owner!.accessToken },
        );
        seqs.push(...page.body.messages.map((m) => m.seq));
        if (!page.body.hasMore) break;
        afterSeq = seqs.at(-1)!;
      }
      assert.deepEqual(
        seqs,
        Array.from({ length: 200 }, (_, i) => i + 1),
      );
    });
  });
}
