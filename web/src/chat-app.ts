// The signed-in page's controller: the conversation list and the open conversation, driven by the SDK's ChatClient.
// The SDK delivers each message once and in order and keeps sends until they are acknowledged; this file turns its
// events into state (chat-state.ts) and the user's actions into SDK calls. The DOM is chat-view.ts.
import {
  ChatApiError,
  ChatClient,
  ChatHttpApi,
  type Cursors,
  type Message,
  type OutboxEntry,
  type OutboxStorage,
} from "@chat-gateway/sdk";
import { ChatState, type Thread } from "./chat-state.js";
import { ChatView } from "./chat-view.js";
import { boundFetch } from "./dom.js";
import { GroupAdminDialog } from "./group-admin.js";
import { MessageActions } from "./message-actions.js";
import { NewChatDialog } from "./new-chat-dialog.js";
import { ReportDialog } from "./report-dialog.js";
import { BlockControls } from "./block-controls.js";
import { RequestBanner } from "./request-banner.js";
import { SearchPanel } from "./search-panel.js";
import { AttachmentTray, attachmentList } from "./attachments-ui.js";
import { clearSession, storedTokenProvider, type StoredSession } from "./session.js";

/** Unread messages a fresh page replays through `sync` (so this device reports them delivered); older ones it skips. */
const REPLAY_UNREAD = 100;
const TYPING_SHOWN_MS = 6_000;
const HISTORY_PAGE = 50;

/** Unsent messages survive a reload of this tab (sessionStorage is per tab, so two tabs never send each other's). */
class SessionOutboxStorage implements OutboxStorage {
  constructor(private readonly key: string) {}
  async load(): Promise<OutboxEntry[]> {
    try {
      return JSON.parse(sessionStorage.getItem(this.key) ?? "[]") as OutboxEntry[];
    } catch {
      return [];
    }
  }
  async save(entries: OutboxEntry[]): Promise<void> {
    sessionStorage.setItem(this.key, JSON.stringify(entries));
  }
}

export class ChatApp {
  private readonly state: ChatState;
  private readonly client: ChatClient;
  private readonly outboxStorage: SessionOutboxStorage;
  private readonly view: ChatView;
  private cursorSeeds: Cursors = {};
  private readonly awaitingConversation = new Map<string, Message[]>();
  /** clientMsgIds the gateway acknowledged, in case an ack ever beats the outbox's own promise. */
  private readonly acked = new Set<string>();
  private readonly dialog: NewChatDialog;
  private readonly groupDialog: GroupAdminDialog;
  private readonly blocks: BlockControls;
  /** Reply, react, edit, delete (message-actions.ts). */
  private readonly actions: MessageActions;
  private closed = false;
  /** A newer connection of this user displaced this one (`too_many_sockets`): reconnect when the tab is shown. */
  private displaced = false;

  constructor(
    root: HTMLElement,
    private readonly session: StoredSession,
    private readonly onSignedOut: () => void,
  ) {
    this.state = new ChatState(session.user);
    const origin = window.location.origin;
    this.outboxStorage = new SessionOutboxStorage(`chat-gateway.outbox.${session.user.id}`);
    this.client = new ChatClient({
      url: origin,
      auth: storedTokenProvider(new ChatHttpApi({ baseUrl: origin, fetch: boundFetch }), session.user),
      outboxStorage: this.outboxStorage,
      cursorStorage: { load: async () => this.cursorSeeds, save: async () => undefined },
      reconnectionDelayMax: 5_000,
      fetch: boundFetch,
    });
    this.actions = new MessageActions(
      this.client,
      () => this.state.me.id,
      (thread, userId) => this.state.nameOf(thread.conversation, userId),
      (text) => this.view.focusComposer(text),
      () => {
        this.view.invalidateMessages();
        this.render();
      },
    );
    this.dialog = new NewChatDialog(this.client.api, session.user, (conversation) => {
      this.state.upsert(conversation);
      this.watchPresence();
      this.openConversation(conversation.id);
    });
    const searchPanel = new SearchPanel(this.client.api, {
      describe: (message) => this.describeResult(message),
      open: (id) => void this.openFound(id),
    });
    const requestBanner = new RequestBanner(this.client, (conversation) => {
      this.state.upsert(conversation);
      this.render();
    });
    this.groupDialog = new GroupAdminDialog(this.client.api, session.user, (id) => this.dropConversation(id));
    this.blocks = new BlockControls(this.client.api, () => {
      this.view.invalidateMessages();
      this.render();
    });
    this.view = new ChatView(
      root,
      this.state,
      {
        dialog: this.dialog,
        searchPanel,
        requestBanner,
        reportDialog: new ReportDialog(this.client.api),
        groupDialog: this.groupDialog,
        blocks: this.blocks,
        tray: new AttachmentTray(this.client),
        actions: this.actions,
        attachmentList: (attachments) => attachmentList(this.client, attachments),
      },
      {
        openConversation: (id) => this.openConversation(id),
        signOut: () => void this.signOut(),
        submit: (thread, content, attachmentIds) => {
          const how = this.actions.submit(thread, content);
          if (how !== "handled") this.send(thread, content, { ...how, attachmentIds });
        },
        retry: (thread, clientMsgId) => this.retry(thread, clientMsgId),
        loadOlder: (thread) => void this.loadOlder(thread),
        setTyping: (conversationId, isTyping) => this.client.setTyping(conversationId, isTyping),
      },
      () => this.displaced,
    );
    this.listen();
  }

  async start(): Promise<void> {
    this.render();
    try {
      await this.loadConversations();
    } catch (err) {
      if (err instanceof ChatApiError && err.code === "unauthorized") return this.signOut();
      // Offline at start: the first sync fills the list once the gateway answers.
    }
    void this.blocks.load().catch(() => undefined);
    for (const entry of await this.outboxStorage.load()) this.addPending(entry);
    this.watchPresence();
    this.render();
    void this.client.connect().catch(() => undefined);
  }

  private async loadConversations(): Promise<void> {
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const answer = await this.client.api.listConversations({ limit: 100, cursor });
      for (const conversation of answer.conversations) {
        this.state.upsert(conversation);
        // History comes over HTTP when a conversation opens; sync only needs what this page has not seen.
        const replay = Math.min(conversation.unreadCount, REPLAY_UNREAD);
        this.cursorSeeds[conversation.id] = Math.max(0, conversation.lastSeq - replay);
      }
      if (!answer.nextCursor) return;
      cursor = answer.nextCursor;
    }
  }

  private listen(): void {
    const { client, state } = this;
    client.on("state", ({ state: next }) => {
      state.connection = next;
      this.render();
    });
    client.on("message", (message) => this.receive(message));
    client.on("messageUpdated", (message) =>
      this.actions.applyUpdate(state.threads.get(message.conversationId), message),
    );
    client.on("sent", ({ entry }) => {
      this.acked.add(entry.clientMsgId);
      this.state.threads.get(entry.conversationId)?.pending.delete(entry.clientMsgId);
    });
    client.on("sendFailed", ({ entry, error }) => {
      const thread = state.threads.get(entry.conversationId);
      const pending = thread?.pending.get(entry.clientMsgId);
      if (pending) pending.failed = error.code === "payload_too_large" ? "Too long" : "Not sent";
      this.view.invalidateMessages();
      this.render();
    });
    client.on("synced", ({ conversations }) => {
      for (const conversation of conversations) this.state.upsert(conversation);
      const open = state.open();
      if (open) this.markReadIfVisible(open, true);
      this.watchPresence();
      this.view.invalidateMessages();
      this.render();
    });
    client.on("conversationUpdated", (conversation) => {
      // Left or removed: the conversation is gone from this user's list (the gateway sends them no more of it).
      if (!conversation.members.some((m) => m.id === state.me.id)) return this.dropConversation(conversation.id);
      this.groupDialog.update(conversation);
      state.upsert(conversation);
      this.watchPresence();
      this.render();
    });
    client.on("conversationRead", (event) => {
      const thread = state.threads.get(event.conversationId);
      if (!thread) return;
      if (event.userId === state.me.id) {
        // This device reported it already (larger conversations echo every reader in `conversation:markers`).
        if (event.seq <= thread.readReported) return;
        // Another device of mine read it: clear the badge here too.
        thread.readReported = Math.max(thread.readReported, event.seq);
        if (event.seq >= thread.conversation.lastSeq) thread.conversation.unreadCount = 0;
        else void this.refreshConversation(thread.id);
      } else {
        thread.noteMarker("read", event.userId, event.seq);
        this.view.invalidateMessages();
      }
      this.render();
    });
    client.on("conversationDelivered", (event) => {
      const thread = state.threads.get(event.conversationId);
      if (!thread || event.userId === state.me.id) return;
      thread.noteMarker("delivered", event.userId, event.seq);
      this.view.invalidateMessages();
      this.render();
    });
    client.on("conversationReceipts", ({ conversationId, readCounts, deliveredCounts }) => {
      const thread = state.threads.get(conversationId);
      if (!thread) return;
      thread.receipts = { read: readCounts, delivered: deliveredCounts };
      this.view.invalidateMessages();
      this.render();
    });
    client.on("typing", (event) => {
      const thread = state.threads.get(event.conversationId);
      if (!thread || event.userId === state.me.id) return;
      if (event.isTyping) {
        thread.typing.set(event.userId, Date.now() + TYPING_SHOWN_MS);
        setTimeout(() => this.render(), TYPING_SHOWN_MS + 50);
      } else thread.typing.delete(event.userId);
      this.render();
    });
    client.on("presence", ({ userId, online, lastSeenAt }) => {
      state.presence.set(userId, { online, lastSeenAt });
      this.render();
    });
    client.on("signedOut", () => this.signOut());
    // Too many tabs and devices: a newer one took this connection's place. Paused until the user comes back here.
    client.on("displaced", () => {
      this.displaced = true;
      this.render();
    });
    client.on("error", ({ operation, error }) => console.warn(`chat: ${operation} failed`, error));

    document.addEventListener("visibilitychange", () => {
      if (this.displaced && document.visibilityState === "visible") {
        this.displaced = false;
        client.reconnect();
      }
      const open = state.open();
      if (open) this.markReadIfVisible(open);
      this.render();
    });
    window.addEventListener("online", () => this.render());
    window.addEventListener("offline", () => this.render());
  }

  private receive(message: Message): void {
    const thread = this.state.threads.get(message.conversationId);
    if (!thread) {
      // A conversation this page has not heard of yet: fetch it once, and hold its messages until it is here.
      const waiting = this.awaitingConversation.get(message.conversationId);
      if (waiting) return void waiting.push(message);
      this.awaitingConversation.set(message.conversationId, [message]);
      void this.refreshConversation(message.conversationId).then(() => {
        const held = this.awaitingConversation.get(message.conversationId) ?? [];
        this.awaitingConversation.delete(message.conversationId);
        if (this.state.threads.has(message.conversationId)) for (const m of held) this.receive(m);
      });
      return;
    }
    thread.addStored(message, this.state.me.id);
    const conversation = thread.conversation;
    if (message.seq > conversation.lastSeq) {
      conversation.lastSeq = message.seq;
      conversation.lastMessage = message;
      // Sending moves the sender's own read marker, so an own message (from any device) means nothing is unread.
      if (message.senderId === this.state.me.id) conversation.unreadCount = 0;
      else conversation.unreadCount += 1;
    }
    if (thread.id === this.state.openId) {
      this.markReadIfVisible(thread);
      this.view.invalidateMessages();
    }
    this.render();
  }

  private describeResult(message: Message): { title: string; sender: string } {
    const conversation = this.state.threads.get(message.conversationId)?.conversation;
    if (!conversation) return { title: "Conversation", sender: "" };
    // As in the list's previews: "You", the sender in a group, no name where the title already is the sender.
    const mine = message.senderId === this.state.me.id;
    const sender = mine || conversation.type === "group" ? this.state.nameOf(conversation, message.senderId) : "";
    return { title: this.state.titleOf(conversation), sender };
  }

  /** A search result's conversation, fetched first when this page has not listed it. */
  private async openFound(id: string): Promise<void> {
    if (!this.state.threads.has(id)) await this.refreshConversation(id);
    if (this.state.threads.has(id)) this.openConversation(id);
  }

  private async refreshConversation(id: string): Promise<void> {
    try {
      this.state.upsert(await this.client.api.getConversation(id));
      this.watchPresence();
      this.render();
    } catch {
      // Not a member any more, or offline: the next sync brings the truth.
    }
  }

  /** Reports the open conversation read while the page is actually in front of someone. */
  private markReadIfVisible(thread: Thread, force = false): void {
    if (thread.id !== this.state.openId || document.visibilityState !== "visible") return;
    const seq = thread.conversation.lastSeq;
    thread.conversation.unreadCount = 0;
    if (seq > 0 && (force || seq > thread.readReported)) {
      thread.readReported = Math.max(thread.readReported, seq);
      this.client.markRead(thread.id, seq);
    }
  }

  private watchPresence(): void {
    const peers = new Set<string>();
    for (const thread of this.state.threads.values()) {
      const peer = this.state.peerOf(thread.conversation);
      if (peer && peer.id !== this.state.me.id) peers.add(peer.id);
    }
    this.client.subscribePresence([...peers]);
  }

  private addPending(entry: OutboxEntry): void {
    const thread = this.state.threads.get(entry.conversationId);
    if (!thread) return;
    if (!this.acked.has(entry.clientMsgId)) thread.pending.set(entry.clientMsgId, { ...entry });
    this.view.invalidateMessages();
  }

  private send(thread: Thread, content: string, options: { replyToId?: string; attachmentIds?: string[] } = {}): void {
    this.view.followNewest();
    this.client.setTyping(thread.id, false);
    this.client.send(thread.id, content, options).then(
      (entry) => {
        this.addPending(entry);
        this.render();
      },
      (err: unknown) => console.warn("chat: could not queue the message", err),
    );
  }

  private retry(thread: Thread, clientMsgId: string): void {
    const pending = thread.pending.get(clientMsgId);
    if (!pending) return;
    thread.pending.delete(clientMsgId);
    this.send(thread, pending.content, { replyToId: pending.replyToId, attachmentIds: pending.attachmentIds });
    this.view.invalidateMessages();
    this.render();
  }

  openConversation(id: string | null): void {
    const previous = this.state.openId;
    if (previous && previous !== id) this.client.setTyping(previous, false);
    this.view.switchConversation(previous, id);
    this.state.openId = id;
    const thread = this.state.open();
    if (thread) {
      this.markReadIfVisible(thread, true);
      if (!thread.historyLoaded) void this.loadHistory(thread);
    }
    this.render();
    if (thread) this.view.focusComposer();
  }

  private async loadHistory(thread: Thread): Promise<void> {
    if (thread.loadingOlder) return;
    thread.loadingOlder = true;
    thread.historyRequested = true;
    try {
      const page = await this.client.api.getMessages(thread.id, { limit: HISTORY_PAGE });
      for (const message of page.messages) thread.addStored(message, this.state.me.id);
      thread.historyLoaded = true;
      thread.hasOlder = page.hasMore;
    } catch (err) {
      console.warn("chat: could not load history", err);
      // Forget what came live meanwhile: the next try loads the newest page again, with no hole below it.
      thread.historyRequested = false;
      thread.stored.clear();
    } finally {
      thread.loadingOlder = false;
    }
    this.view.invalidateMessages();
    this.render();
  }

  private async loadOlder(thread: Thread): Promise<void> {
    const before = thread.oldestSeq();
    if (thread.loadingOlder || !thread.hasOlder || !thread.historyLoaded || before === null) return;
    if (before <= 1) {
      thread.hasOlder = false;
      return;
    }
    thread.loadingOlder = true;
    this.view.invalidateMessages();
    this.render();
    try {
      const page = await this.client.api.getMessages(thread.id, { before, limit: HISTORY_PAGE });
      for (const message of page.messages) thread.addStored(message, this.state.me.id);
      thread.hasOlder = page.hasMore;
    } catch (err) {
      console.warn("chat: could not load older messages", err);
    } finally {
      thread.loadingOlder = false;
    }
    this.view.invalidateMessages();
    this.render();
  }

  private async signOut(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.view.close();
    const refreshToken = this.session.refreshToken;
    clearSession();
    this.dialog.close();
    await this.client.close().catch(() => undefined);
    // Ends this login on the server too; the page is signed out whatever the answer.
    await new ChatHttpApi({ baseUrl: window.location.origin, fetch: boundFetch })
      .logout(refreshToken)
      .catch(() => undefined);
    this.onSignedOut();
  }

  private dropConversation(conversationId: string): void {
    this.groupDialog.close();
    this.state.threads.delete(conversationId);
    if (this.state.open()?.id === conversationId) this.openConversation(null);
    this.render();
  }

  private render(): void {
    this.view.render();
  }
}
