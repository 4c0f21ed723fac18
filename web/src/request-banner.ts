// The message request banner above an open direct conversation (conversation.request, see the README's "Message
// requests"). The recipient sees "Message request" and an Accept button (replying accepts too); the requester sees
// that the other person has not accepted yet, which is also why their presence and read marks do not show.
import type { ChatClient, Conversation } from "@chat-gateway/sdk";
import { h } from "./dom.js";

export class RequestBanner {
  readonly element = h("div", { class: "request-banner", attrs: { id: "request-banner", role: "status" } });
  private shownFor: string | null = null;

  constructor(
    private readonly client: ChatClient,
    /** Called with the accepted conversation, to update the page's state. */
    private readonly onAccepted: (conversation: Conversation) => void,
  ) {
    this.element.hidden = true;
  }

  /** Shows the banner for this conversation as `meId` sees it, or hides it (null, or nothing pending). */
  show(conversation: Conversation | null, meId: string): void {
    const request = conversation?.request;
    if (!conversation || request?.state !== "pending") {
      this.element.hidden = true;
      this.shownFor = null;
      return;
    }
    const key = `${conversation.id}:${request.requestedBy === meId ? "sent" : "received"}`;
    this.element.hidden = false;
    if (this.shownFor === key) return; // unchanged: keep the button (and its focus) as it is
    this.shownFor = key;
    if (request.requestedBy === meId) {
      this.element.replaceChildren(
        h("span", null, "Message request sent. They will see your messages once they accept."),
      );
      return;
    }
    const accept = h(
      "button",
      {
        class: "request-accept",
        attrs: { type: "button", id: "request-accept" },
        on: { click: () => void this.accept(conversation.id, accept) },
      },
      "Accept",
    );
    this.element.replaceChildren(h("span", null, "Message request — "), accept);
  }

  private async accept(conversationId: string, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      this.onAccepted(await this.client.acceptConversation(conversationId));
    } catch {
      // Offline or refused: leave the banner up so the user can try again.
      button.disabled = false;
    }
  }
}
