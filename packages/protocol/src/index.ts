// @chat-gateway/protocol: the wire contract shared by the gateway, the SDK and the web page: the data shapes, the
// Socket.IO event maps with their ack shapes, and the error codes with their HTTP statuses. Types and two constants
// only, so a client bundle pays nothing for it; the zod schemas that validate payloads are a separate entry point
// (`@chat-gateway/protocol/schemas`) so that importing the types never pulls zod into a bundle.
export * from "./types.js";
export * from "./events.js";
export * from "./errors.js";
