// Who on this pod watches whom. Every pod hears every presence change (one small message per transition, not per
// watcher) and forwards it to its own watching sockets. No room is involved, so a socket stays joined to nothing
// but its own user room, as the contract promises.
import type { PresenceChange } from "./store.js";

export interface Watcher {
  id: string;
  /** The watching user (a socket's `data`). */
  data: { userId: string };
  emit(event: "presence", change: PresenceChange): unknown;
}

/** Users one socket may watch at a time. */
export const MAX_WATCHED_PER_SOCKET = 1000;

export class PresenceSubscriptions {
  private readonly watchers = new Map<string, Map<string, Watcher>>();
  private readonly watching = new Map<string, Set<string>>();
  /** Watching user -> that user's watching sockets on this pod (to find them when a membership ends). */
  private readonly byUser = new Map<string, Map<string, Watcher>>();

  /** Adds to what the socket watches; returns false (and adds nothing) past MAX_WATCHED_PER_SOCKET. */
  watch(watcher: Watcher, userIds: string[]): boolean {
    const current = this.watching.get(watcher.id) ?? new Set<string>();
    const added = userIds.filter((id) => !current.has(id));
    if (current.size + new Set(added).size > MAX_WATCHED_PER_SOCKET) return false;
    this.watching.set(watcher.id, current);
    let own = this.byUser.get(watcher.data.userId);
    if (own === undefined) this.byUser.set(watcher.data.userId, (own = new Map()));
    own.set(watcher.id, watcher);
    for (const userId of added) {
      current.add(userId);
      let sockets = this.watchers.get(userId);
      if (sockets === undefined) this.watchers.set(userId, (sockets = new Map()));
      sockets.set(watcher.id, watcher);
    }
    return true;
  }

  forget(watcherId: string, watchingUserId?: string): void {
    if (watchingUserId !== undefined) {
      const own = this.byUser.get(watchingUserId);
      own?.delete(watcherId);
      if (own?.size === 0) this.byUser.delete(watchingUserId);
    }
    for (const userId of this.watching.get(watcherId) ?? []) {
      const sockets = this.watchers.get(userId);
      sockets?.delete(watcherId);
      if (sockets?.size === 0) this.watchers.delete(userId);
    }
    this.watching.delete(watcherId);
  }

  /** Drops every watch of `userId` by a socket of `watcherId` on this pod (revocations.ts). O(watchers of userId). */
  unwatch(pairs: { watcherId: string; userId: string }[]): void {
    for (const { watcherId, userId } of pairs) {
      const sockets = this.watchers.get(userId);
      if (sockets === undefined) continue;
      for (const watcher of [...sockets.values()]) {
        if (watcher.data.userId !== watcherId) continue;
        sockets.delete(watcher.id);
        this.watching.get(watcher.id)?.delete(userId);
      }
      if (sockets.size === 0) this.watchers.delete(userId);
    }
  }

  /** Stops the socket watching these users (no longer visible to it); the rest of its watches stay. */
  unwatchSocket(watcherId: string, userIds: Iterable<string>): void {
    const current = this.watching.get(watcherId);
    if (current === undefined) return;
    for (const userId of userIds) {
      if (!current.delete(userId)) continue;
      const sockets = this.watchers.get(userId);
      sockets?.delete(watcherId);
      if (sockets?.size === 0) this.watchers.delete(userId);
    }
  }

  /**
   * Every watch on this pod between `userId` and others, either way: [watcher, watched user] pairs where the watcher
   * is one of userId's sockets, or watches userId. Costs the user's own watches plus its watchers on this pod.
   */
  watchesInvolving(userId: string): { watcher: Watcher; watched: string }[] {
    const pairs: { watcher: Watcher; watched: string }[] = [];
    for (const watcher of this.watchers.get(userId)?.values() ?? []) {
      if (watcher.data.userId !== userId) pairs.push({ watcher, watched: userId });
    }
    for (const watcher of this.byUser.get(userId)?.values() ?? []) {
      for (const watched of this.watching.get(watcher.id) ?? [])
        if (watched !== userId) pairs.push({ watcher, watched });
    }
    return pairs;
  }

  deliver(change: PresenceChange): void {
    for (const watcher of this.watchers.get(change.userId)?.values() ?? []) watcher.emit("presence", change);
  }
}
