// A gateway past its capacity or on a slow database answers quickly instead of queueing: sends over the writer's
// bound are refused `unavailable` with `retryAfterMs`, a held row lock times out into `unavailable` (and fails
// readiness while it lasts), a client that stops reading is disconnected, and a clientMsgId the database could refuse
// never gets that far. Nothing acked is lost in any of it.
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
import { type Cluster, startGateways } from "../helpers/gateways.js";

const MAX_QUEUE = 20;

describe("admission control", () => {
  let cluster: Cluster;
  let url: string;
  const devices: Device[] = [];
  before(async () => {
    cluster = await startGateways(1, {
      adapter: "memory",
      env: {
        WRITER_MAX_QUEUE: String(MAX_QUEUE),
        WRITER_MAX_WAIT_MS: "500",
        WRITER_STUCK_MS: "300",
        DATABASE_LOCK_TIMEOUT_MS: "3000",
        SOCKET_MAX_BUFFERED_BYTES: "65536",
        MESSAGE_MAX_CHARS: "100000",
        SOCKET_MAX_PAYLOAD: "1048576",
      },
    });
    url = cluster.urls[0]!;
  });
  after(async () => {
    for (const d of devices) d.close();
    await cluster.cleanup();
  });

  async function pair() {
    const [alice, bob] = await Promise.all([registerUser(url), registerUser(url)]);
    const conversation = await createConversation(url, alice.accessToken, { type: "direct", userId: bob.user.id });
    const device = await connectDevice(url, alice.accessToken);
    devices.push(device);
    return { alice, bob, conversation, device };
  }

  /** Every stored message of a conversation, by paging through history. */
  async function history(token: string, conversationId: string): Promise<Message[]> {
    const all: Message[] = [];
    for (;;) {
      const page = await api<{ messages: Message[]; hasMore: boolean }>(
        url,
        "GET",
        `/v1/conversations/${conversationId}/messages?after=${all.at(-1)?.seq ?? 0}&limit=100`,
        { token },
      );
      assert.equal(page.status, 200);
      all.push(...page.body.messages);
      if (!page.body.hasMore) return all;
    }
  }

  test("a clientMsgId with a NUL, a control character or a lone surrogate is bad_request, on the socket and over HTTP", async () => {
    const { alice, conversation, device } = await pair();
    for (const clientMsgId of [
      "nul\u0000id",
      "bell\u0007",
      "tab\tid",
      "half \ud800 pair",
      "del\u007f",
      "",
      "x".repeat(129),
    ]) {
      const ack = await request(device, "message:send", {
        conversationId: conversation.id,
        clientMsgId,
        content: "hi",
      });
      assert.equal(ack.ok, false, JSON.stringify(clientMsgId));
      assert.equal(ack.error?.code, "bad_request");
      assert.equal((ack.error.details as { field: string }[])[0]?.field, "clientMsgId");
    }
    const http = await api<{ error: { code: string } }>(url, "POST", `/v1/conversations/${conversation.id}/messages`, {
      token: alice.accessToken,
      body: { clientMsgId: "nul\u0000id", content: "hi" },
    });
    assert.equal(http.status, 400);
    assert.equal(http.body.error.code, "bad_request");
    // The connection stays up and a good id still works.
    const ok = await request(device, "message:send", {
      conversationId: conversation.id,
      clientMsgId: "good id_1.~! é 한",
      content: "hi",
    });
    assert.equal(ok.ok, true);
  });

  test(`far more sends at once than the writer's bound (${MAX_QUEUE}): the excess is refused, every send answered, every ack stored`, async () => {
    const { alice, conversation, device } = await pair();
    const extra = await Promise.all([connectDevice(url, alice.accessToken), connectDevice(url, alice.accessToken)]);
    devices.push(...extra);
    const sends = [device, ...extra].flatMap((d, di) =>
      Array.from({ length: 150 }, (_, i) => ({ device: d, clientMsgId: `burst-${di}-${i}` })),
    );
    const acks = await Promise.all(
      sends.map((s) =>
        request(s.device, "message:send", {
          conversationId: conversation.id,
          clientMsgId: s.clientMsgId,
          content: s.clientMsgId,
        }),
      ),
    );
    assert.equal(acks.length, sends.length, "every send is answered");
    const refused = acks.filter((a) => !a.ok);
    for (const a of refused) {
      assert.equal(a.error?.code, "unavailable");
      const retryAfterMs = (a.error.details as { retryAfterMs?: number } | undefined)?.retryAfterMs;
      assert.equal(typeof retryAfterMs, "number");
      assert.ok(retryAfterMs! > 0 && retryAfterMs! <= 1000, String(retryAfterMs));
    }
    assert.ok(refused.length > 0, "a burst of 450 against a queue of 20 is refused in part");
    assert.ok(refused.length < acks.length, "and admitted in part");

    // Each refusal is counted on /metrics (this is the first test here to refuse anything).
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const counted = [...metrics.matchAll(/^chat_message_writer_refused_total\{reason="\w+"\} (\d+)$/gm)];
    assert.equal(
      counted.reduce((sum, m) => sum + Number(m[1]), 0),
      refused.length,
    );

    const acked = new Set(sends.filter((_, i) => acks[i]!.ok).map((s) => s.clientMsgId));
    const stored = await history(alice.accessToken, conversation.id);
    assert.deepEqual(new Set(stored.map((m) => m.clientMsgId)), acked, "stored exactly the acked sends");
    assert.deepEqual(
      stored.map((m) => m.seq),
      stored.map((_, i) => i + 1),
      "seq stays gapless: refused sends burnt none",
    );

    // The refused ones go through on retry with the same clientMsgId once the burst is over.
    const retry = sends.find((_, i) => !acks[i]!.ok)!;
    const again = await request(retry.device, "message:send", {
      conversationId: conversation.id,
      clientMsgId: retry.clientMsgId,
      content: retry.clientMsgId,
    });
    assert.equal(again.ok, true);
    assert.equal(again.message?.seq, stored.length + 1);
  });

  test("a row lock held elsewhere: sends answer unavailable within the lock timeout, readiness fails, then all recovers", async () => {
    const { alice, conversation, device } = await pair();
    const send = (clientMsgId: string) =>
      request(device, "message:send", { conversationId: conversation.id, clientMsgId, content: clientMsgId });
    assert.equal((await send("before")).ok, true);

    const holder = new pg.Client({ connectionString: cluster.databaseUrl! });
    await holder.connect();
    await holder.query("BEGIN");
    await holder.query("SELECT id FROM conversations WHERE id = $1 FOR UPDATE", [conversation.id]);
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      await holder.query("ROLLBACK");
      await holder.end();
    };
    try {
      const started = Date.now();
      const held = send("held");
      let ready: { status: number; body: { ready: boolean; checks: Record<string, boolean> } } | undefined;
      await eventually(
        async () => {
          ready = await api<{ ready: boolean; checks: Record<string, boolean> }>(url, "GET", "/readyz");
          return ready.status === 503;
        },
        2_500,
        "a write stuck on the database to fail readiness",
      );
      assert.equal(ready!.body.checks.writer, false);
      assert.equal(ready!.body.checks.database, true);

      // An HTTP send meanwhile waits behind the stuck batch past its deadline: 503 with Retry-After, not a hang.
      const res = await fetch(`${url}/v1/conversations/${conversation.id}/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${alice.accessToken}`, "content-type": "application/json" },
        body: JSON.stringify({ clientMsgId: "http-held", content: "x" }),
      });
      const body = (await res.json()) as { error: { code: string; details?: { retryAfterMs?: number } } };
      assert.equal(res.status, 503);
      assert.equal(body.error.code, "unavailable");
      assert.equal(typeof body.error.details?.retryAfterMs, "number");
      assert.match(res.headers.get("retry-after") ?? "", /^[1-9]\d*$/);

      const heldAck = await held;
      assert.equal(heldAck.ok, false);
      assert.equal(heldAck.error?.code, "unavailable", "a lock timeout is unavailable, not internal");
      assert.ok(Date.now() - started < 6_000, "answered about when the lock timeout expires, not after a hang");
    } finally {
      await release();
    }

    // The pod stayed up; the retries with the same clientMsgIds succeed, each stored once, in order.
    assert.equal(cluster.gateways[0]!.process.exitCode, null);
    const retried = await send("held");
    assert.equal(retried.ok, true);
    assert.equal(retried.message?.seq, 2);
    const http = await api<{ message: Message }>(url, "POST", `/v1/conversations/${conversation.id}/messages`, {
      token: alice.accessToken,
      body: { clientMsgId: "http-held", content: "x" },
    });
    assert.equal(http.status, 201);
    await eventually(async () => (await api(url, "GET", "/readyz")).status === 200, 5_000, "readiness to return");
    const stored = await history(alice.accessToken, conversation.id);
    assert.deepEqual(
      stored.map((m) => [m.seq, m.clientMsgId]),
      [
        [1, "before"],
        [2, "held"],
        [3, "http-held"],
      ],
    );
  });

  test("a client that stops reading is disconnected once too much waits for it; the gateway serves on", async () => {
    const { bob, conversation, device } = await pair();
    const slow = await connectDevice(url, bob.accessToken);
    devices.push(slow);
    let disconnected = false;
    slow.on("disconnect", () => (disconnected = true));
    // Stop reading the TCP connection under the WebSocket: the kernel buffers fill, then the gateway's.
    const engine = (
      slow.io as unknown as { engine: { transport: { ws: { _socket: { pause(): void; resume(): void } } } } }
    ).engine;
    const tcp = engine.transport.ws._socket;
    tcp.pause();

    const overflowed = async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      const m = /^chat_socket_buffer_overflow_disconnects_total (\d+)/m.exec(text);
      return Number(m?.[1] ?? 0) > 0;
    };
    const content = "x".repeat(60_000);
    let sent = 0;
    // Up to ~48 MB, far beyond the loopback's kernel buffers; it stops as soon as the gateway cuts the slow socket.
    while (sent < 800 && !(await overflowed())) {
      const acks = await Promise.all(
        Array.from({ length: 10 }, () =>
          request(device, "message:send", {
            conversationId: conversation.id,
            clientMsgId: `big-${sent++}`,
            content,
          }),
        ),
      );
      for (const a of acks) assert.equal(a.ok, true, JSON.stringify(a.error));
    }
    await eventually(overflowed, 5_000, "the slow socket to be cut off");

    // The gateway stays up and keeps serving the sender.
    assert.equal((await api(url, "GET", "/healthz")).status, 200);
    const after = await request(device, "message:send", {
      conversationId: conversation.id,
      clientMsgId: "after-cut",
      content: "still here",
    });
    assert.equal(after.ok, true);
    // Once it reads again, the slow client finds its connection closed (and would reconnect and sync).
    tcp.resume();
    await eventually(() => disconnected, 10_000, "the slow client to see its disconnection");
    const again = await connectDevice(url, bob.accessToken);
    devices.push(again);
    const sync = await request(again, "sync", {
      cursors: { [conversation.id]: after.message!.seq - 1 },
    });
    assert.equal(sync.ok, true);
    assert.deepEqual(
      sync.messages.map((m) => m.clientMsgId),
      ["after-cut"],
    );
    assert.equal(cluster.gateways[0]!.process.exitCode, null);
  });
});
