/**
 * Figures of the web console on a large group, in Debian's Chromium (playwright-core):
 *
 * 1. From opening the group's page to its first page of rows drawn (the live view's whole
 *    snapshot, then one page of rows).
 * 2. The page's own work for "next page" and "last page" (in the page, from the click to
 *    the end of its synchronous redraw), and a filter over every id (from the input event to
 *    the rows drawn, its 150 ms typing pause included).
 * 3. While a writer changes random items at a steady rate: the longest task the page ran
 *    (Long Tasks API: 50 ms or more blocks input) and how many there were, and the time
 *    from a Set's acknowledgement to its row showing the new value.
 *
 *   npm run build && npx tsx bench/console-large-group.ts [-- --items 100000 --rate 200 --seconds 10]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { createStreamServer } from "../src/index.js";
import { createStreamClient } from "../src/client/node.js";
import { silentLog } from "../src/core/log.js";
import { numberFlag } from "./script-flags.js";

const ITEMS = numberFlag("items", 100_000);
const RATE = numberFlag("rate", 200);
const SECONDS = numberFlag("seconds", 10);
const idOf = (n: number) => `item-${String(n).padStart(6, "0")}`;

const server = createStreamServer({ port: 0, log: silentLog });
await server.start();
const client = createStreamClient({ baseUrl: server.url });
const loadStart = performance.now();
for (let start = 0; start < ITEMS; start += 1000) {
  const writes = Array.from({ length: Math.min(1000, ITEMS - start) }, (_, i) => ({ itemId: idOf(start + i), set: { n: start + i, text: "a value of a few dozen bytes" } }));
  await client.batch("bench", "large", writes);
}
console.log(`loaded ${ITEMS.toLocaleString("en-US")} items in ${((performance.now() - loadStart) / 1000).toFixed(1)} s`);

const userDataDir = mkdtempSync(join(tmpdir(), "iii-stream-console-bench-"));
const browser = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  viewport: { width: 1280, height: 800 },
  // The bench's page-side code is evaluated from text, which the console's CSP forbids.
  bypassCSP: true,
});
try {
  const page = await browser.newPage();
  const expected = `1–100 of ${ITEMS.toLocaleString("en-US")}`;
  const opened = performance.now();
  await page.goto(`${server.url}/console/#/streams/bench/large`);
  await page.waitForFunction(`document.querySelector("[data-field=position]")?.textContent === ${JSON.stringify(expected)}`, undefined, { timeout: 120_000, polling: 20 });
  console.log(`open to first page drawn: ${Math.round(performance.now() - opened)} ms`);

  // The page-side code is text: this project's type-check has no DOM library (Node code must not see it).
  const redraw = (label: string) =>
    page.evaluate<number>(`(() => {
      const button = [...document.querySelectorAll("button")].find((b) => b.textContent === ${JSON.stringify(label)} || b.getAttribute("aria-label") === ${JSON.stringify(label)});
      const start = performance.now();
      button.click();
      return performance.now() - start;
    })()`);
  const nexts: number[] = [];
  for (let i = 0; i < 20; i++) nexts.push(await redraw("next ›"));
  nexts.sort((a, b) => a - b);
  console.log(`next page: median ${nexts[10].toFixed(1)} ms, worst ${nexts[19].toFixed(1)} ms (20 clicks)`);
  console.log(`last page: ${(await redraw("last page")).toFixed(1)} ms`);
  await redraw("first page");
  const filtering = await page.evaluate<{ ms: number; matching: string }>(`new Promise((resolve) => {
    const filter = document.querySelector("input.filter");
    const position = document.querySelector("[data-field=position]");
    const start = performance.now();
    new MutationObserver((_, observer) => {
      observer.disconnect();
      resolve({ ms: performance.now() - start, matching: position.textContent });
    }).observe(position, { childList: true, characterData: true, subtree: true });
    filter.value = "77";
    filter.dispatchEvent(new Event("input"));
  })`);
  console.log(`filter "77" over every id: ${filtering.ms.toFixed(0)} ms from typing to the rows drawn, the 150 ms typing pause included (${filtering.matching})`);

  // Long tasks and change-to-row latency under a steady writer.
  await page.evaluate(`(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.longTasks.push(entry.duration);
    }).observe({ type: "longtask" });
  })()`);
  await redraw("first page");
  await page.evaluate(`(() => {
    const filter = document.querySelector("input.filter");
    filter.value = "";
    filter.dispatchEvent(new Event("input"));
  })()`);
  await page.waitForTimeout(500);
  const latencies: number[] = [];
  const until = Date.now() + SECONDS * 1000;
  let sequence = 0;
  while (Date.now() < until) {
    const tick = Date.now();
    const writes: Array<Promise<unknown>> = [];
    for (let i = 0; i < RATE / 10; i++) writes.push(client.set("bench", "large", idOf(Math.floor(Math.random() * ITEMS)), { n: -1, seq: sequence++ }));
    await Promise.all(writes);
    // Every second, one write to a row on screen, timed to its display.
    if (sequence % RATE < RATE / 10) {
      const marker = `m${sequence}`;
      await client.set("bench", "large", idOf(5), { marker });
      const acked = Date.now();
      await page.waitForFunction(`document.querySelector('tr[data-id="item-000005"]')?.textContent?.includes(${JSON.stringify(marker)})`, undefined, { polling: "raf" });
      latencies.push(Date.now() - acked);
    }
    await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - tick))));
  }
  const longTasks = await page.evaluate<number[]>("window.longTasks");
  latencies.sort((a, b) => a - b);
  console.log(`writer at ${RATE}/s for ${SECONDS} s (${sequence.toLocaleString("en-US")} writes): ${longTasks.length} long tasks, longest ${Math.round(Math.max(0, ...longTasks))} ms`);
  console.log(`Set acknowledged to its row shown: median ${latencies[Math.floor(latencies.length / 2)]} ms, worst ${latencies[latencies.length - 1]} ms (${latencies.length} samples)`);
} finally {
  await browser.close();
  client.close();
  await server.stop();
  rmSync(userDataDir, { recursive: true, force: true });
}
