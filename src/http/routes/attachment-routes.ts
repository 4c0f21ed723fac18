// Attachments over HTTP: creating an upload and re-issuing download URLs (behind bearer authentication), and in
// embedded mode the file route that plays the object storage (no bearer token: its signed URL is the credential).
import { createReadStream } from "node:fs";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Attachments } from "../../attachments/attachments.js";
import { contentDisposition, type DiskStorage } from "../../attachments/storage.js";
import { UploadBody } from "@chat-gateway/protocol/schemas";
import { badRequest, conflict, forbidden, notFound } from "../../errors.js";
import { userOf } from "../authenticate.js";

export function attachmentRoutes(api: FastifyInstance, attachments: Attachments): void {
  api.post("/v1/uploads", async (request, reply) => {
    const body = UploadBody.parse(request.body);
    const upload = await attachments.createUpload(userOf(request), body);
    return reply.code(201).send({ upload });
  });

  api.get("/v1/attachments/:id", async (request) => ({
    attachment: await attachments.forMember(userOf(request), (request.params as { id: string }).id),
  }));
}

/** `/files/<key>?<signed query>`: PUT an upload, GET a file, as the URLs of DiskStorage allow. */
export function diskFileRoutes(app: FastifyInstance, disk: DiskStorage): void {
  app.register(async (files) => {
    // The body is the file itself, of any type: streamed to disk by the route, never parsed or buffered.
    files.removeAllContentTypeParsers();
    files.addContentTypeParser("*", (_request, payload, done) => done(null, payload));

    const grantOf = (request: FastifyRequest, method: "PUT" | "GET") => {
      const { dir, id } = request.params as { dir: string; id: string };
      const grant = disk.verify(method, `${dir}/${id}`, request.query as Record<string, string | undefined>);
      if (grant === undefined) throw forbidden("the URL is invalid or has expired");
      return grant;
    };

    files.put("/files/:dir/:id", async (request, reply) => {
      const grant = grantOf(request, "PUT");
      if (grant.method !== "PUT") throw forbidden("the URL is invalid or has expired");
      const type = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      if (type !== grant.contentType) throw badRequest(`content-type must be ${grant.contentType}`);
      const declared = request.headers["content-length"];
      if (declared !== undefined && Number(declared) !== grant.size) {
        throw badRequest(`content-length must be ${grant.size}`);
      }
      // Written once: the URL stays valid until it expires, but the bytes a send checked must not change under it.
      // Nor after a send moved them to files/ (the upload URL may still be valid then).
      const moved = grant.key.replace(/^uploads\//, "files/");
      if ((await disk.size(grant.key)) !== undefined || (await disk.size(moved)) !== undefined) {
        throw conflict("already uploaded");
      }
      const written = await disk.writeStream(grant.key, request.raw, grant.size).catch(() => -1);
      if (written !== grant.size) {
        await disk.delete([grant.key]);
        throw badRequest(`the body must be exactly ${grant.size} bytes`);
      }
      return reply.code(200).send();
    });

    files.get("/files/:dir/:id", async (request, reply) => {
      const grant = grantOf(request, "GET");
      if (grant.method !== "GET") throw forbidden("the URL is invalid or has expired");
      const size = await disk.size(grant.key);
      if (size === undefined) throw notFound("file");
      return (
        reply
          .header("content-type", grant.contentType)
          .header("content-length", String(size))
          .header("content-disposition", contentDisposition(grant.fileName, grant.inline))
          .header("cache-control", "private, max-age=60")
          // Served from the page's own origin: never as a document that could run script.
          .header("content-security-policy", "default-src 'none'; sandbox")
          .header("cross-origin-resource-policy", "same-origin")
          .send(createReadStream(disk.path(grant.key)))
      );
    });
  });
}
