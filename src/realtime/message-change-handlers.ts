// Socket events that change a stored message: message:edit, message:delete, message:react. Each reads
// validate -> act -> ack; the fan-out (`message:updated`) happens in the domain after commit. Limited like sends:
// per user across all their devices.
import type { MessageChanges } from "../chat/message-changes.js";
import * as schemas from "@chat-gateway/protocol/schemas";
import type { RateLimiters } from "../limits/rate-limits.js";
import type { EventRouter } from "./handlers.js";
import type { GatewaySocket } from "./socket-server.js";

export function registerMessageChangeHandlers(
  router: EventRouter,
  deps: { changes: MessageChanges; limits: RateLimiters },
): void {
  const limiter = (socket: GatewaySocket) => deps.limits.send.consume(socket.data.userId);
  router.on(
    "message:edit",
    schemas.EditPayload,
    async (socket, { conversationId, messageId, content }) => ({
      message: await deps.changes.edit(socket.data.userId, { conversationId, messageId }, content),
    }),
    limiter,
  );
  router.on(
    "message:delete",
    schemas.MessageRefPayload,
    async (socket, { conversationId, messageId }) => ({
      message: await deps.changes.delete(socket.data.userId, { conversationId, messageId }),
    }),
    limiter,
  );
  router.on(
    "message:react",
    schemas.ReactPayload,
    async (socket, input) => ({ message: await deps.changes.react(socket.data.userId, input) }),
    limiter,
  );
}
