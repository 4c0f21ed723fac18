// A group's members and what one may do with them: everyone sees who is in and who is admin and may leave; the
// group's admins also rename it, add people (search by username), promote or demote members, and remove them.
// The gateway decides (a member's attempt is `forbidden`); this only hides what the viewer may not do.
import type { ChatHttpApi, Conversation, PublicUser } from "@chat-gateway/sdk";
import { ChatApiError } from "@chat-gateway/sdk";
import { h } from "./dom.js";
import { icon } from "./icons.js";

export class GroupAdminDialog {
  readonly element = h("dialog", {
    class: "dialog",
    attrs: { id: "group-dialog", "aria-labelledby": "group-dialog-title" },
  });
  private conversation: Conversation | null = null;
  private readonly heading = h("h2", { attrs: { id: "group-dialog-title" } }, "Group");
  private readonly title = h("input", { attrs: { id: "group-rename", maxlength: "64", "aria-label": "Group name" } });
  private readonly renameRow = h(
    "form",
    { class: "field group-rename", on: { submit: (e) => (e.preventDefault(), void this.rename()) } },
    this.title,
    h("button", { class: "btn", attrs: { type: "submit", id: "group-rename-save" } }, "Rename"),
  );
  private readonly members = h("ul", {
    class: "user-results",
    attrs: { id: "group-members", "aria-label": "Members" },
  });
  private readonly search = h("input", {
    attrs: { id: "group-add-search", type: "search", placeholder: "Add someone by username", autocomplete: "off" },
  });
  private readonly results = h("ul", { class: "user-results", attrs: { id: "group-add-results" } });
  private readonly addRow = h("div", { class: "field" }, this.search, this.results);
  private readonly error = h("p", { class: "form-error", attrs: { role: "alert", id: "group-error" } });
  private searchTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly api: ChatHttpApi,
    private readonly me: PublicUser,
    /** After this user left: the page drops the conversation. */
    private readonly onLeft: (conversationId: string) => void,
  ) {
    this.search.addEventListener("input", () => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => void this.runSearch(), 150);
    });
    this.element.append(
      h(
        "header",
        { class: "dialog-head" },
        this.heading,
        h(
          "button",
          { class: "icon-btn", attrs: { type: "button", "aria-label": "Close" }, on: { click: () => this.close() } },
          icon("close"),
        ),
      ),
      this.renameRow,
      this.members,
      this.addRow,
      this.error,
      h(
        "div",
        { class: "dialog-actions" },
        h(
          "button",
          {
            class: "btn btn-danger",
            attrs: { type: "button", id: "group-leave" },
            on: { click: () => void this.leave() },
          },
          "Leave group",
        ),
      ),
    );
  }

  open(conversation: Conversation): void {
    this.error.textContent = "";
    this.search.value = "";
    this.results.replaceChildren();
    this.update(conversation, true);
    if (!this.element.open) this.element.showModal();
  }

  close(): void {
    if (this.element.open) this.element.close();
  }

  /** The newest state of the open group (from `conversation:updated`); ignored for any other conversation. */
  update(conversation: Conversation, force = false): void {
    if (!force && conversation.id !== this.conversation?.id) return;
    this.conversation = conversation;
    const admin = this.isAdmin();
    this.heading.textContent = conversation.title ?? "Group";
    if (force || document.activeElement !== this.title) this.title.value = conversation.title ?? "";
    this.renameRow.hidden = !admin;
    this.addRow.hidden = !admin;
    this.members.replaceChildren(
      ...conversation.members.map((m) => {
        const self = m.id === this.me.id;
        const actions =
          admin && !self
            ? [
                h(
                  "button",
                  {
                    class: "btn btn-small",
                    attrs: { type: "button", "data-action": "role" },
                    on: {
                      click: () =>
                        void this.act(() =>
                          this.api.setMemberRole(conversation.id, m.id, m.role === "admin" ? "member" : "admin"),
                        ),
                    },
                  },
                  m.role === "admin" ? "Make member" : "Make admin",
                ),
                h(
                  "button",
                  {
                    class: "btn btn-small btn-danger",
                    attrs: { type: "button", "data-action": "remove" },
                    on: { click: () => void this.act(() => this.api.removeMember(conversation.id, m.id)) },
                  },
                  "Remove",
                ),
              ]
            : [];
        return h(
          "li",
          { class: "group-member", attrs: { "data-user-id": m.id, "data-role": m.role } },
          h("span", { class: "user-name" }, self ? `${m.displayName} (you)` : m.displayName),
          m.role === "admin" && h("span", { class: "role-badge" }, "admin"),
          ...actions,
        );
      }),
    );
  }

  private isAdmin(): boolean {
    return this.conversation?.members.some((m) => m.id === this.me.id && m.role === "admin") ?? false;
  }

  private async act(call: () => Promise<unknown>): Promise<void> {
    this.error.textContent = "";
    try {
      await call();
    } catch (err) {
      this.error.textContent =
        err instanceof ChatApiError && err.code === "forbidden"
          ? "Only the group's admins can do that."
          : err instanceof ChatApiError && err.code === "conflict"
            ? "A group needs an admin: make someone else admin first."
            : "That did not work. Try again.";
    }
  }

  private async rename(): Promise<void> {
    const conversation = this.conversation;
    const title = this.title.value.trim();
    if (conversation === null || title.length === 0) return;
    await this.act(() => this.api.renameGroup(conversation.id, title));
  }

  private async leave(): Promise<void> {
    const conversation = this.conversation;
    if (conversation === null) return;
    this.error.textContent = "";
    try {
      await this.api.leave(conversation.id, this.me.id);
      this.close();
      this.onLeft(conversation.id);
    } catch {
      this.error.textContent = "Could not leave. Try again.";
    }
  }

  private async runSearch(): Promise<void> {
    const conversation = this.conversation;
    const query = this.search.value.trim();
    if (conversation === null || query.length === 0) return void this.results.replaceChildren();
    const users = await this.api.searchUsers(query).catch(() => [] as PublicUser[]);
    if (this.search.value.trim() !== query) return;
    const inGroup = new Set(conversation.members.map((m) => m.id));
    this.results.replaceChildren(
      ...users
        .filter((u) => !inGroup.has(u.id))
        .map((u) =>
          h(
            "li",
            null,
            h(
              "button",
              {
                class: "user-result",
                attrs: { type: "button", "data-user-id": u.id },
                on: {
                  click: () =>
                    void this.act(async () => {
                      await this.api.addMember(conversation.id, u.id);
                      this.search.value = "";
                      this.results.replaceChildren();
                    }),
                },
              },
              `${u.displayName} @${u.username}`,
            ),
          ),
        ),
    );
  }
}
