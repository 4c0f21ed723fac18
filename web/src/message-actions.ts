// Messages that change, on the page: a reply's quote, the "edited" mark, reactions, and the actions on a message
// (reply, react, edit and delete one's own; an admin deletes any in a group). The composer's banner says what the
// next submit does (reply to / edit a message). chat-app.ts calls in here; nothing here touches the client's events.
import { type ChatClient, type Message, replyPreviewOf, withHeldPreview } from "@chat-gateway/sdk";
import type { Thread } from "./chat-state.js";
import { h } from "./dom.js";

/** The quick reactions offered; any single emoji works through the API. */
const QUICK_REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🎉"];

type Mode = { kind: "reply" | "edit"; message: Message } | null;

export class MessageActions {
  private mode: Mode = null;
  /** The banner above the composer: "Replying to …" / "Editing", with a cancel button. */
  readonly banner = h("div", { class: "composer-banner", attrs: { id: "composer-banner", hidden: true } });

  constructor(
    private readonly client: ChatClient,
    private readonly me: () => string,
    private readonly nameOf: (thread: Thread, userId: string) => string,
    /** Puts text in the composer and focuses it (edit), or only focuses it (reply). */
    private readonly focusComposer: (text?: string) => void,
    private readonly changed: () => void,
  ) {}

  /** A change arrived: the thread's copy and every reply quoting it follow. */
  applyUpdate(thread: Thread | undefined, message: Message): void {
    if (!thread) return;
    const held = thread.stored.get(message.id);
    if (held && held.changeSeq >= message.changeSeq) return;
    if (held)
      thread.stored.set(
        message.id,
        withHeldPreview(message, (id) => thread.stored.get(id)),
      );
    for (const [id, m] of thread.stored) {
      if (m.replyTo?.id === message.id) thread.stored.set(id, { ...m, replyTo: replyPreviewOf(message) });
    }
    if (this.mode?.message.id === message.id && message.deletedAt !== null) this.cancel();
    this.changed();
  }

  /**
   * What the composer's submit does with `content`: a reply or an edit when one is under way (true: handled here),
   * else false and chat-app sends a plain message.
   */
  submit(thread: Thread, content: string): { replyToId?: string } | "handled" {
    const mode = this.mode;
    this.cancel();
    if (mode?.kind === "edit") {
      // The result comes back as the SDK's messageUpdated, like everyone else's changes.
      this.client
        .editMessage(thread.id, mode.message.id, content)
        .catch((err: unknown) => console.warn("chat: could not edit the message", err));
      return "handled";
    }
    return mode?.kind === "reply" ? { replyToId: mode.message.id } : {};
  }

  cancel(): void {
    this.mode = null;
    this.banner.hidden = true;
    this.banner.replaceChildren();
  }

  /** What changes a stored message's look, for the row cache. */
  look(message: Message): string {
    return `${message.changeSeq}|${message.replyTo?.content ?? ""}`;
  }

  /** The quote above a reply's text. */
  quote(thread: Thread, message: Message): HTMLElement | null {
    const r = message.replyTo;
    if (!r) return null;
    return h(
      "div",
      { class: "msg-quote", attrs: { "data-reply-to": r.id } },
      h("span", { class: "msg-quote-author" }, this.nameOf(thread, r.senderId)),
      h("span", { class: "msg-quote-text" }, r.content === "" ? "Deleted message" : r.content),
    );
  }

  /** The "edited" mark, or the tombstone's text. */
  mark(message: Message): HTMLElement | null {
    if (message.deletedAt !== null) return h("em", { class: "msg-deleted" }, "This message was deleted");
    if (message.editedAt !== null) return h("span", { class: "msg-edited" }, "edited");
    return null;
  }

  /** Reaction chips (mine highlighted; a click toggles mine) and the actions row. */
  footer(thread: Thread, message: Message): HTMLElement | null {
    if (message.deletedAt !== null) return null;
    const me = this.me();
    const chips = message.reactions.map((r) => {
      const mine = r.userIds.includes(me);
      return h(
        "button",
        {
          class: `reaction${mine ? " mine" : ""}`,
          attrs: { type: "button", "data-emoji": r.emoji, "aria-pressed": mine ? "true" : "false" },
          on: { click: () => this.react(thread, message, r.emoji, !mine) },
        },
        `${r.emoji} ${r.count}`,
      );
    });
    const own = message.senderId === me;
    const admin =
      thread.conversation.type === "group" &&
      thread.conversation.members.some((m) => m.id === me && m.role === "admin");
    const action = (label: string, name: string, run: (event: MouseEvent) => void) =>
      h("button", { class: "msg-action", attrs: { type: "button", "data-action": name }, on: { click: run } }, label);
    const picker = h(
      "span",
      { class: "reaction-picker", attrs: { hidden: true } },
      ...QUICK_REACTIONS.map((emoji) =>
        h(
          "button",
          {
            class: "reaction-choice",
            attrs: { type: "button", "data-emoji": emoji, "aria-label": `React ${emoji}` },
            on: {
              click: () => {
                picker.hidden = true;
                this.react(thread, message, emoji, true);
              },
            },
          },
          emoji,
        ),
      ),
    );
    const actions = h(
      "div",
      { class: "msg-actions" },
      action("Reply", "reply", () => this.begin(thread, { kind: "reply", message })),
      action("React", "react", () => (picker.hidden = !picker.hidden)),
      own && action("Edit", "edit", () => this.begin(thread, { kind: "edit", message })),
      (own || admin) &&
        action("Delete", "delete", (event) => {
          // Two clicks, no browser dialog: the first asks, the second deletes.
          const button = event.currentTarget as HTMLButtonElement;
          if (button.dataset.confirm !== "yes") {
            button.dataset.confirm = "yes";
            button.textContent = "Delete for everyone?";
            return;
          }
          this.client
            .deleteMessage(thread.id, message.id)
            .catch((err: unknown) => console.warn("chat: could not delete the message", err));
        }),
      picker,
    );
    return h("div", { class: "msg-footer" }, chips.length > 0 && h("div", { class: "reactions" }, ...chips), actions);
  }

  private begin(thread: Thread, mode: NonNullable<Mode>): void {
    this.mode = mode;
    const label = mode.kind === "edit" ? "Editing" : `Replying to ${this.nameOf(thread, mode.message.senderId)}`;
    this.banner.replaceChildren(
      h("span", { class: "composer-banner-label" }, label),
      h("span", { class: "composer-banner-text" }, [...mode.message.content].slice(0, 80).join("")),
      h(
        "button",
        {
          class: "composer-banner-cancel",
          attrs: { type: "button", "aria-label": "Cancel" },
          on: { click: () => this.cancel() },
        },
        "×",
      ),
    );
    this.banner.hidden = false;
    this.focusComposer(mode.kind === "edit" ? mode.message.content : undefined);
  }

  private react(thread: Thread, message: Message, emoji: string, on: boolean): void {
    this.client
      .react(thread.id, message.id, emoji, on)
      .catch((err: unknown) => console.warn("chat: could not react", err));
  }
}
