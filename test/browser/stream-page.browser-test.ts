/**
 * A real browser: Debian's Chromium, driven by playwright-core, loads a page served
 * by this test from its own port (another origin than the server's, as a real app's
 * page would be). The page watches a group over the stream socket with a native
 * WebSocket and with Subscribe through connect-web; the test writes and reads what
 * the page shows. Needs /usr/bin/chromium (`npm run test:browser`).
 */
import { fileURLToPath } from "node:url";
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startServer, type RunningServer } from "../support/server.js";
import { servePage, type BrowserPage } from "./chromium.js";

let served: BrowserPage;
let running: RunningServer;
let page: Page;

const lines = (listId: string) => page.locator(`#${listId} li`).allTextContents();

beforeAll(async () => {
  served = await servePage(
    fileURLToPath(new URL("./page.ts", import.meta.url)),
    '<h1>stream socket</h1><ul id="socket"></ul><h1>Subscribe</h1><ul id="subscribe"></ul>',
  );
  // The page's origin is allowed: CORS for connect-web, and the WebSocket handshake's Origin.
  running = await startServer({ allowedOrigins: [served.origin] });
  await running.client().set({ streamName: "chat", groupId: "room", itemId: "m0", data: fromJson(ValueSchema, "before") });
  page = await served.open(running.url);
});

afterAll(async () => {
  await served?.close();
  await running?.stop();
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
