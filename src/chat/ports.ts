// What the chat domain needs from the outside world, declared here so the domain never imports a transport.
import type { ServerToClientEvents } from "../protocol/events.js";
import type { Message } from "../protocol/types.js";

/** Delivers a server event to every connected device of the given users, on whichever pod they are. */
export interface Notifier {
  toUsers<E extends keyof ServerToClientEvents>(
    userIds: Iterable<string>,
    event: E,
    ...args: Parameters<ServerToClientEvents[E]>
  ): void;
}

/** Told once per newly stored message, after commit (push notifications listen here). */
export type MessageStoredListener = (message: Message, members: { userId: string; muted: boolean }[]) => void;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Ids are UUIDs in storage; anything else names nothing and is `not_found`, never a database error. */
export const isUuid = (value: string): boolean => UUID.test(value);
