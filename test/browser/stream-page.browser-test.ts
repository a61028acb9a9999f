/**
 * A real browser: Debian's Chromium, driven by playwright-core, loads a page served
 * by this test from its own port (another origin than the server's, as a real app's
 * page would be). The page watches a group over the stream socket with a native
 * WebSocket and with Subscribe through connect-web; the test writes and reads what
 * the page shows. Needs /usr/bin/chromium (`npm run test:browser`).
 */
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { build } from "esbuild";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startServer, type RunningServer } from "../support/server.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let pageServer: http.Server;
let running: RunningServer;
let userDataDir: string;
let browser: BrowserContext;
let page: Page;

async function bundlePage(): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL("./page.ts", import.meta.url))],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "chrome120",
  });
  return result.outputFiles[0].text;
}

async function servePage(script: string): Promise<string> {
  const html = `<!doctype html><meta charset="utf-8"><title>iii-stream</title>
<h1>stream socket</h1><ul id="socket"></ul><h1>Subscribe</h1><ul id="subscribe"></ul>
<script type="module" src="/page.js"></script>`;
  pageServer = http.createServer((req, res) => {
    const [type, body] = req.url === "/page.js" ? ["text/javascript", script] : ["text/html", html];
    res.writeHead(200, { "content-type": `${type}; charset=utf-8` }).end(body);
  });
  await new Promise<void>((resolve) => pageServer.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;
}

const lines = (listId: string) => page.locator(`#${listId} li`).allTextContents();

beforeAll(async () => {
  const pageOrigin = await servePage(await bundlePage());
  // The page's origin is allowed: CORS for connect-web, and the WebSocket handshake's Origin.
  running = await startServer({ allowedOrigins: [pageOrigin] });
  await running.client().set({ streamName: "chat", groupId: "room", itemId: "m0", data: fromJson(ValueSchema, "before") });
  userDataDir = await mkdtemp(path.join(os.tmpdir(), "iii-stream-chromium-"));
  browser = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  page = await browser.newPage();
  await page.goto(`${pageOrigin}/?server=${encodeURIComponent(running.url)}`);
});

afterAll(async () => {
  await browser?.close();
  await running?.stop();
  await new Promise<void>((resolve) => (pageServer ? pageServer.close(() => resolve()) : resolve()));
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

it("shows live changes over the stream socket and over Subscribe in a real browser", async () => {
  await expect.poll(() => lines("socket"), { timeout: 15_000 }).toEqual(['sync null ["before"] @1']);
  await expect.poll(() => lines("subscribe"), { timeout: 15_000 }).toEqual(["snapshot 1 @1"]);

  const client = running.client();
  await client.set({ streamName: "chat", groupId: "room", itemId: "m1", data: fromJson(ValueSchema, { text: "hello" }) });
  await client.set({ streamName: "chat", groupId: "room", itemId: "m1", data: fromJson(ValueSchema, { text: "edited" }) });
  await client.delete({ streamName: "chat", groupId: "room", itemId: "m0" });

  await expect.poll(() => lines("socket"), { timeout: 10_000 }).toEqual([
    'sync null ["before"] @1',
    'create m1 {"text":"hello"} @2',
    'update m1 {"text":"edited"} @3',
    'delete m0 "before" @4',
  ]);
  await expect.poll(() => lines("subscribe"), { timeout: 10_000 }).toEqual([
    "snapshot 1 @1",
    'change m1 {"text":"hello"} @2',
    'change m1 {"text":"edited"} @3',
    'change m0 "before" @4',
  ]);
});
