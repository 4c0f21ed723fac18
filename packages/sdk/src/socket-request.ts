// One socket request with its ack, as a promise: a typed answer on `{ok: true}`, a ChatApiError otherwise, including
// when no answer comes (timeout, or the connection dropped while waiting).
import type { Socket } from "socket.io-client";
import type { ClientToServerEvents, ServerToClientEvents, WireError } from "@chat-gateway/protocol";
import { ChatApiError } from "./errors.js";

export type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export type RequestEvent = keyof ClientToServerEvents;
export type RequestPayload<E extends RequestEvent> = Parameters<ClientToServerEvents[E]>[0];
type AckAnswerOf<E extends RequestEvent> = Parameters<Parameters<ClientToServerEvents[E]>[1]>[0];
export type RequestResult<E extends RequestEvent> = Extract<AckAnswerOf<E>, { ok: true }>;

/** What socket.io-client's typed `timeout().emit` boils down to, without its per-event overloads. */
interface AckEmitter {
  emit(event: string, payload: unknown, ack: (err: Error | null, answer: unknown) => void): unknown;
}

export function request<E extends RequestEvent>(
  socket: ChatSocket | null,
  event: E,
  payload: RequestPayload<E>,
  timeoutMs: number,
): Promise<RequestResult<E>> {
  // Never let socket.io-client buffer an emit while offline: it would go out on reconnect *and* be retried by us.
  if (!socket?.connected) return Promise.reject(new ChatApiError("network_error", "not connected"));
  return new Promise((resolve, reject) => {
    (socket.timeout(timeoutMs) as unknown as AckEmitter).emit(event, payload, (err, answer) => {
      if (err) {
        reject(new ChatApiError("timeout", `no answer to ${event}: ${err.message}`));
        return;
      }
      const a = answer as { ok?: unknown; error?: WireError } | null;
      if (a?.ok === true) resolve(a as RequestResult<E>);
      else if (a?.error && typeof a.error.code === "string") reject(ChatApiError.fromWire(a.error));
      else reject(new ChatApiError("internal", `malformed answer to ${event}`));
    });
  });
}
