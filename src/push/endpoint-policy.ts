// Which Web Push endpoints the gateway will send to. An endpoint is a URL the client chooses, and the gateway POSTs
// to it on every notification: without a policy it is a server-side request forgery channel (the cloud metadata
// service, the pod's neighbours, the Redis port) and an amplifier. So: https only, a host on the allowlist of push
// services (PUSH_ENDPOINT_ALLOWLIST) on port 443 unless the entry names a port, and never an address that is
// private, loopback, link-local or otherwise not public, checked on the name's DNS answers when it is subscribed, and
// again on the very addresses the delivery connects to (a lookup hook on the HTTPS agent), so a name that resolves
// elsewhere later (DNS rebinding) is refused too. PUSH_ALLOW_PRIVATE_ENDPOINTS=on lifts the address rule, for tests
// against a local fake push service only.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { lookup } from "node:dns/promises";
import { Agent } from "node:https";
import { BlockList, isIP } from "node:net";

export const DEFAULT_PUSH_ENDPOINT_ALLOWLIST = [
  "fcm.googleapis.com", // Chrome, Chromium-based browsers, Firefox for Android
  "updates.push.services.mozilla.com", // Firefox
  "*.notify.windows.com", // Edge (WNS)
  "web.push.apple.com", // Safari
  "*.push.apple.com",
];

export class EndpointRefused extends Error {
  constructor(
    message: string,
    /** A lookup that failed for now (not "no such name"): worth trying again later. */
    readonly temporary = false,
  ) {
    super(message);
    this.name = "EndpointRefused";
  }
}

interface Entry {
  host: string;
  /** The entry was `*.host`: subdomains only. */
  subdomainsOnly: boolean;
  port: number;
}

function parseEntry(raw: string): Entry {
  let rest = raw.trim().toLowerCase();
  let port = 443;
  const colon = rest.lastIndexOf(":");
  if (colon > 0 && !rest.endsWith("]") && /^\d+$/.test(rest.slice(colon + 1))) {
    port = Number(rest.slice(colon + 1));
    rest = rest.slice(0, colon);
  }
  const subdomainsOnly = rest.startsWith("*.");
  if (subdomainsOnly) rest = rest.slice(2);
  return { host: rest.replace(/^\[|\]$/g, ""), subdomainsOnly, port };
}

// Everything that is not a public unicast address.
const notPublic = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.88.99.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const)
  notPublic.addSubnet(net, prefix, "ipv4");
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["64:ff9b::", 96], // NAT64: checked as IPv4 below
  ["64:ff9b:1::", 48],
  ["100::", 64],
  ["2001::", 23],
  ["2001:db8::", 32],
  ["2002::", 16], // 6to4: checked as IPv4 below
  ["fc00::", 7],
  ["fe80::", 10],
  ["fec0::", 10],
  ["ff00::", 8],
] as const)
  notPublic.addSubnet(net, prefix, "ipv6");

/** The IPv4 address an IPv6 address embeds (mapped, NAT64, 6to4), if any. (IPv4-mapped addresses are not a rule of
 * their own above: BlockList matches a rule for ::ffff:0:0/96 against every IPv4 address.) */
function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex) {
    const n = (parseInt(hex[1]!, 16) << 16) | parseInt(hex[2]!, 16);
    return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
  }
  const sixToFour = /^2002:([0-9a-f]{1,4}):([0-9a-f]{1,4}):/.exec(lower);
  if (sixToFour) {
    const n = (parseInt(sixToFour[1]!, 16) << 16) | parseInt(sixToFour[2]!, 16);
    return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
  }
  return undefined;
}

/** True for any address that is not public unicast: private, loopback, link-local, CGNAT, multicast, reserved. */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return notPublic.check(address, "ipv4");
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    if (v4 !== undefined) return notPublic.check(v4, "ipv4");
    return notPublic.check(address, "ipv6");
  }
  return true;
}

export class EndpointPolicy {
  private readonly entries: Entry[];
  /** The agent deliveries use: its lookup refuses non-public addresses at connect time. */
  readonly agent: Agent | undefined;

  constructor(
    allowlist: readonly string[],
    readonly allowPrivate: boolean,
  ) {
    this.entries = allowlist.filter((s) => s.trim() !== "").map(parseEntry);
    this.agent = allowPrivate ? undefined : new Agent({ lookup: guardedLookup });
  }

  /** Throws EndpointRefused unless the endpoint may be sent to; resolves the name to check its addresses. */
  async check(endpoint: string): Promise<void> {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new EndpointRefused("not a URL");
    }
    if (url.protocol !== "https:") throw new EndpointRefused("must be an https URL");
    if (url.username !== "" || url.password !== "") throw new EndpointRefused("must not carry credentials");
    const host = url.hostname
      .toLowerCase()
      .replace(/^\[|\]$/g, "")
      .replace(/\.$/, "");
    const port = url.port === "" ? 443 : Number(url.port);
    const allowed = this.entries.some(
      (e) => e.port === port && (host.endsWith(`.${e.host}`) || (!e.subdomainsOnly && host === e.host)),
    );
    if (!allowed) throw new EndpointRefused("not a known push service (PUSH_ENDPOINT_ALLOWLIST)");
    if (this.allowPrivate) return;
    if (isIP(host) !== 0) {
      if (isNonPublicAddress(host)) throw new EndpointRefused("must not be a private or local address");
      return;
    }
    let addresses: LookupAddress[];
    try {
      addresses = await lookup(host, { all: true, verbatim: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new EndpointRefused(`its host does not resolve (${code ?? "error"})`, code !== "ENOTFOUND");
    }
    if (addresses.length === 0 || addresses.some((a) => isNonPublicAddress(a.address))) {
      throw new EndpointRefused("must not resolve to a private or local address");
    }
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** net.connect's lookup hook: resolves as usual, then refuses when any answer is not a public address. */
function guardedLookup(hostname: string, options: LookupOptions, callback: LookupCallback) {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    if (addresses.length === 0 || addresses.some((a) => isNonPublicAddress(a.address))) {
      const refused: NodeJS.ErrnoException = new Error(`${hostname} resolves to a private or local address`);
      refused.code = "EPUSHPRIVATE";
      return callback(refused, []);
    }
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}
