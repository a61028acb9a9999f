import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { build } from "esbuild";
import { chromium, type BrowserContext, type Page } from "playwright-core";

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

export interface BrowserPage {
  /** The origin the page is served from: the server under test must allow it. */
  origin: string;
  /** Opens the page in Chromium, with `server` in its query string. */
  open(server: string): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Bundles `entry` with esbuild for browsers, serves it with `body` from a port of its
 * own (another origin than the server's, as a real app's page would be) and drives
 * Debian's Chromium through playwright-core.
 */
export async function servePage(entry: string, body: string): Promise<BrowserPage> {
  const result = await build({ entryPoints: [entry], bundle: true, write: false, format: "esm", platform: "browser", target: "chrome120" });
  const script = result.outputFiles[0].text;
  const html = `<!doctype html><meta charset="utf-8"><title>iii-stream</title>${body}<script type="module" src="/page.js"></script>`;
  const pageServer = http.createServer((req, res) => {
    const [type, content] = req.url === "/page.js" ? ["text/javascript", script] : ["text/html", html];
    res.writeHead(200, { "content-type": `${type}; charset=utf-8` }).end(content);
  });
  await new Promise<void>((resolve) => pageServer.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;
  let userDataDir: string | undefined;
  let browser: BrowserContext | undefined;
  return {
    origin,
    async open(server) {
      userDataDir = await mkdtemp(path.join(os.tmpdir(), "iii-stream-chromium-"));
      browser = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
      const page = await browser.newPage();
      await page.goto(`${origin}/?server=${encodeURIComponent(server)}`);
      return page;
    },
    async close() {
      await browser?.close();
      await new Promise<void>((resolve) => pageServer.close(() => resolve()));
      if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
