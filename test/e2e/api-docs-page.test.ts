// /docs in a real browser: Swagger UI renders every operation of the document under the docs route's CSP, with no
// script refused by the policy (the page would stay blank if its scripts were). Chromium from Debian, as the other
// page tests use.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type Browser } from "playwright-core";
import { launchChromium } from "../helpers/browser.js";
import { startInProcessGateway, type InProcessGateway } from "../helpers/in-process.js";

describe("the API documentation page", () => {
  let gw: InProcessGateway;
  let browser: Browser;

  before(async () => {
    gw = await startInProcessGateway();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  test("Swagger UI shows every operation, and the CSP refuses none of its scripts", async () => {
    const document = (await gw.gateway.http.inject({ method: "GET", url: "/docs/json" })).json() as {
      paths: Record<string, Record<string, unknown>>;
    };
    const operations = Object.values(document.paths).reduce((n, item) => n + Object.keys(item).length, 0);
    const page = await browser.newPage();
    const violations: string[] = [];
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
    await page.goto(`${gw.url}/docs/`);
    await page.locator(".swagger-ui .opblock").first().waitFor({ timeout: 30_000 });
    assert.equal(await page.locator(".swagger-ui .opblock").count(), operations);
    assert.match((await page.locator(".swagger-ui .title").first().textContent()) ?? "", /Chat gateway HTTP API/);
    assert.deepEqual(
      violations.filter((v) => /script/i.test(v)),
      [],
    );
    await page.close();
  });
});
