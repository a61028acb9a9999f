import { registerWorker, type IIIClient } from "iii-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonObject } from "../src/index.js";
import { startServer, type RunningServer } from "./support/server.js";
import { plain, StreamCursor } from "./support/subscribe-view.js";
import { eventOf, join, openSocket, wsUrl, type TestSocket } from "./support/ws-client.js";

/*
 * Groups larger than one message may carry: the stream socket's sync stays one message
 * for the reference's clients, within maxUnpagedBytes, and comes in chunks to a join
 * that asks for them; the worker's unpaged lists refuse instead of building a message
 * nobody can take; Subscribe always chunks. Small limits stand in for the real ones
 * (64 MiB, 256 KiB), which behave the same way at a size a test cannot afford.
 */
const MAX_UNPAGED_BYTES = 256 * 1024;
const CHUNK_BYTES = 32 * 1024;
const BIG_ITEMS = 200;
const ITEM_TEXT = "x".repeat(2000);

let running: RunningServer;
const sockets: TestSocket[] = [];
let worker: IIIClient | undefined;

beforeAll(async () => {
  running = await startServer({ maxUnpagedBytes: MAX_UNPAGED_BYTES, snapshotChunkBytes: CHUNK_BYTES });
  const engine = running.server.engine;
  for (let i = 0; i < BIG_ITEMS; i++) await engine.set({ streamName: "s", groupId: "big", itemId: `item-${i}` }, { i, text: ITEM_TEXT });
  await engine.set({ streamName: "s", groupId: "small", itemId: "a" }, { n: 1 });
  await engine.set({ streamName: "s", groupId: "small", itemId: "b" }, { n: 2 });
  await engine.set({ streamName: "s", groupId: "small", itemId: "a" }, { n: 3 });
});

afterAll(async () => {
  await worker?.shutdown();
  await Promise.all(sockets.map((s) => s.close()));
  await running.stop();
});

async function connect(path = "/"): Promise<TestSocket> {
  const socket = await openSocket(wsUrl(running.url, path));
  sockets.push(socket);
  return socket;
}

const eventOfMessage = (message: JsonObject) => message.event as JsonObject;

describe("the stream socket's sync of a large group", () => {
  it("sync carries the ids and revisions beside the values, and more: false", async () => {
    const socket = await connect();
    socket.send(join("small", "s", "small"));
    const sync = eventOfMessage(await socket.next(eventOf("small", "sync")));
    expect(sync.data).toEqual([{ n: 3 }, { n: 2 }]);
    expect(sync.items).toEqual([
      { id: "a", revision: 2, updatedAtMs: expect.any(Number) },
      { id: "b", revision: 1, updatedAtMs: expect.any(Number) },
    ]);
    expect(sync.more).toBe(false);
  });

  it("refuses a whole sync beyond maxUnpagedBytes with an error event, and the connection stays usable", async () => {
    const socket = await connect();
    socket.send(join("whole", "s", "big"));
    const error = eventOfMessage(await socket.next(eventOf("whole", "error")));
    expect(error.code).toBe("resource_exhausted");
    expect(error.message).toMatch(/join with chunks/);
    socket.send(join("after", "s", "small"));
    await socket.next(eventOf("after", "sync"));
    expect(running.server.stats().subscriptions).toBeGreaterThan(0);
  });

  it("a chunked join on a missing group gets one empty last chunk, and creates nothing", async () => {
    const socket = await connect();
    socket.send(join("missing", "s", "no-such-group", { chunks: true }));
    const sync = await socket.next(eventOf("missing", "sync"));
    expect([eventOfMessage(sync).data, eventOfMessage(sync).items, eventOfMessage(sync).more, sync.offset]).toEqual([[], [], false, 0]);
    expect((await running.client().listGroups({ streamName: "s" })).groups).toEqual(["big", "small"]);
  });

  it.each([
    ["a join message with chunks: true", (socket: TestSocket) => socket.send(join("chunked", "s", "big", { chunks: true })), "/"],
    ["a path join with ?chunks=true", () => undefined, "/stream/s/big?chunks=true"],
  ])("sends the group in chunks to %s: one offset, more on all but the last, then changes", async (_label, send, path) => {
    const socket = await connect(path);
    send(socket);
    const syncs: JsonObject[] = [];
    for (;;) {
      const message = await socket.next((m) => eventOfMessage(m)?.type === "sync", 5000, syncs.length === 0 ? 0 : socket.messages.indexOf(syncs.at(-1)!) + 1);
      syncs.push(message);
      if (eventOfMessage(message).more === false) break;
    }
    expect(syncs.length).toBeGreaterThan(5);
    expect(new Set(syncs.map((m) => m.offset)).size).toBe(1);
    const values = syncs.flatMap((m) => eventOfMessage(m).data as JsonObject[]);
    const rows = syncs.flatMap((m) => eventOfMessage(m).items as JsonObject[]);
    expect(values.map((v) => v.i)).toEqual(Array.from({ length: BIG_ITEMS }, (_, i) => i));
    expect(rows.map((r) => r.id)).toEqual(Array.from({ length: BIG_ITEMS }, (_, i) => `item-${i}`));
    for (const sync of syncs) expect(JSON.stringify(eventOfMessage(sync).data).length).toBeLessThan(CHUNK_BYTES + ITEM_TEXT.length + 100);

    const subscriptionId = syncs[0].subscriptionId as string;
    const offset = Number(syncs[0].offset);
    await running.server.engine.set({ streamName: "s", groupId: "big", itemId: "item-0" }, { i: 0, text: "changed" });
    const change = await socket.next(eventOf(subscriptionId, "update"));
    expect(change.offset).toBe(offset + 1);
    expect(socket.messages.indexOf(change)).toBeGreaterThan(socket.messages.indexOf(syncs.at(-1)!));
    await running.server.engine.set({ streamName: "s", groupId: "big", itemId: "item-0" }, { i: 0, text: ITEM_TEXT });
  });
});

describe("Subscribe of a large group", () => {
  it("always comes in chunks of at most the chunk size, over Connect JSON too", async () => {
    const cursor = new StreamCursor(running.client("connect-json-h1"), { streamName: "s", groupId: "big" });
    try {
      const chunks = [];
      for (;;) {
        const response = await cursor.next();
        if (response.message.case !== "snapshot") throw new Error(`expected a snapshot chunk, got ${response.message.case}`);
        chunks.push(response.message.value);
        if (!response.message.value.more) break;
      }
      expect(chunks.length).toBeGreaterThan(5);
      expect(chunks.flatMap((chunk) => chunk.items.map((item) => item.itemId))).toEqual(Array.from({ length: BIG_ITEMS }, (_, i) => `item-${i}`));
      for (const chunk of chunks) {
        expect(chunk.offset).toBe(chunks[0].offset);
        expect(chunk.items.reduce((sum, item) => sum + JSON.stringify(plain(item.data)).length + item.itemId.length + 32, 0)).toBeLessThanOrEqual(CHUNK_BYTES);
      }
    } finally {
      cursor.close();
    }
  });
});

describe("the worker's unpaged lists", () => {
  it("answer within maxUnpagedBytes and refuse a group larger than one answer, naming the paged RPC", async () => {
    worker = registerWorker(wsUrl(running.url, "/"), { workerName: "lists", otel: { enabled: false } });
    const call = (function_id: string, payload: unknown) => worker!.trigger({ function_id, payload });
    expect(await call("stream::list", { stream_name: "s", group_id: "small" })).toEqual([{ n: 3 }, { n: 2 }]);
    await expect(call("stream::list", { stream_name: "s", group_id: "big" })).rejects.toThrow(/page through it with List/);
    expect(await call("stream::list_groups", { stream_name: "s" })).toEqual(["big", "small"]);
  });
});
