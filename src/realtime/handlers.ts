// Client events. Each handler reads: validate -> act -> ack; fan-out happens in the domain after commit.
// A handler never throws past this boundary: every failure becomes the contract's ack with an error code.
import type { Logger } from "pino";
import type { z } from "zod";
import type { Conversations } from "../chat/conversations.js";
import type { Messages } from "../chat/messages.js";
import * as schemas from "../chat/schemas.js";
import { syncAfterCursors } from "../chat/sync.js";
import type { Db } from "../db/client.js";
import { toWireError } from "../errors.js";
import type { ClientToServerEvents } from "../protocol/events.js";
import type { RateLimiters } from "../limits/rate-limits.js";
import type { GatewaySocket } from "./socket-server.js";

export interface HandlerDeps {
  db: Db;
  messages: Messages;
  conversations: Conversations;
  limits: RateLimiters;
  log: Logger;
  /** Extra handlers (presence, typing, token refresh) register through the same wrapper. */
  metrics?: { event(event: string, outcome: string): void; sendToAck?: { observe(seconds: number): void } };
}

type EventName = keyof ClientToServerEvents;
export type Handle = <S extends z.ZodType>(
  event: EventName,
  schema: S,
  run: (input: z.infer<S>) => Promise<object>,
  limiter?: (socket: GatewaySocket) => Promise<void>,
) => void;

const KNOWN_EVENTS = new Set<string>([
  "message:send",
  "message:read",
  "message:delivered",
  "typing",
  "sync",
  "presence:subscribe",
  "auth:refresh",
]);

/** Wraps one event: ack required, rate limit, schema, run, ack ok or the error. */
export function eventHandler(socket: GatewaySocket, deps: HandlerDeps): Handle {
  return (event, schema, run, limiter) => {
    const raw = socket as unknown as { on(event: string, listener: (...args: unknown[]) => void): void };
    raw.on(event, (...args: unknown[]) => {
      const ack = args.at(-1);
      if (typeof ack !== "function") {
        deps.log.debug({ event, socketId: socket.id }, "event without ack ignored");
        return;
      }
      const payload = args.length > 1 ? args[0] : undefined;
      const started = performance.now();
      void (async () => {
        try {
          await (limiter ? limiter(socket) : deps.limits.events.consume(socket.id));
          const input = schema.parse(payload) as z.infer<typeof schema>;
          const result = await run(input);
          ack({ ok: true, ...result });
          deps.metrics?.event(event, "ok");
          if (event === "message:send") deps.metrics?.sendToAck?.observe((performance.now() - started) / 1000);
        } catch (err) {
          const { error, isBug } = toWireError(err);
          if (isBug) deps.log.error({ err, event, socketId: socket.id, userId: socket.data.userId }, "event failed");
          deps.metrics?.event(event, error.code);
          ack({ ok: false, error });
        }
      })();
    });
  };
}

export function registerChatHandlers(socket: GatewaySocket, deps: HandlerDeps): Handle {
  const handle = eventHandler(socket, deps);
  const userId = socket.data.userId;

  handle(
    "message:send",
    schemas.SendPayload,
    async (input) => deps.messages.send(userId, input).then(({ message }) => ({ message })),
    // Sends are limited per user across all their devices (and pods, in Redis mode).
    () => deps.limits.send.consume(userId),
  );
  handle("message:read", schemas.MarkerPayload, async ({ conversationId, seq }) => {
    await deps.messages.markRead(userId, conversationId, seq, socket.id);
    return {};
  });
  handle("message:delivered", schemas.MarkerPayload, async ({ conversationId, seq }) => {
    await deps.messages.markDelivered(userId, conversationId, seq);
    return {};
  });
  handle("sync", schemas.SyncPayload, async ({ cursors, limit }) => syncAfterCursors(deps.db, userId, cursors, limit));

  socket.onAny((event: string) => {
    if (!KNOWN_EVENTS.has(event)) deps.log.debug({ event, socketId: socket.id }, "unknown event ignored");
  });
  return handle;
}
