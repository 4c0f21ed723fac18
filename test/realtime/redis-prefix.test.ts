// Two deployments on the shared Redis with different REDIS_PREFIX values do not hear each other: neither live
// messages, nor presence, nor rate-limit counts cross. They even share one database here (same users, same
// conversations), so only the prefix keeps them apart; a deployment of the same prefix is the positive control.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { createClient } from "redis";
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
import { type Cluster, REDIS_URL, startGateways } from "../helpers/gateways.js";
import { send } from "../helpers/push.js";

const A = `pa${randomBytes(3).toString("hex")}`;
const B = `pb${randomBytes(3).toString("hex")}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("REDIS_PREFIX keeps deployments on one Redis apart", () => {
  let a: Cluster;
  const sockets: Device[] = [];
  before(async () => {
    // Deployment A: two pods with prefix A; deployment B: one pod with prefix B on the same database and Redis.
    a = await startGateways(2, {
      adapter: "sharded",
      env: { REDIS_PREFIX: A, RATE_LIMITS: "on", RATE_LIMIT_GROUPS_PER_MIN: "2" },
    });
    await a.startAnother({ REDIS_PREFIX: B });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await a?.cleanup();
  });
  const connect = async (url: string, token: string) => {
    const s = await connectDevice(url, token);
    sockets.push(s);
    return s;
  };

  test("messages, presence and rate limits stay within their prefix", async () => {
    const [aA0, aA1, aB] = a.urls;
    const [alice, bob, carol] = await Promise.all([registerUser(aA0!), registerUser(aA0!), registerUser(aA0!)]);
    const { id } = await createConversation(aA0!, alice.accessToken, {
      type: "group",
      title: "prefixes",
      memberIds: [bob.user.id, carol.user.id],
    });
    const bobOnA = await connect(aA1!, bob.accessToken);
    const bobOnB = await connect(aB!, bob.accessToken);
    const onA = collect(bobOnA, "message:new");
    const onB = collect(bobOnB, "message:new");

    // Sent through A's first pod: A's other pod delivers it, B's pod never hears of it.
    await send(aA0!, alice.accessToken, id, "for A");
    await eventually(() => onA.some((m) => m.content === "for A"), 10_000, "A's other pod delivered");
    // Sent through B's pod: its own socket gets it, A's pods never hear of it.
    await send(aB!, alice.accessToken, id, "for B");
    await eventually(() => onB.some((m) => m.content === "for B"), 10_000, "B's pod delivered");
    await sleep(500);
    assert.deepEqual(
      onA.map((m) => m.content),
      ["for A"],
      "A heard only A's message",
    );
    assert.deepEqual(
      onB.map((m) => m.content),
      ["for B"],
      "B heard only B's message",
    );

    // Presence: carol is online on A only.
    await connect(aA1!, carol.accessToken);
    const watchA = await connect(aA0!, alice.accessToken);
    const watchB = await connect(aB!, alice.accessToken);
    await eventually(
      async () =>
        (await request(watchA, "presence:subscribe", { userIds: [carol.user.id] })).presence[carol.user.id]?.online ===
        true,
      10_000,
      "carol online in A",
    );
    const inB = await request(watchB, "presence:subscribe", { userIds: [carol.user.id] });
    assert.equal(inB.presence[carol.user.id]?.online, false, "B does not see A's presence");

    // Rate limits: A's two groups a minute are used up; B counts its own.
    const group = (url: string) =>
      api(url, "POST", "/v1/conversations", {
        token: carol.accessToken,
        body: { type: "group", title: "g", memberIds: [] },
      }).then((r) => r.status);
    assert.deepEqual([await group(aA0!), await group(aA1!), await group(aA0!)], [201, 201, 429], "A's limit");
    assert.equal(await group(aB!), 201, "B's count is its own");

    // In Redis: each prefix has its own room channels and presence keys.
    const redis = createClient({ url: REDIS_URL });
    await redis.connect();
    try {
      const channels = async (p: string) =>
        (await redis.sendCommand(["PUBSUB", "SHARDCHANNELS", `${p}-gateway#*`])) as string[];
      assert.ok((await channels(A)).includes(`${A}-gateway#/#user:${bob.user.id}#`), "A's room channel");
      assert.ok((await channels(B)).includes(`${B}-gateway#/#user:${bob.user.id}#`), "B's room channel");
      assert.equal((await redis.zScore(`{${A}:presence}:online`, carol.user.id)) !== null, true, "carol in A's keys");
      assert.equal(await redis.zScore(`{${B}:presence}:online`, carol.user.id), null, "and not in B's");
      assert.ok((await redis.keys(`${A}:rl:groups:*`)).length > 0, "A's rate-limit keys");
    } finally {
      redis.destroy();
    }
  });
});
