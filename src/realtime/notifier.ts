// The chat domain's Notifier over Socket.IO. `toUsers` makes one emit per user room: with the sharded adapter a
// one-room emit travels on that room's channel, read only by pods with a socket in it. `toUsersTogether` is one emit
// naming every room: encoded once and published once on the channel every pod reads, which is cheaper as soon as an
// event goes to many users at once (a large conversation's receipts).
import type { Server } from "socket.io";
import type { Notifier } from "../chat/ports.js";
import { type ClientToServerEvents, type ServerToClientEvents, userRoom } from "../protocol/events.js";

// Takes a getter because the domain is built before the Socket.IO server it notifies through.
export function socketNotifier(server: () => Server<ClientToServerEvents, ServerToClientEvents> | undefined): Notifier {
  return {
    toUsers(userIds, event, ...args) {
      const io = server();
      if (io === undefined) return;
      for (const userId of new Set(userIds)) io.to(userRoom(userId)).emit(event, ...args);
    },
    toUsersTogether(userIds, event, ...args) {
      const io = server();
      if (io === undefined) return;
      const rooms = [...new Set(userIds)].map(userRoom);
      if (rooms.length > 0) io.to(rooms).emit(event, ...args);
    },
    toOtherDevices(userId, exceptSocketId, event, ...args) {
      const io = server();
      if (io === undefined) return;
      // Every socket is in a room named after its id, so excepting that room skips exactly that socket, on any pod.
      const target = io.to(userRoom(userId));
      (exceptSocketId === undefined ? target : target.except(exceptSocketId)).emit(event, ...args);
    },
  };
}
