// A TCP relay between an SDK client and a real gateway, so a test can cut the network (not fake the gateway):
// "down" refuses and drops every connection, "ack-loss" lets the client's frames through but swallows the gateway's.
import net from "node:net";

export type ProxyMode = "up" | "down" | "ack-loss";

export interface TcpProxy {
  url: string;
  setMode(mode: ProxyMode): void;
  /** Drops every open connection (the client sees the transport close) and keeps the current mode. */
  cutAll(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  let mode: ProxyMode = "up";
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (mode === "down") {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(target.port), target.hostname);
    open.add(client);
    open.add(upstream);
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => {
      if (mode === "up") client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  const cutAll = () => {
    for (const socket of open) socket.destroy();
    open.clear();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    setMode(next) {
      mode = next;
      if (next === "down") cutAll();
    },
    cutAll,
    close: () => {
      cutAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
