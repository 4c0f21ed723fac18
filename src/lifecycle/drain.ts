// Graceful drain of one pod (SIGTERM in a rolling restart): the order matters more than any single step.
//   1. Readiness fails at once (the caller flips its flag before calling), so the load balancer and Kubernetes stop
//      routing new work here. The listener stays open: probes must still read the 503, and polling clients must still
//      reach their session on this pod to receive `session:ended` and to get acks for sends already in flight.
//   2. New Socket.IO sessions are refused at the engine.io handshake (requests carrying a sid are never refused),
//      so a client that slips through is sent elsewhere by its own reconnection.
//   3. Connected clients are told `session:ended {reason: "draining"}` in batches with jitter, so the surviving pods
//      are not hit by every reconnect at once. Before a batch is disconnected, the writer is allowed to finish the
//      sends already queued, so those sends are acked here rather than retried elsewhere.
//   4. The Socket.IO server and the HTTP server close (Fastify waits for in-flight requests).
// Closing Redis and the database is the shell's job (main.ts), after this resolves.
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { endSession } from "../realtime/session-lifetime.js";
import type { GatewayServer, GatewaySocket } from "../realtime/socket-server.js";

export interface DrainTargets {
  io: GatewayServer;
  http: FastifyInstance;
  writer: { idle(): Promise<void> };
  log: Logger;
}

export interface DrainOptions {
  timeoutMs: number;
  /** Sockets told to reconnect per batch: at least this many, or a twentieth of the pod. @default 50 */
  minBatch?: number;
  /** Longest random pause between batches. @default 250 */
  maxJitterMs?: number;
}

type AllowRequest = (req: unknown, callback: (err: string | null | undefined, success: boolean) => void) => void;

/** Refuses engine.io handshakes from now on; requests of existing sessions (with a sid) never reach allowRequest. */
export function refuseNewSessions(io: GatewayServer): void {
  const engine = io.engine as unknown as { opts: { allowRequest?: AllowRequest } };
  engine.opts.allowRequest = (_req, callback) => callback("draining", false);
}

export async function drainGateway(targets: DrainTargets, options: DrainOptions): Promise<void> {
  const { io, http, writer, log } = targets;
  const deadline = Date.now() + options.timeoutMs;
  const remaining = () => Math.max(0, deadline - Date.now());
  refuseNewSessions(io);

  const sockets: GatewaySocket[] = [...io.of("/").sockets.values()];
  const batchSize = Math.max(options.minBatch ?? 50, Math.ceil(sockets.length / 20));
  log.info({ sockets: sockets.length, batchSize }, "drain: ending sessions");
  for (let i = 0; i < sockets.length; i += batchSize) {
    const batch = sockets.slice(i, i + batchSize).filter((s) => s.connected);
    for (const s of batch) s.emit("session:ended", { reason: "draining" });
    await settleWrites(writer, remaining());
    for (const s of batch) s.disconnect(true);
    if (i + batchSize < sockets.length && remaining() > 0) {
      await sleep(Math.min(options.maxJitterMs ?? 250, remaining()) * Math.random());
    }
  }
  // Sockets that connected during the loop (a handshake already past allowRequest) get the same treatment.
  for (const s of io.of("/").sockets.values()) endSession(s, "draining");
  await settleWrites(writer, remaining());

  await new Promise<void>((resolve) => {
    // io.close() also closes the HTTP server; Fastify's close below then only runs its hooks.
    void io.close(() => resolve());
    setTimeout(resolve, remaining()).unref();
  });
  await http.close().catch(() => undefined);
  log.info({ msLeft: remaining() }, "drain: closed");
}

/** Waits for queued sends to commit and for their acks (microtasks after the commit) to be written out. */
async function settleWrites(writer: { idle(): Promise<void> }, withinMs: number): Promise<void> {
  await Promise.race([writer.idle(), sleep(withinMs)]);
  await new Promise((resolve) => setImmediate(resolve));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
