// Requests Node's HTTP parser refuses before Fastify sees them (a URL or headers past the header size limit, a
// malformed request, a request that took too long to arrive) still get the contract's error envelope, instead of
// Fastify's default body ({"error": "...", "statusCode": 431}), whose shape and 431/408 are no contract code. Too
// large is `payload_too_large` (413); everything else the client sent wrong is `bad_request`.
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { ERROR_STATUS } from "@chat-gateway/protocol";

type Code = keyof typeof ERROR_STATUS;

function answerOf(err: NodeJS.ErrnoException): { code: Code; message: string } | undefined {
  if (err.code === "ECONNRESET") return undefined;
  if (err.code === "HPE_HEADER_OVERFLOW")
    return { code: "payload_too_large", message: "the URL or headers are too large" };
  return { code: "bad_request", message: "malformed HTTP request" };
}

/** Fastify's clientErrorHandler: writes the envelope on the raw socket and closes it, as Node's default does. */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  const answer = answerOf(err);
  if (answer === undefined || socket.destroyed) return;
  if (socket.writable) {
    const status = ERROR_STATUS[answer.code];
    const body = JSON.stringify({ error: answer });
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}
