import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileStore, RedisItemStore, type ItemStore } from "../src/index.js";
import { LaggingMemoryAdapter, seededRandom } from "./support/lagging-store.js";
import { ChangeType } from "../gen/iii/stream/v1/stream_pb.js";
import { startServer, type RunningServer, type TransportKind } from "./support/server.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";
import { GroupView, json, plain, ViewReader, viewItems, waitFor, type ViewItem } from "./support/subscribe-view.js";

/*
 * The gap-free test (subscribe-gap-free.test.ts) at the size where snapshots come in
 * chunks: a group of 50,000 items, writers changing, deleting and re-creating items all
 * over it, and subscribers joining while they do. Every chunked snapshot must be the
 * group's state at its offset exactly, followed by every later change once.
 */
const STREAM = "chunked";
const GROUP = "g";
const ITEMS = 50_000;
const WRITERS = 4;
const OPS_PER_WRITER = 120;
/** Small chunks, so that a snapshot of this group takes many (about 40) and writers land between them. */
const CHUNK_BYTES = 48 * 1024;
const JOINS = 4;
const SUBSCRIBER_TRANSPORTS: TransportKind[] = ["connect-binary-h2", "grpc", "connect-json-h1", "grpc-web"];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface AdapterCase {
  name: string;
  open(): Promise<ItemStore>;
  cleanup(): Promise<void>;
}

const dataDir = mkdtempSync(join(tmpdir(), "iii-stream-chunked-"));
const keyPrefix = uniquePrefix("chunked");
const ADAPTERS: AdapterCase[] = [
  { name: "memory", open: async () => new LaggingMemoryAdapter(), cleanup: async () => undefined },
  { name: "file", open: async () => FileStore.open({ dataDir }), cleanup: async () => rmSync(dataDir, { recursive: true, force: true }) },
  { name: "redis", open: () => RedisItemStore.connect({ url: REDIS_URL, keyPrefix }), cleanup: () => deleteKeys(keyPrefix) },
];

describe.each(ADAPTERS)("chunked snapshots of a $name group of 50,000 items under concurrent writers", (adapterCase) => {
  let running: RunningServer;
  let store: ItemStore;
  /** The state after the prefill, in insertion order: where the replay of later changes starts. */
  const prefilled: ViewItem[] = [];

  beforeAll(async () => {
    store = await adapterCase.open();
    running = await startServer({ backend: { items: store }, snapshotChunkBytes: CHUNK_BYTES });
    // Through the port, many at once: 50,000 Sets through the API would take most of the test's time.
    for (let start = 0; start < ITEMS; start += 500) {
      const batch = Array.from({ length: Math.min(500, ITEMS - start) }, (_, i) => start + i);
      const results = await Promise.all(
        batch.map((n) =>
          store.commit({ streamName: STREAM, groupId: GROUP, itemId: `i${n}`, expectedRevision: 0, value: { n, text: "x".repeat(20) }, timestampMs: Date.now() }),
        ),
      );
      const changes = results.map((result) => {
        if (!result.ok) throw new Error("prefill conflict");
        return result.change;
      });
      changes.sort((a, b) => a.offset - b.offset);
      for (const change of changes) prefilled.push({ itemId: change.itemId, data: change.data, revision: change.revision });
    }
  }, 120_000);

  afterAll(async () => {
    await running?.stop();
    await adapterCase.cleanup();
  });

  async function writer(index: number): Promise<void> {
    const client = running.client(index % 2 === 0 ? "connect-binary-h2" : "grpc");
    const next = seededRandom(500 + index);
    for (let op = 0; op < OPS_PER_WRITER; op++) {
      const key = { streamName: STREAM, groupId: GROUP, itemId: `i${Math.floor(next() * ITEMS)}` };
      const choice = next();
      if (choice < 0.4) await client.set({ ...key, data: json({ writer: index, op }) });
      else if (choice < 0.6) await client.update({ ...key, ops: [{ op: { case: "increment", value: { path: ["n"], by: 1n } } }] });
      // Deletes, and re-creates of deleted items, which move them to the end.
      else await client.delete(key);
      if (op % 50 === 0) await sleep(1);
    }
  }

  it("every chunk at one offset, their union the state at that offset exactly, then every later change once", async () => {
    // The reference joins before the writers: its own (chunked) snapshot and every later change replay any offset.
    const reference = new ViewReader(running.client("connect-binary-h2"), { streamName: STREAM, groupId: GROUP }, new GroupView(undefined, true));
    await waitFor(() => reference.view.snapshotOffset !== undefined, "the reference snapshot", 60_000);
    expect(reference.view.snapshots[0].items).toEqual(prefilled);
    expect(reference.view.snapshots[0].chunks).toBeGreaterThan(10);
    const startOffset = reference.view.snapshotOffset!;

    const subscribers: ViewReader[] = [];
    let writing = true;
    const joining = (async () => {
      const next = seededRandom(3);
      for (let i = 0; i < JOINS && writing; i++) {
        await sleep(20 + next() * 80);
        const kind = SUBSCRIBER_TRANSPORTS[i % SUBSCRIBER_TRANSPORTS.length];
        // Some join in pairs, so that they share the snapshot's reads.
        const count = i % 3 === 0 ? 2 : 1;
        for (let c = 0; c < count; c++) {
          subscribers.push(new ViewReader(running.client(kind), { streamName: STREAM, groupId: GROUP }, new GroupView(undefined, true)));
        }
      }
    })();
    await Promise.all(Array.from({ length: WRITERS }, (_, index) => writer(index)));
    writing = false;
    await joining;

    const finalOffset = await store.currentOffset(STREAM, GROUP);
    await waitFor(() => reference.view.offset === finalOffset, "the reference to catch up", 60_000);
    await waitFor(() => subscribers.every((s) => s.view.offset === finalOffset || s.error !== undefined), "subscribers to catch up", 60_000);
    expect(reference.view.problems).toEqual([]);
    const byOffset = new Map(reference.view.changes.map((change) => [Number(change.offset), change]));
    let chunked = 0;
    let during = 0;
    for (const [index, subscriber] of subscribers.entries()) {
      const { view, error } = subscriber;
      const label = `subscriber ${index}`;
      expect(error, label).toBeUndefined();
      expect(view.problems, label).toEqual([]);
      expect(view.snapshots.length, label).toBe(1);
      const snapshot = view.snapshots[0];
      if (snapshot.chunks > 1) chunked++;
      if (snapshot.offset > startOffset && snapshot.offset < finalOffset) during++;
      expectSame(snapshot.items, stateAt(prefilled, reference.view, snapshot.offset), `${label} snapshot at ${snapshot.offset}`);
      for (const change of view.changes) expect(change.revision, label).toBe(byOffset.get(Number(change.offset))?.revision);
      expectSame(view.list(), reference.view.list(), label);
    }
    expect(chunked).toBe(subscribers.length);
    // Joins landed while the writers ran, not only before or after.
    expect(during).toBeGreaterThan(0);
    const listed: ViewItem[] = [];
    let pageToken = "";
    do {
      const page = await running.client().list({ streamName: STREAM, groupId: GROUP, pageToken });
      listed.push(...viewItems(page.items));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expectSame(reference.view.list(), listed, "List");

    await Promise.all([reference, ...subscribers].map((reader) => reader.leave()));
    await waitFor(() => running.server.stats().subscriptions === 0, "every subscription to be released");
    expect(running.server.stats().groupFeeds).toBe(0);
  }, 240_000);
});

/** Equal item lists; compared as text first, since a deep comparison of 50,000 items per subscriber dominates the test. */
function expectSame(actual: ViewItem[], expected: ViewItem[], label: string): void {
  if (JSON.stringify(actual) === JSON.stringify(expected)) return;
  expect(actual, label).toEqual(expected);
}

/** The group as of `offset`: the prefilled state (at `startOffset`) with the reference's later changes replayed. */
function stateAt(prefilled: ViewItem[], reference: GroupView, offset: number): ViewItem[] {
  const items = new Map(prefilled.map((item) => [item.itemId, item]));
  for (const change of reference.changes) {
    if (Number(change.offset) > offset) break;
    if (change.type === ChangeType.DELETE) items.delete(change.itemId);
    else {
      // A create goes to the end, an update keeps its place: insertion order, as List and snapshots have it.
      if (change.type === ChangeType.CREATE) items.delete(change.itemId);
      items.set(change.itemId, { itemId: change.itemId, data: plain(change.data)!, revision: Number(change.revision) });
    }
  }
  return [...items.values()];
}
