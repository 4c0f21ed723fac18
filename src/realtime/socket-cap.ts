// At most MAX_SOCKETS_PER_USER sockets per user on each pod: a new connection past it disconnects the user's oldest
// socket on this pod with `session:ended {reason: "too_many_sockets"}` (the SDK does not reconnect on it, so two
// devices cannot keep displacing each other). Per pod, from the local user room, so it costs no round trip; a user
// whose devices are spread over P pods may hold up to P times the limit. Counting across pods would take a
// fetchSockets (a request to every pod) per connection, which a reconnect storm after a pod's drain multiplies.
import { userRoom } from "@chat-gateway/protocol";
import { endSession } from "./session-lifetime.js";
import type { GatewayServer, GatewaySocket } from "./socket-server.js";

export function capSocketsPerUser(server: GatewayServer, max: number): (socket: GatewaySocket) => void {
  return (socket) => {
    const namespace = server.of("/");
    const room = namespace.adapter.rooms.get(userRoom(socket.data.userId));
    if (room === undefined || room.size <= max) return;
    let excess = room.size - max;
    // A room's ids are in joining order, and a socket joins its user room on connection: oldest first.
    for (const id of [...room]) {
      if (excess <= 0) break;
      if (id === socket.id) continue;
      const oldest = namespace.sockets.get(id);
      if (oldest === undefined) continue;
      endSession(oldest, "too_many_sockets");
      excess -= 1;
    }
  };
}
