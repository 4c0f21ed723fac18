// Attaching an image in the chat page (real Chromium, playwright-core) on an embedded gateway (PGlite, files in
// DATA_DIR/uploads): Alice picks a picture, it uploads with a progress bar and is sent; Bob's page shows it inline as a
// thumbnail (loaded under the page's CSP) and opens the full image. Writes docs/screenshots/attachments-*.png.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { type Browser, type Page } from "playwright-core";
import { launchChromium } from "../helpers/browser.js";
import sharp from "sharp";
import { createConversation, registerUser } from "../helpers/clients.js";
import { startGateways, type Cluster } from "../helpers/gateways.js";

const WAIT = 30_000;

describe("attachments in the chat page", { timeout: 300_000 }, () => {
  let cluster: Cluster;
  let browser: Browser;
  let url: string;

  before(async () => {
    execFileSync(process.execPath, ["scripts/build-web.mjs"], { stdio: "inherit" });
    cluster = await startGateways(1, { adapter: "memory", embedded: true });
    url = cluster.urls[0]!;
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await cluster?.cleanup();
  });

  const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

  async function signedIn(
    username: string,
    device: object = { viewport: { width: 1200, height: 800 } },
  ): Promise<Page> {
    const page = await (await browser.newContext(device)).newPage();
    page.on("pageerror", (error) => console.error("page error:", error.message));
    await page.goto(url);
    await page.fill("#auth-username", username);
    await page.fill("#auth-password", "correct horse battery");
    await page.locator("form.auth-form button[type=submit]").click();
    await page.locator("#me-name").waitFor({ timeout: WAIT });
    return page;
  }

  test("an image attached on one page shows inline on the other and opens in full", async () => {
    const alice = await registerUser(url);
    const bob = await registerUser(url);
    await createConversation(url, alice.accessToken, { type: "direct", userId: bob.user.id });
    const [alicePage, bobPage] = await Promise.all([signedIn(alice.user.username), signedIn(bob.user.username)]);
    await alicePage.locator(".conv-item", { hasText: bob.user.displayName }).click();
    await bobPage.locator(".conv-item", { hasText: alice.user.displayName }).click();

    const picture = await sharp({ create: { width: 300, height: 200, channels: 3, background: "#2a7" } })
      .png()
      .toBuffer();
    await alicePage.setInputFiles("#attach-input", { name: "garden.png", mimeType: "image/png", buffer: picture });
    await alicePage.locator('#attachment-tray .tray-item[data-state="done"]').waitFor({ timeout: WAIT });
    await alicePage.click("#send");
    await alicePage.locator("#attachment-tray").waitFor({ state: "hidden", timeout: WAIT });

    const thumbnail = bobPage.locator("#messages .msg-image");
    await thumbnail.waitFor({ timeout: WAIT });
    await bobPage.waitForFunction(
      () => {
        const img = document.querySelector<HTMLImageElement>("#messages .msg-image");
        return img !== null && img.complete && img.naturalWidth > 0;
      },
      undefined,
      { timeout: WAIT },
    );
    assert.equal(await thumbnail.getAttribute("alt"), "garden.png");

    await thumbnail.click();
    await bobPage.waitForFunction(
      () => {
        const img = document.querySelector<HTMLImageElement>("dialog.lightbox img");
        return img !== null && img.complete && img.naturalWidth === 300;
      },
      undefined,
      { timeout: WAIT },
    );

    // The README's screenshots: the image message with its thumbnail, at desktop and phone width.
    await bobPage.keyboard.press("Escape");
    await bobPage
      .locator("dialog.lightbox[open]")
      .waitFor({ state: "detached", timeout: WAIT })
      .catch(() => undefined);
    await bobPage.click("#request-accept");
    await bobPage.locator("#request-banner").waitFor({ state: "hidden", timeout: WAIT });
    await bobPage.mouse.move(900, 700);
    mkdirSync("docs/screenshots", { recursive: true });
    await bobPage.screenshot({ path: "docs/screenshots/attachments-desktop.png" });
    const phone = await signedIn(bob.user.username, PHONE);
    await phone.locator(".conv-item", { hasText: alice.user.displayName }).click();
    await phone.waitForFunction(
      () => {
        const img = document.querySelector<HTMLImageElement>("#messages .msg-image");
        return img !== null && img.complete && img.naturalWidth > 0;
      },
      undefined,
      { timeout: WAIT },
    );
    await phone.screenshot({ path: "docs/screenshots/attachments-phone.png" });
  });
});
