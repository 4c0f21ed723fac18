// Uploading a file for a message: declare it (POST /v1/uploads), then PUT its bytes straight to the URL the gateway
// answered (object storage, or the gateway's own file route in embedded mode). Browsers upload with XMLHttpRequest,
// the one API that reports upload progress; elsewhere (Node, React Native without XHR) fetch does it.
import type { UploadTicket } from "@chat-gateway/protocol";
import { ChatApiError } from "./errors.js";
import type { ChatHttpApi } from "./http-api.js";

/** A browser File or Blob, or raw bytes (Node Buffer, Uint8Array). */
export type UploadSource = Blob | Uint8Array;

export interface UploadOptions {
  /** @default the File's name, else "file" */
  name?: string;
  /** @default the Blob's type, else application/octet-stream (which the gateway refuses unless allowed) */
  mimeType?: string;
  /** Bytes sent so far out of the total; called as they go (browsers) or once at the end (fetch). */
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
}

export interface UploadedFile {
  /** Pass it in `attachmentIds` when sending. */
  id: string;
  name: string;
  mimeType: string;
  size: number;
}

export async function uploadFile(
  api: ChatHttpApi,
  file: UploadSource,
  options: UploadOptions = {},
): Promise<UploadedFile> {
  const isBlob = typeof Blob !== "undefined" && file instanceof Blob;
  const size = isBlob ? file.size : (file as Uint8Array).byteLength;
  const name = options.name ?? ((file as { name?: unknown }).name as string | undefined) ?? "file";
  const mimeType = (options.mimeType ?? (isBlob ? file.type : "") ?? "") || "application/octet-stream";
  const ticket = await api.createUpload({ name, mimeType, size });
  const url = api.resolveUrl(ticket.url);
  if (typeof XMLHttpRequest !== "undefined") await putWithXhr(url, ticket, file, size, options);
  else await putWithFetch(url, ticket, file, size, options);
  return { id: ticket.id, name, mimeType, size };
}

function putWithXhr(
  url: string,
  ticket: UploadTicket,
  file: UploadSource,
  size: number,
  options: UploadOptions,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(ticket.method, url);
    for (const [name, value] of Object.entries(ticket.headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => options.onProgress?.(event.loaded, event.lengthComputable ? event.total : size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        options.onProgress?.(size, size);
        resolve();
      } else reject(uploadRefused(xhr.status));
    };
    xhr.onerror = () => reject(new ChatApiError("network_error", "the upload failed"));
    xhr.onabort = () => reject(new ChatApiError("network_error", "the upload was cancelled"));
    options.signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(file as XMLHttpRequestBodyInit);
  });
}

async function putWithFetch(
  url: string,
  ticket: UploadTicket,
  file: UploadSource,
  size: number,
  options: UploadOptions,
): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: ticket.method,
      headers: ticket.headers,
      body: file as BodyInit,
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
    });
  } catch (err) {
    throw new ChatApiError("network_error", err instanceof Error ? err.message : String(err));
  }
  await response.arrayBuffer().catch(() => undefined);
  if (!response.ok) throw uploadRefused(response.status);
  options.onProgress?.(size, size);
}

/** The storage refused the bytes: an expired URL (403) or bytes that do not fit what was declared. */
function uploadRefused(status: number): ChatApiError {
  const code =
    status === 403 ? "forbidden" : status === 413 ? "payload_too_large" : status >= 500 ? "unavailable" : "bad_request";
  return new ChatApiError(code, `the upload was refused (HTTP ${status})`, { status });
}
