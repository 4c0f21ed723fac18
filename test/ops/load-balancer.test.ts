// Three gateway processes behind HAProxy on loopback (cookie stickiness, WebSocket upgrades tunnelled): WebSocket
// clients and polling-only clients land on different pods and chat both ways, and the polling clients' engine.io
// sessions survive many requests, which only works if every request reaches the pod that holds the session.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { io } from "socket.io-client";
import type { Message } from "@chat-gateway/protocol";
import {
  acceptConversation,
  collect,
  createConversation,
  type Device,
  eventually,
  registerUser,
  request,
} from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { HAPROXY_MISSING, haproxyBinary, type LoadBalancer, startHaproxy } from "../helpers/haproxy.js";

const skip = haproxyBinary() === undefined ? HAPROXY_MISSING : false;

/**
 * Node's socket.io-client keeps no cookies unless `withCredentials` is set: then engine.io-client keeps a cookie jar
 * for the session (set-cookie of each polling response, replayed on the next request and on the upgrade).
 */
export function connectThroughBalancer(url: string, token: string, transports: ("websocket" | "polling")[]) {
  const socket: Device = io(url, {
    auth: { token },
    transports,
    withCredentials: true,
    reconnection: false,
    forceNew: true,
  });
  return new Promise<Device>((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      socket.close();
      reject(err);
    });
  });
}

async function connectedPerPod(urls: string[]): Promise<number[]> {
  return Promise.all(
    urls.map(async (url) => {
      const text = await (await fetch(`${url}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith("chat_sockets_connected "));
      return Number(line?.split(" ")[1] ?? 0);
    }),
  );
}

describe("three gateways behind HAProxy", { skip }, () => {
  let cluster: Cluster;
  let lb: LoadBalancer;
  const devices: Device[] = [];
  before(async () => {
    cluster = await startGateways(3, { adapter: "sharded" });
    lb = await startHaproxy(cluster.gateways.map((g, i) => ({ name: `g${i}`, port: g.port })));
  });
  after(async () => {
    for (const d of devices) d.close();
    await lb?.stop();
    await cluster?.cleanup();
  });

  test("WebSocket and polling-only clients spread over the pods and chat both ways", async () => {
    const alice = await registerUser(lb.url);
    const bob = await registerUser(lb.url);
    const conversation = await createConversation(lb.url, alice.accessToken, { type: "direct", userId: bob.user.id });
    await acceptConversation(lb.url, bob.accessToken, conversation.id);

    // Round robin: six connections over three pods, each kind on at least two.
    const alicePolling: Device[] = [];
    const bobWebSocket: Device[] = [];
    for (let i = 0; i < 3; i++) {
      alicePolling.push(await connectThroughBalancer(lb.url, alice.accessToken, ["polling"]));
      bobWebSocket.push(await connectThroughBalancer(lb.url, bob.accessToken, ["websocket"]));
    }
    devices.push(...alicePolling, ...bobWebSocket);
    for (const d of alicePolling) assert.equal(d.io.engine.transport.name, "polling");
    for (const d of bobWebSocket) assert.equal(d.io.engine.transport.name, "websocket");
    const disconnects: string[] = [];
    for (const d of devices) d.on("disconnect", (reason) => disconnects.push(reason));

    await eventually(async () => (await connectedPerPod(cluster.urls)).reduce((a, b) => a + b, 0) === 6, 10_000);
    const perPod = await connectedPerPod(cluster.urls);
    assert.ok(perPod.filter((n) => n > 0).length >= 2, `sockets per pod: ${perPod.join(",")}`);

    const aliceInboxes = alicePolling.map((d) => collect(d, "message:new"));
    const bobInboxes = bobWebSocket.map((d) => collect(d, "message:new"));
    const rounds = 5;
    for (let i = 0; i < rounds; i++) {
      const fromAlice = await request(alicePolling[i % 3]!, "message:send", {
        conversationId: conversation.id,
        clientMsgId: `a-${i}`,
        content: `from polling ${i}`,
      });
      assert.equal(fromAlice.ok, true);
      const fromBob = await request(bobWebSocket[i % 3]!, "message:send", {
        conversationId: conversation.id,
        clientMsgId: `b-${i}`,
        content: `from websocket ${i}`,
      });
      assert.equal(fromBob.ok, true);
    }
    const all = (inbox: Message[]) => inbox.length === rounds * 2;
    await eventually(() => [...aliceInboxes, ...bobInboxes].every(all), 15_000, "every device got every message");
    for (const inbox of [...aliceInboxes, ...bobInboxes]) {
      assert.deepEqual(
        inbox.map((m) => m.seq),
        Array.from({ length: rounds * 2 }, (_, i) => i + 1),
      );
    }
    // Many polling round trips later, every polling session is still the one it started with.
    assert.deepEqual(disconnects, []);
    for (const d of alicePolling) assert.equal(d.connected, true);
  });
});
