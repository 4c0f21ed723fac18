// Blocking on the chat page: a "Block"/"Unblock" button in a direct conversation's header and in a message's tools
// (next to "Report"), and a "Blocked users" dialog to unblock. The gateway enforces what a block means (a blocked
// user's direct sends are refused, no presence, typing or push between the two); the page adds what the contract
// leaves to it: group messages of a blocked user are hidden behind a placeholder that shows one on request.
import type { ChatHttpApi, PublicUser } from "@chat-gateway/sdk";
import { h } from "./dom.js";
import { icon } from "./icons.js";

export class BlockControls {
  /** Blocked user id → name, as GET /v1/users/me/blocks answered and this page changed since. */
  private readonly blocked = new Map<string, string>();
  /** Messages of blocked users the reader chose to see anyway. */
  private readonly revealed = new Set<string>();
  private readonly list = h("ul", { class: "user-results", attrs: { id: "blocked-list", "aria-label": "Blocked" } });
  private readonly error = h("p", { class: "form-error", attrs: { role: "alert", id: "blocked-error" } });
  readonly dialog = h(
    "dialog",
    { class: "dialog", attrs: { id: "blocked-dialog", "aria-labelledby": "blocked-title" } },
    h(
      "header",
      { class: "dialog-head" },
      h("h2", { attrs: { id: "blocked-title" } }, "Blocked users"),
      h(
        "button",
        {
          class: "icon-btn",
          attrs: { type: "button", "aria-label": "Close" },
          on: { click: () => this.dialog.close() },
        },
        icon("close"),
      ),
    ),
    this.list,
    this.error,
  );
  /** Opens the list; for the sidebar. */
  readonly openButton = h(
    "button",
    {
      class: "btn btn-ghost",
      attrs: { type: "button", id: "blocked-users-btn" },
      on: { click: () => void this.openList() },
    },
    "Blocked users",
  );

  constructor(
    private readonly api: ChatHttpApi,
    /** After a change: the page re-renders (buttons, hidden messages). */
    private readonly onChange: () => void,
  ) {}

  /** Loads the list once at start; offline, the page starts with none and learns on the next change. */
  async load(): Promise<void> {
    const users = await this.api.listBlockedUsers();
    this.blocked.clear();
    for (const user of users) this.blocked.set(user.id, user.displayName);
    this.onChange();
  }

  isBlocked(userId: string): boolean {
    return this.blocked.has(userId);
  }

  /** Whether a group message is hidden now (its sender blocked and not revealed); part of a row's look. */
  hides(senderId: string, messageKey: string): boolean {
    return this.blocked.has(senderId) && !this.revealed.has(messageKey);
  }

  /** "Block"/"Unblock" for the header of a direct conversation. */
  headerButton(peer: { id: string; displayName: string }): HTMLElement {
    return this.toggle(peer, { class: "btn btn-ghost", id: "block-user-btn" });
  }

  /** "Block"/"Unblock" among a message's tools, next to "Report". */
  messageButton(user: { id: string; displayName: string }): HTMLElement {
    return this.toggle(user, { class: "block-btn" });
  }

  /** What a hidden group message shows instead: a note and a button to show that one message. */
  placeholder(messageKey: string): HTMLElement {
    return h(
      "div",
      { class: "msg blocked-msg", attrs: { "data-key": messageKey } },
      h("span", null, "Message from a blocked user — "),
      h(
        "button",
        {
          class: "link-btn show-blocked",
          attrs: { type: "button" },
          on: {
            click: () => {
              this.revealed.add(messageKey);
              this.onChange();
            },
          },
        },
        "show",
      ),
    );
  }

  private toggle(user: { id: string; displayName: string }, look: { class: string; id?: string }): HTMLElement {
    const blocked = this.isBlocked(user.id);
    return h(
      "button",
      {
        class: look.class,
        attrs: {
          type: "button",
          id: look.id,
          "data-blocked": blocked ? "true" : "false",
          "aria-label": `${blocked ? "Unblock" : "Block"} ${user.displayName}`,
        },
        on: { click: () => void (blocked ? this.unblock(user.id) : this.block(user)) },
      },
      blocked ? "Unblock" : "Block",
    );
  }

  private async block(user: { id: string; displayName: string }): Promise<void> {
    try {
      await this.api.blockUser(user.id);
      this.blocked.set(user.id, user.displayName);
      // A fresh block hides again what was shown before.
      this.revealed.clear();
    } catch (err) {
      console.warn("chat: block failed", err);
    }
    this.onChange();
  }

  private async unblock(userId: string): Promise<void> {
    this.error.textContent = "";
    try {
      await this.api.unblockUser(userId);
      this.blocked.delete(userId);
    } catch (err) {
      this.error.textContent = "Could not unblock. Try again.";
      console.warn("chat: unblock failed", err);
    }
    this.renderList();
    this.onChange();
  }

  private async openList(): Promise<void> {
    this.error.textContent = "";
    if (!this.dialog.open) this.dialog.showModal();
    try {
      const users: PublicUser[] = await this.api.listBlockedUsers();
      this.blocked.clear();
      for (const user of users) this.blocked.set(user.id, user.displayName);
    } catch {
      this.error.textContent = "Could not load the list. Try again.";
    }
    this.renderList();
  }

  private renderList(): void {
    if (this.blocked.size === 0) {
      this.list.replaceChildren(h("li", { class: "result-hint" }, "You have not blocked anyone."));
      return;
    }
    this.list.replaceChildren(
      ...[...this.blocked].map(([id, name]) =>
        h(
          "li",
          { class: "user-result", attrs: { "data-user-id": id } },
          h("span", { class: "user-name" }, name),
          h(
            "button",
            {
              class: "btn",
              attrs: { type: "button", "data-action": "unblock" },
              on: { click: () => void this.unblock(id) },
            },
            "Unblock",
          ),
        ),
      ),
    );
  }
}
