// Server-side publishing. A service token posts into a conversation as a system sender through the same domain
// send as users (seq, idempotency, fan-out across pods); it is refused everywhere else. And another process emits
// to `user:<id>` rooms through Redis (examples/emit-from-another-service.ts), with both adapter modes.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import jwt from "jsonwebtoken";
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
  waitForEvent,
} from "../helpers/clients.js";
import { type Cluster, REDIS_URL, startGateways } from "../helpers/gateways.js";

const SERVICE_SECRET = "service-secret-that-is-long-enough-for-hs256-0123";

function serviceToken(service: string, secret = SERVICE_SECRET): string {
  return jwt.sign({ role: "service" }, secret, {
    algorithm: "HS256",
    subject: service,
    issuer: "chat-gateway",
    audience: "chat-gateway",
    expiresIn: 300,
  });
}

function runExample(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "examples/emit-from-another-service.ts", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, output })));
}

describe("service publishing over HTTP", () => {
  let cluster: Cluster;
  const devices: Device[] = [];
  before(async () => {
    cluster = await startGateways(2, { adapter: "sharded", env: { SERVICE_JWT_SECRET: SERVICE_SECRET } });
  });
  after(async () => {
    for (const d of devices) d.close();
    await cluster?.cleanup();
  });

  test("a service posts as system:<name>: stored, sequenced, idempotent, fanned out to every pod", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const alice = await registerUser(u0);
    const bob = await registerUser(u1);
    const conversation = await createConversation(u0, alice.accessToken, { type: "direct", userId: bob.user.id });
    const bobDevice = await connectDevice(u1, bob.accessToken);
    const aliceDevice = await connectDevice(u0, alice.accessToken);
    devices.push(bobDevice, aliceDevice);
    const bobInbox = collect(bobDevice, "message:new");
    const aliceInbox = collect(aliceDevice, "message:new");

    const userSend = await request(aliceDevice, "message:send", {
      conversationId: conversation.id,
      clientMsgId: "u-1",
      content: "before the notice",
    });
    assert.equal(userSend.ok, true);

    const token = serviceToken("billing");
    const path = `/v1/conversations/${conversation.id}/messages`;
    const body = { clientMsgId: "invoice-42", content: "Invoice 42 is paid", senderName: "Billing" };
    const first = await api<{ message: Message }>(u0, "POST", path, { token, body });
    assert.equal(first.status, 201);
    assert.equal(first.body.message.seq, 2);
    const retry = await api<{ message: Message }>(u1, "POST", path, { token, body });
    assert.equal(retry.status, 200);
    assert.equal(retry.body.message.id, first.body.message.id);

    await eventually(() => bobInbox.length === 2 && aliceInbox.length === 2, 10_000, "fan-out");
    assert.equal(bobInbox[1]!.id, first.body.message.id);
    assert.equal(bobInbox[1]!.senderId, first.body.message.senderId);

    const history = await api<{ messages: Message[] }>(u1, "GET", path, { token: bob.accessToken });
    assert.deepEqual(
      history.body.messages.map((m) => m.seq),
      [1, 2],
    );
    // The system user is not a member, cannot log in, and is not found by search.
    const conv = await api<{ conversation: { members: { userId: string }[] } }>(
      u0,
      "GET",
      `/v1/conversations/${conversation.id}`,
      { token: alice.accessToken },
    );
    assert.ok(!conv.body.conversation.members.some((m) => m.userId === first.body.message.senderId));
    const search = await api<{ users: unknown[] }>(u0, "GET", "/v1/users?query=sys", { token: alice.accessToken });
    assert.deepEqual(search.body.users, []);
    const login = await api(u0, "POST", "/v1/auth/login", {
      body: { username: "system:billing", password: "!system-password" },
    });
    assert.ok(login.status === 400 || login.status === 401, `login answered ${login.status}`);
  });

  test("service tokens are refused elsewhere, and bad ones everywhere", async () => {
    const [u0] = cluster.urls as [string];
    const alice = await registerUser(u0);
    const bob = await registerUser(u0);
    const conversation = await createConversation(u0, alice.accessToken, { type: "direct", userId: bob.user.id });
    const path = `/v1/conversations/${conversation.id}/messages`;
    const body = { clientMsgId: "x-1", content: "hello" };

    assert.equal((await api(u0, "GET", "/v1/conversations", { token: serviceToken("billing") })).status, 401);
    assert.equal((await api(u0, "GET", path, { token: serviceToken("billing") })).status, 401);
    const forged = serviceToken("billing", "a-different-secret-that-is-long-enough-0123456");
    assert.equal((await api(u0, "POST", path, { token: forged, body })).status, 401);
    // A user token cannot pick a sender name, and a user token signed like a service token is not one.
    assert.equal(
      (await api(u0, "POST", path, { token: alice.accessToken, body: { ...body, senderName: "Billing" } })).status,
      400,
    );
    const missingId = await api(u0, "POST", path, { token: serviceToken("billing"), body: { content: "no id" } });
    assert.equal(missingId.status, 400);
    const unknown = await api(u0, "POST", `/v1/conversations/00000000-0000-4000-8000-000000000000/messages`, {
      token: serviceToken("billing"),
      body,
    });
    assert.equal(unknown.status, 404);
  });
});

for (const adapter of ["classic", "sharded"] as const) {
  describe(`emitting to user rooms from another process (${adapter} adapter)`, () => {
    let cluster: Cluster;
    const devices: Device[] = [];
    before(async () => {
      cluster = await startGateways(2, { adapter });
    });
    after(async () => {
      for (const d of devices) d.close();
      await cluster?.cleanup();
    });

    test("every device of the user gets the event, on every pod, and nobody else does", async () => {
      const [u0, u1] = cluster.urls as [string, string];
      const carol = await registerUser(u0);
      const dave = await registerUser(u0);
      const carolDevices = [await connectDevice(u0, carol.accessToken), await connectDevice(u1, carol.accessToken)];
      const daveDevice = await connectDevice(u1, dave.accessToken);
      devices.push(...carolDevices, daveDevice);
      const daveGot: unknown[] = [];
      (daveDevice as unknown as { onAny(l: (...a: unknown[]) => void): void }).onAny((...a) => daveGot.push(a));

      const payload = { kind: "export-ready", id: Math.random().toString(36).slice(2) };
      const received = carolDevices.map((d) =>
        waitForEvent(d as never, "notice" as never, ((p: { id?: string }) => p.id === payload.id) as never, 15_000),
      );
      const run = await runExample([carol.user.id, "notice", JSON.stringify(payload)], {
        REDIS_URL,
        REDIS_ADAPTER: adapter,
        REDIS_PREFIX: cluster.env.REDIS_PREFIX!,
      });
      assert.equal(run.code, 0, run.output);
      for (const got of await Promise.all(received)) assert.deepEqual(got, payload);
      assert.deepEqual(daveGot, []);
    });
  });
}
