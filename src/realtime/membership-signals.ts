// Tells every pod at once that a member left or was removed from a conversation, so what each pod remembers about
// that membership ends with it: the typing member cache (a removed member would otherwise keep getting, and sending,
// typing for up to TYPING_MEMBERS_CACHE_MS) and presence watches between people who no longer share a conversation.
// Messages, markers, history and sync read membership from the database on each call, so they need no signal.
//
// One serverSideEmit per removal (a message every pod reads); this pod runs its listeners directly, since
// serverSideEmit reaches only the others, and the in-memory adapter of a single node has no others.
import type { Logger } from "pino";
import type { GatewayServer } from "./socket-server.js";

export type MemberRemovedListener = (conversationId: string, userId: string) => void | Promise<void>;

export interface MembershipSignals {
  /** Runs the listeners here and on every other pod. */
  removed(conversationId: string, userId: string): void;
  onRemoved(listener: MemberRemovedListener): void;
  /** Starts listening for other pods' signals (once the adapter is set). */
  listen(server: GatewayServer): void;
}

export function membershipSignals(options: { crossPod: boolean; log: Logger }): MembershipSignals {
  const listeners: MemberRemovedListener[] = [];
  let io: GatewayServer | undefined;
  const runLocal = (conversationId: string, userId: string) => {
    for (const listener of listeners) {
      Promise.resolve()
        .then(() => listener(conversationId, userId))
        .catch((err: unknown) => options.log.warn({ err }, "a membership-removed listener failed"));
    }
  };
  return {
    removed(conversationId, userId) {
      runLocal(conversationId, userId);
      if (options.crossPod && io !== undefined) io.serverSideEmit("membership:removed", { conversationId, userId });
    },
    onRemoved(listener) {
      listeners.push(listener);
    },
    listen(server) {
      io = server;
      if (!options.crossPod) return;
      server.on("membership:removed", (event) => {
        if (typeof event?.conversationId === "string" && typeof event.userId === "string") {
          runLocal(event.conversationId, event.userId);
        }
      });
    },
  };
}
