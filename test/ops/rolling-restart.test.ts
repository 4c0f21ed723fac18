// A rolling restart of three pods behind HAProxy, one at a time (SIGTERM, wait for exit 0, start a replacement on
// the same port), under a steady bounded stream of sends. Each client behaves like the SDK: on `session:ended` or a
// lost connection it reconnects through the balancer, resends its unacked message with the same clientMsgId, and
// syncs from its cursor. Nothing acked is lost, history seqs are gapless, and every client ends connected.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { io } from "socket.io-client";
import type { Message, SyncResult } from "@chat-gateway/protocol";
import { api, createConversation, type Device, eventually, registerUser } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { freePort, HAPROXY_MISSING, haproxyBinary, type LoadBalancer, startHaproxy } from "../helpers/haproxy.js";

const skip = haproxyBinary() === undefined ? HAPROXY_MISSING : false;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Ack<T> = { ok: true } & T;
type AckError = { ok: false; error: { code: string } };

class ReconnectingSender {
  socket: Device | undefined;
  sent = 0;
  retried = 0;
  reconnects = 0;
  readonly acked = new Map<string, number>();
  /** Highest seq seen in the conversation, from acks, message:new and sync. */
  cursor = 0;

  constructor(
    readonly name: string,
    private readonly url: string,
    private readonly token: string,
    private readonly conversationId: string,
    private readonly transports: ("websocket" | "polling")[],
  ) {}

  async connect(): Promise<void> {
    for (;;) {
      const socket: Device = io(this.url, {
        auth: { token: this.token },
        transports: this.transports,
        withCredentials: true,
        reconnection: false,
        forceNew: true,
      });
      const ok = await new Promise<boolean>((resolve) => {
        socket.once("connect", () => resolve(true));
        socket.once("connect_error", () => resolve(false));
        setTimeout(() => resolve(false), 10_000);
      });
      if (ok) {
        this.socket = socket;
        socket.on("message:new", (m) => {
          if (m.conversationId === this.conversationId) this.cursor = Math.max(this.cursor, m.seq);
        });
        await this.sync();
        return;
      }
      socket.close();
      this.reconnects++;
      await sleep(100 + Math.random() * 200);
    }
  }

  private async sync(): Promise<void> {
    const socket = this.socket!;
    const res = (await socket
      .timeout(10_000)
      .emitWithAck("sync", { cursors: { [this.conversationId]: this.cursor } })
      .catch(() => undefined)) as Ack<SyncResult> | AckError | undefined;
    if (res?.ok) for (const m of res.messages) this.cursor = Math.max(this.cursor, m.seq);
  }

  /** Sends one message until it is acked, reconnecting as needed. */
  async sendOne(i: number): Promise<void> {
    const clientMsgId = `${this.name}-${i}`;
    this.sent++;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) this.retried++;
      if (!this.socket?.connected) {
        this.socket?.close();
        if (attempt > 0) this.reconnects++;
        await this.connect();
      }
      const res = (await this.socket!.timeout(5_000)
        .emitWithAck("message:send", { conversationId: this.conversationId, clientMsgId, content: `m ${clientMsgId}` })
        .catch(() => undefined)) as Ack<{ message: Message }> | AckError | undefined;
      if (res?.ok) {
        this.acked.set(clientMsgId, res.message.seq);
        this.cursor = Math.max(this.cursor, res.message.seq);
        return;
      }
      await sleep(50);
    }
  }

  async run(keepGoing: () => boolean): Promise<void> {
    await this.connect();
    for (let i = 0; keepGoing(); i++) {
      await this.sendOne(i);
      await sleep(20);
    }
  }
}

describe("rolling restart behind HAProxy", { skip }, () => {
  let cluster: Cluster;
  let lb: LoadBalancer;
  const ports: number[] = [];
  const senders: ReconnectingSender[] = [];
  before(async () => {
    for (let i = 0; i < 3; i++) ports.push(await freePort());
    const env = { DRAIN_TIMEOUT_MS: "15000" };
    cluster = await startGateways(1, { adapter: "sharded", env: { ...env, PORT: String(ports[0]) } });
    await cluster.startAnother({ PORT: String(ports[1]) });
    await cluster.startAnother({ PORT: String(ports[2]) });
    lb = await startHaproxy(ports.map((port, i) => ({ name: `g${i}`, port })));
  });
  after(async () => {
    for (const s of senders) s.socket?.close();
    await lb?.stop();
    await cluster?.cleanup();
  });

  test("restarting every pod one by one loses no acked message", async () => {
    const owner = await registerUser(lb.url);
    const others = await Promise.all([1, 2, 3].map(() => registerUser(lb.url)));
    const conversation = await createConversation(lb.url, owner.accessToken, {
      type: "group",
      title: "rolling",
      memberIds: others.map((o) => o.user.id),
    });
    const users = [owner, ...others];
    senders.push(
      ...users.map(
        (u, i) =>
          new ReconnectingSender(`s${i}`, lb.url, u.accessToken, conversation.id, i % 2 ? ["polling"] : ["websocket"]),
      ),
    );

    let sending = true;
    const runs = senders.map((s) => s.run(() => sending));
    await eventually(() => senders.every((s) => s.acked.size >= 3), 60_000, "traffic before the restart");

    const originals = cluster.gateways.slice(0, 3);
    for (const [i, gateway] of originals.entries()) {
      const ackedBefore = senders.reduce((n, s) => n + s.acked.size, 0);
      assert.equal(await gateway.stop("SIGTERM"), 0, `pod ${i} drained and exited 0`);
      await cluster.startAnother({ PORT: String(ports[i]) });
      // Traffic kept flowing through the restart of this pod.
      await eventually(() => senders.reduce((n, s) => n + s.acked.size, 0) > ackedBefore + 4, 60_000, "progress");
    }
    sending = false;
    await Promise.all(runs);

    const sent = senders.reduce((n, s) => n + s.sent, 0);
    const acked = senders.reduce((n, s) => n + s.acked.size, 0);
    const retried = senders.reduce((n, s) => n + s.retried, 0);
    const reconnects = senders.reduce((n, s) => n + s.reconnects, 0);
    console.log(`rolling restart: sent=${sent} acked=${acked} retried=${retried} reconnects=${reconnects}`);
    assert.equal(acked, sent, "every send was eventually acked");

    const history: Message[] = [];
    for (let after = 0; ;) {
      const page = await api<{ messages: Message[]; hasMore: boolean }>(
        cluster.gateways.at(-1)!.url,
        "GET",
        `/v1/conversations/${conversation.id}/messages?after=${after}&limit=100`,
        { token: owner.accessToken },
      );
      history.push(...page.body.messages);
      if (!page.body.hasMore) break;
      after = page.body.messages.at(-1)!.seq;
    }
    assert.deepEqual(
      history.map((m) => m.seq),
      Array.from({ length: history.length }, (_, i) => i + 1),
      "seqs are gapless",
    );
    const stored = new Map(history.map((m) => [m.clientMsgId, m.seq]));
    assert.equal(stored.size, acked, "exactly one stored message per acked send (retries deduplicated)");
    for (const s of senders)
      for (const [id, seq] of s.acked) assert.equal(stored.get(id), seq, `${id} stored as acked`);
    for (const s of senders) assert.equal(s.socket?.connected, true, `${s.name} ends connected`);
    await eventually(() => senders.every((s) => s.cursor === history.length), 15_000, "every client caught up");
  });
});
