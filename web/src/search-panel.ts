// The message search box of the sidebar: Enter searches the caller's conversations (GET /v1/search/messages),
// results show newest first with the conversation they are in, "More results" follows the cursor, and choosing one
// opens its conversation. Emptying the box (or Escape) brings the conversation list back.
import { ChatApiError, type ChatHttpApi, type Message } from "@chat-gateway/sdk";
import { h } from "./dom.js";
import { listTime } from "./format.js";

const PAGE = 20;
/** The gateway's limit on a query, in characters. */
const MAX_QUERY = 200;

export interface SearchPanelHost {
  /** The conversation's title and the sender's name, as the page shows them. */
  describe(message: Message): { title: string; sender: string };
  /** Opens the conversation a result is in. */
  open(conversationId: string): void;
}

export class SearchPanel {
  readonly element: HTMLFormElement;
  private readonly input = h("input", {
    attrs: {
      id: "message-search",
      type: "search",
      placeholder: "Search messages",
      "aria-label": "Search messages",
      autocomplete: "off",
      maxlength: String(MAX_QUERY),
      enterkeyhint: "search",
    },
  });
  private readonly results = h("ul", {
    class: "search-results",
    attrs: { id: "search-results", "aria-label": "Search results", hidden: true },
  });
  private readonly status = h("p", { class: "search-status", attrs: { role: "status", hidden: true } });
  private readonly more = h("button", { class: "btn btn-ghost search-more", attrs: { type: "button", hidden: true } });
  private query = "";
  private cursor: string | null = null;
  /** Answers to an older search (the box changed meanwhile) are dropped. */
  private generation = 0;

  constructor(
    private readonly api: ChatHttpApi,
    private readonly host: SearchPanelHost,
  ) {
    this.more.textContent = "More results";
    this.more.addEventListener("click", () => void this.fetchPage(false));
    this.input.addEventListener("input", () => {
      if (this.input.value.trim() === "") this.clear();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || this.input.value === "") return;
      event.preventDefault();
      this.input.value = "";
      this.clear();
    });
    this.element = h(
      "form",
      {
        class: "search",
        attrs: { role: "search", id: "message-search-form" },
        on: {
          submit: (event) => {
            event.preventDefault();
            this.query = this.input.value.trim();
            if (this.query === "") this.clear();
            else void this.fetchPage(true);
          },
        },
      },
      this.input,
      this.status,
      this.results,
      this.more,
    );
  }

  private clear(): void {
    this.generation++;
    this.query = "";
    this.cursor = null;
    this.results.replaceChildren();
    this.results.hidden = true;
    this.more.hidden = true;
    this.showStatus(null);
  }

  private async fetchPage(first: boolean): Promise<void> {
    const generation = ++this.generation;
    if (first) this.cursor = null;
    this.more.disabled = true;
    this.showStatus(first ? "Searching…" : null);
    try {
      const page = await this.api.searchMessages({
        query: this.query,
        limit: PAGE,
        ...(this.cursor ? { cursor: this.cursor } : {}),
      });
      if (generation !== this.generation) return;
      const items = page.messages.map((message) => this.resultItem(message));
      if (first) this.results.replaceChildren(...items);
      else this.results.append(...items);
      this.results.hidden = false;
      this.cursor = page.nextCursor;
      this.more.hidden = page.nextCursor === null;
      this.showStatus(this.results.childElementCount === 0 ? "No messages found" : null);
    } catch (err) {
      if (generation !== this.generation) return;
      // A failed first page leaves no stale results; a failed "more" keeps what is shown.
      if (first) {
        this.results.replaceChildren();
        this.results.hidden = true;
        this.more.hidden = true;
      }
      this.showStatus(problem(err));
    } finally {
      this.more.disabled = false;
    }
  }

  private resultItem(message: Message): HTMLLIElement {
    const { title, sender } = this.host.describe(message);
    return h(
      "li",
      null,
      h(
        "button",
        {
          class: "search-result",
          attrs: { type: "button", "data-conversation-id": message.conversationId, "data-message-id": message.id },
          on: { click: () => this.host.open(message.conversationId) },
        },
        h(
          "span",
          { class: "conv-top" },
          h("span", { class: "conv-title" }, title),
          h("time", { class: "conv-time", attrs: { datetime: message.createdAt } }, listTime(message.createdAt)),
        ),
        h("span", { class: "conv-preview" }, sender ? `${sender}: ` : "", message.content.replace(/\s+/g, " ")),
      ),
    );
  }

  private showStatus(text: string | null): void {
    this.status.textContent = text ?? "";
    this.status.hidden = text === null;
  }
}

/** What went wrong, in words for the person searching. */
function problem(err: unknown): string {
  if (!(err instanceof ChatApiError)) return "Search failed";
  if (err.code === "bad_request") return "Type a word to search for";
  if (err.code === "rate_limited") return "Too many searches: wait a moment";
  if (err.code === "network_error" || err.code === "timeout" || err.code === "unavailable") {
    return "Search is unavailable right now";
  }
  return "Search failed";
}
