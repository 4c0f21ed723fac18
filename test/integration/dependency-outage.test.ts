// Dependencies going down give `unavailable`, never a crash or a silent drop; service resumes when they return.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import type { Message } from "@chat-gateway/protocol";
import {
  api,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  registerUser,
  request,
} from "../helpers/clients.js";
import { type Cluster, POSTGRES_ADMIN_URL, startGateways } from "../helpers/gateways.js";

type Ack = { ok: boolean; error?: { code: string }; message?: Message };

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

describe("dependency outage", () => {
  let cluster: Cluster;
  let device: Device;
  before(async () => {
    cluster = await startGateways(1, { adapter: "sharded" });
  });
  after(async () => {
    device?.close();
    await cluster.cleanup();
  });

  test("PostgreSQL down: sends and HTTP answer unavailable, readiness fails, the gateway survives and recovers", async () => {
    const url = cluster.urls[0]!;
    const database = new URL(cluster.databaseUrl!).pathname.slice(1);
    const [alice, bob] = await Promise.all([registerUser(url), registerUser(url)]);
    const conversation = await createConversation(url, alice.accessToken, { type: "direct", userId: bob.user.id });
    device = await connectDevice(url, alice.accessToken);
    const first = await request(device, "message:send", {
      conversationId: conversation.id,
      clientMsgId: "before",
      content: "1",
    });
    assert.equal(first.ok, true);

    await admin(`ALTER DATABASE ${database} ALLOW_CONNECTIONS false`);
    await admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${database}'`);
    try {
      const during = await request(device, "message:send", {
        conversationId: conversation.id,
        clientMsgId: "during",
        content: "2",
      });
      assert.equal(during.ok, false);
      assert.equal(during.error?.code, "unavailable");
      const history = await api<{ error: { code: string } }>(
        url,
        "GET",
        `/v1/conversations/${conversation.id}/messages`,
        {
          token: alice.accessToken,
        },
      );
      assert.equal(history.status, 503);
      assert.equal(history.body.error.code, "unavailable");
      const ready = await api<{ ready: boolean; checks: Record<string, boolean> }>(url, "GET", "/readyz");
      assert.equal(ready.status, 503);
      assert.equal(ready.body.checks.database, false);
      assert.equal((await api(url, "GET", "/healthz")).status, 200, "the process is alive");
    } finally {
      await admin(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`);
    }

    // The client retries with the same clientMsgId until acked, as the contract asks.
    let retried: Ack | undefined;
    await eventually(
      async () => {
        retried = await request(device, "message:send", {
          conversationId: conversation.id,
          clientMsgId: "during",
          content: "2",
        });
        return retried.ok;
      },
      20_000,
      "the send to succeed after PostgreSQL is back",
    );
    assert.equal(retried?.message?.seq, 2, "no seq was burnt by the failed attempt");
    assert.equal(cluster.gateways[0]!.process.exitCode, null);
  });
});
