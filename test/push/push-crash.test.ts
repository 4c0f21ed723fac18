// A push job outlives the gateway that scheduled or ran it (BullMQ on the real Redis, two gateway processes, the
// fake Web Push service over HTTPS). The pod is killed with SIGKILL, so nothing of a graceful drain helps: what
// survives is what is in Redis. The offline member must get exactly one push for the message, from another pod.
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { type Job, Queue } from "bullmq";
import { acceptConversation, api, createConversation, eventually, registerUser } from "../helpers/clients.js";
import { type Cluster, REDIS_URL, startGateways } from "../helpers/gateways.js";
import { type PushServices, send, settle, startPushServices } from "../helpers/push.js";

const GRACE_MS = 3000;
// Short, so a job left running by the killed pod is recovered within seconds rather than a minute or more.
const JOB_LOCK_MS = 2000;

interface QueuedJob {
  kind: "decide" | "deliver";
  job?: { userId: string };
  delivery?: { userId: string };
}

describe("push jobs survive a gateway crash (BullMQ, SIGKILL)", () => {
  let services: PushServices;
  let cluster: Cluster;
  let queue: Queue<QueuedJob>;

  before(async () => {
    services = await startPushServices();
    // Web Push only: one delivery job per notification, so "which pod holds it" is unambiguous.
    const env = services.env;
    cluster = await startGateways(2, {
      adapter: "sharded",
      env: {
        NODE_EXTRA_CA_CERTS: env.NODE_EXTRA_CA_CERTS!,
        PUSH_RETRY_BASE_MS: env.PUSH_RETRY_BASE_MS!,
        PUSH_MAX_ATTEMPTS: env.PUSH_MAX_ATTEMPTS!,
        PUSH_QUEUE_PREFIX: env.PUSH_QUEUE_PREFIX!,
        VAPID_PUBLIC_KEY: env.VAPID_PUBLIC_KEY!,
        VAPID_PRIVATE_KEY: env.VAPID_PRIVATE_KEY!,
        PUSH_ENDPOINT_ALLOWLIST: env.PUSH_ENDPOINT_ALLOWLIST!,
        PUSH_ALLOW_PRIVATE_ENDPOINTS: env.PUSH_ALLOW_PRIVATE_ENDPOINTS!,
        PUSH_GRACE_MS: String(GRACE_MS),
        PUSH_JOB_LOCK_MS: String(JOB_LOCK_MS),
      },
    });
    queue = new Queue<QueuedJob>("push", { connection: { url: REDIS_URL }, prefix: env.PUSH_QUEUE_PREFIX });
  });
  after(async () => {
    await cluster?.cleanup();
    if (queue) {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
    await services?.stop();
  });

  /** Alice writes to Bob, who has no device connected and one Web Push subscription. */
  async function offlineRecipient(senderUrl: string, recipientUrl: string) {
    const alice = await registerUser(senderUrl);
    const bob = await registerUser(recipientUrl);
    const conversation = await createConversation(senderUrl, alice.accessToken, {
      type: "direct",
      userId: bob.user.id,
    });
    await acceptConversation(recipientUrl, bob.accessToken, conversation.id);
    const web = services.webPush.subscribe();
    const res = await api(recipientUrl, "POST", "/v1/push/subscriptions", {
      token: bob.accessToken,
      body: { type: "webpush", endpoint: web.endpoint, keys: web.keys },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return { alice, bob, conversation, received: () => services.webPush.for(web.id) };
  }

  async function jobOf(state: "delayed" | "active", kind: QueuedJob["kind"], userId: string) {
    const jobs: Job<QueuedJob>[] = await queue.getJobs([state]);
    return jobs.find((j) => j.data.kind === kind && (j.data.job ?? j.data.delivery)?.userId === userId);
  }

  test("the pod that scheduled the push dies within the grace period: the other pod sends it, once", async () => {
    const [a, b] = cluster.gateways as [Cluster["gateways"][number], Cluster["gateways"][number]];
    const { alice, bob, conversation, received } = await offlineRecipient(a.url, b.url);

    await send(a.url, alice.accessToken, conversation.id, "before the crash");
    // The decision is scheduled just after the send is answered: wait until it is in Redis, then kill the pod.
    let pending: Job<QueuedJob> | undefined;
    await eventually(
      async () => (pending = await jobOf("delayed", "decide", bob.user.id)) !== undefined,
      10_000,
      "the delayed push decision in Redis",
    );
    await a.stop("SIGKILL");
    assert.equal(await pending!.getState(), "delayed", "the grace period ended before the kill: premise not met");

    await eventually(() => received().length >= 1, 30_000, "the push, from the surviving pod");
    await settle(GRACE_MS);
    const pushes = received();
    assert.equal(pushes.length, 1, "exactly one push");
    assert.deepEqual(pushes[0]!.payload, { type: "messages", conversationId: conversation.id, seq: 1, count: 1 });
    assert.deepEqual(services.webPush.refused, []);
    assert.ok(
      b.logs.some((l) => l.includes('"push sent"') && l.includes(conversation.id)),
      "the surviving pod sent it",
    );
  });

  test("the pod dies while sending the push: after its lock lapses another pod sends it, once", async () => {
    const b = cluster.gateways[1]!;
    const { alice, bob, conversation, received } = await offlineRecipient(b.url, b.url);

    // Swap the push service for a socket that accepts and never answers, so the delivery job stays active on B.
    const port = Number(new URL(services.webPush.origin).port);
    await services.webPush.stop();
    const held = new Set<Socket>();
    const blackHole = createServer((socket) => {
      held.add(socket);
      socket.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => blackHole.listen(port, "127.0.0.1", resolve));
    try {
      await send(b.url, alice.accessToken, conversation.id, "mid-send crash");
      await eventually(() => held.size > 0, 30_000, "the delivery reaching the push service");
      const running = await jobOf("active", "deliver", bob.user.id);
      assert.ok(running, "the delivery job is active while its request hangs");
      await b.stop("SIGKILL");
      assert.equal(await running.getState(), "active", "left active, locked to the dead pod");
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => blackHole.close(resolve));
    }
    await services.webPush.start();
    assert.equal(services.webPush.origin, `https://127.0.0.1:${port}`);

    // No pod runs now; the one started next finds the stalled job once B's lock has lapsed.
    await cluster.startAnother();
    await eventually(() => received().length >= 1, 30_000, "the push, from the new pod");
    await settle(GRACE_MS + 3 * JOB_LOCK_MS);
    const pushes = received();
    assert.equal(pushes.length, 1, "exactly one push");
    assert.deepEqual(pushes[0]!.payload, { type: "messages", conversationId: conversation.id, seq: 1, count: 1 });
    assert.deepEqual(services.webPush.refused, []);
  });
});
