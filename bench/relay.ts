// The bare relay: the least a Socket.IO chat server can do, to put the gateway's figures in proportion. Same
// socket.io and @socket.io/redis-adapter (sharded, dynamic subscriptions, node-redis) as the gateway, no database,
// no validation, no auth beyond taking the user id from the handshake. Run as a process by bench/relay-cluster.ts:
//
//   PORT=4100 REDIS_URL=redis://127.0.0.1:6379 RELAY_RUN=abcd node --import tsx bench/relay.ts
//
// - each socket joins `user:<auth.userId>`;
// - `message:send` takes a seq from a Redis counter per conversation (one HINCRBY, the least any real server must do
//   to order messages across pods), acks `{ ok: true, message }` and emits `message:new` to each member's room;
// - `message:read` / `message:delivered` ack ok and emit `conversation:read` / `conversation:delivered` to each
//   member's room, so SDK-like devices see the same protocol; `sync` answers an empty page;
// - HTTP: `GET /readyz`, `POST /conversations` with
//   `[{ id, memberIds }]` (the relay has no database: the bench tells every relay process the memberships).
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { createShardedAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import { Server } from "socket.io";

const port = Number(process.env.PORT ?? 4100);
const run = process.env.RELAY_RUN ?? "default";
const members = new Map<string, string[]>();
const seqKey = `bench-relay:${run}:seq`;

type AckFn = (answer: unknown) => void;

const http = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/readyz") return void res.end("ok");
  if (req.method === "POST" && req.url === "/conversations") {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      for (const c of JSON.parse(body) as { id: string; memberIds: string[] }[]) members.set(c.id, c.memberIds);
      res.statusCode = 204;
      res.end();
    });
    return;
  }
  res.statusCode = 404;
  res.end();
});

const pub = createClient({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);

const io = new Server(http, {
  adapter: createShardedAdapter(pub, sub, { subscriptionMode: "dynamic", channelPrefix: `bench-relay-${run}` }),
});

const toMembers = (conversationId: string, event: string, payload: unknown) => {
  for (const userId of members.get(conversationId) ?? []) io.to(`user:${userId}`).emit(event, payload);
};
const notFound = { ok: false, error: { code: "not_found", message: "unknown conversation" } };

io.on("connection", (socket) => {
  const userId = (socket.handshake.auth as { userId?: unknown }).userId;
  if (typeof userId !== "string") return void socket.disconnect(true);
  void socket.join(`user:${userId}`);

  socket.on("message:send", (payload: { conversationId: string; clientMsgId: string; content: string }, ack: AckFn) => {
    if (!members.has(payload.conversationId)) return ack(notFound);
    pub.hIncrBy(seqKey, payload.conversationId, 1).then(
      (seq) => {
        const message = {
          id: randomUUID(),
          conversationId: payload.conversationId,
          seq,
          senderId: userId,
          clientMsgId: payload.clientMsgId,
          content: payload.content,
          createdAt: new Date().toISOString(),
        };
        ack({ ok: true, message });
        toMembers(payload.conversationId, "message:new", message);
      },
      () => ack({ ok: false, error: { code: "unavailable", message: "redis" } }),
    );
  });
  for (const kind of ["read", "delivered"] as const) {
    socket.on(`message:${kind}`, (payload: { conversationId: string; seq: number }, ack: AckFn) => {
      if (!members.has(payload.conversationId)) return ack(notFound);
      ack({ ok: true });
      toMembers(payload.conversationId, `conversation:${kind}`, { ...payload, userId });
    });
  }
  socket.on("sync", (_payload: unknown, ack: AckFn) =>
    ack({ ok: true, conversations: [], messages: [], hasMore: false }),
  );
});

http.listen(port, process.env.HOST ?? "127.0.0.1");
const stop = () => {
  io.close();
  void pub
    .del(seqKey)
    .then(() => pub.quit())
    .finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
