/**
 * The web console in a real Chromium (playwright-core): served by the server at
 * /console/, it shows an item written by the test without a reload, reports a conflict
 * when the test changed an item being edited, pages through a 10,000-item group, and
 * shows a trigger's call count going up; no page error and no console error is logged.
 * Screenshots of every page go to test/browser/screenshots/ (git-ignored); with
 * CONSOLE_README_SCREENSHOT=1 the group page's is also written to docs/console.png, the
 * README's picture.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createStreamServer, type StreamServer } from "../../src/index.js";
import { createStreamClient, type StreamClient } from "../../src/client/node.js";

const KEY = "console-test-key-0123456789";
const SCREENSHOTS = fileURLToPath(new URL("./screenshots/", import.meta.url));
const README_PICTURE = fileURLToPath(new URL("../../docs/console.png", import.meta.url));
const LARGE = 10_000;

let server: StreamServer;
let client: StreamClient;
let browser: BrowserContext;
let page: Page;
let userDataDir: string;
const problems: string[] = [];

/** Waits for what the page shows; the page refreshes its figures every 2 s, the machine may be busy. */
const poll = <T>(read: () => T | Promise<T>, timeout = 20_000) => expect.poll(read, { timeout, interval: 100 });

async function screenshot(name: string): Promise<string> {
  const file = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  server = createStreamServer({
    port: 0,
    apiKeys: [KEY],
    shutdownGraceMs: 200,
    functions: {
      triggers: [
        { triggerId: "audit", type: "stream", functionId: "audit", config: { streamName: "chat" } },
        { triggerId: "fragile", type: "stream", functionId: "fails", config: { streamName: "jobs", delivery: "at_least_once", maxAttempts: 1 } },
      ],
    },
  });
  server.registerFunction("audit", async () => null);
  server.registerFunction("fails", async () => {
    throw new Error("always fails");
  });
  await server.start();
  client = createStreamClient({ baseUrl: server.url, apiKey: KEY });
  await client.set("chat", "room", "m1", { text: "hello", likes: 0 });
  await client.set("chat", "room", "m2", { text: "hi", from: { name: "ann" } });
  await client.set("chat", "lobby", "welcome", { text: "welcome" });
  for (let start = 0; start < LARGE; start += 500) {
    await Promise.all(
      Array.from({ length: 500 }, (_, i) => client.set("metrics", "big", `item-${String(start + i).padStart(5, "0")}`, { n: start + i })),
    );
  }
  userDataDir = mkdtempSync(join(tmpdir(), "iii-stream-console-"));
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 800 },
  });
  page = await browser.newPage();
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") problems.push(`console ${message.type()}: ${message.text()} (${message.location().url})`);
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  client?.close();
  await server?.stop();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

it("asks for the API key, then lists the streams", async () => {
  await page.goto(`${server.url}/console`);
  await poll(() => page.locator("main h2").textContent()).toBe("This server needs an API key");
  expect(await page.locator("[data-field=access]").textContent()).toBe("no key");
  await page.getByLabel("API key").fill(KEY);
  await page.getByRole("button", { name: "use key" }).click();
  await poll(() => page.locator("[data-field=access]").textContent()).toBe("key in use");
  await poll(() => page.locator("main tbody tr").allTextContents()).toEqual(["chat2", "metrics1"]);
  await screenshot("streams");
});

it("goes from a stream to a group, and shows an item written meanwhile without a reload", async () => {
  await page.getByRole("link", { name: "chat" }).click();
  await poll(() => page.locator("main tbody tr").allTextContents()).toEqual(["lobby", "room"]);
  await screenshot("groups");
  await page.getByRole("link", { name: "room" }).click();
  await poll(() => page.locator("[data-field=status]").textContent()).toBe("live");
  await poll(() => page.locator("tr[data-id]").evaluateAll((rows) => rows.map((row) => row.getAttribute("data-id")))).toEqual(["m1", "m2"]);

  await client.set("chat", "room", "m3", { text: "written by the test" });
  await poll(() => page.locator('tr[data-id="m3"]').textContent()).toContain("written by the test");
  await poll(() => page.locator("[data-field=offset]").textContent()).toBe("3");
  await poll(() => page.locator("[data-field=subscribers]").textContent()).toBe("1");

  await client.send("chat", "room", "typing", { who: "ann" });
  await poll(() => page.locator(".log").textContent()).toContain('typing {"who":"ann"}');
});

it("edits an item conditionally: a change by someone else first is reported, not overwritten", async () => {
  await page.locator('tr[data-id="m1"] button').click();
  await poll(() => page.locator(".item-panel [data-field=revision]").textContent()).toBe("1");
  expect(JSON.parse((await page.locator(".item-panel .json").textContent())!)).toEqual({ text: "hello", likes: 0 });
  await page.getByRole("button", { name: "edit" }).click();
  await page.getByLabel("item JSON to save").fill('{"text": "edited in the console"}');
  await client.set("chat", "room", "m1", { text: "changed by the test first" });
  await page.getByRole("button", { name: /^save/ }).click();
  await poll(() => page.locator(".item-panel .message").textContent()).toMatch(/^conflict: the item changed after revision 1 \(it is now at revision 2\); your edit was not saved/);
  expect((await client.get("chat", "room", "m1"))?.data).toEqual({ text: "changed by the test first" });
  await screenshot("item-conflict");

  // Cancel, edit again from the revision now shown, and save.
  await page.getByRole("button", { name: "cancel" }).click();
  await page.getByRole("button", { name: "edit" }).click();
  await page.getByLabel("item JSON to save").fill('{"text": "edited in the console"}');
  await page.getByRole("button", { name: "save (if still revision 2)" }).click();
  await poll(() => page.locator(".item-panel .message").textContent()).toMatch(/^saved: revision 3/);
  expect((await client.get("chat", "room", "m1"))?.data).toEqual({ text: "edited in the console" });

  // An update operation, then a delete that asks first.
  await page.getByLabel("operation").selectOption("increment");
  await page.getByLabel("path (JSON array of keys)").fill('["likes"]');
  await page.getByLabel("value (JSON) or by (integer)").fill("2");
  await page.getByRole("button", { name: "apply" }).click();
  await poll(async () => (await client.get("chat", "room", "m1"))?.data).toEqual({ text: "edited in the console", likes: 2 });
  await poll(() => page.locator(".item-panel [data-field=revision]").textContent()).toBe("4");
  await page.getByRole("button", { name: "delete…" }).click();
  await page.getByRole("button", { name: "delete m1" }).click();
  await poll(async () => client.get("chat", "room", "m1")).toBeUndefined();
  await poll(() => page.locator('tr[data-id="m1"]').count()).toBe(0);
  await page.keyboard.press("Escape");
});

it("shows when an item written with a TTL expires", async () => {
  const response = await fetch(`${server.url}/iii.stream.v1.StreamService/Set`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ stream_name: "chat", group_id: "room", item_id: "brief", data: { text: "gone within the hour" }, ttl_ms: 3_600_000 }),
  });
  expect(response.status).toBe(200);
  const stored = await client.get("chat", "room", "brief");
  expect(stored?.expiresAtMs).toBeGreaterThan(Date.now());
  await page.locator('tr[data-id="brief"] button').click();
  const local = new Date(stored!.expiresAtMs!);
  await poll(() => page.locator(".item-panel [data-field=expires]").textContent()).toContain(`${String(local.getHours()).padStart(2, "0")}:${String(local.getMinutes()).padStart(2, "0")}:`);
  await client.delete("chat", "room", "brief");
  await page.keyboard.press("Escape");
});

it("sends an event from the page", async () => {
  await page.getByLabel("event type").fill("ping");
  await page.getByLabel("event data (JSON)").fill('{"from":"console"}');
  await page.getByRole("button", { name: "send", exact: true }).click();
  await poll(() => page.locator(".log").textContent()).toContain('ping {"from":"console"}');
  // From the keyboard: Enter on a row opens its item and focuses it, Escape closes it and
  // returns to the row.
  await page.locator('tr[data-id="m2"] button').focus();
  await page.keyboard.press("Enter");
  await poll(() => page.locator(".item-panel h3:focus").textContent()).toBe("m2");
  expect(await page.locator(".item-panel").isVisible()).toBe(true);
  await page.keyboard.press("Escape");
  await poll(() => page.locator(".item-panel").isVisible()).toBe(false);
  expect(await page.locator('tr[data-id="m2"] button:focus').count()).toBe(1);
  await page.keyboard.press("Enter");
  await poll(() => page.locator(".item-panel [data-field=revision]").textContent()).toBe("1");
  await screenshot("group");
  if (process.env.CONSOLE_README_SCREENSHOT === "1") {
    mkdirSync(join(README_PICTURE, ".."), { recursive: true });
    await page.screenshot({ path: README_PICTURE });
  }
  await page.setViewportSize({ width: 390, height: 844 });
  await screenshot("group-narrow");
  await page.setViewportSize({ width: 1280, height: 800 });
});

it("pages through a 10,000-item group and filters it by id", async () => {
  await page.goto(`${server.url}/console/#/streams/metrics/big`);
  await poll(() => page.locator("[data-field=position]").textContent(), 30_000).toBe("1–100 of 10,000");
  expect(await page.locator("tr[data-id]").count()).toBe(100);
  await page.getByRole("button", { name: "next ›" }).click();
  await poll(() => page.locator("[data-field=position]").textContent()).toBe("101–200 of 10,000");
  expect(await page.locator("tr[data-id]").first().getAttribute("data-id")).toBe("item-00100");
  await page.getByRole("button", { name: "last page" }).click();
  await poll(() => page.locator("[data-field=position]").textContent()).toBe("9,901–10,000 of 10,000");
  expect(await page.locator("tr[data-id]").last().getAttribute("data-id")).toBe("item-09999");
  await page.keyboard.press("/");
  await page.keyboard.type("item-0777");
  await poll(() => page.locator("[data-field=position]").textContent()).toBe("1–10 of 10 matching");
  await screenshot("large-group");
});

it("shows the functions and triggers, and a trigger's call count going up", async () => {
  await page.getByRole("link", { name: "Functions" }).click();
  const calls = page.locator('tr[data-id="audit"] [data-stat=calls]');
  await poll(() => calls.textContent()).toMatch(/^\d+$/);
  const before = Number(await calls.textContent());
  await client.set("chat", "room", "m9", { text: "for the trigger" });
  await poll(async () => Number(await calls.textContent())).toBeGreaterThan(before);
  expect(await page.locator('tbody tr[data-id="audit"]').count()).toBe(2); // the function and the trigger

  // An at-least-once trigger whose function fails: its call becomes a dead letter.
  const fragile = page.locator('tr[data-id="fragile"]');
  expect(await fragile.locator("td").nth(4).textContent()).toBe("at least once");
  expect(await fragile.locator("[data-stat=deadLetters]").textContent()).toBe("0");
  await client.set("jobs", "queue", "j1", { task: "cannot be done" });
  await poll(() => fragile.locator("[data-stat=deadLetters]").textContent()).toBe("1");
  expect(await fragile.locator("[data-stat=lag]").textContent()).toBe("0");
  await screenshot("functions");
});

it("shows the server's figures from the metrics", async () => {
  await page.getByRole("link", { name: "Server" }).click();
  await poll(() => page.locator("[data-field=adapter]").textContent()).toBe("memory");
  expect(await page.locator("[data-field=version]").textContent()).toMatch(/^\d+\.\d+\.\d+/);
  await poll(() => page.locator("[data-field=writes]").textContent()).toMatch(/\d/);
  await screenshot("server");
});

it("logged no page error and no console error", () => {
  expect(problems).toEqual([]);
});
