// The chat domain's Notifier over Socket.IO: one emit per user room, never one emit naming several rooms, because
// the sharded adapter would send a multi-room emit over the channel every pod reads.
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
  };
}
