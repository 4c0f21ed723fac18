// The Socket.IO server: transport limits, origin checks, handshake authentication, and the user room.
import type { Server as HttpServer } from "node:http";
import type { Logger } from "pino";
import { Server, type Socket } from "socket.io";
import type { Authentication } from "../auth/authentication.js";
import { toWireError } from "../errors.js";
import { type ClientToServerEvents, type ServerToClientEvents, userRoom } from "@chat-gateway/protocol";
import type { OriginPolicy } from "./origins.js";
import { requestOrigin } from "./origins.js";

export interface SocketData {
  userId: string;
  /** The login (refresh family) of an own token; null for a token of the external identity provider. */
  sessionId: string | null;
  /** Access token expiry, epoch seconds; moved by auth:refresh. */
  exp: number;
}

/** Messages between gateway pods (serverSideEmit), as realtime/membership-signals.ts sends them. */
export interface InterServerEvents {
  "membership:removed": (event: { conversationId: string; userId: string }) => void;
}

export type GatewayServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type GatewaySocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

export interface SocketServerOptions {
  maxPayloadBytes: number;
  origins: OriginPolicy;
  auth: Authentication;
  log: Logger;
}

export function createSocketServer(httpServer: HttpServer, options: SocketServerOptions): GatewayServer {
  const io: GatewayServer = new Server(httpServer, {
    path: "/socket.io",
    // Socket.IO's default of 1 MB per frame is far more than a chat message needs.
    maxHttpBufferSize: options.maxPayloadBytes,
    // Connection-state recovery does not work with the Redis adapter nor after a pod dies; `sync` replaces it.
    connectionStateRecovery: undefined,
    cors: {
      origin: (origin, callback) => callback(null, options.origins.allows(origin, undefined) ? true : false),
      credentials: true,
    },
    allowRequest: (req, callback) => {
      const { origin, host } = requestOrigin(req);
      callback(null, options.origins.allows(origin, host));
    },
  });

  io.use(async (socket, next) => {
    try {
      const auth: unknown = socket.handshake.auth;
      const token = typeof auth === "object" && auth !== null ? (auth as { token?: unknown }).token : undefined;
      const user = await options.auth.user(token);
      socket.data = { userId: user.userId, sessionId: user.sessionId, exp: user.exp };
      next();
    } catch (err) {
      const { error, isBug } = toWireError(err);
      if (isBug) options.log.error({ err }, "handshake failed");
      // The contract: connect_error's message is the error code.
      next(new Error(error.code));
    }
  });

  io.on("connection", (socket) => {
    void socket.join(userRoom(socket.data.userId));
  });
  return io;
}
