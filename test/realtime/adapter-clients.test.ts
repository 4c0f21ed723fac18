// The guarded Redis clients the Socket.IO adapter uses, against a real (private) Redis behind a TCP relay that can
// swallow replies and cut the connection. node-redis forgets a subscription whose command failed (the connection broke
// before Redis answered), so it is not made again on reconnect and the room would stay deaf to the other pods; the
// guard reports it and subscribes again. A failed publish is reported with its channel and never rejects (the classic
// adapter has no handler for it).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClient, type RedisClientType } from "redis";
import { type AdapterClientHooks, guardPublisher, guardSubscriber } from "../../src/realtime/adapter-clients.js";
import { channelKind, missedBy } from "../../src/realtime/adapter.js";
import { eventually } from "../helpers/clients.js";
import { type PrivateRedis, startPrivateRedis } from "../helpers/private-redis.js";
import { startTcpProxy, type TcpProxy } from "../sdk/tcp-proxy.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recorder() {
  const calls = {
    publishFailed: [] as string[],
    subscribeFailed: [] as string[],
    resubscribed: [] as string[],
    subscribedLate: [] as string[],
  };
  const hooks: AdapterClientHooks = {
    publishFailed: (channel) => calls.publishFailed.push(channel),
    subscribeFailed: (command, channels) => calls.subscribeFailed.push(`${command} ${channels.join(",")}`),
    resubscribed: (command, channels) => calls.resubscribed.push(`${command} ${channels.join(",")}`),
    subscribedLate: (command, channels) => calls.subscribedLate.push(`${command} ${channels.join(",")}`),
  };
  return { calls, hooks };
}

describe("adapter Redis clients", () => {
  let redis: PrivateRedis;
  let proxy: TcpProxy;
  const clients: RedisClientType[] = [];
  const client = async (url: string) => {
    const c = createClient({
      url,
      disableOfflineQueue: true,
      socket: { reconnectStrategy: () => 100 },
    }) as RedisClientType;
    c.on("error", () => undefined);
    clients.push(c);
    await c.connect();
    return c;
  };
  before(async () => {
    redis = await startPrivateRedis();
    proxy = await startTcpProxy(redis.url.replace("redis:", "http:"));
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await proxy.close();
    await redis.stop();
  });
  const viaProxy = () => proxy.url.replace("http:", "redis:");

  /** Sends SSUBSCRIBE, swallows Redis's answer, then cuts the connection: the command fails. */
  async function subscribeThenCut(sub: RedisClientType, channel: string, listener: () => void): Promise<unknown> {
    proxy.setMode("ack-loss");
    const outcome = sub.sSubscribe(channel, listener).then(
      () => "subscribed",
      (err: unknown) => err,
    );
    await sleep(200);
    proxy.setMode("up");
    proxy.cutAll();
    return outcome;
  }

  test("the premise: unguarded, a failed SSUBSCRIBE is not made again on reconnect", async () => {
    const sub = await client(viaProxy());
    const pub = await client(redis.url);
    let heard = 0;
    const outcome = await subscribeThenCut(sub, "plain#room#", () => heard++);
    assert.ok(outcome instanceof Error, "the subscription command failed");
    await eventually(() => sub.isReady, 10_000, "the subscriber to reconnect");
    await sleep(300);
    assert.equal(await pub.sPublish("plain#room#", "hello"), 0, "nobody subscribed to the room any more");
    assert.equal(heard, 0);
  });

  test("guarded, a failed SSUBSCRIBE is reported and made again once the subscriber is back", async () => {
    const { calls, hooks } = recorder();
    const sub = guardSubscriber(await client(viaProxy()), hooks);
    const pub = await client(redis.url);
    let heard = 0;
    const outcome = await subscribeThenCut(sub, "guarded#room#", () => heard++);
    assert.equal(outcome, "subscribed", "the failure resolves rather than rejects (the adapter has no handler)");
    assert.deepEqual(calls.subscribeFailed, ["sSubscribe guarded#room#"]);
    await eventually(() => calls.resubscribed.length === 1, 10_000, "the subscription to be made again");
    assert.equal(await pub.sPublish("guarded#room#", "hello"), 1);
    await eventually(() => heard === 1, 5_000, "the message to arrive");
  });

  test("guarded, an unsubscribe before the retry cancels it", async () => {
    const { calls, hooks } = recorder();
    const sub = guardSubscriber(await client(viaProxy()), hooks);
    const pub = await client(redis.url);
    await subscribeThenCut(sub, "left#room#", () => undefined);
    await sub.sUnsubscribe("left#room#");
    await eventually(() => sub.isReady, 10_000, "the subscriber to reconnect");
    await sleep(1_200);
    assert.deepEqual(calls.resubscribed, [], "not subscribed again after the room was left");
    assert.equal(await pub.sPublish("left#room#", "hello"), 0);
  });

  test("guarded, a failed publish resolves and reports its channel", async () => {
    const { calls, hooks } = recorder();
    const raw = await client(viaProxy());
    const pub = guardPublisher(raw, hooks);
    proxy.setMode("down");
    await eventually(() => !raw.isReady, 5_000, "the publisher to notice");
    assert.equal(await pub.sPublish("socket.io#/#user:abc#", "lost"), 0);
    assert.equal(await pub.publish("chat-gateway#/#", "lost"), 0);
    assert.deepEqual(calls.publishFailed, ["socket.io#/#user:abc#", "chat-gateway#/#"]);
    proxy.setMode("up");
  });

  test("a failed publish names whose sockets must resync", () => {
    assert.equal(missedBy("socket.io#/#", "socket.io#/#user:abc#"), "user:abc");
    assert.equal(missedBy("chat-gateway#/#", "chat-gateway#/#user:abc#"), "user:abc");
    assert.equal(missedBy("socket.io#/#", "socket.io#/#"), "everyone");
    assert.equal(missedBy("chat-gateway#/#", "chat-gateway#/#"), "everyone");
    assert.equal(missedBy("socket.io#/#", "socket.io#/#Xb2kq9PzL1mN0aR4#"), "nobody", "a sharded response channel");
    assert.equal(missedBy("chat-gateway#/#", "chat-gateway-request#/#"), "nobody");
    assert.equal(missedBy("chat-gateway#/#", "chat-gateway-response#/#abc123#"), "nobody");
  });

  test("guarded, every message reaching a subscription is counted, and unsubscribing by listener still works", async () => {
    const received: string[] = [];
    const hooks = { ...recorder().hooks, received: (channel: string) => received.push(channel) };
    const sub = guardSubscriber(await client(redis.url), hooks);
    const pub = await client(redis.url);
    let heard = 0;
    const listener = () => heard++;
    await sub.sSubscribe("count#/#user:a#", listener);
    await sub.pSubscribe("classic#/#*", listener);
    await pub.sPublish("count#/#user:a#", "one");
    await pub.publish("classic#/#user:b#", "two");
    await eventually(() => heard === 2, 5_000, "both messages");
    assert.deepEqual(received.sort(), ["classic#/#user:b#", "count#/#user:a#"]);
    await sub.pUnsubscribe("classic#/#*", listener);
    assert.equal(await pub.publish("classic#/#user:b#", "three"), 0, "the pattern listener was removed");
  });

  test("the received counter labels a channel by kind, never by room", () => {
    assert.equal(channelKind("socket.io#/#", "socket.io#/#user:abc#"), "room");
    assert.equal(channelKind("socket.io#/#", "socket.io#/#"), "shared");
    assert.equal(channelKind("socket.io#/#", "socket.io#/#Xb2kq9PzL1mN0aR4#"), "other");
    assert.equal(channelKind("chat-gateway#/#", "chat-gateway-request#/#"), "other");
  });
});
