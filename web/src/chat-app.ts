// The signed-in page: the conversation list and the open conversation, driven by the SDK's ChatClient. The SDK
// delivers each message once and in order and keeps sends until they are acknowledged; this file only turns its
// events into state and the state into DOM.
import {
  ChatApiError,
  ChatClient,
  ChatHttpApi,
  type Conversation,
  type Cursors,
  type Message,
  type OutboxEntry,
  type OutboxStorage,
} from "@chat-gateway/sdk";
import { ChatState, type DeliveryStatus, type Thread } from "./chat-state.js";
import { boundFetch, h } from "./dom.js";
import { icon, type IconName } from "./icons.js";
import { avatarColor, clockTime, dayKey, dayLabel, initials, listTime, presenceLabel } from "./format.js";
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
  private cursorSeeds: Cursors = {};
  private renderQueued = false;
  private messagesDirty = true;
  private renderedThreadId: string | null = null;
  private stickToBottom = true;
  private readonly drafts = new Map<string, string>();
  private readonly awaitingConversation = new Map<string, Message[]>();
  /** clientMsgIds the gateway acknowledged, in case an ack ever beats the outbox's own promise. */
  private readonly acked = new Set<string>();
  private readonly rowCache = new Map<string, { look: string; el: HTMLElement }>();
  private readonly dialog: NewChatDialog;
  private readonly searchPanel: SearchPanel;
  private readonly requestBanner: RequestBanner;
  private readonly reportDialog: ReportDialog;
  private readonly groupDialog: GroupAdminDialog;
  private readonly blocks: BlockControls;
  private readonly tray: AttachmentTray;
  private closed = false;

  // Elements that live as long as the page.
  private readonly shell = h("div", { class: "shell", attrs: { "data-view": "list" } });
  /** A newer connection of this user displaced this one (`too_many_sockets`): reconnect when the tab is shown. */
  private displaced = false;
  private readonly banner = h("div", {
    class: "banner",
    attrs: { role: "status", id: "connection-banner", hidden: true },
  });
  private readonly list = h("ul", {
    class: "conv-list",
    attrs: { "aria-label": "Conversations", id: "conversations" },
  });
  private readonly paneHead = h("header", { class: "pane-head" });
  private readonly messages = h("div", {
    class: "messages",
    attrs: { id: "messages", role: "log", "aria-live": "polite", "aria-label": "Messages", tabindex: "0" },
  });
  private readonly input = h("textarea", {
    class: "composer-input",
    attrs: { id: "composer-input", rows: "1", placeholder: "Write a message", autocomplete: "off" },
  });
  private readonly composer = h("form", { class: "composer", attrs: { id: "composer" } });
  /** Reply, react, edit, delete (message-actions.ts). */
  private readonly actions: MessageActions;

  private readonly pane = h("main", { class: "pane", attrs: { "aria-label": "Conversation" } });

  constructor(
    private readonly root: HTMLElement,
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
      (text) => {
        if (text !== undefined) this.input.value = text;
        this.resizeInput();
        this.input.focus();
      },
      () => {
        this.messagesDirty = true;
        this.render();
      },
    );
    this.tray = new AttachmentTray(this.client);
    this.dialog = new NewChatDialog(this.client.api, session.user, (conversation) => {
      this.state.upsert(conversation);
      this.watchPresence();
      this.openConversation(conversation.id);
    });
    this.searchPanel = new SearchPanel(this.client.api, {
      describe: (message) => this.describeResult(message),
      open: (id) => void this.openFound(id),
    });
    this.requestBanner = new RequestBanner(this.client, (conversation) => {
      this.state.upsert(conversation);
      this.render();
    });
    this.reportDialog = new ReportDialog(this.client.api);
    this.groupDialog = new GroupAdminDialog(this.client.api, session.user, (id) => this.dropConversation(id));
    this.blocks = new BlockControls(this.client.api, () => {
      this.messagesDirty = true;
      this.render();
    });
    this.buildLayout();
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
      this.messagesDirty = true;
      this.render();
    });
    client.on("synced", ({ conversations }) => {
      for (const conversation of conversations) this.state.upsert(conversation);
      const open = state.open();
      if (open) this.markReadIfVisible(open, true);
      this.watchPresence();
      this.messagesDirty = true;
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
        this.messagesDirty = true;
      }
      this.render();
    });
    client.on("conversationDelivered", (event) => {
      const thread = state.threads.get(event.conversationId);
      if (!thread || event.userId === state.me.id) return;
      thread.noteMarker("delivered", event.userId, event.seq);
      this.messagesDirty = true;
      this.render();
    });
    client.on("conversationReceipts", ({ conversationId, readCounts, deliveredCounts }) => {
      const thread = state.threads.get(conversationId);
      if (!thread) return;
      thread.receipts = { read: readCounts, delivered: deliveredCounts };
      this.messagesDirty = true;
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
      this.messagesDirty = true;
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
    this.messagesDirty = true;
  }

  private send(thread: Thread, content: string, options: { replyToId?: string; attachmentIds?: string[] } = {}): void {
    this.stickToBottom = true;
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
    this.messagesDirty = true;
    this.render();
  }

  openConversation(id: string | null): void {
    if (this.state.openId && this.state.openId !== id) {
      this.drafts.set(this.state.openId, this.input.value);
      this.client.setTyping(this.state.openId, false);
    }
    this.state.openId = id;
    this.messagesDirty = true;
    this.stickToBottom = true;
    const thread = this.state.open();
    this.input.value = id ? (this.drafts.get(id) ?? "") : "";
    this.resizeInput();
    if (thread) {
      this.markReadIfVisible(thread, true);
      if (!thread.historyLoaded) void this.loadHistory(thread);
    }
    this.render();
    if (thread) this.input.focus();
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
    this.messagesDirty = true;
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
    this.messagesDirty = true;
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
    this.messagesDirty = true;
    this.render();
  }

  private async signOut(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
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

  // ---- DOM ----

  private buildLayout(): void {
    const me = this.state.me;
    const newChat = h(
      "button",
      {
        class: "icon-btn",
        attrs: { type: "button", id: "new-chat", "aria-label": "New conversation", title: "New conversation" },
        on: { click: () => this.dialog.open() },
      },
      icon("plus"),
    );
    const signOut = h(
      "button",
      { class: "btn btn-ghost", attrs: { type: "button", id: "sign-out" }, on: { click: () => void this.signOut() } },
      "Sign out",
    );
    const sidebar = h(
      "aside",
      { class: "sidebar", attrs: { "aria-label": "Chats" } },
      h(
        "header",
        { class: "sidebar-head" },
        avatar(me.displayName, me.id, "sm"),
        h(
          "div",
          { class: "me" },
          h("span", { class: "me-name", attrs: { id: "me-name" } }, me.displayName),
          h("span", { class: "me-handle" }, `@${me.username}`),
        ),
        newChat,
        signOut,
      ),
      this.searchPanel.element,
      h("h2", { class: "sidebar-title" }, "Chats"),
      this.list,
      h("footer", { class: "sidebar-foot" }, this.blocks.openButton),
    );

    this.input.setAttribute("aria-label", "Message");
    this.input.addEventListener("keydown", (event) => {
      // Enter sends, Shift+Enter is a new line; never in the middle of an IME composition.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.composer.requestSubmit();
      }
    });
    this.input.addEventListener("input", () => {
      this.resizeInput();
      const open = this.state.openId;
      if (open) this.client.setTyping(open, this.input.value.length > 0);
    });
    this.input.addEventListener("blur", () => {
      const open = this.state.openId;
      if (open) this.client.setTyping(open, false);
    });
    this.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      const thread = this.state.open();
      const content = this.input.value;
      if (!thread || (content.trim().length === 0 && !this.tray.hasFiles())) return;
      // Sent once every chosen file is uploaded (the tray shows their progress).
      const attachmentIds = this.tray.take();
      if (attachmentIds === undefined) return;
      this.input.value = "";
      this.resizeInput();
      this.drafts.delete(thread.id);
      const how = this.actions.submit(thread, content);
      if (how !== "handled") this.send(thread, content, { ...how, attachmentIds });
    });
    const label = h("label", { class: "sr-only", attrs: { for: "composer-input" } }, "Message");
    const sendButton = h(
      "button",
      { class: "send-btn", attrs: { type: "submit", id: "send", "aria-label": "Send" } },
      icon("send"),
    );
    this.composer.append(label, this.tray.button, this.input, sendButton);
    this.tray.bind(this.pane, this.input);

    this.messages.addEventListener("scroll", () => {
      const el = this.messages;
      this.stickToBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
      const thread = this.state.open();
      if (thread && el.scrollTop < 150) void this.loadOlder(thread);
    });

    this.pane.append(
      this.paneHead,
      this.requestBanner.element,
      this.messages,
      this.actions.banner,
      this.tray.element,
      this.composer,
    );
    this.shell.append(sidebar, this.pane);
    this.root.replaceChildren(
      this.banner,
      this.shell,
      this.dialog.element,
      this.reportDialog.element,
      this.groupDialog.element,
      this.blocks.dialog,
    );
  }

  /** Grows the composer with its text up to a limit; empty, it falls back to the stylesheet's one line. */
  private resizeInput(): void {
    this.input.style.height = "";
    if (this.input.value === "" || this.composer.hidden) return;
    this.input.style.height = `${Math.min(this.input.scrollHeight + 2, 160)}px`;
  }

  /** Batches the changes of one tick into one DOM update. */
  private render(): void {
    if (this.renderQueued || this.closed) return;
    this.renderQueued = true;
    setTimeout(() => {
      this.renderQueued = false;
      if (this.closed) return;
      this.renderBanner();
      this.renderList();
      this.renderPane();
    }, 0);
  }

  private renderBanner(): void {
    const offline = !navigator.onLine;
    const reconnecting = this.state.connection === "reconnecting";
    this.banner.hidden = !offline && !reconnecting && !this.displaced;
    this.banner.textContent = offline
      ? "You're offline. Messages will be sent when the connection is back."
      : this.displaced
        ? "Paused: chat is open in too many places. Come back to this tab to continue here."
        : "Connection lost. Reconnecting…";
  }

  private renderList(): void {
    const { state } = this;
    const threads = state.sortedThreads();
    if (threads.length === 0) {
      this.list.replaceChildren(
        h(
          "li",
          { class: "empty-list" },
          h("p", null, "No conversations yet."),
          h(
            "button",
            { class: "btn btn-primary", attrs: { type: "button" }, on: { click: () => this.dialog.open() } },
            "Start a conversation",
          ),
        ),
      );
      return;
    }
    this.list.replaceChildren(...threads.map((thread) => this.listItem(thread)));
  }

  private listItem(thread: Thread): HTMLLIElement {
    const { state } = this;
    const conversation = thread.conversation;
    const title = state.titleOf(conversation);
    const peer = state.peerOf(conversation);
    const presence = peer ? state.presence.get(peer.id) : undefined;
    const last = conversation.lastMessage;
    const typers = activeTypers(thread);
    let preview: string;
    if (typers.length > 0)
      preview = typers.length === 1 && peer ? "typing…" : `${state.nameOf(conversation, typers[0] ?? "")} is typing…`;
    else if (!last) preview = conversation.type === "group" ? "Group created" : "No messages yet";
    else {
      const who =
        last.senderId === state.me.id
          ? "You: "
          : conversation.type === "group"
            ? `${state.nameOf(conversation, last.senderId).split(" ")[0] ?? ""}: `
            : "";
      preview = who + last.content.replace(/\s+/g, " ");
    }
    const unread = conversation.unreadCount;
    const isOpen = thread.id === state.openId;
    const button = h(
      "button",
      {
        class: "conv-item",
        attrs: {
          type: "button",
          "data-conversation-id": thread.id,
          "aria-current": isOpen ? "true" : undefined,
          "aria-label": `${title}${unread > 0 ? `, ${unread} unread` : ""}`,
        },
        on: { click: () => this.openConversation(thread.id) },
      },
      avatar(title, peer?.id ?? thread.id, "md", presence?.online),
      h(
        "span",
        { class: "conv-main" },
        h(
          "span",
          { class: "conv-top" },
          h("span", { class: "conv-title" }, title),
          h("span", { class: "conv-time" }, listTime(last?.createdAt ?? conversation.createdAt)),
        ),
        h(
          "span",
          { class: "conv-bottom" },
          h("span", { class: typers.length > 0 ? "conv-preview typing" : "conv-preview" }, preview),
          unread > 0 && h("span", { class: "badge", attrs: { "data-testid": "unread" } }, unread > 99 ? "99+" : unread),
        ),
      ),
    );
    return h("li", null, button);
  }

  private renderPane(): void {
    const thread = this.state.open();
    this.shell.dataset.view = thread ? "pane" : "list";
    this.composer.hidden = !thread;
    if (!thread) {
      this.paneHead.replaceChildren();
      this.requestBanner.show(null, this.state.me.id);
      this.messages.replaceChildren(
        h(
          "div",
          { class: "pane-empty" },
          h("span", { class: "pane-empty-mark" }, icon("chat")),
          h("p", null, "Pick a conversation, or start a new one."),
        ),
      );
      this.renderedThreadId = null;
      return;
    }
    this.renderPaneHead(thread);
    if (!this.messagesDirty && this.renderedThreadId === thread.id) return;
    this.messagesDirty = false;
    const el = this.messages;
    const switched = this.renderedThreadId !== thread.id;
    const oldHeight = el.scrollHeight;
    const oldTop = el.scrollTop;
    const oldFirst = el.querySelector<HTMLElement>(".msg")?.dataset.key;
    if (switched) {
      this.rowCache.clear();
      el.replaceChildren();
    }
    syncChildren(el, this.messageRows(thread));
    this.renderedThreadId = thread.id;
    const newFirst = el.querySelector<HTMLElement>(".msg")?.dataset.key;
    if (switched || this.stickToBottom) el.scrollTop = el.scrollHeight;
    // Older messages came in above: keep what the reader was looking at in place.
    else if (oldFirst !== newFirst) el.scrollTop = oldTop + (el.scrollHeight - oldHeight);
    else el.scrollTop = oldTop;
    // A short first page does not fill the pane, so no scroll would ever ask for more: ask now.
    if (thread.historyLoaded && thread.hasOlder && el.scrollHeight <= el.clientHeight) void this.loadOlder(thread);
  }

  private renderPaneHead(thread: Thread): void {
    const { state } = this;
    const conversation = thread.conversation;
    const title = state.titleOf(conversation);
    const peer = state.peerOf(conversation);
    const presence = peer ? state.presence.get(peer.id) : undefined;
    const typers = activeTypers(thread);
    let subtitle: string;
    if (typers.length > 0) {
      subtitle = peer ? "typing…" : `${typers.map((id) => state.nameOf(conversation, id)).join(", ")} typing…`;
    } else if (peer) subtitle = presenceLabel(presence) || `@${peer.username}`;
    else subtitle = `${conversation.members.length} members`;
    const back = h(
      "button",
      {
        class: "icon-btn back-btn",
        attrs: { type: "button", "aria-label": "Back to conversations" },
        on: { click: () => this.openConversation(null) },
      },
      icon("back"),
    );
    this.requestBanner.show(conversation, state.me.id);
    this.paneHead.replaceChildren(
      back,
      avatar(title, peer?.id ?? thread.id, "md", presence?.online),
      h(
        "div",
        { class: "pane-title" },
        h("h2", { attrs: { id: "pane-title" } }, title),
        h(
          "p",
          {
            class:
              typers.length > 0 ? "pane-subtitle typing" : presence?.online ? "pane-subtitle online" : "pane-subtitle",
            attrs: { id: "pane-subtitle" },
          },
          subtitle,
        ),
      ),
      this.paneAction(conversation, peer),
      ...(peer ? [this.blocks.headerButton(peer)] : []),
    );
  }

  /** Group: its members (and, for admins, managing them); direct: report the other person. */
  private paneAction(conversation: Conversation, peer: { id: string; displayName: string } | undefined): HTMLElement {
    const group = conversation.type === "group";
    return h(
      "button",
      {
        class: "btn btn-ghost pane-action",
        attrs: { type: "button", id: group ? "group-members-btn" : "report-user-btn" },
        on: {
          click: () =>
            group
              ? this.groupDialog.open(conversation)
              : peer && this.reportDialog.open({ userId: peer.id }, peer.displayName),
        },
      },
      group ? "Members" : "Report",
    );
  }

  private dropConversation(conversationId: string): void {
    this.groupDialog.close();
    this.state.threads.delete(conversationId);
    if (this.state.open()?.id === conversationId) this.openConversation(null);
    this.render();
  }

  /**
   * The pane's rows, keyed: a row whose key and look did not change keeps its element, so an arriving message is one
   * inserted node (screen readers announce just it, selections and focus survive) rather than a rebuilt list.
   */
  private messageRows(thread: Thread): HTMLElement[] {
    const { state } = this;
    const me = state.me.id;
    const conversation = thread.conversation;
    const rows: HTMLElement[] = [];
    const row = (key: string, look: string, build: () => HTMLElement) => {
      const cached = this.rowCache.get(key);
      if (cached && cached.look === look) return void rows.push(cached.el);
      const el = build();
      this.rowCache.set(key, { look, el });
      rows.push(el);
    };
    if (thread.loadingOlder) {
      row("note:loading", "", () => h("div", { class: "history-note", attrs: { role: "status" } }, "Loading…"));
    } else if (thread.historyLoaded && !thread.hasOlder) {
      row("note:start", "", () => h("div", { class: "history-note" }, "This is the beginning of the conversation."));
    }
    let lastDay = "";
    let lastSender = "";
    for (const bubble of thread.bubbles()) {
      const mine = bubble.seq === null || bubble.senderId === me;
      const senderId = mine ? me : bubble.senderId;
      const day = dayKey(bubble.createdAt);
      if (day !== lastDay) {
        row(`day:${day}`, "", () => h("div", { class: "day" }, h("span", null, dayLabel(bubble.createdAt))));
        lastDay = day;
        lastSender = "";
      }
      const first = senderId !== lastSender;
      lastSender = senderId;
      const status = mine ? thread.statusOf(bubble, me) : null;
      const failure = thread.pending.get(bubble.clientMsgId)?.failed ?? "Not sent";
      const stored = thread.stored.get(bubble.key);
      const changes = stored ? this.actions.look(stored) : "";
      if (!mine && conversation.type === "group" && this.blocks.hides(senderId, bubble.key)) {
        row(bubble.key, "blocked", () => this.blocks.placeholder(bubble.key));
        continue;
      }
      const blocked = this.blocks.isBlocked(senderId);
      row(bubble.key, `${status}|${first}|${failure}|${changes}|${blocked}`, () => {
        const meta = h("span", { class: "msg-meta" }, clockTime(bubble.createdAt));
        if (status) meta.append(statusMark(status));
        const el = h(
          "div",
          {
            class: `msg ${mine ? "mine" : "theirs"}${first ? " first" : ""}`,
            attrs: {
              "data-key": bubble.key,
              "data-client-msg-id": bubble.clientMsgId,
              "data-seq": bubble.seq === null ? undefined : String(bubble.seq),
              "data-status": status ?? undefined,
            },
          },
          !mine &&
            first &&
            conversation.type === "group" &&
            h("span", { class: "msg-author" }, state.nameOf(conversation, senderId)),
          h(
            "div",
            { class: "msg-bubble" },
            stored && this.actions.quote(thread, stored),
            stored?.deletedAt ? null : attachmentList(this.client, bubble.attachments),
            stored?.deletedAt || bubble.content.length === 0 ? null : h("p", { class: "msg-text" }, bubble.content),
            stored && this.actions.mark(stored),
            meta,
          ),
          stored && this.actions.footer(thread, stored),
        );
        if (!mine && bubble.seq !== null) {
          const author = state.nameOf(conversation, senderId);
          el.append(
            h(
              "div",
              { class: "msg-tools" },
              h(
                "button",
                {
                  class: "report-btn",
                  attrs: { type: "button", "aria-label": `Report message from ${author}` },
                  on: { click: () => this.reportDialog.open({ messageId: bubble.key }, `message from ${author}`) },
                },
                "Report",
              ),
              this.blocks.messageButton({ id: senderId, displayName: author }),
            ),
          );
        }
        if (status === "failed") {
          el.append(
            h(
              "button",
              {
                class: "retry-btn",
                attrs: { type: "button" },
                on: { click: () => this.retry(thread, bubble.clientMsgId) },
              },
              `${failure} · Retry`,
            ),
          );
        }
        return el;
      });
    }
    if (thread.historyLoaded && thread.stored.size === 0 && thread.pending.size === 0) {
      row("note:empty", "", () => h("div", { class: "history-note" }, "No messages yet. Say hello!"));
    }
    const shown = new Set(rows);
    for (const [key, cached] of this.rowCache) if (!shown.has(cached.el)) this.rowCache.delete(key);
    return rows;
  }
}

/** Makes `parent`'s children exactly `wanted`, moving or inserting only what differs. */
function syncChildren(parent: HTMLElement, wanted: HTMLElement[]): void {
  const keep = new Set<Node>(wanted);
  for (const child of [...parent.children]) if (!keep.has(child)) child.remove();
  wanted.forEach((el, i) => {
    const at = parent.children[i];
    if (at !== el) parent.insertBefore(el, at ?? null);
  });
}

function activeTypers(thread: Thread): string[] {
  const now = Date.now();
  return [...thread.typing.entries()].filter(([, until]) => until > now).map(([id]) => id);
}

function avatar(name: string, seed: string, size: "sm" | "md", online?: boolean): HTMLElement {
  const el = h("span", { class: `avatar avatar-${size}`, attrs: { "aria-hidden": "true" } }, initials(name) || "?");
  el.style.backgroundColor = avatarColor(seed);
  if (online !== undefined) el.append(h("span", { class: online ? "presence online" : "presence" }));
  return el;
}

const STATUS_MARK: Record<DeliveryStatus, [IconName, string]> = {
  pending: ["clock", "Sending"],
  failed: ["alert", "Not sent"],
  sent: ["check", "Sent"],
  delivered: ["checks", "Delivered"],
  read: ["checks", "Read"],
};

function statusMark(status: DeliveryStatus): HTMLElement {
  const [name, label] = STATUS_MARK[status];
  return h(
    "span",
    { class: `status status-${status}`, attrs: { title: label, role: "img", "aria-label": label } },
    icon(name),
  );
}
