/**
 * The client library's calls and views against a real server: every RPC with plain
 * JSON values, pages as async iterators, one error type with the server's code, views
 * of groups and items with their events, `parse`, close and AbortSignal, errors that
 * end a view instead of retrying, and a `reset` when the server's history no longer
 * covers a disconnect.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { memoryBackend } from "../src/index.js";
import { ErrorCode, StreamError, createStreamClient, type StreamClient, type TransportName, type ViewUpdate } from "../src/client/node.js";
import { FaultProxy } from "./support/fault-proxy.js";
import { ViewRecorder, expectConverged, listed, viewed } from "./support/client-views.js";
import { startServer, type RunningServer } from "./support/server.js";
import { freePort } from "./support/shell.js";

const HISTORY_LIMIT = 5;
let running: RunningServer;
let client: StreamClient;

beforeAll(async () => {
  running = await startServer({
    backend: memoryBackend({ historyLimit: HISTORY_LIMIT }),
    heartbeatMs: 200,
    webSocket: { pingIntervalMs: 200 },
    snapshotChunkBytes: 1024,
  });
  client = createStreamClient({ baseUrl: running.url });
});

afterAll(async () => {
  client?.close();
  await running?.stop();
});

async function collect<T>(pages: AsyncIterable<T[]>): Promise<T[][]> {
  const all: T[][] = [];
  for await (const page of pages) all.push(page);
  return all;
}

describe("calls", () => {
  it("set, get, update, delete and send with plain JSON values and numbers", async () => {
    const created = await client.set("calls", "g", "a", { n: 1, tags: ["x"] });
    expect(created).toEqual({ newValue: { n: 1, tags: ["x"] }, revision: 1, offset: 1 });
    const replaced = await client.set("calls", "g", "a", { n: 2 }, { ifRevision: 1 });
    expect(replaced).toEqual({ oldValue: { n: 1, tags: ["x"] }, newValue: { n: 2 }, revision: 2, offset: 2 });
    const updated = await client.update("calls", "g", "a", [
      { type: "increment", path: ["n"], by: 3 },
      { type: "merge", value: { m: true } },
      { type: "append", path: ["n"], value: 1 },
    ]);
    expect(updated).toMatchObject({ oldValue: { n: 2 }, newValue: { n: 5, m: true }, revision: 3, offset: 3 });
    expect(updated.errors).toEqual([{ opIndex: 2, code: expect.stringContaining("append"), message: expect.any(String) }]);
    const item = await client.get("calls", "g", "a");
    expect(item).toEqual({ itemId: "a", data: { n: 5, m: true }, revision: 3, updatedAtMs: expect.any(Number) });
    expect(await client.get("calls", "g", "missing")).toBeUndefined();
    await client.send("calls", "g", "ping", { at: 1 });
    expect(await client.delete("calls", "g", "a")).toEqual({ oldValue: { n: 5, m: true }, offset: 4 });
    expect(await client.delete("calls", "g", "a")).toEqual({ offset: 4 });
  });

  it("lists items, groups and streams page by page", async () => {
    for (let i = 0; i < 5; i++) await client.set("paged", `g${i % 2}`, `i${i}`, i);
    const pages = await collect(client.list("paged", "g0", { pageSize: 2 }));
    expect(pages.map((page) => page.map((item) => [item.itemId, item.data]))).toEqual([[["i0", 0], ["i2", 2]], [["i4", 4]]]);
    expect(await collect(client.listGroups("paged", { pageSize: 1 }))).toEqual([["g0"], ["g1"]]);
    const streams = (await collect(client.listAll())).flat();
    expect(streams.find((info) => info.streamName === "paged")).toEqual({ streamName: "paged", groups: ["g0", "g1"], groupCount: 2 });
  });

  it("fails with one error type carrying the server's code, and changes nothing", async () => {
    const failure = (call: Promise<unknown>) => call.then(() => undefined, (error: unknown) => error);
    const precondition = await failure(client.set("calls", "g", "b", 1, { ifRevision: 7 }));
    expect(precondition).toBeInstanceOf(StreamError);
    expect(precondition).toMatchObject({ code: ErrorCode.FailedPrecondition });
    expect(await failure(client.set("calls", "", "b", 1))).toMatchObject({ code: ErrorCode.InvalidArgument, message: expect.stringContaining("group_id") });
    expect(await failure(client.set("calls", "g", "b", Number.NaN))).toMatchObject({ code: ErrorCode.InvalidArgument });
    expect(await failure(client.set("calls", "g", "b", 1, { ifRevision: -1 }))).toMatchObject({ code: ErrorCode.InvalidArgument });
    expect(await failure(client.update("calls", "g", "b", [{ type: "increment", by: 0.5 }]))).toMatchObject({ code: ErrorCode.InvalidArgument });
    expect(await failure(client.update("calls", "g", "b", [{ type: "nope" } as never]))).toMatchObject({ code: ErrorCode.InvalidArgument });
    expect(await client.get("calls", "g", "b")).toBeUndefined();
    expect(() => createStreamClient({ baseUrl: "127.0.0.1:3112" })).toThrow(StreamError);
    expect(() => createStreamClient({ baseUrl: running.url, transport: "carrier-pigeon" as TransportName })).toThrow(/transport/);
    const down = createStreamClient({ baseUrl: `http://127.0.0.1:${await freePort()}` });
    expect(await failure(down.get("s", "g", "i"))).toMatchObject({ code: ErrorCode.Unavailable });
    down.close();
  });
});

describe.each<TransportName>(["connect", "websocket"])("views over %s", (transport) => {
  let watcher: StreamClient;
  beforeAll(() => {
    watcher = createStreamClient({ baseUrl: running.url, transport, heartbeatIntervalMs: 200, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
  });
  afterAll(() => watcher?.close());

  it("watchGroup: items in List order, offset, change and event updates, an async iterator; close ends it", async () => {
    const stream = `views-${transport}`;
    await client.set(stream, "g", "a", 1);
    await client.set(stream, "g", "b", 2);
    const view = watcher.watchGroup(stream, "g");
    expect(view.status).toBe("connecting");
    const updates: ViewUpdate[] = [];
    const iterated = (async () => {
      for await (const update of view) updates.push(update);
    })();
    await view.ready();
    expect([...view.items.keys()]).toEqual(["a", "b"]);
    expect(view.offset).toBe(2);
    await client.set(stream, "g", "a", 10); // an update keeps its place
    await client.delete(stream, "g", "b");
    await client.set(stream, "g", "b", 20); // created again: at the end
    await client.send(stream, "g", "note", { hi: true }, { itemId: "a" });
    await expectConverged(view, client);
    await expect.poll(() => updates.filter((update) => update.kind === "event").length).toBe(1);
    expect(viewed(view)).toEqual([["a", { data: 10, revision: 2 }], ["b", { data: 20, revision: 1 }]]);
    view.close();
    await iterated;
    expect(updates.map((update) => (update.kind === "change" ? `${update.change.type} ${update.change.itemId} @${update.change.offset}` : update.kind === "event" ? `event ${update.event.type} ${update.event.itemId}` : `${update.kind}`))).toEqual([
      "status",
      "update a @3",
      "delete b @4",
      "create b @5",
      "event note a",
      "status",
    ]);
    expect(view.status).toBe("closed");
    expect(view.error).toBeUndefined();
  });

  it("watchItem: one item, with parse applied to every value; an AbortSignal closes it", async () => {
    const stream = `items-${transport}`;
    await client.set(stream, "g", "x", { n: 1 });
    await client.set(stream, "g", "other", { n: 0 });
    const abort = new AbortController();
    const view = watcher.watchItem(stream, "g", "x", { parse: z.object({ n: z.number() }), signal: abort.signal });
    await view.ready();
    expect(view.items.get("x")).toMatchObject({ data: { n: 1 }, revision: 1 });
    await client.set(stream, "g", "other", { n: 5 });
    await client.update(stream, "g", "x", [{ type: "increment", path: ["n"], by: 1 }]);
    await expect.poll(() => view.items.get("x")?.data.n).toBe(2);
    expect([...view.items.keys()]).toEqual(["x"]);
    await client.delete(stream, "g", "x");
    await expect.poll(() => view.items.size).toBe(0);
    abort.abort();
    expect(view.status).toBe("closed");
  });

  it("ends with invalid_argument, not a retry, when parse refuses a value", async () => {
    const stream = `parse-${transport}`;
    await client.set(stream, "g", "x", { n: "not a number" });
    const view = watcher.watchGroup(stream, "g", { parse: z.object({ n: z.number() }) });
    await expect(view.ready()).rejects.toMatchObject({ code: ErrorCode.InvalidArgument });
    expect(view.status).toBe("closed");
  });

  it("ends with the server's refusal instead of retrying: a bad name, a missing key", async () => {
    const bad = watcher.watchGroup("s", "g".repeat(300));
    await expect(bad.ready()).rejects.toMatchObject({ code: ErrorCode.InvalidArgument });
    const keyed = await startServer({ apiKeys: ["k".repeat(32)] });
    const noKey = createStreamClient({ baseUrl: keyed.url, transport });
    const withKey = createStreamClient({ baseUrl: keyed.url, transport, apiKey: "k".repeat(32) });
    try {
      const refused = noKey.watchGroup("s", "g");
      await expect(refused.ready()).rejects.toMatchObject({ code: ErrorCode.Unauthenticated });
      expect(refused.error?.code).toBe(ErrorCode.Unauthenticated);
      await withKey.set("s", "g", "a", 1);
      const allowed = withKey.watchGroup("s", "g");
      await allowed.ready();
      expect(viewed(allowed)).toEqual([["a", { data: 1, revision: 1 }]]);
    } finally {
      noKey.close();
      withKey.close();
      await keyed.stop();
    }
    expect(() => watcher.watchGroup("", "g")).toThrow(StreamError);
  });

  it("applies a snapshot that comes in chunks whole, and one cut between chunks is started over", async () => {
    const stream = `chunks-${transport}`;
    for (let i = 0; i < 60; i++) await client.set(stream, "g", `i${i}`, { text: "y".repeat(100), i });
    const view = watcher.watchGroup(stream, "g");
    const sizes: number[] = [];
    view.on("status", () => sizes.push(view.items.size));
    await view.ready();
    expect(sizes).toEqual([60]); // never half a snapshot
    await expectConverged(view, client);
    view.close();

    const proxy = await FaultProxy.start(Number(new URL(running.url).port));
    const cut = createStreamClient({ baseUrl: proxy.url, transport, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    try {
      const recorder = new ViewRecorder(cut.watchGroup(stream, "g"));
      // Cut while chunks are on their way (a few times at most), then let it come through whole.
      for (let cuts = 0; cuts < 20 && recorder.view.status !== "live"; cuts++) {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
        proxy.reset();
      }
      await expectConverged(recorder.view, client);
      expect(recorder.problems).toEqual([]);
    } finally {
      cut.close();
      await proxy.close();
    }
  });

  it("raises reset when the history no longer covers a disconnect, and is right afterwards", async () => {
    const stream = `reset-${transport}`;
    const proxy = await FaultProxy.start(Number(new URL(running.url).port));
    const behind = createStreamClient({ baseUrl: proxy.url, transport, heartbeatIntervalMs: 200, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    try {
      await client.set(stream, "g", "a", 0);
      const recorder = new ViewRecorder(behind.watchGroup(stream, "g"));
      await recorder.view.ready();
      // While the proxy leads nowhere, more changes than the history holds.
      proxy.retarget(await freePort());
      proxy.reset();
      await expect.poll(() => recorder.view.status).toBe("reconnecting");
      for (let i = 1; i <= HISTORY_LIMIT * 3; i++) await client.set(stream, "g", `i${i % 4}`, i);
      proxy.retarget(Number(new URL(running.url).port));
      await expectConverged(recorder.view, client);
      expect(recorder.resets).toEqual(["history"]);
      expect(recorder.problems).toEqual([]);
      // A short disconnect within the history resumes without a reset.
      proxy.reset();
      await client.set(stream, "g", "a", "after");
      await expectConverged(recorder.view, client);
      expect(recorder.resets).toEqual(["history"]);
    } finally {
      behind.close();
      await proxy.close();
    }
  });

  it("resumes after the server ends it as a slow consumer, and converges", async () => {
    const stream = `slow-${transport}`;
    const tiny = await startServer({ queueLimits: { maxMessages: 4 }, heartbeatMs: 200, webSocket: { pingIntervalMs: 200 } });
    const writes = createStreamClient({ baseUrl: tiny.url });
    const slow = createStreamClient({ baseUrl: tiny.url, transport, heartbeatIntervalMs: 200, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    try {
      await writes.set(stream, "g", "a", 0);
      const recorder = new ViewRecorder(slow.watchGroup(stream, "g"));
      let lost = 0;
      recorder.view.on("status", (status) => (lost += status === "reconnecting" ? 1 : 0));
      await recorder.view.ready();
      // Bursts far beyond a queue of 4 messages: the server ends the subscriber.
      for (let burst = 0; burst < 5; burst++) await Promise.all(Array.from({ length: 50 }, (_, i) => writes.set(stream, "g", `i${i % 20}`, { burst, i })));
      await expectConverged(recorder.view, writes);
      expect(lost).toBeGreaterThan(0);
      expect(recorder.problems).toEqual([]);
    } finally {
      slow.close();
      writes.close();
      await tiny.stop();
    }
  });

  it("raises reset with reason offset when another server's offset is behind the view's", async () => {
    const stream = `behind-${transport}`;
    const other = await startServer();
    const proxy = await FaultProxy.start(Number(new URL(running.url).port));
    const behind = createStreamClient({ baseUrl: proxy.url, transport, heartbeatIntervalMs: 200, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    try {
      for (let i = 0; i < 4; i++) await client.set(stream, "g", `i${i}`, i);
      const recorder = new ViewRecorder(behind.watchGroup(stream, "g"));
      await recorder.view.ready();
      const otherClient = createStreamClient({ baseUrl: other.url });
      await otherClient.set(stream, "g", "only", "here");
      proxy.retarget(Number(new URL(other.url).port));
      proxy.reset();
      await expectConverged(recorder.view, otherClient);
      expect(recorder.resets).toEqual(["offset"]);
      expect(await listed(otherClient, stream, "g")).toEqual(viewed(recorder.view));
      otherClient.close();
    } finally {
      behind.close();
      await proxy.close();
      await other.stop();
    }
  });
});
