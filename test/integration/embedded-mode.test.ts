// The laptop path: no DATABASE_URL and no REDIS_URL means PGlite in DATA_DIR and the in-memory adapter.
// Register, send, read history, restart the process on the same folder, read history again.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import type { AuthResult, Message } from "@chat-gateway/protocol";
import { api, connectDevice, createConversation, registerUser, request, waitForEvent } from "../helpers/clients.js";
import { spawnGateway } from "../helpers/gateways.js";

const dataDir = mkdtempSync(join(tmpdir(), "gw-embedded-"));
after(() => rmSync(dataDir, { recursive: true, force: true }));

test("embedded mode: register, send, history, restart, history again", async () => {
  // No JWT_SECRET either: embedded mode generates one and keeps it in DATA_DIR, so tokens survive the restart.
  const env = { DATA_DIR: dataDir, DATABASE_URL: "", REDIS_URL: "", JWT_SECRET: "", RATE_LIMITS: "on" };
  let gateway = await spawnGateway(env);
  assert.ok(gateway.logs.some((l) => l.includes('"adapter":"memory"') && l.includes('"database":"pglite"')));
  const alice = await registerUser(gateway.url);
  const bob = await registerUser(gateway.url);
  const conversation = await createConversation(gateway.url, alice.accessToken, {
    type: "direct",
    userId: bob.user.id,
  });
  const bobDevice = await connectDevice(gateway.url, bob.accessToken);
  const live = waitForEvent(bobDevice, "message:new");
  const ack = await request(await connectDevice(gateway.url, alice.accessToken), "message:send", {
    conversationId: conversation.id,
    clientMsgId: "one",
    content: "hello from the laptop",
  });
  assert.equal(ack.ok, true);
  assert.equal((await live).id, ack.message.id);
  const before = await api<{ messages: Message[] }>(
    gateway.url,
    "GET",
    `/v1/conversations/${conversation.id}/messages`,
    {
      token: bob.accessToken,
    },
  );
  assert.deepEqual(
    before.body.messages.map((m) => m.content),
    ["hello from the laptop"],
  );

  assert.equal(await gateway.stop("SIGTERM"), 0, "a graceful stop exits 0");
  gateway = await spawnGateway(env);
  try {
    const afterRestart = await api<{ messages: Message[] }>(
      gateway.url,
      "GET",
      `/v1/conversations/${conversation.id}/messages`,
      { token: bob.accessToken },
    );
    assert.equal(afterRestart.status, 200, "the access token survives the restart");
    assert.deepEqual(afterRestart.body.messages, before.body.messages);
    const login = await api<AuthResult>(gateway.url, "POST", "/v1/auth/login", {
      body: { username: alice.user.username, password: "correct horse battery" },
    });
    assert.equal(login.status, 200);
    const ready = await api<{ ready: boolean }>(gateway.url, "GET", "/readyz");
    assert.equal(ready.body.ready, true);
  } finally {
    await gateway.stop("SIGTERM");
  }
});
