// Slow consumers: a client that stops reading its connection (a phone whose network vanished before TCP noticed, a
// frozen tab, a hostile client) makes everything sent to it wait in this process. Once the kernel's send buffer is
// full, ws keeps the frame it is writing (`bufferedAmount`) and engine.io queues every later packet in the
// connection's `writeBuffer`, without bound: one such client in a busy group grows the heap by every message of it.
//
// A socket with more than maxBytes waiting is cut off: engine.io discards its queue and the WebSocket is terminated
// at once (a polite close would wait behind the same stuck buffer). Its client reconnects and catches up through
// `sync`, which reads from the database instead of from this pod's memory; nothing acked is lost.
//
// The check runs on a timer over this pod's sockets, O(local sockets) per tick, rather than on every write: the
// fan-out stays untouched, and one second of output more than the limit is what a slow consumer can cost.
import type { Logger } from "pino";
import type { GatewayServer } from "./socket-server.js";

export interface BufferGuardOptions {
  /** Bytes waiting for one socket before it is disconnected. */
  maxBytes: number;
  /** How often the sockets are checked, ms. @default 1000 */
  intervalMs?: number;
  log?: Logger;
  /** Told about each socket cut off (for metrics). */
  onOverflow?: () => void;
}

/** engine.io internals read here (engine.io 6: Socket.writeBuffer, transports/websocket.ts `socket` is a ws WebSocket). */
interface EngineConnection {
  readyState?: string;
  writeBuffer?: { data?: unknown }[];
  transport?: { name?: string; socket?: { bufferedAmount?: number; terminate?(): void } };
  close(discard?: boolean): void;
}

/** Bytes waiting for one connection: ws's unsent bytes plus engine.io's queued packets, counted up to `limit`. */
export function waitingBytes(conn: EngineConnection, limit = Infinity): number {
  const ws = conn.transport?.name === "websocket" ? conn.transport.socket : undefined;
  let bytes = typeof ws?.bufferedAmount === "number" ? ws.bufferedAmount : 0;
  for (const packet of conn.writeBuffer ?? []) {
    // Stops counting once over the limit, so a huge queue costs no more than the limit's worth of packets.
    if (bytes > limit) break;
    bytes += packetBytes(packet.data);
  }
  return bytes;
}

function packetBytes(data: unknown): number {
  // Socket.IO's packets are JSON strings; their length in UTF-16 units is close enough to their bytes for a limit.
  if (typeof data === "string") return data.length + 1;
  if (data instanceof ArrayBuffer) return data.byteLength + 1;
  if (ArrayBuffer.isView(data)) return data.byteLength + 1;
  return 1;
}

/** Starts checking every socket of this pod; stop() ends it (the drain calls it). */
export function guardSocketBuffers(io: GatewayServer, options: BufferGuardOptions): { stop(): void } {
  const check = () => {
    for (const socket of io.of("/").sockets.values()) {
      const conn = socket.conn as unknown as EngineConnection;
      if (conn.readyState !== "open") continue;
      const bytes = waitingBytes(conn, options.maxBytes);
      if (bytes <= options.maxBytes) continue;
      options.log?.warn(
        { socketId: socket.id, userId: socket.data.userId, bytes, maxBytes: options.maxBytes },
        "socket disconnected: too much output waiting (client not reading)",
      );
      options.onOverflow?.();
      const ws = conn.transport?.name === "websocket" ? conn.transport.socket : undefined;
      // discard: engine.io drops its queue and closes now instead of waiting for a "drain" that will not come.
      conn.close(true);
      // ws would otherwise keep its unsent bytes for its 30 s closing handshake.
      ws?.terminate?.();
    }
  };
  const timer = setInterval(check, options.intervalMs ?? 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
