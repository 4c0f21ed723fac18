// Attachments end to end, against a real S3-compatible server (s3rver, path-style) and against the embedded disk
// storage (PGlite, files under DATA_DIR/uploads served by the gateway): the same tests for both.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import sharp from "sharp";
import { createStorage, type ObjectStorage } from "../../src/attachments/storage.js";
import { ChatHttpApi } from "../../packages/sdk/src/http-api.js";
import { uploadFile } from "../../packages/sdk/src/uploads.js";
import { fileKey, thumbnailKey, uploadKey } from "../../src/attachments/types.js";
import type { Attachment, AuthResult, Conversation, Message, UploadTicket } from "@chat-gateway/protocol";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import {
  api,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  registerUser,
  request,
  waitForEvent,
} from "../helpers/clients.js";
import { type S3Server, startS3Server } from "../helpers/s3-server.js";

const MAX_BYTES = 200_000;
/** EXIF tag 0x8825 (little-endian), the pointer to the GPS data. */
const GPS_IFD_POINTER = Buffer.from([0x25, 0x88]);
const URL_TTL_S = 3;

/** A 64x48 JPEG that says "rotate 90°" and where it was taken (GPS), as a phone writes it. */
async function photoWithLocation(): Promise<Buffer> {
  return sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 30, b: 30 } } })
    .jpeg()
    .withMetadata({ orientation: 6 })
    .withExifMerge({
      IFD3: { GPSLatitudeRef: "N", GPSLatitude: "48/1 51/1 24/1", GPSLongitudeRef: "E", GPSLongitude: "2/1 21/1 3/1" },
    })
    .toBuffer();
}

for (const mode of ["s3", "disk"] as const) {
  describe(`attachments (${mode} storage)`, () => {
    let s3: S3Server | undefined;
    let cluster: Cluster;
    let url: string;
    let storage: ObjectStorage;
    let alice: AuthResult, bob: AuthResult, carol: AuthResult, dave: AuthResult;
    let conversationId: string;
    let aliceDevice: Device, bobDevice: Device;
    const absolute = (u: string) => new URL(u, url).toString();

    const createUpload = (user: AuthResult, body: unknown) =>
      api<{ upload: UploadTicket; error?: { code: string } }>(url, "POST", "/v1/uploads", {
        token: user.accessToken,
        body,
      });

    /** Through the SDK (its fetch path: Node has no XMLHttpRequest). */
    async function upload(user: AuthResult, bytes: Buffer, mimeType: string, name = "file"): Promise<string> {
      const sdk = new ChatHttpApi({ baseUrl: url, getAccessToken: async () => user.accessToken });
      let progress = 0;
      const uploaded = await uploadFile(sdk, bytes, { name, mimeType, onProgress: (sent) => (progress = sent) });
      assert.equal(progress, bytes.length);
      return uploaded.id;
    }

    const send = (device: Device, payload: Record<string, unknown>) =>
      request(device, "message:send", {
        conversationId,
        clientMsgId: randomUUID(),
        content: "",
        ...payload,
      });

    before(async () => {
      s3 = mode === "s3" ? await startS3Server() : undefined;
      cluster = await startGateways(1, {
        adapter: "memory",
        embedded: mode === "disk",
        env: {
          ...s3?.env,
          UPLOAD_MAX_BYTES: String(MAX_BYTES),
          ATTACHMENT_URL_TTL_S: String(URL_TTL_S),
        },
      });
      url = cluster.urls[0]!;
      const env = cluster.env;
      storage = createStorage({
        S3_BUCKET: env.S3_BUCKET,
        S3_ENDPOINT: env.S3_ENDPOINT,
        S3_REGION: env.S3_REGION ?? "us-east-1",
        S3_ACCESS_KEY_ID: env.S3_ACCESS_KEY_ID,
        S3_SECRET_ACCESS_KEY: env.S3_SECRET_ACCESS_KEY,
        S3_FORCE_PATH_STYLE: env.S3_FORCE_PATH_STYLE === "on",
        DATA_DIR: env.DATA_DIR ?? "",
        JWT_SECRET: env.JWT_SECRET!,
      });
      const users = await Promise.all([1, 2, 3, 4].map(() => registerUser(url)));
      [alice, bob, carol, dave] = users as [AuthResult, AuthResult, AuthResult, AuthResult];
      ({ id: conversationId } = await createConversation(url, alice.accessToken, {
        type: "group",
        title: "files",
        memberIds: [bob.user.id, carol.user.id],
      }));
      [aliceDevice, bobDevice] = await Promise.all([
        connectDevice(url, alice.accessToken),
        connectDevice(url, bob.accessToken),
      ]);
    });

    after(async () => {
      aliceDevice?.close();
      bobDevice?.close();
      await cluster?.cleanup();
      await s3?.stop();
    });

    test("an image goes up by its URL, is sent, and another member sees and downloads it without its location", async () => {
      const original = await photoWithLocation();
      const originalMeta = await sharp(original).metadata();
      assert.equal(originalMeta.orientation, 6);
      assert.ok(originalMeta.exif?.includes(GPS_IFD_POINTER), "the test photo says where it was taken");
      const id = await upload(alice, original, "image/jpeg", "holiday.jpg");

      const seen = waitForEvent(bobDevice, "message:new", (m) => m.conversationId === conversationId);
      const ack = await send(aliceDevice, { content: "", attachmentIds: [id] });
      assert.ok(ack.ok, JSON.stringify(ack));
      const [sent] = ack.message.attachments;
      // The EXIF orientation was applied: the 64x48 picture stands upright.
      assert.deepEqual(
        { id: sent!.id, name: sent!.name, mimeType: sent!.mimeType, width: sent!.width, height: sent!.height },
        { id, name: "holiday.jpg", mimeType: "image/jpeg", width: 48, height: 64 },
      );
      const received = await seen;
      assert.equal(received.id, ack.message.id);
      const attachment = received.attachments[0]!;
      assert.ok(attachment.thumbnailUrl, "a thumbnail URL");

      const file = await fetch(absolute(attachment.url));
      assert.equal(file.status, 200);
      assert.equal(file.headers.get("content-type"), "image/jpeg");
      const downloaded = Buffer.from(await file.arrayBuffer());
      assert.equal(downloaded.length, attachment.size);
      const meta = await sharp(downloaded).metadata();
      assert.equal(meta.exif, undefined, "no EXIF (and so no GPS) in what members download");
      assert.deepEqual([meta.width, meta.height], [48, 64]);

      const thumb = await fetch(absolute(attachment.thumbnailUrl));
      assert.equal(thumb.status, 200);
      const thumbMeta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
      assert.equal(thumbMeta.format, "webp");

      // History and sync carry the same attachment, with URLs of their own.
      const history = await api<{ messages: Message[] }>(url, "GET", `/v1/conversations/${conversationId}/messages`, {
        token: bob.accessToken,
      });
      const inHistory = history.body.messages.find((m) => m.id === ack.message.id)!;
      assert.equal(inHistory.attachments[0]!.id, id);
      const sync = await request(bobDevice, "sync", { cursors: {} });
      assert.equal(sync.messages.find((m) => m.id === ack.message.id)!.attachments[0]!.width, 48);
      const conversation = await api<{ conversation: Conversation }>(
        url,
        "GET",
        `/v1/conversations/${conversationId}`,
        {
          token: bob.accessToken,
        },
      );
      assert.equal(conversation.body.conversation.lastMessage?.attachments[0]?.id, id);
    });

    test("a message without attachments carries an empty list; an empty one without files is refused", async () => {
      const ack = await send(aliceDevice, { content: "just text" });
      assert.ok(ack.ok);
      assert.deepEqual(ack.message.attachments, []);
      const empty = await send(aliceDevice, { content: "  " });
      assert.ok(!empty.ok && empty.error.code === "bad_request");
    });

    test("the HTTP send takes attachmentIds too, with text", async () => {
      const id = await upload(alice, Buffer.from("hello, plain text\n"), "text/plain", "notes.txt");
      const res = await api<{ message: Message }>(url, "POST", `/v1/conversations/${conversationId}/messages`, {
        token: alice.accessToken,
        body: { clientMsgId: randomUUID(), content: "see notes", attachmentIds: [id] },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const attachment = res.body.message.attachments[0]!;
      assert.equal(attachment.mimeType, "text/plain");
      assert.equal(attachment.width, undefined);
      const file = await fetch(absolute(attachment.url));
      assert.equal(await file.text(), "hello, plain text\n");
      assert.match(file.headers.get("content-disposition") ?? "", /^attachment;/);
    });

    test("bytes that are not what was declared are refused at send, and deleted", async () => {
      const id = await upload(alice, Buffer.from("this is no picture at all"), "image/png", "fake.png");
      const ack = await send(aliceDevice, { attachmentIds: [id] });
      assert.ok(!ack.ok && ack.error.code === "bad_request", JSON.stringify(ack));
      assert.equal(await storage.size(uploadKey(id)), undefined);
      assert.equal(await storage.size(fileKey(id)), undefined);
      // Its row is gone too: naming it again is refused as unknown.
      const again = await send(aliceDevice, { attachmentIds: [id] });
      assert.ok(!again.ok && again.error.code === "bad_request");
      // A failed send stored nothing.
      const history = await api<{ messages: Message[] }>(url, "GET", `/v1/conversations/${conversationId}/messages`, {
        token: alice.accessToken,
      });
      assert.ok(history.body.messages.every((m) => m.attachments.every((a) => a.id !== id)));
    });

    test("too large or a type not allowed is refused before any byte moves", async () => {
      const big = await createUpload(alice, { name: "big.zip", mimeType: "application/zip", size: MAX_BYTES + 1 });
      assert.equal(big.status, 413);
      assert.equal(big.body.error?.code, "payload_too_large");
      const exe = await createUpload(alice, { name: "x.exe", mimeType: "application/x-msdownload", size: 10 });
      assert.equal(exe.status, 400);
      assert.equal(exe.body.error?.code, "bad_request");
    });

    test("uploads are the sender's, attached once, at most ten", async () => {
      const bytes = Buffer.from("once\n");
      const id = await upload(alice, bytes, "text/plain");
      const byBob = await send(bobDevice, { attachmentIds: [id] });
      assert.ok(!byBob.ok && byBob.error.code === "bad_request", "someone else's upload");
      const first = await send(aliceDevice, { attachmentIds: [id] });
      assert.ok(first.ok, JSON.stringify(first));
      const second = await send(aliceDevice, { attachmentIds: [id] });
      assert.ok(!second.ok && second.error.code === "bad_request", "already attached");
      const eleven = await send(aliceDevice, { attachmentIds: Array.from({ length: 11 }, () => randomUUID()) });
      assert.ok(!eleven.ok && eleven.error.code === "bad_request");
    });

    test("a retried send (same clientMsgId) answers the stored message with its attachments", async () => {
      const id = await upload(alice, Buffer.from("retry\n"), "text/plain");
      const clientMsgId = randomUUID();
      const first = await send(aliceDevice, { clientMsgId, attachmentIds: [id] });
      const retry = await send(aliceDevice, { clientMsgId, attachmentIds: [id] });
      assert.ok(first.ok && retry.ok);
      assert.equal(retry.message.id, first.message.id);
      assert.equal(retry.message.attachments[0]!.id, id);
    });

    test("embedded storage: an upload URL writes once, and a forged or altered one writes nothing", async (t) => {
      if (mode !== "disk") return t.skip("the gateway's own file route");
      const bytes = Buffer.from("write once\n");
      const created = await createUpload(alice, { name: "once.txt", mimeType: "text/plain", size: bytes.length });
      const { id, url: putUrl, headers } = created.body.upload;
      const put = (target: string, body: Buffer = bytes) =>
        fetch(absolute(target), { method: "PUT", headers, body: new Uint8Array(body) });
      assert.equal((await put(putUrl.replace(/sig=[^&]+/, "sig=forged"))).status, 403);
      assert.equal((await put(putUrl.replace(/([?&]s=)\d+/, "$199"))).status, 403, "another size");
      assert.equal((await put(putUrl, Buffer.from("short"))).status, 400, "fewer bytes than declared");
      assert.equal((await put(putUrl)).status, 200);
      assert.equal((await put(putUrl)).status, 409);
      const ack = await send(aliceDevice, { attachmentIds: [id] });
      assert.ok(ack.ok);
      assert.equal((await put(putUrl)).status, 409, "not even after the send moved it");
    });

    test("only members can read: not_found for others, and a former member's URL dies with its expiry", async () => {
      const id = await upload(alice, Buffer.from("members only\n"), "text/plain");
      const ack = await send(aliceDevice, { attachmentIds: [id] });
      assert.ok(ack.ok);

      const byDave = await api(url, "GET", `/v1/attachments/${id}`, { token: dave.accessToken });
      assert.equal(byDave.status, 404);
      const byCarol = await api<{ attachment: Attachment }>(url, "GET", `/v1/attachments/${id}`, {
        token: carol.accessToken,
      });
      assert.equal(byCarol.status, 200);
      const carolsUrl = absolute(byCarol.body.attachment.url);
      assert.equal((await fetch(carolsUrl)).status, 200);

      const removed = await api(url, "DELETE", `/v1/conversations/${conversationId}/members/${carol.user.id}`, {
        token: carol.accessToken,
      });
      assert.equal(removed.status, 204);
      const reissue = await api(url, "GET", `/v1/attachments/${id}`, { token: carol.accessToken });
      assert.equal(reissue.status, 404);
      // Her old URL works until it expires (URL_TTL_S), then never again.
      await eventually(async () => (await fetch(carolsUrl)).status === 403, (URL_TTL_S + 5) * 1000, "URL expiry");
    });

    test("a deleted message's files are deleted: its URLs answer 404, the objects and rows are gone", async () => {
      const id = await upload(alice, await photoWithLocation(), "image/jpeg", "gone.jpg");
      const ack = await send(aliceDevice, { attachmentIds: [id] });
      assert.ok(ack.ok, JSON.stringify(ack));
      const { url: fileUrl, thumbnailUrl } = ack.message.attachments[0]!;
      assert.equal((await fetch(absolute(fileUrl))).status, 200);
      assert.equal((await storage.size(thumbnailKey(id))) !== undefined, true);

      const updated = waitForEvent(bobDevice, "message:updated", (m) => m.id === ack.message.id);
      const deleted = await request(aliceDevice, "message:delete", {
        conversationId,
        messageId: ack.message.id,
      });
      assert.ok(deleted.ok, JSON.stringify(deleted));
      assert.deepEqual(deleted.message.attachments, []);
      assert.deepEqual((await updated).attachments, []);

      await eventually(async () => (await storage.size(fileKey(id))) === undefined, 10_000, "file deleted");
      assert.equal(await storage.size(thumbnailKey(id)), undefined);
      assert.equal((await fetch(absolute(fileUrl))).status, 404, "the old download URL stops working");
      assert.equal((await fetch(absolute(thumbnailUrl!))).status, 404);
      const byBob = await api(url, "GET", `/v1/attachments/${id}`, { token: bob.accessToken });
      assert.equal(byBob.status, 404);
      // Every answer shows the tombstone without files.
      const history = await api<{ messages: Message[] }>(url, "GET", `/v1/conversations/${conversationId}/messages`, {
        token: bob.accessToken,
      });
      assert.deepEqual(history.body.messages.find((m) => m.id === ack.message.id)!.attachments, []);
      const sync = await request(bobDevice, "sync", { cursors: {} });
      const inSync = sync.messages.find((m) => m.id === ack.message.id);
      assert.deepEqual(inSync?.attachments ?? [], []);
    });
  });

  describe(`unattached uploads (${mode} storage)`, () => {
    let s3: S3Server | undefined;
    let cluster: Cluster;

    before(async () => {
      s3 = mode === "s3" ? await startS3Server() : undefined;
      cluster = await startGateways(1, {
        adapter: "memory",
        embedded: mode === "disk",
        env: { ...s3?.env, UPLOAD_UNATTACHED_TTL_S: "1", UPLOAD_CLEANUP_INTERVAL_MS: "200" },
      });
    });
    after(async () => {
      await cluster?.cleanup();
      await s3?.stop();
    });

    test("are deleted by the cleanup job, row and bytes", async () => {
      const url = cluster.urls[0]!;
      const user = await registerUser(url);
      const bytes = Buffer.from("forgotten\n");
      const created = await api<{ upload: UploadTicket }>(url, "POST", "/v1/uploads", {
        token: user.accessToken,
        body: { name: "f.txt", mimeType: "text/plain", size: bytes.length },
      });
      const { id, url: putUrl, headers } = created.body.upload;
      const put = await fetch(new URL(putUrl, url), { method: "PUT", headers, body: bytes });
      assert.equal(put.status, 200);
      const storage = createStorage({
        S3_BUCKET: s3?.bucket,
        S3_ENDPOINT: s3?.endpoint,
        S3_REGION: "us-east-1",
        S3_ACCESS_KEY_ID: s3 ? "S3RVER" : undefined,
        S3_SECRET_ACCESS_KEY: s3 ? "S3RVER" : undefined,
        S3_FORCE_PATH_STYLE: true,
        DATA_DIR: cluster.env.DATA_DIR ?? "",
        JWT_SECRET: cluster.env.JWT_SECRET!,
      });
      assert.equal(await storage.size(uploadKey(id)), bytes.length);
      await eventually(async () => (await storage.size(uploadKey(id))) === undefined, 10_000, "upload deleted");
      assert.equal(await storage.size(thumbnailKey(id)), undefined);
      const device = await connectDevice(url, user.accessToken);
      try {
        const { id: conversationId } = await createConversation(url, user.accessToken, {
          type: "group",
          title: "alone",
          memberIds: [],
        });
        const ack = await request(device, "message:send", {
          conversationId,
          clientMsgId: randomUUID(),
          content: "",
          attachmentIds: [id],
        });
        assert.ok(!ack.ok && ack.error.code === "bad_request", "its row is gone too");
      } finally {
        device.close();
      }
    });

    test("files of a deleted message left behind (storage failed after the delete) are deleted by the job", async (t) => {
      // Simulated by tombstoning the row with SQL, as if the deletion right after the commit had failed: only where
      // the test reaches the gateway's database (PostgreSQL, not the embedded PGlite).
      if (cluster.databaseUrl === undefined) return t.skip("needs the PostgreSQL database");
      const url = cluster.urls[0]!;
      const user = await registerUser(url);
      const sdk = new ChatHttpApi({ baseUrl: url, getAccessToken: async () => user.accessToken });
      const { id } = await uploadFile(sdk, Buffer.from("left behind\n"), { name: "l.txt", mimeType: "text/plain" });
      const { id: conversationId } = await createConversation(url, user.accessToken, {
        type: "group",
        title: "leftovers",
        memberIds: [],
      });
      const device = await connectDevice(url, user.accessToken);
      const db = new pg.Client({ connectionString: cluster.databaseUrl });
      await db.connect();
      try {
        const ack = await request(device, "message:send", {
          conversationId,
          clientMsgId: randomUUID(),
          content: "",
          attachmentIds: [id],
        });
        assert.ok(ack.ok, JSON.stringify(ack));
        const storage = createStorage({
          S3_BUCKET: s3?.bucket,
          S3_ENDPOINT: s3?.endpoint,
          S3_REGION: "us-east-1",
          S3_ACCESS_KEY_ID: s3 ? "S3RVER" : undefined,
          S3_SECRET_ACCESS_KEY: s3 ? "S3RVER" : undefined,
          S3_FORCE_PATH_STYLE: true,
          DATA_DIR: cluster.env.DATA_DIR ?? "",
          JWT_SECRET: cluster.env.JWT_SECRET!,
        });
        assert.ok((await storage.size(fileKey(id))) !== undefined);
        await db.query("UPDATE messages SET content = '', deleted_at = now() WHERE id = $1", [ack.message.id]);
        await eventually(async () => (await storage.size(fileKey(id))) === undefined, 10_000, "file deleted");
        // The row goes right after its objects.
        const rowGone = async () => (await db.query("SELECT 1 FROM attachments WHERE id = $1", [id])).rowCount === 0;
        await eventually(rowGone, 10_000, "row deleted");
      } finally {
        device.close();
        await db.end();
      }
    });
  });
}
