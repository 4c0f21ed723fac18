// Client events. Each route reads: validate -> act -> ack; fan-out happens in the domain after commit.
// A route never throws past this boundary: every failure becomes the contract's ack with an error code.
//
// Routes are registered once per gateway, not once per socket: every socket gets the same single `onAny` listener,
// which Socket.IO calls with the socket as `this`. Per-socket closures (a listener per event, a handler per event)
// were most of what an idle connection cost beyond Socket.IO's own objects (measured with heap snapshots).
import type { Logger } from "pino";
import type { z } from "zod";
import type { Messages } from "../chat/messages.js";
import * as schemas from "@chat-gateway/protocol/schemas";
import { syncAfterCursors } from "../chat/sync.js";
import type { Reads } from "../db/reads.js";
import { toWireError } from "../errors.js";
import type { ClientToServerEvents } from "@chat-gateway/protocol";
import type { RateLimiters } from "../limits/rate-limits.js";
import type { GatewaySocket } from "./socket-server.js";

export interface RouterDeps {
  limits: RateLimiters;
  log: Logger;
  metrics?: { event(event: string, outcome: string): void; sendToAck?: { observe(seconds: number): void } };
}

type EventName = keyof ClientToServerEvents;

interface Route {
  schema: z.ZodType;
  run: (socket: GatewaySocket, input: unknown) => Promise<object>;
  /** Default: the per-socket events limit. */
  limiter: ((socket: GatewaySocket) => Promise<void>) | undefined;
  /** Asked first: an error to answer at once (a capacity refusal), before the limiter and before parsing. */
  admit: (() => Error | undefined) | undefined;
}

export class EventRouter {
  private readonly routes = new Map<string, Route>();
  private readonly listener: (this: GatewaySocket, event: string, ...args: unknown[]) => void;

  constructor(private readonly deps: RouterDeps) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- Socket.IO binds `this` to the socket.
    const router = this;
    this.listener = function (this: GatewaySocket, event: string, ...args: unknown[]) {
      router.dispatch(this, event, args);
    };
  }

  /** Registers the handler of one client event for every socket. */
  on<S extends z.ZodType>(
    event: EventName,
    schema: S,
    run: (socket: GatewaySocket, input: z.infer<S>) => Promise<object>,
    limiter?: (socket: GatewaySocket) => Promise<void>,
    admit?: () => Error | undefined,
  ): void {
    this.routes.set(event, { schema, run: run as Route["run"], limiter, admit });
  }

  /** The client events that have a handler (the fuzz test checks each one has an entry in its table). */
  events(): string[] {
    return [...this.routes.keys()];
  }

  attach(socket: GatewaySocket): void {
    socket.onAny(this.listener);
  }

  private dispatch(socket: GatewaySocket, event: string, args: unknown[]): void {
    const route = this.routes.get(event);
    const { log, limits, metrics } = this.deps;
    if (route === undefined) return log.debug({ event, socketId: socket.id }, "unknown event ignored");
    const ack = args.at(-1);
    if (typeof ack !== "function") return log.debug({ event, socketId: socket.id }, "event without ack ignored");
    // Past capacity a refusal must cost almost nothing: no limiter round trip, no schema work, no promise chain.
    const refused = route.admit?.();
    if (refused !== undefined) {
      const { error } = toWireError(refused);
      metrics?.event(event, error.code);
      ack({ ok: false, error });
      return;
    }
    const payload = args.length > 1 ? args[0] : undefined;
    const started = performance.now();
    void (async () => {
      try {
        await (route.limiter ? route.limiter(socket) : limits.events.consume(socket.id));
        const result = await route.run(socket, route.schema.parse(payload));
        ack({ ok: true, ...result });
        metrics?.event(event, "ok");
        if (event === "message:send") metrics?.sendToAck?.observe((performance.now() - started) / 1000);
      } catch (err) {
        const { error, isBug } = toWireError(err);
        if (isBug) log.error({ err, event, socketId: socket.id, userId: socket.data.userId }, "event failed");
        metrics?.event(event, error.code);
        ack({ ok: false, error });
      }
    })();
  }
}

export function registerChatHandlers(
  router: EventRouter,
  deps: { reads: Reads; messages: Messages; limits: RateLimiters },
): void {
  router.on(
    "message:send",
    schemas.SendPayload,
    async (socket, input) => deps.messages.send(socket.data.userId, input).then(({ message }) => ({ message })),
    // Sends are limited per user across all their devices (and pods, in Redis mode).
    (socket) => deps.limits.send.consume(socket.data.userId),
    () => deps.messages.admission(),
  );
  router.on("message:read", schemas.MarkerPayload, async (socket, { conversationId, seq }) => {
    await deps.messages.markRead(socket.data.userId, conversationId, seq, socket.id);
    return {};
  });
  router.on("message:delivered", schemas.MarkerPayload, async (socket, { conversationId, seq }) => {
    await deps.messages.markDelivered(socket.data.userId, conversationId, seq);
    return {};
  });
  router.on("sync", schemas.SyncPayload, async (socket, { cursors, limit }) =>
    syncAfterCursors(deps.reads, socket.data.userId, cursors, limit, (m) => deps.messages.withAttachments(m)),
  );
}
