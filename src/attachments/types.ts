// Attachment constants shared by the configuration and the attachment modules.

/** What UPLOAD_ALLOWED_TYPES allows when unset: common images, PDF, plain text, zip, and mp4 audio and video. */
export const DEFAULT_UPLOAD_TYPES = [
  "image/jpeg",
  "image/png",
  "image/gif",
  "image/webp",
  "application/pdf",
  "text/plain",
  "application/zip",
  "audio/mp4",
  "video/mp4",
] as const;

/** Images we read (width, height, thumbnail) and re-encode without metadata. */
export const IMAGE_TYPES = new Set(["image/jpeg", "image/png", "image/gif", "image/webp"]);

/**
 * Storage keys. `uploads/` is where a client's upload URL writes; a send moves the object to `files/`, which no client
 * URL can write, before its bytes are checked, so the checked bytes are the ones members download.
 */
export const uploadKey = (id: string): string => `uploads/${id}`;
export const fileKey = (id: string): string => `files/${id}`;
export const thumbnailKey = (id: string): string => `thumbnails/${id}`;
