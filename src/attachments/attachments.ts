// Attachments: uploads straight to storage, checked when sent, readable by members only.
//
// Life of a file: POST /v1/uploads records the declared name, type and size (refused at once if too large or of a
// type not allowed) and answers a signed PUT URL for `uploads/<id>`. The client sends the bytes there, never through a
// gateway pod (in embedded mode the gateway's own file route plays the storage). A send naming the upload claims it
// for (sender, clientMsgId), moves the object to `files/<id>`, where no client URL can write, and checks those bytes:
// the real size must be the declared one and the magic bytes must say the declared type; images are re-encoded
// without metadata and get width, height and a thumbnail. Bytes that do not match are deleted with their row and the
// send is refused. The message writer then links the claimed uploads in the message's own statement. Download URLs are
// signed per answer, short-lived, and only ever put in answers to members.
import { randomUUID } from "node:crypto";
import type { Sql } from "../db/client.js";
import { AppError, badRequest, notFound, payloadTooLarge, unavailable } from "../errors.js";
import type { Attachment, Message, UploadTicket } from "@chat-gateway/protocol";
import type { MessageAttachments } from "../chat/ports.js";
import { isUuid } from "../chat/ports.js";
import { bytesMatchType, processImage, SNIFF_BYTES } from "./inspect.js";
import type { ObjectStorage } from "./storage.js";
import { fileKey, IMAGE_TYPES, thumbnailKey, uploadKey } from "./types.js";

export interface AttachmentOptions {
  maxBytes: number;
  allowedTypes: readonly string[];
  uploadUrlTtlS: number;
  downloadUrlTtlS: number;
  /** Unattached uploads older than this are deleted by deleteUnattached(). */
  unattachedTtlS: number;
  /** Unattached uploads (younger than `unattachedTtlS`) one user may hold; past it createUpload is `rate_limited`. */
  maxPending: number;
}

export interface NewUpload {
  name: string;
  mimeType: string;
  size: number;
}

/** Most files per message. */
export const MAX_ATTACHMENTS_PER_MESSAGE = 10;

// A claim older than this is stale (its send died between claim and write; the writer's own deadline is far
// shorter), and another send may take the upload.
const CLAIM_STALE_S = 60;

interface AttachmentRow {
  id: string;
  message_id: string | null;
  name: string;
  mime_type: string;
  size: number;
  storage_key: string;
  thumbnail_key: string | null;
  width: number | null;
  height: number | null;
  verified: boolean;
}

/** The select list for the attachments table aliased `a`. */
const COLUMNS = `a.id::text, a.message_id::text, a.name, a.mime_type, a.size::float8 AS size, a.storage_key,
  a.thumbnail_key, a.width, a.height, a.verified_at IS NOT NULL AS verified`;

/** At most `size` tasks run at once; the others wait their turn, in order. */
class Slots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    // A finishing task hands its slot straight to the next waiter, so a newcomer cannot slip in between.
    if (this.running >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.running--;
    }
  }
}

// Images re-encoded at once per pod: each holds the whole file and its decoded pixels in memory (up to
// UPLOAD_MAX_BYTES and 50 megapixels), so a burst of image sends queues here instead of exhausting the pod's memory.
const IMAGE_SLOTS = 2;

export class Attachments implements MessageAttachments {
  private readonly allowed: Set<string>;
  private readonly imageSlots = new Slots(IMAGE_SLOTS);

  constructor(
    private readonly sql: Sql,
    readonly storage: ObjectStorage,
    private readonly options: AttachmentOptions,
  ) {
    this.allowed = new Set(options.allowedTypes);
  }

  /** Checks the declaration before any byte moves and answers where to put the bytes. */
  async createUpload(uploaderId: string, upload: NewUpload): Promise<UploadTicket> {
    const mimeType = upload.mimeType.toLowerCase();
    if (upload.size > this.options.maxBytes) {
      throw payloadTooLarge(`files may be at most ${this.options.maxBytes} bytes`, {
        field: "size",
        maxBytes: this.options.maxBytes,
      });
    }
    if (!this.allowed.has(mimeType)) {
      throw badRequest(`files of type ${mimeType} are not allowed`, {
        field: "mimeType",
        allowed: [...this.allowed],
      });
    }
    const id = randomUUID();
    // The cap and the insert in one statement. Concurrent requests of one user may each see room for one more, so
    // the cap can be passed by the few they run at once; the per-user rate limit on uploads bounds that.
    const [answer] = await this.sql<{ inserted: number; oldest: Date | string | null }>(
      `WITH pending AS (
         SELECT created_at FROM attachments
          WHERE uploader_id = $2::uuid AND message_id IS NULL
            AND created_at > now() - make_interval(secs => $8::int)
          ORDER BY created_at LIMIT $7
       ), inserted AS (
         INSERT INTO attachments (id, uploader_id, name, mime_type, size, storage_key)
         SELECT $1::uuid, $2::uuid, $3, $4, $5, $6 WHERE (SELECT count(*) FROM pending) < $7
         RETURNING id
       )
       SELECT (SELECT count(*) FROM inserted)::int AS inserted, (SELECT min(created_at) FROM pending) AS oldest`,
      [
        id,
        uploaderId,
        upload.name,
        mimeType,
        upload.size,
        fileKey(id),
        this.options.maxPending,
        this.options.unattachedTtlS,
      ],
    );
    if (answer?.inserted !== 1) {
      // Room comes back when one is sent, or when the oldest expires: the latest a client needs to wait.
      const oldest = answer?.oldest ? new Date(answer.oldest).getTime() : Date.now();
      const expiresAt = oldest + this.options.unattachedTtlS * 1000;
      throw new AppError(
        "rate_limited",
        `at most ${this.options.maxPending} uploads may wait to be sent; send or let some expire first`,
        { retryAfterMs: Math.max(1000, Math.ceil(expiresAt - Date.now())), maxPending: this.options.maxPending },
      );
    }
    const expiresInS = this.options.uploadUrlTtlS;
    const signed = await guard(() =>
      this.storage.signPut(uploadKey(id), { contentType: mimeType, size: upload.size, expiresInS }),
    );
    return { id, ...signed, expiresAt: new Date(Date.now() + expiresInS * 1000).toISOString() };
  }

  async claimForSend(senderId: string, clientMsgId: string, ids: string[]): Promise<void> {
    if (ids.length > MAX_ATTACHMENTS_PER_MESSAGE) {
      throw badRequest(`at most ${MAX_ATTACHMENTS_PER_MESSAGE} attachments per message`, { field: "attachmentIds" });
    }
    if (new Set(ids).size !== ids.length || !ids.every(isUuid)) {
      throw badRequest("attachmentIds must be distinct upload ids", { field: "attachmentIds" });
    }
    // Atomic per row: of two sends naming the same upload, one claims it. A retry of the same send (same clientMsgId)
    // finds its own claim, or the upload already linked to the message it stored.
    const claimed = await this.sql<AttachmentRow>(
      `UPDATE attachments a SET claimed_by = $3, claimed_at = now()
        WHERE id = ANY($1::uuid[]) AND uploader_id = $2::uuid
          AND ((message_id IS NULL AND (claimed_by IS NULL OR claimed_by = $3
                                        OR claimed_at < now() - make_interval(secs => ${CLAIM_STALE_S})))
               OR (message_id IS NOT NULL AND claimed_by = $3))
        RETURNING ${COLUMNS}`,
      [ids, senderId, clientMsgId],
    );
    if (claimed.length !== ids.length) {
      await this.releaseClaim(senderId, clientMsgId, ids);
      throw badRequest("attachmentIds: an upload is unknown, not yours, or already attached", {
        field: "attachmentIds",
      });
    }
    const outcomes = await Promise.allSettled(claimed.filter((r) => !r.verified).map((r) => this.verify(r)));
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
    if (failure !== undefined) {
      await this.releaseClaim(senderId, clientMsgId, ids);
      throw failure.reason;
    }
  }

  async releaseClaim(senderId: string, clientMsgId: string, ids: string[]): Promise<void> {
    await this.sql(
      `UPDATE attachments SET claimed_by = NULL, claimed_at = NULL
        WHERE id = ANY($1::uuid[]) AND uploader_id = $2::uuid AND claimed_by = $3 AND message_id IS NULL`,
      [ids.filter(isUuid), senderId, clientMsgId],
    );
  }

  async fill(messages: Message[]): Promise<void> {
    // A tombstone shows no files, even while its files still wait for deletion.
    const live = messages.filter((m) => m.deletedAt === null);
    if (live.length === 0) return;
    const rows = await this.sql<AttachmentRow>(
      `SELECT ${COLUMNS} FROM attachments a WHERE a.message_id = ANY($1::uuid[]) ORDER BY a.created_at, a.id`,
      [live.map((m) => m.id)],
    );
    if (rows.length === 0) return;
    const byMessage = new Map<string, Attachment[]>();
    const views = await Promise.all(rows.map((row) => this.view(row)));
    rows.forEach((row, i) => {
      let list = byMessage.get(row.message_id!);
      if (list === undefined) byMessage.set(row.message_id!, (list = []));
      list.push(views[i]!);
    });
    for (const message of live) message.attachments = byMessage.get(message.id) ?? [];
  }

  /** An attached file with fresh URLs, for a member of its conversation; `not_found` for anyone else. */
  async forMember(viewerId: string, attachmentId: string): Promise<Attachment> {
    if (!isUuid(attachmentId)) throw notFound("attachment");
    const [row] = await this.sql<AttachmentRow>(
      `SELECT ${COLUMNS}
         FROM attachments a
         JOIN messages m ON m.id = a.message_id AND m.deleted_at IS NULL
         JOIN members mb ON mb.conversation_id = m.conversation_id AND mb.user_id = $2::uuid
        WHERE a.id = $1::uuid`,
      [attachmentId, viewerId],
    );
    if (row === undefined) throw notFound("attachment");
    return this.view(row);
  }

  /** Deletes the files of a message and their rows (for the message delete path). Returns how many. */
  async deleteOfMessage(messageId: string): Promise<number> {
    const rows = await this.sql<AttachmentRow>(`SELECT ${COLUMNS} FROM attachments a WHERE a.message_id = $1::uuid`, [
      messageId,
    ]);
    return this.deleteRows(rows);
  }

  /**
   * Deletes up to `limit` uploads never attached to a message within the configured time, and files of deleted
   * messages whose deletion right after the delete failed (storage away). Returns how many.
   */
  async deleteUnattached(limit = 500): Promise<number> {
    const rows = await this.sql<AttachmentRow>(
      `(SELECT ${COLUMNS} FROM attachments a
         WHERE a.message_id IS NULL AND a.created_at < now() - make_interval(secs => $1::int)
           AND (a.claimed_at IS NULL OR a.claimed_at < now() - make_interval(secs => ${CLAIM_STALE_S}))
         ORDER BY a.created_at LIMIT $2)
       UNION ALL
       (SELECT ${COLUMNS} FROM attachments a JOIN messages m ON m.id = a.message_id
         WHERE m.deleted_at IS NOT NULL LIMIT $2)`,
      [this.options.unattachedTtlS, limit],
    );
    return this.deleteRows(rows);
  }

  /**
   * Deletes every file a user uploaded, attached or not, in batches (account deletion, after its commit: their
   * messages are tombstones by then). Returns how many.
   */
  async deleteOfUploader(uploaderId: string, batch = 500): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = await this.sql<AttachmentRow>(
        `SELECT ${COLUMNS} FROM attachments a WHERE a.uploader_id = $1::uuid LIMIT $2`,
        [uploaderId, batch],
      );
      total += await this.deleteRows(rows);
      if (rows.length < batch) return total;
    }
  }

  /** Objects first, then rows: a failure in between leaves rows whose next deletion finds nothing to delete. */
  private async deleteRows(rows: AttachmentRow[]): Promise<number> {
    if (rows.length === 0) return 0;
    await guard(() => this.storage.delete(rows.flatMap((r) => keysOf(r))));
    await this.sql(`DELETE FROM attachments WHERE id = ANY($1::uuid[])`, [rows.map((r) => r.id)]);
    return rows.length;
  }

  /**
   * Moves the upload where its uploader cannot write any more, then checks those bytes. A mismatch deletes the bytes
   * and the row; nothing uploaded yet leaves the row for a later send.
   */
  private async verify(row: AttachmentRow): Promise<void> {
    const refuse = async (problem: string): Promise<never> => {
      await this.deleteRows([row]);
      throw badRequest(`attachment ${row.id}: ${problem}`, { field: "attachmentIds", attachmentId: row.id });
    };
    const size = await guard(async () => {
      const uploaded = await this.storage.size(uploadKey(row.id));
      if (uploaded === undefined) return this.storage.size(row.storage_key);
      await this.storage.copy(uploadKey(row.id), row.storage_key);
      await this.storage.delete([uploadKey(row.id)]);
      return this.storage.size(row.storage_key);
    });
    if (size === undefined) {
      throw badRequest(`attachment ${row.id}: nothing was uploaded yet`, {
        field: "attachmentIds",
        attachmentId: row.id,
      });
    }
    if (size !== Number(row.size)) return refuse(`${size} bytes stored, ${row.size} declared`);
    const head = await guard(() => this.storage.readStart(row.storage_key, SNIFF_BYTES));
    if (!(await bytesMatchType(row.mime_type, head))) return refuse(`the bytes are not ${row.mime_type}`);
    if (!IMAGE_TYPES.has(row.mime_type)) {
      await this.sql(`UPDATE attachments SET verified_at = now() WHERE id = $1::uuid`, [row.id]);
      return;
    }
    const image = await this.imageSlots.run(async () => {
      const original = await guard(() => this.storage.read(row.storage_key));
      return processImage(original, row.mime_type).catch(() => undefined);
    });
    if (image === undefined) return refuse(`the bytes are not a readable ${row.mime_type} image`);
    await guard(async () => {
      await this.storage.write(row.storage_key, image.body, row.mime_type);
      await this.storage.write(thumbnailKey(row.id), image.thumbnail, image.thumbnailType);
    });
    // The size members download is the re-encoded one.
    await this.sql(
      `UPDATE attachments SET verified_at = now(), size = $2, width = $3, height = $4, thumbnail_key = $5
        WHERE id = $1::uuid`,
      [row.id, image.body.length, image.width, image.height, thumbnailKey(row.id)],
    );
    Object.assign(row, { size: image.body.length, width: image.width, height: image.height });
  }

  private async view(row: AttachmentRow): Promise<Attachment> {
    const expiresInS = this.options.downloadUrlTtlS;
    const inline = /^(image|audio|video)\//.test(row.mime_type);
    const [url, thumbnailUrl] = await guard(() =>
      Promise.all([
        this.storage.signGet(row.storage_key, { expiresInS, contentType: row.mime_type, fileName: row.name, inline }),
        row.thumbnail_key === null
          ? undefined
          : this.storage.signGet(row.thumbnail_key, {
              expiresInS,
              contentType: "image/webp",
              fileName: `${row.name}.thumbnail.webp`,
              inline: true,
            }),
      ]),
    );
    return {
      id: row.id,
      name: row.name,
      mimeType: row.mime_type,
      size: Number(row.size),
      url,
      ...(row.width !== null ? { width: row.width } : {}),
      ...(row.height !== null ? { height: row.height } : {}),
      ...(thumbnailUrl !== undefined ? { thumbnailUrl } : {}),
    };
  }
}

function keysOf(row: AttachmentRow): string[] {
  return [uploadKey(row.id), row.storage_key, ...(row.thumbnail_key !== null ? [row.thumbnail_key] : [])];
}

/** Storage failures (S3 down, a full disk) are the dependency's, not the request's: `unavailable`. */
async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw unavailable("file storage is unavailable, retry later");
  }
}

/**
 * Deletes the files of a deleted message and their rows. For the message delete path (another module's), which
 * should call it after its delete committed; failures are the caller's to log (the rows stay, so a retry works).
 */
export function deleteAttachmentsOfMessage(attachments: Attachments, messageId: string): Promise<number> {
  return attachments.deleteOfMessage(messageId);
}
