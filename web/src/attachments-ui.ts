// Files in the chat page: choosing them (picker, drag and drop, paste), uploading each at once with a progress bar,
// and showing a message's files (images inline as thumbnails that open the full image, other files as links).
// Download URLs expire: opening a file asks the gateway for a fresh one.
import type { Attachment, ChatClient } from "@chat-gateway/sdk";
import { h } from "./dom.js";
import { icon } from "./icons.js";

/** The gateway's own limit (10 per message). */
const MAX_FILES = 10;

interface TrayItem {
  file: File;
  el: HTMLElement;
  bar: HTMLProgressElement;
  id?: string;
  error?: string;
}

/** The files chosen for the next message, uploading as soon as they are chosen. */
export class AttachmentTray {
  readonly element = h("div", { class: "tray", attrs: { id: "attachment-tray", hidden: true } });
  private readonly picker = h("input", {
    class: "sr-only",
    attrs: { type: "file", multiple: true, id: "attach-input", tabindex: "-1" },
  });
  readonly button = h(
    "button",
    {
      class: "icon-btn attach-btn",
      attrs: { type: "button", id: "attach", "aria-label": "Attach files" },
      on: { click: () => this.picker.click() },
    },
    icon("clip"),
  );
  private items: TrayItem[] = [];

  constructor(private readonly client: ChatClient) {
    this.picker.addEventListener("change", () => {
      this.add([...(this.picker.files ?? [])]);
      this.picker.value = "";
    });
    this.button.append(this.picker);
  }

  /** Files dropped on `dropTarget` or pasted into `pasteTarget` join the tray. */
  bind(dropTarget: HTMLElement, pasteTarget: HTMLElement): void {
    dropTarget.addEventListener("dragover", (event) => {
      if (!event.dataTransfer?.types.includes("Files")) return;
      event.preventDefault();
      dropTarget.classList.add("dropping");
    });
    dropTarget.addEventListener("dragleave", () => dropTarget.classList.remove("dropping"));
    dropTarget.addEventListener("drop", (event) => {
      dropTarget.classList.remove("dropping");
      const files = [...(event.dataTransfer?.files ?? [])];
      if (files.length === 0) return;
      event.preventDefault();
      this.add(files);
    });
    pasteTarget.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files ?? [])];
      if (files.length === 0) return;
      event.preventDefault();
      this.add(files);
    });
  }

  hasFiles(): boolean {
    return this.items.length > 0;
  }

  /** The uploaded ids for the message, emptying the tray; undefined while an upload is running or has failed. */
  take(): string[] | undefined {
    if (this.items.some((item) => item.id === undefined)) return undefined;
    const ids = this.items.map((item) => item.id!);
    this.items = [];
    this.render();
    return ids;
  }

  add(files: File[]): void {
    for (const file of files.slice(0, MAX_FILES - this.items.length)) {
      const bar = h("progress", { class: "tray-progress", attrs: { max: "1", value: "0" } });
      const item: TrayItem = { file, bar, el: h("div", { class: "tray-item" }) };
      this.items.push(item);
      this.upload(item);
    }
    this.render();
  }

  private upload(item: TrayItem): void {
    const onProgress = (sent: number, total: number) => (item.bar.value = total > 0 ? sent / total : 1);
    this.client.uploadFile(item.file, { name: item.file.name || "pasted", onProgress }).then(
      (uploaded) => {
        item.id = uploaded.id;
        this.render();
      },
      (err: unknown) => {
        item.error = err instanceof Error ? err.message : "upload failed";
        this.render();
      },
    );
  }

  private remove(item: TrayItem): void {
    this.items = this.items.filter((i) => i !== item);
    this.render();
  }

  private render(): void {
    this.element.hidden = this.items.length === 0;
    this.element.replaceChildren(
      ...this.items.map((item) => {
        item.el.dataset.state = item.error ? "failed" : item.id ? "done" : "uploading";
        item.el.replaceChildren(
          h("span", { class: "tray-name" }, item.file.name || "pasted"),
          item.error ? h("span", { class: "tray-error" }, item.error) : item.bar,
          h(
            "button",
            {
              class: "icon-btn",
              attrs: { type: "button", "aria-label": `Remove ${item.file.name}` },
              on: { click: () => this.remove(item) },
            },
            icon("close"),
          ),
        );
        return item.el;
      }),
    );
  }
}

/** A message's files: images as thumbnails opening the full image, other files as links. */
export function attachmentList(client: ChatClient, attachments: Attachment[]): HTMLElement | null {
  if (attachments.length === 0) return null;
  return h(
    "div",
    { class: "msg-files" },
    ...attachments.map((a) => (a.thumbnailUrl ? imageTile(client, a, a.thumbnailUrl) : fileLink(client, a))),
  );
}

function imageTile(client: ChatClient, a: Attachment, thumbnailUrl: string): HTMLElement {
  const img = h("img", {
    class: "msg-image",
    attrs: {
      src: client.api.resolveUrl(thumbnailUrl),
      alt: a.name,
      loading: "lazy",
      width: a.width ? String(Math.min(a.width, 240)) : undefined,
    },
  });
  return h(
    "a",
    {
      class: "msg-image-link",
      attrs: { href: client.api.resolveUrl(a.url), "data-attachment-id": a.id },
      on: { click: (event) => void openFresh(client, a, event) },
    },
    img,
  );
}

function fileLink(client: ChatClient, a: Attachment): HTMLElement {
  return h(
    "a",
    {
      class: "msg-file",
      attrs: { href: client.api.resolveUrl(a.url), "data-attachment-id": a.id, rel: "noopener" },
      on: { click: (event) => void openFresh(client, a, event) },
    },
    icon("clip"),
    h("span", null, a.name),
    h("span", { class: "msg-file-size" }, formatSize(a.size)),
  );
}

/** Opens the file with a freshly issued URL (the one in the message may have expired); images in a lightbox. */
async function openFresh(client: ChatClient, a: Attachment, event: MouseEvent): Promise<void> {
  event.preventDefault();
  let fresh = a;
  try {
    fresh = await client.api.getAttachment(a.id);
  } catch {
    // Not reachable now (offline, or no longer a member): try the URL we have.
  }
  const url = client.api.resolveUrl(fresh.url);
  if (!a.mimeType.startsWith("image/")) {
    // In a new tab: audio and video play there, other files download; the chat page stays.
    h("a", { attrs: { href: url, target: "_blank", rel: "noopener" } }).click();
    return;
  }
  const dialog = h(
    "dialog",
    { class: "lightbox", attrs: { "aria-label": a.name } },
    h("img", { attrs: { src: url, alt: a.name } }),
  );
  dialog.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
