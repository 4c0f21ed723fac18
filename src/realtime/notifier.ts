// The chat domain's Notifier over Socket.IO. An event for several users goes out in one of two ways:
//   - one emit per user room: with the sharded adapter a one-room emit travels on that room's own channel, read only
//     by the pods with a socket in it, so a pod never hears of users it does not hold;
//   - one emit naming every room: encoded once and published once, on the channel every pod reads.
// Per room costs one encode and one publish per user; together costs one of each, but every pod decodes it. So per
// room is right for small audiences on the sharded adapter, and together for large ones (a big group's message or
// receipts), and always on the classic and in-memory adapters, where every publish reaches every pod anyway.
import type { Server } from "socket.io";
import type { Notifier } from "../chat/ports.js";
import { type ClientToServerEvents, type ServerToClientEvents, userRoom } from "@chat-gateway/protocol";

export interface NotifierOptions {
  /** Audiences of at least this many users get one emit naming every room; smaller ones one emit per room. */
  togetherFromUsers: number;
}

// Takes a getter because the domain is built before the Socket.IO server it notifies through.
export function socketNotifier(
  server: () => Server<ClientToServerEvents, ServerToClientEvents> | undefined,
  options: NotifierOptions,
): Notifier {
  const together: Notifier["toUsersTogether"] = (userIds, event, ...args) => {
    const io = server();
    if (io === undefined) return;
    const rooms = [...new Set(userIds)].map(userRoom);
    if (rooms.length > 0) io.to(rooms).emit(event, ...args);
  };
  return {
    toUsers(userIds, event, ...args) {
      const io = server();
      if (io === undefined) return;
      const users = new Set(userIds);
      if (users.size >= options.togetherFromUsers) return together(users, event, ...args);
      for (const userId of users) io.to(userRoom(userId)).emit(event, ...args);
    },
    toUsersTogether: together,
    toOtherDevices(userId, exceptSocketId, event, ...args) {
      const io = server();
      if (io === undefined) return;
      // Every socket is in a room named after its id, so excepting that room skips exactly that socket, on any pod.
      const target = io.to(userRoom(userId));
      (exceptSocketId === undefined ? target : target.except(exceptSocketId)).emit(event, ...args);
    },
  };
}
