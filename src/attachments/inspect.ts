// Checking what an upload really is: the type its first bytes say (magic numbers, via file-type), and for images the
// dimensions, a copy without metadata (EXIF location included) and a thumbnail (sharp).
// Both are loaded at the first upload, not at start-up: most pods' idle memory need not hold libvips.
import { lazyModule } from "../lifecycle/lazy-module.js";

const fileType = lazyModule(() => import("file-type"));
const sharpModule = lazyModule(() => import("sharp"));

/** Bytes read to sniff a type: file-type needs at most 4100 for the formats we allow. */
export const SNIFF_BYTES = 4100;
/** Largest image we decode, in pixels (about 7000 x 7000): bounds the memory one send can take. */
const MAX_PIXELS = 50_000_000;
const THUMBNAIL_SIZE = 320;

// Containers file-type names differently from how clients declare them: an .m4a is audio/mp4 to a browser.
const SAME_TYPE: Record<string, string> = { "audio/x-m4a": "audio/mp4", "audio/m4a": "audio/mp4" };
const canonical = (mime: string): string => SAME_TYPE[mime] ?? mime;

/**
 * Whether the first bytes of a file fit its declared type. Text has no magic number: it must not look like any
 * binary format and must not hold a NUL byte. mp4 audio and video share one container, so either declaration fits.
 */
export async function bytesMatchType(declared: string, head: Uint8Array): Promise<boolean> {
  const sniffed = (await (await fileType()).fileTypeFromBuffer(head))?.mime;
  if (declared.startsWith("text/")) return sniffed === undefined && !head.includes(0);
  if (sniffed === undefined) return false;
  const want = canonical(declared);
  const got = canonical(sniffed);
  const mp4 = (t: string) => t === "video/mp4" || t === "audio/mp4";
  return got === want || (mp4(got) && mp4(want));
}

export interface ProcessedImage {
  /** The image re-encoded in its own format, oriented, without metadata (EXIF, GPS, XMP, comments). */
  body: Buffer;
  width: number;
  height: number;
  thumbnail: Buffer;
  thumbnailType: string;
}

/**
 * Re-encodes an image so what members download carries no metadata: sharp writes none unless asked, and `rotate()`
 * first turns the pixels as the EXIF orientation said, so the picture still looks the same. Animated GIF and WebP keep
 * their frames. Throws on bytes that are not a decodable image.
 */
export async function processImage(input: Buffer, mimeType: string): Promise<ProcessedImage> {
  const sharp = (await sharpModule()).default;
  const meta = await sharp(input, { limitInputPixels: MAX_PIXELS }).metadata();
  const animated = (meta.pages ?? 1) > 1;
  let pipeline = sharp(input, { limitInputPixels: MAX_PIXELS, animated });
  if (!animated) pipeline = pipeline.rotate();
  if (mimeType === "image/jpeg") pipeline = pipeline.jpeg({ quality: 90 });
  else if (mimeType === "image/png") pipeline = pipeline.png();
  else if (mimeType === "image/webp") pipeline = pipeline.webp({ quality: 90 });
  else pipeline = pipeline.gif();
  const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
  const height = animated ? (meta.pageHeight ?? info.height) : info.height;
  const thumbnail = await sharp(data, { limitInputPixels: MAX_PIXELS })
    .resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: "inside", withoutEnlargement: true })
    .webp({ quality: 80 })
    .toBuffer();
  return { body: data, width: info.width, height, thumbnail, thumbnailType: "image/webp" };
}
