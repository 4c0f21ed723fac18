// The address rule and the allowlist of Web Push endpoints, in process: every non-public address form, including
// IPv6 spellings that embed an IPv4 address, and host and port matching.
import assert from "node:assert/strict";
import { test } from "node:test";
import { EndpointPolicy, EndpointRefused, isNonPublicAddress } from "../../src/push/endpoint-policy.js";

test("non-public addresses, in every spelling", () => {
  for (const address of [
    "127.0.0.1",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",
    "2002:7f00:1::1",
    "not an address",
  ]) {
    assert.equal(isNonPublicAddress(address), true, address);
  }
  for (const address of ["8.8.8.8", "142.250.74.78", "2a00:1450:4001:82b::200a", "::ffff:8.8.8.8", "2002:808:808::1"]) {
    assert.equal(isNonPublicAddress(address), false, address);
  }
});

test("the allowlist: hosts and subdomains, *. for subdomains only, port 443 unless named", async () => {
  // allowPrivate so that no DNS is needed: only the allowlist is under test here.
  const policy = new EndpointPolicy(["push.example.com", "*.notify.example.net", "local.test:8443"], true);
  for (const ok of [
    "https://push.example.com/a",
    "https://eu.push.example.com/a",
    "https://PUSH.example.com:443/a",
    "https://wns2-par02p.notify.example.net/w/?token=x",
    "https://local.test:8443/p",
  ]) {
    await policy.check(ok);
  }
  for (const bad of [
    "http://push.example.com/a",
    "https://push.example.com:8443/a",
    "https://push.example.com.evil.test/a",
    "https://evilpush.example.com/a",
    "https://notify.example.net/a",
    "https://local.test/p",
    "https://user:pw@push.example.com/a",
    "not a url",
  ]) {
    await assert.rejects(policy.check(bad), EndpointRefused, bad);
  }
});

test("without the opt-in, an allowlisted IP literal that is not public is refused without a lookup", async () => {
  const policy = new EndpointPolicy(["127.0.0.1", "[::1]", "10.0.0.8"], false);
  for (const bad of ["https://127.0.0.1/a", "https://[::1]/a", "https://10.0.0.8/a"]) {
    await assert.rejects(policy.check(bad), /private or local/, bad);
  }
  // A name resolving to loopback.
  await assert.rejects(new EndpointPolicy(["localhost"], false).check("https://localhost/a"), /private or local/);
});
