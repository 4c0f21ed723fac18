// The SDK with messages that change, against two real gateways: edits, deletions and reactions reach every device as
// `messageUpdated`, each state once and in order; a device offline meanwhile (its network cut by a TCP proxy)
// converges after its sync to exactly the online devices' state; a change retried after a lost ack is applied once.
// A reaction storm reaches the SDK coalesced (`changeRanges`): online apps converge without a sync, an offline one
// after its sync, and the app never sees the ranges.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type AuthSession, ChatClient, ChatHttpApi, type Message, replyPreviewOf } from "@chat-gateway/sdk";
import { api, connectDevice, type Device, eventually, request, uniqueName } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

const PASSWORD = "correct horse battery";

/** An app: a ChatClient and the messages it keeps, as an app would (replies follow the message they answer). */
interface App {
  client: ChatClient;
  store: Map<string, Message>;
  newIds: string[];
  updates: Message[];
}

const apps: App[] = [];

function app(url: string, auth: AuthSession): App {
  const client = new ChatClient({
    url,
    auth,
    transports: ["websocket"],
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    ackTimeoutMs: 1_000,
  });
  const a: App = { client, store: new Map(), newIds: [], updates: [] };
  const keep = (m: Message) => {
    a.store.set(m.id, m);
    for (const [id, other] of a.store) {
      if (other.replyTo?.id === m.id) a.store.set(id, { ...other, replyTo: replyPreviewOf(m) });
    }
  };
  client.on("message", (m) => {
    a.newIds.push(m.id);
    keep(m);
  });
  client.on("messageUpdated", (m) => {
    a.updates.push(m);
    keep(m);
  });
  apps.push(a);
  return a;
}

const state = (a: App, conversationId: string) =>
  [...a.store.values()].filter((m) => m.conversationId === conversationId).sort((x, y) => x.seq - y.seq);

describe("SDK: messages that change, on two gateways", () => {
  let cluster: Cluster;
  let proxy: TcpProxy;
  let alice: AuthSession;
  let bob: AuthSession;

  before(async () => {
    cluster = await startGateways(2);
    const api = new ChatHttpApi({ baseUrl: cluster.urls[0]! });
    alice = await api.register({ username: uniqueName("alice"), password: PASSWORD });
    bob = await api.register({ username: uniqueName("bob"), password: PASSWORD });
    proxy = await startTcpProxy(cluster.urls[1]!);
  });
  after(async () => {
    await Promise.all(apps.map((a) => a.client.close()));
    await proxy?.close();
    await cluster?.cleanup();
  });

  test("an offline device converges after sync; each state arrives once; a retried edit is applied once", async () => {
    const [g0, g1] = cluster.urls as [string, string];
    const login = (url: string, username: string, deviceName: string) =>
      new ChatHttpApi({ baseUrl: url }).login({ username, password: PASSWORD, deviceName });
    const phone = app(g0, alice);
    const bobPhone = app(g1, bob);
    const bobTablet = app(proxy.url, await login(g1, bob.user.username, "tablet"));
    await Promise.all([phone, bobPhone, bobTablet].map((a) => a.client.connect()));
    const { id: conversationId } = await phone.client.api.openDirectConversation(bob.user.id);
    const everyone = [phone, bobPhone, bobTablet];
    const held = (n: number) => () => everyone.every((a) => state(a, conversationId).length === n);

    for (let i = 0; i < 5; i++) await phone.client.send(conversationId, `hello ${i}`);
    await eventually(held(5), 10_000, "five messages everywhere");
    const first = state(phone, conversationId);
    await bobPhone.client.send(conversationId, "answering the second", { replyToId: first[1]!.id });
    await eventually(held(6), 10_000, "the reply everywhere");
    assert.equal(state(bobTablet, conversationId)[5]!.replyTo!.content, "hello 1");

    // The tablet goes offline; meanwhile edits, a deletion, reactions and new messages.
    proxy.setMode("down");
    proxy.cutAll();
    await eventually(() => bobTablet.client.state !== "connected", 5_000, "the tablet offline");
    for (let i = 0; i < 4; i++) await phone.client.editMessage(conversationId, first[1]!.id, `edited ${i}`);
    const tomb = await phone.client.deleteMessage(conversationId, first[3]!.id);
    assert.equal(tomb.content, "");
    await Promise.all([
      phone.client.react(conversationId, first[0]!.id, "👍"),
      bobPhone.client.react(conversationId, first[0]!.id, "👍"),
      bobPhone.client.react(conversationId, first[0]!.id, "🎉"),
    ]);
    await bobPhone.client.react(conversationId, first[0]!.id, "🎉", false);
    await phone.client.send(conversationId, "while the tablet was away");
    await eventually(() => state(bobPhone, conversationId).length === 7, 10_000, "the new one online");
    await eventually(
      () => JSON.stringify(state(phone, conversationId)) === JSON.stringify(state(bobPhone, conversationId)),
      10_000,
      "both online devices agree",
    );
    const online = state(bobPhone, conversationId);
    assert.equal(online[5]!.replyTo!.content, "edited 3", "the reply follows the edits");
    assert.deepEqual(
      online[0]!.reactions.map((r) => [r.emoji, r.count]),
      [["👍", 2]],
    );

    // Back online: one sync later, the tablet holds exactly the same state.
    const tabletUpdatesBefore = bobTablet.updates.length;
    proxy.setMode("up");
    await eventually(
      () => JSON.stringify(state(bobTablet, conversationId)) === JSON.stringify(online),
      15_000,
      "the tablet converged",
    );
    assert.deepEqual(state(bobTablet, conversationId), online, "field by field");
    assert.equal(new Set(bobTablet.newIds).size, bobTablet.newIds.length, "no message came twice as new");
    // Only the final state of each changed message it held, once each.
    const caughtUp = bobTablet.updates.slice(tabletUpdatesBefore).map((m) => m.id);
    assert.equal(new Set(caughtUp).size, caughtUp.length, "each changed message once");
    for (const a of everyone) {
      const seen = new Map<string, number>();
      for (const u of a.updates) {
        assert.ok((seen.get(u.id) ?? -1) < u.changeSeq, "updates of a message in increasing changeSeq");
        seen.set(u.id, u.changeSeq);
      }
    }

    // A change whose ack is lost is retried, and applied once: the others see one update.
    const phoneUpdates = phone.updates.length;
    proxy.setMode("ack-loss");
    const edited = bobTablet.client.editMessage(conversationId, online[5]!.id, "said once");
    await eventually(() => phone.updates.length > phoneUpdates, 10_000, "the edit applied");
    await new Promise((r) => setTimeout(r, 2_500)); // the tablet retries meanwhile
    proxy.setMode("up");
    proxy.cutAll();
    const answer = await edited;
    assert.equal(answer.content, "said once");
    assert.equal(phone.updates.length, phoneUpdates + 1, "one change, however many tries");
    await eventually(
      () => bobTablet.client.changeCursor(conversationId) === answer.changeSeq,
      10_000,
      "the tablet's change cursor at the last change",
    );

    // Refusals reject the call and the queue goes on.
    await assert.rejects(bobPhone.client.editMessage(conversationId, first[0]!.id, "not mine"), { code: "forbidden" });
    await assert.rejects(phone.client.editMessage(conversationId, first[3]!.id, "deleted"), { code: "conflict" });
    const last = await phone.client.react(conversationId, first[2]!.id, "🔥");
    assert.equal(last.reactions[0]!.emoji, "🔥");
  });

  test("a reaction storm: online apps converge without a sync, an offline one after its sync", async (t) => {
    const [g0, g1] = cluster.urls as [string, string];
    const login = (url: string, username: string, deviceName: string) =>
      new ChatHttpApi({ baseUrl: url }).login({ username, password: PASSWORD, deviceName });
    const stormProxy = await startTcpProxy(g0);
    const phone = app(g0, await login(g0, alice.user.username, "storm phone"));
    const bobPhone = app(g1, await login(g1, bob.user.username, "storm phone"));
    const laptop = app(stormProxy.url, await login(g0, bob.user.username, "storm laptop"));
    const everyone = [phone, bobPhone, laptop];
    const raw: Device[] = [];
    try {
      let syncs = 0;
      for (const a of [phone, bobPhone]) a.client.on("synced", () => syncs++);
      await Promise.all(everyone.map((a) => a.client.connect()));
      const { id: conversationId } = await phone.client.api.openDirectConversation(bob.user.id);
      await phone.client.send(conversationId, "storm target");
      const held = (a: App) => [...a.store.values()].find((m) => m.content === "storm target");
      await eventually(() => everyone.every((a) => held(a) !== undefined), 10_000, "the target everywhere");
      const target = held(phone)!;
      stormProxy.setMode("down");
      stormProxy.cutAll();
      await eventually(() => laptop.client.state !== "connected", 5_000, "the laptop offline");
      const syncsBefore = syncs;
      const updatesBefore = bobPhone.updates.length;

      // Raw devices of both users on both pods; each of 10 emoji goes on, off and on again per user: 60 changes,
      // from 4 sockets at once.
      for (const [url, token] of [
        [g0, alice.accessToken],
        [g1, alice.accessToken],
        [g0, bob.accessToken],
        [g1, bob.accessToken],
      ] as const)
        raw.push(await connectDevice(url, token));
      const emoji = ["👍", "🎉", "😂", "🔥", "👀", "🙏", "💯", "🚀", "😮", "😢"];
      const ref = { conversationId, messageId: target.id };
      await Promise.all(
        emoji.flatMap((e, i) =>
          [0, 2].map(async (user) => {
            for (const [step, on] of [true, false, true].entries()) {
              const device = raw[user + ((i + step) % 2)]!;
              const ack = await request(device, "message:react", { ...ref, emoji: e, on });
              assert.equal(ack.ok, true, JSON.stringify(ack));
            }
          }),
        ),
      );
      const truth = (
        await api<{ messages: Message[] }>(g1, "GET", `/v1/conversations/${conversationId}/messages`, {
          token: bob.accessToken,
        })
      ).body.messages;
      const stored = truth.find((m) => m.id === target.id)!;
      assert.deepEqual(stored.reactions.map((r) => [r.emoji, r.count]).sort(), emoji.map((e) => [e, 2]).sort());

      // Online: the same state, the change cursor at the last change, and no sync asked for by the coalesced holes.
      for (const a of [phone, bobPhone]) {
        await eventually(
          () => a.client.changeCursor(conversationId) === stored.changeSeq,
          10_000,
          "the change cursor at the last change",
        );
        assert.deepEqual(state(a, conversationId), truth, "field by field");
      }
      await new Promise((r) => setTimeout(r, 1_500)); // longer than the SDK's hole wait
      assert.equal(syncs, syncsBefore, "no sync during or after the storm");
      const stormUpdates = bobPhone.updates.slice(updatesBefore);
      t.diagnostic(`${stormUpdates.length} messageUpdated for 60 changes`);
      assert.ok(stormUpdates.length <= 20, `${stormUpdates.length} updates for 60 changes`);
      for (const u of stormUpdates) assert.equal("changeRanges" in u, false, "the app never sees changeRanges");

      // Offline during it: one sync later, the same state.
      stormProxy.setMode("up");
      await eventually(
        () => JSON.stringify(state(laptop, conversationId)) === JSON.stringify(truth),
        15_000,
        "the laptop converged",
      );
      assert.deepEqual(state(laptop, conversationId), truth, "field by field");
      assert.equal(laptop.client.changeCursor(conversationId), stored.changeSeq);
    } finally {
      for (const d of raw) d.close();
      await stormProxy.close();
    }
  });
});
