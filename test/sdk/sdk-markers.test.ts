// The SDK sends no read or delivery marker the gateway already holds: none for the user's own messages (sending moved
// the sender's markers) and none up to a marker another device of the user moved (its announcement came back), while
// markers for other people's messages still go. Counted on the gateway itself (its socket event counter), with the
// other user on a bare socket that never sends markers, so every marker counted is the SDK's.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ChatClient, type Message } from "@chat-gateway/sdk";
import { connectDevice, createConversation, type Device, eventually, request } from "../helpers/clients.js";
import { type InProcessGateway, startInProcessGateway } from "../helpers/in-process.js";
import type { AuthResult, Conversation } from "@chat-gateway/protocol";

const MARKER_DELAY_MS = 50;
let gw: InProcessGateway;
let alice: AuthResult;
let bob: AuthResult;
let conversationId: string;
let bobSocket: Device;
const clients: ChatClient[] = [];
const inboxes = new Map<ChatClient, Message[]>();

/** How many `message:delivered` / `message:read` the gateway handled, whatever their outcome. */
async function markersHandled(kind: "delivered" | "read"): Promise<number> {
  const { values } = await gw.gateway.metrics.events.get();
  return values.filter((v) => v.labels.event === `message:${kind}`).reduce((n, v) => n + v.value, 0);
}

async function sdkDevice(user: AuthResult): Promise<ChatClient> {
  const login = await gw.request<AuthResult>("POST", "/v1/auth/login", {
    body: { username: user.user.username, password: "correct horse battery" },
  });
  const client = new ChatClient({
    url: gw.url,
    auth: login.body,
    transports: ["websocket"],
    markerDelayMs: MARKER_DELAY_MS,
  });
  clients.push(client);
  const inbox: Message[] = [];
  inboxes.set(client, inbox);
  client.on("message", (m) => inbox.push(m));
  await client.connect();
  await eventually(() => client.userId === user.user.id, 5_000, "the client learns its user id");
  return client;
}

before(async () => {
  gw = await startInProcessGateway();
  alice = await gw.register();
  bob = await gw.register();
  conversationId = (await createConversation(gw.url, alice.accessToken, { type: "direct", userId: bob.user.id })).id;
  bobSocket = await connectDevice(gw.url, bob.accessToken);
});
after(async () => {
  bobSocket?.close();
  await Promise.all(clients.map((c) => c.close()));
  await gw?.close();
});

test("no markers for the user's own messages, on the sending device or another one", async () => {
  const phone = await sdkDevice(alice);
  const laptop = await sdkDevice(alice);
  const before = { delivered: await markersHandled("delivered"), read: await markersHandled("read") };
  for (let i = 0; i < 5; i++) await phone.send(conversationId, `mine ${i}`);
  await eventually(() => inboxes.get(laptop)!.length === 5, 5_000, "the laptop has alice's five messages");
  for (const m of inboxes.get(laptop)!) laptop.markRead(conversationId, m.seq); // as an open conversation would
  await new Promise((r) => setTimeout(r, 4 * MARKER_DELAY_MS));
  assert.equal(await markersHandled("delivered"), before.delivered, "no message:delivered for alice's own messages");
  assert.equal(await markersHandled("read"), before.read, "no message:read for alice's own messages");

  // Bob's messages still get alice's delivery marker, and it lands.
  for (let i = 1; i <= 3; i++) {
    const ack = await request(bobSocket, "message:send", { conversationId, clientMsgId: `bob-${i}`, content: `b${i}` });
    assert.equal(ack.ok, true);
  }
  await eventually(
    async () => {
      const res = await gw.request<{ conversation: Conversation }>("GET", `/v1/conversations/${conversationId}`, {
        token: bob.accessToken,
      });
      return res.body.conversation.members.some((m) => m.id === alice.user.id && m.deliveredSeq === 8);
    },
    5_000,
    "alice's delivery marker reaches bob's message 8",
  );
  assert.ok((await markersHandled("delivered")) > before.delivered, "markers for other people's messages are sent");
});

test("a read another device of the user announced is not sent again", async () => {
  const [phone, laptop] = clients as [ChatClient, ChatClient];
  const laptopHeard: number[] = [];
  laptop.on("conversationRead", (e) => {
    if (e.userId === alice.user.id) laptopHeard.push(e.seq);
  });
  const before = await markersHandled("read");
  phone.markRead(conversationId, 8);
  await eventually(() => laptopHeard.includes(8), 5_000, "the laptop hears of the phone's read");
  laptop.markRead(conversationId, 8);
  await new Promise((r) => setTimeout(r, 4 * MARKER_DELAY_MS));
  assert.equal(await markersHandled("read"), before + 1, "one message:read: the phone's");
});
