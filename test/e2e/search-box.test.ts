// The chat page's message search box in a real browser (Debian's Chromium, driven by playwright-core) against a real
// gateway on PostgreSQL: results of the caller's conversations replace the list, choosing one opens its
// conversation, "More results" follows the cursor, and emptying the box brings the list back. Also writes
// docs/screenshots/search.png.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { type Browser, type Page } from "playwright-core";
import { launchChromium } from "../helpers/browser.js";
import type { AuthResult } from "@chat-gateway/protocol";
import { api, createConversation, uniqueName } from "../helpers/clients.js";
import { startGateways, type Cluster } from "../helpers/gateways.js";

const PASSWORD = "correct horse battery";
const WAIT = 30_000;

describe("message search box in a browser", { timeout: 180_000 }, () => {
  let cluster: Cluster;
  let browser: Browser;
  let url: string;
  let alice: AuthResult;
  let bob: AuthResult;
  let carol: AuthResult;

  const send = async (user: AuthResult, conversationId: string, content: string) => {
    const res = await api(url, "POST", `/v1/conversations/${conversationId}/messages`, {
      token: user.accessToken,
      body: { clientMsgId: uniqueName("c"), content },
    });
    assert.equal(res.status, 201);
  };

  const register = async (displayName: string): Promise<AuthResult> => {
    const res = await api<AuthResult>(url, "POST", "/v1/auth/register", {
      body: { username: uniqueName(), password: PASSWORD, displayName },
    });
    assert.equal(res.status, 201);
    return res.body;
  };

  before(async () => {
    execFileSync(process.execPath, ["scripts/build-web.mjs"], { stdio: "inherit" });
    cluster = await startGateways(1, { adapter: "memory" });
    url = cluster.urls[0]!;
    [alice, bob, carol] = await Promise.all([register("Alice Adams"), register("Bob Baker"), register("Carol Chen")]);
    const withBob = await createConversation(url, alice.accessToken, { type: "direct", userId: bob.user.id });
    const withCarol = await createConversation(url, alice.accessToken, { type: "direct", userId: carol.user.id });
    await send(bob, withBob.id, "내일 회의는 3시에 시작해요");
    for (let i = 1; i <= 25; i++) await send(carol, withCarol.id, `lunch plan number ${i}`);
    await send(carol, withCarol.id, "carol talks about the weather");
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await cluster?.cleanup();
  });

  async function signIn(page: Page, username: string): Promise<void> {
    await page.goto(url);
    await page.fill("#auth-username", username);
    await page.fill("#auth-password", PASSWORD);
    await page.locator("form.auth-form button[type=submit]").click();
    await page.locator("#me-name").waitFor({ timeout: WAIT });
  }

  async function searchFor(page: Page, text: string): Promise<void> {
    await page.fill("#message-search", text);
    await page.press("#message-search", "Enter");
  }

  test("finds a Korean word, opens its conversation, pages, and gives the list back", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    try {
      await signIn(page, alice.user.username);
      await page.locator(".conv-item", { hasText: carol.user.displayName }).waitFor({ timeout: WAIT });

      await searchFor(page, "회의");
      const result = page.locator("#search-results .search-result");
      await result.first().waitFor({ timeout: WAIT });
      assert.equal(await result.count(), 1);
      assert.match((await result.first().textContent()) ?? "", /내일 회의는 3시에 시작해요/);
      assert.match((await result.first().textContent()) ?? "", /Bob Baker/);
      assert.equal(await page.locator("#conversations").isVisible(), false, "results take the list's place");

      await result.first().click();
      await page.locator("#pane-title", { hasText: bob.user.displayName }).waitFor({ timeout: WAIT });
      await page.locator("#messages .msg-text", { hasText: "내일 회의는 3시에 시작해요" }).waitFor({ timeout: WAIT });

      await searchFor(page, "lunch");
      await page.locator("#search-results .search-result").nth(19).waitFor({ timeout: WAIT });
      assert.equal(await page.locator("#search-results .search-result").count(), 20);
      assert.match((await result.first().textContent()) ?? "", /lunch plan number 25/, "newest first");
      await page.getByRole("button", { name: "More results" }).click();
      await page.locator("#search-results .search-result").nth(24).waitFor({ timeout: WAIT });
      assert.equal(await page.locator("#search-results .search-result").count(), 25);
      assert.equal(await page.getByRole("button", { name: "More results" }).isVisible(), false);
      await result.nth(2).click();
      await page.locator("#pane-title", { hasText: "Carol Chen" }).waitFor({ timeout: WAIT });
      await page.locator("#search-results").evaluate((el) => el.scrollTo(0, 0));
      mkdirSync("docs/screenshots", { recursive: true });
      await page.screenshot({ path: "docs/screenshots/search.png" });

      await searchFor(page, "xylophone");
      await page.locator(".search-status", { hasText: "No messages found" }).waitFor({ timeout: WAIT });

      await page.press("#message-search", "Escape");
      await page.locator("#conversations").waitFor({ state: "visible", timeout: WAIT });
      assert.equal(await page.locator("#search-results").isVisible(), false);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
});
