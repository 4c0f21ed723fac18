// A TCP port nobody listens on at the moment, for a server a test or the bench starts (Redis, PostgreSQL, haproxy,
// a gateway). Another process could take it before ours binds; on a test machine that is rare enough.
import { createServer } from "node:net";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}
