// The signed-in page's DOM: the layout, the conversation list, the open conversation's header and rows. It reads
// ChatState and never calls the SDK; what the user does goes back to the controller (chat-app.ts) through
// ChatViewActions, and the controller asks for a repaint with `render()`.
import type { Attachment, Conversation } from "@chat-gateway/sdk";
import type { ChatState, DeliveryStatus, Thread } from "./chat-state.js";
import { h } from "./dom.js";
import { icon, type IconName } from "./icons.js";
import { avatarColor, clockTime, dayKey, dayLabel, initials, listTime, presenceLabel } from "./format.js";
import type { GroupAdminDialog } from "./group-admin.js";
import type { MessageActions } from "./message-actions.js";
import type { NewChatDialog } from "./new-chat-dialog.js";
import type { ReportDialog } from "./report-dialog.js";
import type { BlockControls } from "./block-controls.js";
import type { RequestBanner } from "./request-banner.js";
import type { SearchPanel } from "./search-panel.js";
import type { AttachmentTray } from "./attachments-ui.js";

/** What the user asks of the controller from the page. */
export interface ChatViewActions {
  openConversation(id: string | null): void;
  signOut(): void;
  /** The composer was submitted with this text and these uploaded files (already taken from the tray). */
  submit(thread: Thread, content: string, attachmentIds: string[]): void;
  retry(thread: Thread, clientMsgId: string): void;
  loadOlder(thread: Thread): void;
  setTyping(conversationId: string, isTyping: boolean): void;
}

/** The page's parts that own their own DOM (dialogs, banners, the attachment tray); the controller builds them. */
export interface ChatWidgets {
  dialog: NewChatDialog;
  searchPanel: SearchPanel;
  requestBanner: RequestBanner;
  reportDialog: ReportDialog;
  groupDialog: GroupAdminDialog;
  blocks: BlockControls;
  tray: AttachmentTray;
  actions: MessageActions;
  /** A stored message's files (their links need the SDK's authorised fetch). */
  attachmentList(attachments: Attachment[]): HTMLElement | null;
}

export class ChatView {
  private renderQueued = false;
  private messagesDirty = true;
  private renderedThreadId: string | null = null;
  private stickToBottom = true;
  private closed = false;
  private readonly drafts = new Map<string, string>();
  private readonly rowCache = new Map<string, { look: string; el: HTMLElement }>();

  // Elements that live as long as the page.
  private readonly shell = h("div", { class: "shell", attrs: { "data-view": "list" } });
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
  private readonly pane = h("main", { class: "pane", attrs: { "aria-label": "Conversation" } });

  constructor(
    private readonly root: HTMLElement,
    private readonly state: ChatState,
    private readonly widgets: ChatWidgets,
    private readonly act: ChatViewActions,
    /** A newer connection of this user displaced this one (`too_many_sockets`): the banner says so. */
    private readonly displaced: () => boolean,
  ) {
    this.buildLayout();
  }

  /** The message rows changed: the next render rebuilds what differs. */
  invalidateMessages(): void {
    this.messagesDirty = true;
  }

  /** The next render scrolls to the newest message (the user sent one, or opened a conversation). */
  followNewest(): void {
    this.stickToBottom = true;
  }

  /** Keeps the composer's draft of the conversation being left and shows the one being opened. */
  switchConversation(from: string | null, to: string | null): void {
    if (from && from !== to) this.drafts.set(from, this.input.value);
    this.messagesDirty = true;
    this.stickToBottom = true;
    this.input.value = to ? (this.drafts.get(to) ?? "") : "";
    this.resizeInput();
  }

  /** Puts text in the composer (an edit) or leaves it (a reply), and focuses it. */
  focusComposer(text?: string): void {
    if (text !== undefined) this.input.value = text;
    this.resizeInput();
    this.input.focus();
  }

  /** Signed out: no more repaints. */
  close(): void {
    this.closed = true;
  }

  private buildLayout(): void {
    const me = this.state.me;
    const newChat = h(
      "button",
      {
        class: "icon-btn",
        attrs: { type: "button", id: "new-chat", "aria-label": "New conversation", title: "New conversation" },
        on: { click: () => this.widgets.dialog.open() },
      },
      icon("plus"),
    );
    const signOut = h(
      "button",
      { class: "btn btn-ghost", attrs: { type: "button", id: "sign-out" }, on: { click: () => this.act.signOut() } },
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
      this.widgets.searchPanel.element,
      h("h2", { class: "sidebar-title" }, "Chats"),
      this.list,
      h("footer", { class: "sidebar-foot" }, this.widgets.blocks.openButton),
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
      if (open) this.act.setTyping(open, this.input.value.length > 0);
    });
    this.input.addEventListener("blur", () => {
      const open = this.state.openId;
      if (open) this.act.setTyping(open, false);
    });
    this.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      const thread = this.state.open();
      const content = this.input.value;
      if (!thread || (content.trim().length === 0 && !this.widgets.tray.hasFiles())) return;
      // Sent once every chosen file is uploaded (the tray shows their progress).
      const attachmentIds = this.widgets.tray.take();
      if (attachmentIds === undefined) return;
      this.input.value = "";
      this.resizeInput();
      this.drafts.delete(thread.id);
      this.act.submit(thread, content, attachmentIds);
    });
    const label = h("label", { class: "sr-only", attrs: { for: "composer-input" } }, "Message");
    const sendButton = h(
      "button",
      { class: "send-btn", attrs: { type: "submit", id: "send", "aria-label": "Send" } },
      icon("send"),
    );
    this.composer.append(label, this.widgets.tray.button, this.input, sendButton);
    this.widgets.tray.bind(this.pane, this.input);

    this.messages.addEventListener("scroll", () => {
      const el = this.messages;
      this.stickToBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
      const thread = this.state.open();
      if (thread && el.scrollTop < 150) this.act.loadOlder(thread);
    });

    this.pane.append(
      this.paneHead,
      this.widgets.requestBanner.element,
      this.messages,
      this.widgets.actions.banner,
      this.widgets.tray.element,
      this.composer,
    );
    this.shell.append(sidebar, this.pane);
    this.root.replaceChildren(
      this.banner,
      this.shell,
      this.widgets.dialog.element,
      this.widgets.reportDialog.element,
      this.widgets.groupDialog.element,
      this.widgets.blocks.dialog,
    );
  }

  /** Grows the composer with its text up to a limit; empty, it falls back to the stylesheet's one line. */
  private resizeInput(): void {
    this.input.style.height = "";
    if (this.input.value === "" || this.composer.hidden) return;
    this.input.style.height = `${Math.min(this.input.scrollHeight + 2, 160)}px`;
  }

  /** Batches the changes of one tick into one DOM update. */
  render(): void {
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
    this.banner.hidden = !offline && !reconnecting && !this.displaced();
    this.banner.textContent = offline
      ? "You're offline. Messages will be sent when the connection is back."
      : this.displaced()
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
            { class: "btn btn-primary", attrs: { type: "button" }, on: { click: () => this.widgets.dialog.open() } },
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
        on: { click: () => this.act.openConversation(thread.id) },
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
      this.widgets.requestBanner.show(null, this.state.me.id);
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
    if (thread.historyLoaded && thread.hasOlder && el.scrollHeight <= el.clientHeight) this.act.loadOlder(thread);
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
        on: { click: () => this.act.openConversation(null) },
      },
      icon("back"),
    );
    this.widgets.requestBanner.show(conversation, state.me.id);
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
      ...(peer ? [this.widgets.blocks.headerButton(peer)] : []),
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
              ? this.widgets.groupDialog.open(conversation)
              : peer && this.widgets.reportDialog.open({ userId: peer.id }, peer.displayName),
        },
      },
      group ? "Members" : "Report",
    );
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
      const changes = stored ? this.widgets.actions.look(stored) : "";
      if (!mine && conversation.type === "group" && this.widgets.blocks.hides(senderId, bubble.key)) {
        row(bubble.key, "blocked", () => this.widgets.blocks.placeholder(bubble.key));
        continue;
      }
      const blocked = this.widgets.blocks.isBlocked(senderId);
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
            stored && this.widgets.actions.quote(thread, stored),
            stored?.deletedAt ? null : this.widgets.attachmentList(bubble.attachments),
            stored?.deletedAt || bubble.content.length === 0 ? null : h("p", { class: "msg-text" }, bubble.content),
            stored && this.widgets.actions.mark(stored),
            meta,
          ),
          stored && this.widgets.actions.footer(thread, stored),
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
                  on: {
                    click: () => this.widgets.reportDialog.open({ messageId: bubble.key }, `message from ${author}`),
                  },
                },
                "Report",
              ),
              this.widgets.blocks.messageButton({ id: senderId, displayName: author }),
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
                on: { click: () => this.act.retry(thread, bubble.clientMsgId) },
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
