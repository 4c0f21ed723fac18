// The rules that decide whether stored bytes are what an upload declared, and the embedded storage's signed URLs.
import assert from "node:assert/strict";
import { test } from "node:test";
import sharp from "sharp";
import { bytesMatchType, processImage } from "../../src/attachments/inspect.js";
import { DiskStorage } from "../../src/attachments/storage.js";

const KEY = "uploads/0b0f2d6e-1c44-4a8b-9a59-4a3f7d1e2c10";

test("magic bytes must say the declared type; text must not look binary", async () => {
  const png = await sharp({ create: { width: 4, height: 4, channels: 3, background: "#000" } })
    .png()
    .toBuffer();
  assert.equal(await bytesMatchType("image/png", png), true);
  assert.equal(await bytesMatchType("image/jpeg", png), false);
  assert.equal(await bytesMatchType("text/plain", png), false);
  assert.equal(await bytesMatchType("image/png", Buffer.from("not an image")), false);
  assert.equal(await bytesMatchType("text/plain", Buffer.from("plain words\n")), true);
  assert.equal(await bytesMatchType("text/plain", Buffer.from([0x61, 0x00, 0x62])), false);
});

test("an image is re-encoded upright, without metadata, with a small thumbnail", async () => {
  const photo = await sharp({ create: { width: 800, height: 400, channels: 3, background: "#c33" } })
    .jpeg()
    .withMetadata({ orientation: 8 })
    .toBuffer();
  const out = await processImage(photo, "image/jpeg");
  assert.deepEqual([out.width, out.height], [400, 800]);
  const meta = await sharp(out.body).metadata();
  assert.equal(meta.exif, undefined);
  assert.equal(meta.format, "jpeg");
  const thumb = await sharp(out.thumbnail).metadata();
  assert.ok(Math.max(thumb.width!, thumb.height!) <= 320);
  await assert.rejects(processImage(Buffer.from("garbage"), "image/png"));
});

test("disk URLs are refused when altered, used for another method, or expired", async () => {
  let now = 1_000_000_000_000;
  const disk = new DiskStorage("/tmp/unused", "secret-for-the-test", () => now);
  const put = await disk.signPut(KEY, { contentType: "image/png", size: 10, expiresInS: 60 });
  const query = (u: string) => Object.fromEntries(new URL(u, "http://x").searchParams);
  assert.deepEqual(disk.verify("PUT", KEY, query(put.url)), {
    method: "PUT",
    key: KEY,
    contentType: "image/png",
    size: 10,
  });
  assert.equal(disk.verify("GET", KEY, query(put.url)), undefined, "another method");
  assert.equal(disk.verify("PUT", KEY, { ...query(put.url), s: "11" }), undefined, "another size");
  assert.equal(disk.verify("PUT", KEY.replace("uploads", "files"), query(put.url)), undefined, "another key");
  assert.equal(disk.verify("PUT", "../etc/passwd", query(put.url)), undefined, "not a key of ours");
  now += 61_000;
  assert.equal(disk.verify("PUT", KEY, query(put.url)), undefined, "expired");
});
