// The presence sweep announces every lapsed user in one call, in bounded batches: a pod that died with more users
// than one batch (200) must not leave the rest online for several heartbeats. In process against a private Redis,
// so the shared one's presence keys are never touched.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { createClient, type RedisClientType } from "redis";
import { type PresenceChange, RedisPresenceStore } from "../../src/presence/store.js";
import { redisNames } from "../../src/realtime/redis-names.js";
import { eventually } from "../helpers/clients.js";
import { type PrivateRedis, startPrivateRedis } from "../helpers/private-redis.js";

const LAPSED = 650;

describe("presence sweep", () => {
  let redis: PrivateRedis;
  let pub: RedisClientType;
  let sub: RedisClientType;
  before(async () => {
    redis = await startPrivateRedis();
    pub = createClient({ url: redis.url });
    sub = createClient({ url: redis.url });
    await Promise.all([pub.connect(), sub.connect()]);
  });
  after(async () => {
    await Promise.all([pub?.quit(), sub?.quit()]).catch(() => undefined);
    await redis?.stop();
  });

  test(`one sweep announces all ${LAPSED} lapsed users offline, once each, and keeps the live one`, async () => {
    const names = redisNames("chat").presence;
    const redis = {
      command: (_key: string, args: string[]) => pub.sendCommand(args),
      subscribe: (channel: string, listener: (m: string) => void) => sub.subscribe(channel, listener),
    };
    const store = new RedisPresenceStore(redis, names, 1_000);
    const changes: PresenceChange[] = [];
    await store.onChange((c) => changes.push(c));

    // A pod died holding these users' sockets: their heartbeats stopped a while ago.
    const users = Array.from({ length: LAPSED }, () => randomUUID());
    const past = Date.now() - 60_000;
    const multi = pub.multi();
    for (const userId of users) {
      multi.zAdd(names.online, { score: past, value: userId });
      multi.zAdd(names.sockets(userId), { score: past, value: randomUUID() });
    }
    await multi.exec();
    // And one user with a live device elsewhere.
    const live = randomUUID();
    await store.touch([{ userId: live, socketId: randomUUID() }]);
    await eventually(() => changes.some((c) => c.userId === live), 5_000, "the live user online");

    await store.sweep();
    await eventually(() => changes.filter((c) => !c.online).length >= LAPSED, 5_000, "every lapsed user offline");
    await new Promise((r) => setTimeout(r, 200));
    const offline = changes.filter((c) => !c.online).map((c) => c.userId);
    assert.equal(offline.length, LAPSED, "each once");
    assert.deepEqual(new Set(offline), new Set(users));
    assert.equal(await pub.zCard(names.online), 1, "only the live user is left");
    const state = await store.read([live, users[0]!]);
    assert.equal(state[live]?.online, true);
    assert.equal(state[users[0]!]?.online, false);
  });
});
