// The chat page in a real browser (Debian's Chromium, driven by playwright-core) against two real gateways on the
// sharded Redis adapter: Alice on one pod, Bob with two devices, one on each pod. The page is built first, so the
// gateways serve what `npm run build` ships. Also writes the screenshots in docs/screenshots.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { type Browser, type BrowserContext, type Page } from "playwright-core";
import { launchChromium } from "../helpers/browser.js";
import { api, eventually } from "../helpers/clients.js";
import { startGateways, type Cluster } from "../helpers/gateways.js";

const PASSWORD = "correct horse battery";
const WAIT = 30_000;

interface Device {
  context: BrowserContext;
  page: Page;
  /** Browser dialogs (alert, confirm): none may ever open, an HTML-looking message above all. */
  dialogs: string[];
}

describe("chat page in a browser", { timeout: 360_000 }, () => {
  let cluster: Cluster;
  let browser: Browser;
  let alice: Device;
  let bob1: Device;
  let bob2: Device;
  let urlA: string;
  let urlB: string;

  before(async () => {
    execFileSync(process.execPath, ["scripts/build-web.mjs"], { stdio: "inherit" });
    cluster = await startGateways(2, { adapter: "sharded" });
    [urlA, urlB] = cluster.urls as [string, string];
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await cluster?.cleanup();
  });

  async function device(viewport = { width: 1280, height: 800 }): Promise<Device> {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on("pageerror", (error) => console.error("page error:", error.message));
    return { context, page, dialogs };
  }

  async function signIn(page: Page, url: string, username: string, displayName?: string): Promise<void> {
    await page.goto(url);
    if (displayName) {
      await page.getByRole("tab", { name: "Create account" }).click();
      await page.fill("#auth-display-name", displayName);
    }
    await page.fill("#auth-username", username);
    await page.fill("#auth-password", PASSWORD);
    await page.locator("form.auth-form button[type=submit]").click();
    await page.locator("#me-name").waitFor({ timeout: WAIT });
  }

  const conversationItem = (page: Page, title: string) => page.locator(".conv-item", { hasText: title });
  const badgeOf = (page: Page, title: string) => conversationItem(page, title).locator("[data-testid=unread]");

  async function open(page: Page, title: string): Promise<void> {
    await conversationItem(page, title).click();
    await page.locator("#pane-title", { hasText: title }).waitFor({ timeout: WAIT });
  }

  async function send(page: Page, text: string): Promise<void> {
    await page.fill("#composer-input", text);
    await page.press("#composer-input", "Enter");
  }

  const texts = (page: Page) => page.locator("#messages .msg .msg-text").allTextContents();

  async function waitForText(page: Page, text: string): Promise<void> {
    await page.locator("#messages .msg-text", { hasText: text }).first().waitFor({ timeout: WAIT });
  }

  async function tokenOf(page: Page): Promise<string> {
    const raw = await page.evaluate(() => localStorage.getItem("chat-gateway.session"));
    assert.ok(raw, "the page keeps its session in localStorage");
    return (JSON.parse(raw) as { accessToken: string }).accessToken;
  }

  test("two people register, find each other and chat both ways across two pods", async () => {
    alice = await device();
    bob1 = await device();
    bob2 = await device();
    await signIn(alice.page, urlA, "alice", "Alice Martin");
    await signIn(bob1.page, urlA, "bob", "Bob Chen");
    // Bob's second device signs in (not registers) on the other pod.
    await signIn(bob2.page, urlB, "bob");

    await alice.page.click("#new-chat");
    await alice.page.fill("#user-search", "bo");
    await alice.page.locator('.user-result[data-username="bob"]').click();
    await alice.page.locator("#pane-title", { hasText: "Bob Chen" }).waitFor({ timeout: WAIT });

    await send(alice.page, "Hi Bob! Are we still on for Saturday?");
    // Shown at once, then confirmed by the gateway's ack.
    const mine = alice.page.locator("#messages .msg.mine").last();
    await mine.waitFor({ timeout: WAIT });
    await eventually(
      async () => (await mine.getAttribute("data-status")) !== "pending",
      WAIT,
      "Alice's message to be acknowledged",
    );

    for (const bob of [bob1, bob2]) {
      await badgeOf(bob.page, "Alice Martin").waitFor({ timeout: WAIT });
      assert.equal(await badgeOf(bob.page, "Alice Martin").textContent(), "1");
    }
    await open(bob1.page, "Alice Martin");
    await waitForText(bob1.page, "Are we still on for Saturday?");
    await send(bob1.page, "Yes! Meet at the trailhead at 9?");
    await waitForText(alice.page, "Meet at the trailhead at 9?");
    // Bob's other device shows his own message as his, from the other pod.
    await open(bob2.page, "Alice Martin");
    await waitForText(bob2.page, "Meet at the trailhead at 9?");
    assert.equal(
      await bob2.page.locator("#messages .msg.mine .msg-text").last().textContent(),
      "Yes! Meet at the trailhead at 9?",
    );

    // Bob read Alice's message: her page marks it read.
    await eventually(
      async () => (await alice.page.locator("#messages .msg.mine").first().getAttribute("data-status")) === "read",
      WAIT,
      "Alice's first message to show as read",
    );
    assert.deepEqual(await texts(alice.page), [
      "Hi Bob! Are we still on for Saturday?",
      "Yes! Meet at the trailhead at 9?",
    ]);
  });

  test("reading on one device clears the unread badge on the other", async () => {
    // A group gives Bob a conversation that neither of his devices has open.
    const token = await tokenOf(alice.page);
    const search = await api<{ users: { id: string; username: string }[] }>(urlA, "GET", "/v1/users?query=bob", {
      token,
    });
    const bobId = search.body.users.find((u) => u.username === "bob")?.id;
    assert.ok(bobId);
    await alice.page.click("#new-chat");
    await alice.page.getByRole("tab", { name: "New group" }).click();
    await alice.page.fill("#group-title", "Weekend hike");
    await alice.page.fill("#user-search", "bob");
    await alice.page.locator('.user-result[data-username="bob"]').click();
    await alice.page.click("#create-group");
    await alice.page.locator("#pane-title", { hasText: "Weekend hike" }).waitFor({ timeout: WAIT });
    await send(alice.page, "Packing list: water, snacks, rain jacket");
    await send(alice.page, "Anything else?");

    for (const bob of [bob1, bob2]) {
      await eventually(
        async () =>
          (await badgeOf(bob.page, "Weekend hike").count()) === 1 &&
          (await badgeOf(bob.page, "Weekend hike").textContent()) === "2",
        WAIT,
        "both of Bob's devices to show 2 unread in the group",
      );
    }
    await open(bob1.page, "Weekend hike");
    await waitForText(bob1.page, "Anything else?");
    await eventually(async () => (await badgeOf(bob2.page, "Weekend hike").count()) === 0, WAIT, "the badge to clear");
    assert.equal(await badgeOf(bob1.page, "Weekend hike").count(), 0);

    // Bob has read the group but written nothing in it, so a page loaded now hears no read event and has no message
    // of his to infer it from: the mark can only come from the members' markers in the conversation list.
    await eventually(
      async () => (await alice.page.locator("#messages .msg.mine").last().getAttribute("data-status")) === "read",
      WAIT,
      "Alice's group message to show as read on her open page",
    );
    const fresh = await device();
    await signIn(fresh.page, urlB, "alice");
    await open(fresh.page, "Weekend hike");
    await waitForText(fresh.page, "Anything else?");
    assert.equal(await fresh.page.locator("#messages .msg.mine").last().getAttribute("data-status"), "read");
    await fresh.context.close();
  });

  test("scrolling up loads older history page by page", async () => {
    const carol = await api<{ accessToken: string; user: { id: string } }>(urlB, "POST", "/v1/auth/register", {
      body: { username: "carol", password: PASSWORD, displayName: "Carol Diaz" },
    });
    assert.equal(carol.status, 201);
    const aliceId = (
      await api<{ users: { id: string; username: string }[] }>(urlB, "GET", "/v1/users?query=alice", {
        token: carol.body.accessToken,
      })
    ).body.users.find((u) => u.username === "alice")?.id;
    assert.ok(aliceId);
    const created = await api<{ conversation: { id: string } }>(urlB, "POST", "/v1/conversations", {
      token: carol.body.accessToken,
      body: { type: "direct", userId: aliceId },
    });
    const conversationId = created.body.conversation.id;
    for (let i = 1; i <= 120; i++) {
      const res = await api(urlB, "POST", `/v1/conversations/${conversationId}/messages`, {
        token: carol.body.accessToken,
        body: { clientMsgId: `seed-${i}`, content: `Seed message ${i}` },
      });
      assert.equal(res.status, 201);
    }

    await badgeOf(alice.page, "Carol Diaz").waitFor({ timeout: WAIT });
    await open(alice.page, "Carol Diaz");
    await waitForText(alice.page, "Seed message 120");
    const firstPage = await texts(alice.page);
    assert.ok(firstPage.length < 120, `the first page is not everything (${firstPage.length})`);
    assert.equal(firstPage.at(-1), "Seed message 120");

    await eventually(
      async () => {
        await alice.page.locator("#messages").evaluate((el) => {
          el.scrollTop = 0;
        });
        return (await alice.page.locator("#messages .msg-text", { hasText: /^Seed message 1$/ }).count()) === 1;
      },
      WAIT,
      "the oldest message after scrolling up",
    );
    const all = await texts(alice.page);
    assert.deepEqual(
      all,
      Array.from({ length: 120 }, (_, i) => `Seed message ${i + 1}`),
      "every message once, in order",
    );
    await alice.page.locator(".history-note", { hasText: "beginning of the conversation" }).waitFor({ timeout: WAIT });
  });

  test("a device that goes offline and comes back loses nothing and doubles nothing", async () => {
    await open(alice.page, "Bob Chen");
    await open(bob1.page, "Alice Martin");
    await open(bob2.page, "Alice Martin");
    await bob2.context.setOffline(true);
    await bob2.page.locator("#connection-banner").waitFor({ state: "visible", timeout: WAIT });

    const whileAway = ["Train is delayed, sorry", "I'll be 10 minutes late", "Grab a table by the window?"];
    for (const text of whileAway) await send(alice.page, text);
    await send(bob2.page, "No rush, I just got here");
    // The bubble of the message just sent offline (not whichever own bubble happens to be last when it is read).
    const pending = bob2.page.locator("#messages .msg.mine", { hasText: "No rush, I just got here" });
    await pending.waitFor({ timeout: WAIT });
    assert.equal(await pending.getAttribute("data-status"), "pending");

    await bob2.context.setOffline(false);
    await bob2.page.locator("#connection-banner").waitFor({ state: "hidden", timeout: WAIT });
    await waitForText(bob2.page, "Grab a table by the window?");
    await waitForText(alice.page, "No rush, I just got here");
    await eventually(
      async () => (await bob2.page.locator("#messages .msg[data-status=pending]").count()) === 0,
      WAIT,
      "Bob's offline message to be confirmed",
    );

    for (const page of [alice.page, bob1.page, bob2.page]) {
      await waitForText(page, "No rush, I just got here");
      const shown = await texts(page);
      for (const text of [...whileAway, "No rush, I just got here"]) {
        assert.equal(shown.filter((t) => t === text).length, 1, `"${text}" exactly once`);
      }
      const at = (text: string) => shown.indexOf(text);
      assert.ok(at(whileAway[0]!) < at(whileAway[1]!) && at(whileAway[1]!) < at(whileAway[2]!), "in order");
    }
  });

  test("an HTML-looking message is shown as text", async () => {
    const payload = "<img src=x onerror=alert(1)> <b>bold?</b>";
    await open(alice.page, "Weekend hike");
    await open(bob1.page, "Weekend hike");
    await send(alice.page, payload);
    await waitForText(bob1.page, "<img src=x");
    const bubble = bob1.page.locator("#messages .msg-text").last();
    assert.equal(await bubble.textContent(), payload);
    assert.equal(await bob1.page.locator("#messages img, #messages b").count(), 0);
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const d of [alice, bob1, bob2]) assert.deepEqual(d.dialogs, []);
    await open(bob1.page, "Alice Martin");
  });

  test("a message request shows its banner to the recipient until Accept", async () => {
    // Carol opened a direct conversation with Alice in the scrolling test; Alice never answered it.
    await open(alice.page, "Carol Diaz");
    const banner = alice.page.locator("#request-banner");
    await banner.waitFor({ state: "visible", timeout: WAIT });
    assert.match((await banner.textContent()) ?? "", /Message request/);
    await alice.page.click("#request-accept");
    await banner.waitFor({ state: "hidden", timeout: WAIT });
    const token = await tokenOf(alice.page);
    const list = await api<{ conversations: { type: string; request: { state: string } | null }[] }>(
      urlA,
      "GET",
      "/v1/conversations",
      { token },
    );
    const requests = list.body.conversations.filter((c) => c.request !== null).map((c) => c.request!.state);
    assert.ok(requests.includes("accepted") && !requests.includes("pending"), JSON.stringify(requests));
  });

  test("screenshots of the page at desktop and phone width", async () => {
    await send(alice.page, "Forecast says sunny all day");
    await open(alice.page, "Bob Chen");
    await send(alice.page, "Found one. Second floor, by the window");
    await waitForText(bob2.page, "Second floor, by the window");
    await send(bob2.page, "Perfect, coming up!\nOrdering you a flat white.");
    await waitForText(alice.page, "Ordering you a flat white.");
    await eventually(
      async () => (await bob2.page.locator("#messages .msg.mine").last().getAttribute("data-status")) === "read",
      WAIT,
      "Bob's last message to show as read by Alice",
    );
    await alice.page.focus("#composer-input");
    await alice.page.keyboard.type("See you");
    await bob2.page
      .locator("#pane-subtitle", { hasText: "typing" })
      .waitFor({ timeout: WAIT })
      .catch(() => undefined);

    mkdirSync("docs/screenshots", { recursive: true });
    await bob2.page.screenshot({ path: "docs/screenshots/desktop.png" });

    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    const page = await phone.newPage();
    await signIn(page, urlB, "bob");
    await open(page, "Alice Martin");
    await waitForText(page, "Ordering you a flat white.");
    // Two views at phone width: the conversation alone, with a way back to the list.
    assert.equal(await page.locator(".sidebar").isVisible(), false);
    await page.screenshot({ path: "docs/screenshots/phone.png" });
    await page.getByRole("button", { name: "Back to conversations" }).click();
    await conversationItem(page, "Weekend hike").waitFor({ timeout: WAIT });
    await phone.close();
  });
});
