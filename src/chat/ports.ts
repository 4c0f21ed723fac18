// What the chat domain needs from the outside world, declared here so the domain never imports a transport.
import type { Message, ServerToClientEvents } from "@chat-gateway/protocol";

/** Delivers a server event to every connected device of the given users, on whichever pod they are. */
export interface Notifier {
  toUsers<E extends keyof ServerToClientEvents>(
    userIds: Iterable<string>,
    event: E,
    ...args: Parameters<ServerToClientEvents[E]>
  ): void;
  /**
   * The same event to every connected device of all these users as ONE emit: encoded once and, across pods, published
   * once (on the channel every pod reads) instead of once per user. For events every member of a large conversation
   * gets together (`conversation:markers`).
   */
  toUsersTogether<E extends keyof ServerToClientEvents>(
    userIds: Iterable<string>,
    event: E,
    ...args: Parameters<ServerToClientEvents[E]>
  ): void;
  /** To every connected device of one user except the socket `exceptSocketId` (the one the change came from). */
  toOtherDevices<E extends keyof ServerToClientEvents>(
    userId: string,
    exceptSocketId: string | undefined,
    event: E,
    ...args: Parameters<ServerToClientEvents[E]>
  ): void;
}

/**
 * Told after commit for each newly stored message (push notifications listen here), and again with `repeated` when a
 * retried send finds it already stored (its first fan-out may never have happened: the pod died after the commit).
 */
export type MessageStoredListener = (
  message: Message,
  members: { userId: string; muted: boolean }[],
  info: { repeated: boolean },
) => void;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/**
 * Ids are UUIDs in storage; anything else names nothing and is `not_found`, never a database error. Only the
 * canonical lower-case form names something: ids are opaque strings, and PostgreSQL would read an upper-case copy as
 * the same uuid while code comparing strings would not (a second direct conversation for one pair, a view not found).
 */
export const isUuid = (value: string): boolean => UUID.test(value);

/**
 * Files of messages (src/attachments), as the send path and the readers need them. Absent, sends with attachmentIds
 * are refused and messages carry `attachments: []`.
 */
export interface MessageAttachments {
  /**
   * Before the write: claims the sender's uploads for this send (sender, clientMsgId) and checks their stored bytes.
   * Throws `bad_request` (unknown, not the sender's, already attached, or bytes that do not match) and claims nothing.
   */
  claimForSend(senderId: string, clientMsgId: string, attachmentIds: string[]): Promise<void>;
  /** After a failed write: gives the claims back so another send may use the uploads. */
  releaseClaim(senderId: string, clientMsgId: string, attachmentIds: string[]): Promise<void>;
  /** Fills `attachments` of these messages, with fresh download URLs (one query for all of them). */
  fill(messages: Message[]): Promise<void>;
  /** Deletes a deleted message's files (bytes and rows); call after the delete committed. Answers how many. */
  deleteOfMessage(messageId: string): Promise<number>;
}
