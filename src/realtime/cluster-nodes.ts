// REDIS_CLUSTER_NODES: seed nodes of a Redis Cluster, each `host:port` or `redis://[user]:password@host:port` when
// the cluster requires AUTH. The credentials (taken from the first entry that has them) apply to every node the
// client discovers, since nodes of one cluster share them. TLS (`rediss://`) is refused: not supported yet.

export interface ClusterNodes {
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
}

/** The parsed seed nodes, or the problem with them (for the configuration check). */
export function parseClusterNodes(entries: string[]): ClusterNodes | string {
  const nodes: ClusterNodes["nodes"] = [];
  let username: string | undefined;
  let password: string | undefined;
  const bad: string[] = [];
  for (const entry of entries) {
    if (entry.startsWith("rediss://")) return "TLS (rediss://) to cluster nodes is not supported yet";
    let url: URL;
    try {
      url = new URL(entry.includes("://") ? entry : `redis://${entry}`);
    } catch {
      bad.push(entry);
      continue;
    }
    const port = Number(url.port);
    const plain = url.pathname === "" || url.pathname === "/";
    if (url.protocol !== "redis:" || url.hostname === "" || !port || !plain || url.search !== "") {
      // Never echo an entry that may hold a password.
      bad.push(url.password ? `${url.hostname}:${url.port} (with credentials)` : entry);
      continue;
    }
    nodes.push({ host: url.hostname, port });
    if (url.password && password === undefined) {
      password = decodeURIComponent(url.password);
      username = url.username ? decodeURIComponent(url.username) : undefined;
    }
  }
  if (bad.length > 0) return `host:port or redis://[user]:password@host:port entries (bad: ${bad.join(", ")})`;
  if (nodes.length === 0) return "no nodes";
  return { nodes, ...(username === undefined ? {} : { username }), ...(password === undefined ? {} : { password }) };
}
