// The chat page's safety features in a real browser (Debian's Chromium, driven by playwright-core) against a real
// gateway: reporting a message from its bubble, and a group admin adding, promoting and removing members, renaming,
// then leaving. Each step is checked against the gateway's own answer (the admin API, the conversation object).
// Writes docs/screenshots/report-dialog.png and group-members.png.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import jwt from "jsonwebtoken";
import { type Browser, type Page } from "playwright-core";
import { launchChromium } from "../helpers/browser.js";
import type { AuthResult, Conversation } from "@chat-gateway/protocol";
import { api, eventually, registerUser } from "../helpers/clients.js";
import { startGateways, type Cluster } from "../helpers/gateways.js";

const ADMIN_SECRET = "admin-key-secret-that-is-long-enough-0123456789";
const WAIT = 30_000;

describe("safety on the chat page", { timeout: 240_000 }, () => {
  let cluster: Cluster;
  let browser: Browser;
  let url: string;

  before(async () => {
    execFileSync(process.execPath, ["scripts/build-web.mjs"], { stdio: "inherit" });
    cluster = await startGateways(1, {
      adapter: "memory",
      env: { SERVICE_KEYS: `mod-1:${ADMIN_SECRET}:trust-safety:admin` },
    });
    url = cluster.urls[0]!;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await cluster?.cleanup();
  });

  const adminToken = () => {
    const now = Math.floor(Date.now() / 1000);
    return jwt.sign(
      { role: "admin", sub: "trust-safety", iss: "chat-gateway", aud: "chat-gateway", iat: now, exp: now + 300 },
      ADMIN_SECRET,
      { algorithm: "HS256", keyid: "mod-1" },
    );
  };

  async function signIn(page: Page, username: string): Promise<void> {
    await page.goto(url);
    await page.fill("#auth-username", username);
    await page.fill("#auth-password", "correct horse battery");
    await page.locator("form.auth-form button[type=submit]").click();
    await page.locator("#me-name").waitFor({ timeout: WAIT });
  }

  const membersOf = async (who: AuthResult, id: string) =>
    (await api<{ conversation: Conversation }>(url, "GET", `/v1/conversations/${id}`, { token: who.accessToken })).body
      .conversation;

  test("report a message; as group admin add, promote, remove, rename; then leave", async () => {
    const [alice, bob, carol] = [await registerUser(url), await registerUser(url), await registerUser(url)];
    const created = await api<{ conversation: Conversation }>(url, "POST", "/v1/conversations", {
      token: alice.accessToken,
      body: { type: "group", title: "Hikers", memberIds: [bob.user.id] },
    });
    const id = created.body.conversation.id;
    await api(url, "POST", `/v1/conversations/${id}/messages`, {
      token: bob.accessToken,
      body: { clientMsgId: "b1", content: "buy cheap watches here" },
    });

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error("page error:", error.message));
    await signIn(page, alice.user.username);
    await page.locator(".conv-item", { hasText: "Hikers" }).click();
    await page.locator("#pane-title", { hasText: "Hikers" }).waitFor({ timeout: WAIT });

    // Report Bob's message from its bubble.
    await page.locator("#messages .msg.theirs .report-btn").first().click();
    await page.fill("#report-reason", "spam");
    mkdirSync("docs/screenshots", { recursive: true });
    await page.screenshot({ path: "docs/screenshots/report-dialog.png" });
    await page.click("#report-submit");
    await page.locator("#report-status", { hasText: "Thank you" }).waitFor({ timeout: WAIT });
    const reports = await api<{ reports: { reporterId: string; message: { content: string } | null }[] }>(
      url,
      "GET",
      "/v1/admin/reports",
      { token: adminToken() },
    );
    assert.deepEqual(
      reports.body.reports.map((r) => [r.reporterId, r.message?.content]),
      [[alice.user.id, "buy cheap watches here"]],
    );
    await page.locator("#report-dialog").evaluate((d) => (d as HTMLDialogElement).close());

    // Members: add Carol by search, make Bob admin, remove Carol, rename.
    await page.click("#group-members-btn");
    await page.fill("#group-add-search", carol.user.username);
    await page.locator(`#group-add-results [data-user-id="${carol.user.id}"]`).click();
    await page.locator(`#group-members [data-user-id="${carol.user.id}"]`).waitFor({ timeout: WAIT });
    await page.locator(`#group-members [data-user-id="${bob.user.id}"] [data-action=role]`).click();
    await page.locator(`#group-members [data-user-id="${bob.user.id}"][data-role=admin]`).waitFor({ timeout: WAIT });
    await page.fill("#group-add-search", "");
    await page.screenshot({ path: "docs/screenshots/group-members.png" });
    await page.locator(`#group-members [data-user-id="${carol.user.id}"] [data-action=remove]`).click();
    await page
      .locator(`#group-members [data-user-id="${carol.user.id}"]`)
      .waitFor({ state: "detached", timeout: WAIT });
    await page.fill("#group-rename", "Hikers 2026");
    await page.click("#group-rename-save");
    await page.locator("#group-dialog-title", { hasText: "Hikers 2026" }).waitFor({ timeout: WAIT });
    const after = await membersOf(bob, id);
    assert.equal(after.title, "Hikers 2026");
    assert.deepEqual(Object.fromEntries(after.members.map((m) => [m.id, m.role])), {
      [alice.user.id]: "admin",
      [bob.user.id]: "admin",
    });

    // Leave: the conversation disappears from the page; Bob is its admin still.
    await page.click("#group-leave");
    await page.locator(".conv-item", { hasText: "Hikers" }).waitFor({ state: "detached", timeout: WAIT });
    await eventually(async () => (await membersOf(bob, id)).members.length === 1, WAIT, "Alice gone");
    await context.close();
  });
});
