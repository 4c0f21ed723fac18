// Starting a conversation: search people by username, then open a direct chat with one, or pick several and name a
// group. A native <dialog>, so Escape closes it and focus stays inside while it is open.
import type { ChatHttpApi, Conversation, PublicUser } from "@chat-gateway/sdk";
import { h } from "./dom.js";
import { avatarColor, initials } from "./format.js";
import { icon } from "./icons.js";

type Mode = "direct" | "group";

export class NewChatDialog {
  readonly element = h("dialog", {
    class: "dialog",
    attrs: { id: "new-chat-dialog", "aria-labelledby": "new-chat-title" },
  });
  private mode: Mode = "direct";
  private readonly selected = new Map<string, PublicUser>();
  private results: PublicUser[] = [];
  private searchTimer: ReturnType<typeof setTimeout> | undefined;
  private searchSeq = 0;

  private readonly search = h("input", {
    attrs: {
      id: "user-search",
      type: "search",
      placeholder: "Search by username",
      autocomplete: "off",
      spellcheck: "false",
    },
  });
  private readonly title = h("input", {
    attrs: { id: "group-title", placeholder: "e.g. Weekend hike", maxlength: "64" },
  });
  private readonly titleField = h(
    "div",
    { class: "field" },
    h("label", { attrs: { for: "group-title" } }, "Group name"),
    this.title,
  );
  private readonly chips = h("div", { class: "chips", attrs: { "aria-label": "Selected people" } });
  private readonly resultList = h("ul", {
    class: "user-results",
    attrs: { id: "user-results", "aria-label": "People" },
  });
  private readonly error = h("p", { class: "form-error", attrs: { role: "alert" } });
  private readonly createGroup = h(
    "button",
    { class: "btn btn-primary", attrs: { type: "submit", id: "create-group" } },
    "Create group",
  );
  private readonly directTab = h("button", { class: "tab", attrs: { type: "button", role: "tab" } }, "Direct message");
  private readonly groupTab = h("button", { class: "tab", attrs: { type: "button", role: "tab" } }, "New group");

  constructor(
    private readonly api: ChatHttpApi,
    private readonly me: PublicUser,
    private readonly onOpened: (conversation: Conversation) => void,
  ) {
    this.directTab.addEventListener("click", () => this.setMode("direct"));
    this.groupTab.addEventListener("click", () => this.setMode("group"));
    this.search.addEventListener("input", () => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => void this.runSearch(), 150);
    });
    const form = h(
      "form",
      {
        attrs: { method: "dialog" },
        on: {
          submit: (event) => {
            event.preventDefault();
            if (this.mode === "group") void this.submitGroup();
          },
        },
      },
      h(
        "header",
        { class: "dialog-head" },
        h("h2", { attrs: { id: "new-chat-title" } }, "New conversation"),
        h(
          "button",
          { class: "icon-btn", attrs: { type: "button", "aria-label": "Close" }, on: { click: () => this.close() } },
          icon("close"),
        ),
      ),
      h("div", { class: "tabs", attrs: { role: "tablist" } }, this.directTab, this.groupTab),
      this.titleField,
      h("div", { class: "field" }, h("label", { attrs: { for: "user-search" } }, "People"), this.search),
      this.chips,
      this.resultList,
      this.error,
      h("div", { class: "dialog-actions" }, this.createGroup),
    );
    this.element.append(form);
    this.setMode("direct");
  }

  open(): void {
    this.selected.clear();
    this.results = [];
    this.search.value = "";
    this.title.value = "";
    this.error.textContent = "";
    this.setMode("direct");
    if (!this.element.open) this.element.showModal();
    this.search.focus();
  }

  close(): void {
    if (this.element.open) this.element.close();
  }

  private setMode(mode: Mode): void {
    this.mode = mode;
    this.directTab.setAttribute("aria-selected", String(mode === "direct"));
    this.groupTab.setAttribute("aria-selected", String(mode === "group"));
    this.titleField.hidden = mode === "direct";
    this.createGroup.hidden = mode === "direct";
    this.chips.hidden = mode === "direct";
    this.renderResults();
  }

  private async runSearch(): Promise<void> {
    const query = this.search.value.trim().toLowerCase();
    const seq = ++this.searchSeq;
    if (!query) {
      this.results = [];
      this.renderResults();
      return;
    }
    try {
      const users = await this.api.searchUsers(query);
      if (seq !== this.searchSeq) return;
      this.results = users.filter((u) => u.id !== this.me.id);
      this.error.textContent = "";
    } catch {
      if (seq !== this.searchSeq) return;
      this.results = [];
      this.error.textContent = "Search failed. Check your connection.";
    }
    this.renderResults();
  }

  private renderResults(): void {
    this.chips.replaceChildren(
      ...[...this.selected.values()].map((user) =>
        h(
          "button",
          {
            class: "chip",
            attrs: { type: "button", "aria-label": `Remove ${user.displayName}` },
            on: {
              click: () => {
                this.selected.delete(user.id);
                this.renderResults();
              },
            },
          },
          user.displayName,
          icon("close", "icon icon-xs"),
        ),
      ),
    );
    if (this.results.length === 0) {
      const hint = this.search.value.trim() ? "Nobody found with that username." : "Type the start of a username.";
      this.resultList.replaceChildren(h("li", { class: "muted result-hint" }, hint));
      return;
    }
    this.resultList.replaceChildren(
      ...this.results.map((user) => {
        const picked = this.selected.has(user.id);
        const avatar = h(
          "span",
          { class: "avatar avatar-sm", attrs: { "aria-hidden": "true" } },
          initials(user.displayName),
        );
        avatar.style.backgroundColor = avatarColor(user.id);
        return h(
          "li",
          null,
          h(
            "button",
            {
              class: "user-result",
              attrs: {
                type: "button",
                "data-username": user.username,
                "aria-pressed": this.mode === "group" ? String(picked) : undefined,
              },
              on: { click: () => void this.pick(user) },
            },
            avatar,
            h("span", { class: "user-name" }, user.displayName, h("span", { class: "muted" }, ` @${user.username}`)),
            this.mode === "group" &&
              h("span", { class: "check", attrs: { "aria-hidden": "true" } }, picked && icon("check")),
          ),
        );
      }),
    );
  }

  private async pick(user: PublicUser): Promise<void> {
    if (this.mode === "group") {
      if (this.selected.has(user.id)) this.selected.delete(user.id);
      else this.selected.set(user.id, user);
      this.renderResults();
      return;
    }
    try {
      const conversation = await this.api.openDirectConversation(user.id);
      this.close();
      this.onOpened(conversation);
    } catch {
      this.error.textContent = "Could not start the conversation. Try again.";
    }
  }

  private async submitGroup(): Promise<void> {
    const title = this.title.value.trim();
    if (!title) {
      this.error.textContent = "Give the group a name.";
      this.title.focus();
      return;
    }
    if (this.selected.size === 0) {
      this.error.textContent = "Pick at least one person.";
      return;
    }
    try {
      const conversation = await this.api.createGroup(title, [...this.selected.keys()]);
      this.close();
      this.onOpened(conversation);
    } catch {
      this.error.textContent = "Could not create the group. Try again.";
    }
  }
}
