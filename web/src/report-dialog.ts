// Reporting a message or a person to the operators: a reason (1 to 1000 characters), sent with POST /v1/reports.
// The gateway keeps a copy of a reported message, so the dialog only needs its id.
import type { ChatHttpApi } from "@chat-gateway/sdk";
import { ChatApiError } from "@chat-gateway/sdk";
import { h } from "./dom.js";
import { icon } from "./icons.js";

export type ReportTarget = { messageId: string } | { userId: string };

export class ReportDialog {
  readonly element = h("dialog", {
    class: "dialog",
    attrs: { id: "report-dialog", "aria-labelledby": "report-title" },
  });
  private target: ReportTarget | null = null;
  private readonly heading = h("h2", { attrs: { id: "report-title" } }, "Report");
  private readonly reason = h("textarea", {
    attrs: { id: "report-reason", maxlength: "1000", rows: "4", required: true, placeholder: "What is wrong?" },
  });
  private readonly status = h("p", { class: "form-error", attrs: { role: "alert", id: "report-status" } });
  private readonly submit = h(
    "button",
    { class: "btn btn-primary", attrs: { type: "submit", id: "report-submit" } },
    "Send report",
  );

  constructor(private readonly api: ChatHttpApi) {
    const form = h(
      "form",
      {
        attrs: { method: "dialog" },
        on: {
          submit: (event) => {
            event.preventDefault();
            void this.send();
          },
        },
      },
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
      h("div", { class: "field" }, h("label", { attrs: { for: "report-reason" } }, "Reason"), this.reason),
      this.status,
      h("div", { class: "dialog-actions" }, this.submit),
    );
    this.element.append(form);
  }

  /** `what` names the target in the heading, e.g. "message from Ann" or "Ann". */
  open(target: ReportTarget, what: string): void {
    this.target = target;
    this.heading.textContent = `Report ${what}`;
    this.reason.value = "";
    this.status.textContent = "";
    this.status.className = "form-error";
    this.submit.disabled = false;
    if (!this.element.open) this.element.showModal();
    this.reason.focus();
  }

  close(): void {
    if (this.element.open) this.element.close();
  }

  private async send(): Promise<void> {
    const reason = this.reason.value.trim();
    if (this.target === null || reason.length === 0) {
      this.status.textContent = "Say briefly what is wrong.";
      return;
    }
    this.submit.disabled = true;
    try {
      await this.api.report(this.target, reason);
      this.status.className = "form-note";
      this.status.textContent = "Thank you. The report was sent to the moderators.";
      setTimeout(() => this.close(), 1200);
    } catch (err) {
      this.submit.disabled = false;
      this.status.textContent =
        err instanceof ChatApiError && err.code === "rate_limited"
          ? "Too many reports for now; try again later."
          : err instanceof ChatApiError && err.code === "not_found"
            ? "That is no longer available."
            : "Could not send the report. Try again.";
    }
  }
}
