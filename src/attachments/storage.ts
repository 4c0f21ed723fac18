// Where attachment bytes live, behind one interface: S3-compatible object storage (AWS S3, MinIO, R2) when S3_BUCKET
// is set, else files under DATA_DIR/uploads served by the gateway itself (embedded mode). Either way a client gets a
// short-lived signed URL and moves the bytes itself; the rest of the code never knows which storage it talks to.
import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { createWriteStream } from "node:fs";
import { copyFile, mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { S3Client } from "@aws-sdk/client-s3";
import { lazyModule } from "../lifecycle/lazy-module.js";

// The AWS SDK is loaded at the first storage call, not at start-up: tens of megabytes a pod without S3_BUCKET (and an
// S3 pod that is only idle) does not need to hold.
const s3Sdk = lazyModule(() => import("@aws-sdk/client-s3"));
const presigner = lazyModule(() => import("@aws-sdk/s3-request-presigner"));

export interface SignedPut {
  url: string;
  method: "PUT";
  headers: Record<string, string>;
}

export interface DownloadOptions {
  expiresInS: number;
  contentType: string;
  /** The name a browser saves the file as. */
  fileName: string;
  /** Shown in the browser (images, audio, video) rather than downloaded. */
  inline: boolean;
}

export interface ObjectStorage {
  readonly kind: "s3" | "disk";
  /** A URL the client PUTs exactly `size` bytes of `contentType` to, valid for `expiresInS`. */
  signPut(key: string, options: { contentType: string; size: number; expiresInS: number }): Promise<SignedPut>;
  signGet(key: string, options: DownloadOptions): Promise<string>;
  /** The stored size in bytes, or undefined when there is no such object. */
  size(key: string): Promise<number | undefined>;
  /** The first `length` bytes (fewer if the object is shorter). */
  readStart(key: string, length: number): Promise<Uint8Array>;
  read(key: string): Promise<Buffer>;
  write(key: string, body: Buffer, contentType: string): Promise<void>;
  copy(from: string, to: string): Promise<void>;
  /** Deletes these objects; missing ones are not an error. */
  delete(keys: string[]): Promise<void>;
}

export interface S3Settings {
  endpoint?: string | undefined;
  bucket: string;
  region: string;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  forcePathStyle: boolean;
}

/** RFC 6266 Content-Disposition with the name in both forms (ASCII fallback and UTF-8). */
export function contentDisposition(fileName: string, inline: boolean): string {
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `${inline ? "inline" : "attachment"}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(fileName)}`;
}

export class S3Storage implements ObjectStorage {
  readonly kind = "s3";
  private readonly bucket: string;
  /** The SDK and one client, made at the first call. */
  private readonly sdk: () => Promise<{ client: S3Client; s3: Awaited<ReturnType<typeof s3Sdk>> }>;

  constructor(settings: S3Settings) {
    this.bucket = settings.bucket;
    this.sdk = lazyModule(async () => {
      const s3 = await s3Sdk();
      return { s3, client: S3Storage.client(s3, settings) };
    });
  }

  private static client(s3: Awaited<ReturnType<typeof s3Sdk>>, settings: S3Settings): S3Client {
    return new s3.S3Client({
      region: settings.region,
      ...(settings.endpoint !== undefined ? { endpoint: settings.endpoint } : {}),
      forcePathStyle: settings.forcePathStyle,
      ...(settings.accessKeyId !== undefined && settings.secretAccessKey !== undefined
        ? { credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } }
        : {}),
      // Checksums only where S3 requires them: a presigned PUT with a checksum of bytes we have not seen cannot work,
      // and several S3-compatible servers do not know the newer checksum headers.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
  }

  async signPut(key: string, o: { contentType: string; size: number; expiresInS: number }): Promise<SignedPut> {
    const { client, s3 } = await this.sdk();
    const { getSignedUrl } = await presigner();
    const command = new s3.PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ContentType: o.contentType,
      ContentLength: o.size,
    });
    // Content type and length are part of the signature: S3 refuses a PUT of other bytes' length or type.
    const url = await getSignedUrl(client, command, {
      expiresIn: o.expiresInS,
      signableHeaders: new Set(["content-type", "content-length"]),
    });
    return { url, method: "PUT", headers: { "content-type": o.contentType } };
  }

  async signGet(key: string, o: DownloadOptions): Promise<string> {
    const { client, s3 } = await this.sdk();
    const { getSignedUrl } = await presigner();
    const command = new s3.GetObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ResponseContentType: o.contentType,
      ResponseContentDisposition: contentDisposition(o.fileName, o.inline),
    });
    return getSignedUrl(client, command, { expiresIn: o.expiresInS });
  }

  async size(key: string): Promise<number | undefined> {
    const { client, s3 } = await this.sdk();
    try {
      const head = await client.send(new s3.HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return head.ContentLength ?? 0;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async readStart(key: string, length: number): Promise<Uint8Array> {
    const { client, s3 } = await this.sdk();
    try {
      const answer = await client.send(
        new s3.GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=0-${length - 1}` }),
      );
      return (await answer.Body?.transformToByteArray()) ?? new Uint8Array();
    } catch (err) {
      // An empty object has no byte 0: S3 answers 416 to any range.
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 416) {
        return new Uint8Array();
      }
      throw err;
    }
  }

  async read(key: string): Promise<Buffer> {
    const { client, s3 } = await this.sdk();
    const answer = await client.send(new s3.GetObjectCommand({ Bucket: this.bucket, Key: key }));
    return Buffer.from((await answer.Body?.transformToByteArray()) ?? new Uint8Array());
  }

  async write(key: string, body: Buffer, contentType: string): Promise<void> {
    const { client, s3 } = await this.sdk();
    await client.send(new s3.PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }));
  }

  async copy(from: string, to: string): Promise<void> {
    const { client, s3 } = await this.sdk();
    await client.send(
      new s3.CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: `${this.bucket}/${encodeURI(from)}` }),
    );
  }

  async delete(keys: string[]): Promise<void> {
    const { client, s3 } = await this.sdk();
    // One request per key: DeleteObjects needs a Content-MD5 some S3-compatible servers handle differently, and a
    // message has at most ten files.
    await Promise.all(keys.map((Key) => client.send(new s3.DeleteObjectCommand({ Bucket: this.bucket, Key }))));
  }
}

function isMissing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === "NotFound" || e.name === "NoSuchKey" || e.$metadata?.httpStatusCode === 404;
}

/** Keys the disk storage accepts: our own three prefixes and a UUID, so a URL can never name another path. */
const DISK_KEY = /^(uploads|files|thumbnails)\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const isDiskKey = (key: string): boolean => DISK_KEY.test(key);

/** What a verified disk URL allows. */
export type DiskGrant =
  | { method: "PUT"; key: string; contentType: string; size: number }
  | { method: "GET"; key: string; contentType: string; fileName: string; inline: boolean };

/**
 * Files under one directory, with URLs the gateway serves (http/routes/file-routes.ts): HMAC-signed and expiring like
 * a presigned S3 URL, and relative to the gateway (`/files/<key>?...`).
 */
export class DiskStorage implements ObjectStorage {
  readonly kind = "disk";

  constructor(
    private readonly root: string,
    private readonly secret: string,
    private readonly now: () => number = Date.now,
  ) {}

  signPut(key: string, o: { contentType: string; size: number; expiresInS: number }): Promise<SignedPut> {
    const params = { m: "PUT", t: o.contentType, s: String(o.size), e: this.expiry(o.expiresInS) };
    return Promise.resolve({
      url: this.signedUrl(key, params),
      method: "PUT",
      headers: { "content-type": o.contentType },
    });
  }

  signGet(key: string, o: DownloadOptions): Promise<string> {
    const params = { m: "GET", t: o.contentType, n: o.fileName, i: o.inline ? "1" : "0", e: this.expiry(o.expiresInS) };
    return Promise.resolve(this.signedUrl(key, params));
  }

  /** The grant of a URL the gateway receives, or undefined when it is forged, altered or expired. */
  verify(method: string, key: string, query: Record<string, string | undefined>): DiskGrant | undefined {
    if (!isDiskKey(key) || query.m !== method || query.sig === undefined) return undefined;
    const { sig, ...params } = query;
    const expected = Buffer.from(this.signature(key, params));
    const given = Buffer.from(sig);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    if (!(Number(params.e) * 1000 > this.now())) return undefined;
    if (method === "PUT") return { method, key, contentType: params.t ?? "", size: Number(params.s) };
    return { method: "GET", key, contentType: params.t ?? "", fileName: params.n ?? "file", inline: params.i === "1" };
  }

  async size(key: string): Promise<number | undefined> {
    try {
      return (await stat(this.path(key))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async readStart(key: string, length: number): Promise<Uint8Array> {
    const file = await open(this.path(key), "r");
    try {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await file.read(buffer, 0, length, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
  }

  read(key: string): Promise<Buffer> {
    return readFile(this.path(key));
  }

  async write(key: string, body: Buffer): Promise<void> {
    await this.atomically(key, (tmp) => writeFile(tmp, body, { mode: 0o600 }));
  }

  /**
   * Writes a client's upload: at most `maxBytes` (more is cut off and refused), visible only once complete.
   * Returns the bytes written.
   */
  async writeStream(key: string, body: Readable, maxBytes: number): Promise<number> {
    let written = 0;
    await this.atomically(key, async (tmp) => {
      const out = createWriteStream(tmp, { mode: 0o600 });
      await pipeline(
        body,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            written += chunk.length;
            if (written > maxBytes) throw new Error("upload larger than its declared size");
            yield chunk;
          }
        },
        out,
      );
    });
    return written;
  }

  async copy(from: string, to: string): Promise<void> {
    await this.atomically(to, (tmp) => copyFile(this.path(from), tmp));
  }

  async delete(keys: string[]): Promise<void> {
    await Promise.all(keys.map((key) => rm(this.path(key), { force: true })));
  }

  /** An absolute path for a checked key. */
  path(key: string): string {
    if (!isDiskKey(key)) throw new Error("invalid storage key");
    return join(this.root, key);
  }

  private async atomically(key: string, produce: (tmp: string) => Promise<void>): Promise<void> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    const tmp = `${target}.${randomUUID()}.part`;
    try {
      await produce(tmp);
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  private expiry(expiresInS: number): string {
    return String(Math.floor(this.now() / 1000) + expiresInS);
  }

  private signedUrl(key: string, params: Record<string, string>): string {
    const query = new URLSearchParams({ ...params, sig: this.signature(key, params) });
    return `/files/${key}?${query.toString()}`;
  }

  private signature(key: string, params: Record<string, string | undefined>): string {
    const canonical = [
      key,
      ...Object.keys(params)
        .sort()
        .map((k) => `${k}=${params[k] ?? ""}`),
    ].join("\n");
    return createHmac("sha256", this.secret).update(canonical).digest("base64url");
  }
}

/** The storage the configuration names: S3 when S3_BUCKET is set, else DATA_DIR/uploads. */
export function createStorage(config: {
  S3_BUCKET?: string | undefined;
  S3_ENDPOINT?: string | undefined;
  S3_REGION: string;
  S3_ACCESS_KEY_ID?: string | undefined;
  S3_SECRET_ACCESS_KEY?: string | undefined;
  S3_FORCE_PATH_STYLE: boolean;
  DATA_DIR: string;
  JWT_SECRET: string;
}): ObjectStorage {
  if (config.S3_BUCKET !== undefined) {
    return new S3Storage({
      endpoint: config.S3_ENDPOINT,
      bucket: config.S3_BUCKET,
      region: config.S3_REGION,
      accessKeyId: config.S3_ACCESS_KEY_ID,
      secretAccessKey: config.S3_SECRET_ACCESS_KEY,
      forcePathStyle: config.S3_FORCE_PATH_STYLE,
    });
  }
  // Its own key, derived from the JWT secret, so a file URL signature can never pass for anything else.
  const secret = createHmac("sha256", config.JWT_SECRET).update("attachment-urls").digest("hex");
  return new DiskStorage(join(config.DATA_DIR, "uploads"), secret);
}

/** The origin download and upload URLs point at (for the page's CSP), or undefined for the gateway's own. */
export function storageOrigin(config: {
  S3_BUCKET?: string | undefined;
  S3_ENDPOINT?: string | undefined;
  S3_REGION: string;
  S3_FORCE_PATH_STYLE: boolean;
}): string | undefined {
  if (config.S3_BUCKET === undefined) return undefined;
  if (config.S3_ENDPOINT === undefined) return `https://${config.S3_BUCKET}.s3.${config.S3_REGION}.amazonaws.com`;
  const endpoint = new URL(config.S3_ENDPOINT);
  if (config.S3_FORCE_PATH_STYLE) return endpoint.origin;
  return `${endpoint.protocol}//${config.S3_BUCKET}.${endpoint.host}`;
}
