/**
 * The client library in a real browser (Chromium through playwright-core): a page
 * bundled by esbuild watches a group with `iii-stream/client` over `connect` and over
 * `websocket`. The test restarts the server (file adapter, same port), writes while
 * it is down (through another server on the same data, as another instance would) and
 * after, and the page's lists converge to List without a reload.
 */
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createStreamServer, openFileBackend, type StreamServer } from "../../src/index.js";
import { createStreamClient, type StreamClient } from "../../src/client/node.js";
import { servePage, type BrowserPage } from "./chromium.js";

const dataDir = mkdtempSync(join(tmpdir(), "iii-stream-client-page-"));
let served: BrowserPage;
let server: StreamServer | undefined;
let port: number;
let page: Page;

async function startOn(listenPort: number): Promise<StreamServer> {
  const started = createStreamServer({ port: listenPort, backend: await openFileBackend({ dataDir }), allowedOrigins: [served.origin], shutdownGraceMs: 200 });
  await started.start();
  return started;
}

async function withClient<T>(url: string, use: (client: StreamClient) => Promise<T>): Promise<T> {
  const client = createStreamClient({ baseUrl: url });
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

async function listed(url: string): Promise<string> {
  return withClient(url, async (client) => {
    const rows: unknown[] = [];
    for await (const items of client.list("chat", "room")) for (const item of items) rows.push([item.itemId, item.data, item.revision]);
    return JSON.stringify(rows);
  });
}

const text = (id: string) => page.locator(`#${id}`).textContent();

beforeAll(async () => {
  served = await servePage(
    fileURLToPath(new URL("./client-page.ts", import.meta.url)),
    '<h1>connect <span id="connect-status"></span></h1><pre id="connect"></pre><h1>websocket <span id="websocket-status"></span></h1><pre id="websocket"></pre>',
  );
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  server = await startOn(port);
  await withClient(server.url, (client) => client.set("chat", "room", "m0", "before"));
  page = await served.open(server.url);
});

afterAll(async () => {
  await served?.close();
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

it("keeps live lists over connect and websocket equal to List across a server restart, without a reload", async () => {
  const url = server!.url;
  for (const transport of ["connect", "websocket"]) {
    await expect.poll(() => text(`${transport}-status`), { timeout: 15_000 }).toBe("live");
    await expect.poll(() => text(transport)).toBe(await listed(url));
  }
  await withClient(url, async (client) => {
    await client.set("chat", "room", "m1", { text: "hello" });
    await client.update("chat", "room", "m1", [{ type: "set", path: ["text"], value: "edited" }]);
  });
  for (const transport of ["connect", "websocket"]) await expect.poll(() => text(transport), { timeout: 10_000 }).toBe(await listed(url));

  // A mark in the page's memory: a reload would lose it.
  await page.evaluate("globalThis.beforeRestart = true");
  await server!.stop();
  server = undefined;
  for (const transport of ["connect", "websocket"]) await expect.poll(() => text(`${transport}-status`), { timeout: 10_000 }).toBe("reconnecting");
  // While the page's server is down, another one on the same data takes writes.
  const other = await startOn(0);
  await withClient(other.url, async (client) => {
    await client.delete("chat", "room", "m0");
    await client.set("chat", "room", "m2", { text: "while down" });
  });
  await other.stop();

  server = await startOn(port);
  await withClient(url, (client) => client.set("chat", "room", "m3", { text: "after" }).then(() => undefined));
  const expected = await listed(url);
  expect(JSON.parse(expected).map((row: unknown[]) => row[0])).toEqual(["m1", "m2", "m3"]);
  for (const transport of ["connect", "websocket"]) {
    await expect.poll(() => text(transport), { timeout: 15_000 }).toBe(expected);
    await expect.poll(() => text(`${transport}-status`)).toBe("live");
  }
  // Still the same page load: the lists were kept live, not reloaded.
  expect(await page.evaluate("globalThis.beforeRestart")).toBe(true);
});
