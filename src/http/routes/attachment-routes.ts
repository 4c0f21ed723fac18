// Attachments over HTTP: creating an upload and re-issuing download URLs (behind bearer authentication), and in
// embedded mode the file route that plays the object storage (no bearer token: its signed URL is the credential).
import { createReadStream } from "node:fs";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Attachments } from "../../attachments/attachments.js";
import { contentDisposition, type DiskStorage } from "../../attachments/storage.js";
import { UploadBody } from "@chat-gateway/protocol/schemas";
import { badRequest, conflict, forbidden, notFound } from "../../errors.js";
import { AttachmentSchema, bearerOperation, operation, pathParams, UploadTicketSchema } from "../api-schemas.js";
import { userOf } from "../authenticate.js";
import { documentedOnly } from "../zod-schemas.js";

export function attachmentRoutes(instance: FastifyInstance, attachments: Attachments): void {
  const api = instance.withTypeProvider<ZodTypeProvider>();
  const upload = bearerOperation(
    "attachments",
    "Create an upload: where to PUT the file, then send its id with a message",
    { body: UploadBody },
    { 201: z.strictObject({ upload: UploadTicketSchema }) },
    ["payload_too_large"],
  );
  api.post("/v1/uploads", { schema: upload }, async (request, reply) => {
    const ticket = await attachments.createUpload(userOf(request), request.body);
    return reply.code(201).send({ upload: ticket });
  });

  const attachment = bearerOperation(
    "attachments",
    "An attachment of a message the caller can see, with fresh download URLs",
    { params: pathParams("id") },
    { 200: z.strictObject({ attachment: AttachmentSchema }) },
    ["not_found"],
  );
  api.get("/v1/attachments/:id", { schema: attachment }, async (request) => ({
    attachment: await attachments.forMember(userOf(request), request.params.id),
  }));
}

/** The signed query of a file URL: checked by DiskStorage.verify as a whole, so only documented here. */
const SignedFileQuery = z.object({
  m: z.enum(["PUT", "GET"]).describe("the method the URL is signed for"),
  e: z.string().describe("expiry, epoch seconds"),
  sig: z.string().describe("signature of the key and the other parameters"),
  t: z.string().optional().describe("content type"),
  s: z.string().optional().describe("size in bytes (PUT)"),
  n: z.string().optional().describe("file name (GET)"),
  i: z.string().optional().describe("1: inline (GET)"),
});
const fileParams = pathParams("dir", "id");
const fileRoute = (
  summary: string,
  success: Parameters<typeof operation>[3],
  errors: Parameters<typeof operation>[4],
) => ({
  schema: operation("files", summary, { params: fileParams, querystring: SignedFileQuery }, success, errors),
  validatorCompiler: documentedOnly,
});

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

    const put = fileRoute("Upload the bytes of an upload (its signed URL)", { 200: "stored" }, [
      "forbidden",
      "conflict",
      "payload_too_large",
    ]);
    files.put("/files/:dir/:id", put, async (request, reply) => {
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

    const file = { description: "the file, of its own type", content: { "*/*": { schema: z.string() } } };
    files.get(
      "/files/:dir/:id",
      fileRoute("Download a file (its signed URL)", { 200: file }, ["forbidden", "not_found"]),
      async (request, reply) => {
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
      },
    );
  });
}
