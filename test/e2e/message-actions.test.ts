// The chat page's message actions in a real browser (Debian's Chromium, playwright-core) against two real gateways:
// Alice on a desktop-sized page on one pod, Bob on a phone-sized page on the other. Reply (with its quote), edit,
// react and delete, each seen by the other person. Writes docs/screenshots/message-actions-*.png.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { type Browser, type Page } from "playwright-core";
import { launchChromium } from "../helpers/browser.js";
import { api, createConversation, uniqueName } from "../helpers/clients.js";
import { startGateways, type Cluster } from "../helpers/gateways.js";

const PASSWORD = "correct horse battery";
const WAIT = 30_000;

describe("message actions in a browser", { timeout: 300_000 }, () => {
  let cluster: Cluster;
  let browser: Browser;

  before(async () => {
    execFileSync(process.execPath, ["scripts/build-web.mjs"], { stdio: "inherit" });
    cluster = await startGateways(2, { adapter: "sharded" });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await cluster?.cleanup();
  });

  async function page(url: string, username: string, viewport: { width: number; height: number }): Promise<Page> {
    const context = await browser.newContext({ viewport });
    const p = await context.newPage();
    p.on("pageerror", (error) => console.error("page error:", error.message));
    await p.goto(url);
    await p.fill("#auth-username", username);
    await p.fill("#auth-password", PASSWORD);
    await p.locator("form.auth-form button[type=submit]").click();
    await p.locator("#me-name").waitFor({ timeout: WAIT });
    return p;
  }

  const bubble = (p: Page, text: string) => p.locator("#messages .msg", { hasText: text }).first();

  async function openChat(p: Page, title: string): Promise<void> {
    await p.locator(".conv-item", { hasText: title }).click();
    await p.locator("#pane-title", { hasText: title }).waitFor({ timeout: WAIT });
  }

  async function send(p: Page, text: string): Promise<void> {
    await p.fill("#composer-input", text);
    await p.press("#composer-input", "Enter");
  }

  test("reply, edit, react and delete, each seen by the other person", async () => {
    const [urlA, urlB] = cluster.urls as [string, string];
    const names = { alice: uniqueName("alice"), bob: uniqueName("bob") };
    const register = async (username: string, displayName: string) =>
      (
        await api<{ accessToken: string; user: { id: string } }>(urlA, "POST", "/v1/auth/register", {
          body: { username, password: PASSWORD, displayName },
        })
      ).body;
    const alice = await register(names.alice, "Alice Martin");
    const bob = await register(names.bob, "Bob Chen");
    await createConversation(urlA, alice.accessToken, { type: "direct", userId: bob.user.id });

    const a = await page(urlA, names.alice, { width: 1280, height: 800 });
    const b = await page(urlB, names.bob, { width: 390, height: 844 });
    await openChat(a, "Bob Chen");
    await openChat(b, "Alice Martin");

    await send(a, "Are we still on for Saturday?");
    await bubble(b, "Are we still on for Saturday?").waitFor({ timeout: WAIT });

    // Bob replies to it: his message shows the quote, on both pages.
    await bubble(b, "Are we still on for Saturday?").locator("[data-action=reply]").click();
    await b.locator("#composer-banner", { hasText: "Replying to Alice Martin" }).waitFor({ timeout: WAIT });
    await send(b, "Yes! 10 am at the park");
    const quoteOnA = bubble(a, "Yes! 10 am at the park").locator(".msg-quote-text");
    await quoteOnA.waitFor({ timeout: WAIT });
    assert.equal(await quoteOnA.textContent(), "Are we still on for Saturday?");

    // Alice edits hers: Bob sees the new text, the "edited" mark, and his quote follows.
    await bubble(a, "Are we still on for Saturday?").locator("[data-action=edit]").click();
    assert.equal(await a.inputValue("#composer-input"), "Are we still on for Saturday?");
    await a.fill("#composer-input", "Are we still on for Sunday?");
    await a.press("#composer-input", "Enter");
    await bubble(b, "Are we still on for Sunday?").locator(".msg-edited").waitFor({ timeout: WAIT });
    await b.locator("#messages .msg-quote-text", { hasText: "Are we still on for Sunday?" }).waitFor({ timeout: WAIT });

    // Bob reacts to Alice's message; Alice sees the count.
    const target = bubble(b, "Are we still on for Sunday?");
    await target.locator("[data-action=react]").click();
    await target.locator('.reaction-choice[data-emoji="👍"]').click();
    await bubble(a, "Are we still on for Sunday?").locator('.reaction[data-emoji="👍"]', { hasText: "1" }).waitFor({
      timeout: WAIT,
    });
    mkdirSync("docs/screenshots", { recursive: true });
    await a.screenshot({ path: "docs/screenshots/message-actions-desktop.png" });
    await b.screenshot({ path: "docs/screenshots/message-actions-phone.png" });

    // Alice deletes it (two clicks): Bob sees the tombstone, and his quote says so.
    const mine = bubble(a, "Are we still on for Sunday?");
    await mine.locator("[data-action=delete]").click();
    await mine.locator("[data-action=delete]").click();
    await b.locator("#messages .msg-deleted").first().waitFor({ timeout: WAIT });
    await b.locator("#messages .msg-quote-text", { hasText: "Deleted message" }).waitFor({ timeout: WAIT });
    assert.equal(await b.locator("#messages .msg-text", { hasText: "Sunday" }).count(), 0, "the text is gone");
  });
});
