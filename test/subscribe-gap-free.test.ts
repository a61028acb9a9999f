import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LaggingMemoryAdapter, seededRandom } from "./support/lagging-store.js";
import type { Change, SubscribeResponse } from "../gen/iii/stream/v1/stream_pb.js";
import { startServer, type RunningServer, type TransportKind } from "./support/server.js";
import { GroupView, json, plain, ViewReader, viewItems, waitFor, type ViewItem } from "./support/subscribe-view.js";

const STREAM = "gap-free";
const GROUP = "g";
const WRITERS = 4;
const OPS_PER_WRITER = 700;
const ITEMS = 12;
const MAX_LIVE_SUBSCRIBERS = 10;
const MAX_JOINS = 40;
const SUBSCRIBER_TRANSPORTS: TransportKind[] = ["connect-binary-h2", "grpc", "connect-json-h2", "connect-json-h1", "grpc-web"];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Subscriber {
  reader: ViewReader;
  itemId: string | undefined;
  live: boolean;
}

describe("Subscribe under concurrent writers", () => {
  let running: RunningServer;
  const adapter = new LaggingMemoryAdapter();

  beforeAll(async () => {
    running = await startServer({ backend: { items: adapter } });
  });
  afterAll(async () => {
    await running?.stop();
  });

  async function writer(index: number): Promise<void> {
    const client = running.client(index % 2 === 0 ? "connect-binary-h2" : "grpc");
    const next = seededRandom(1000 + index);
    for (let op = 0; op < OPS_PER_WRITER; op++) {
      const key = { streamName: STREAM, groupId: GROUP, itemId: `i${Math.floor(next() * ITEMS)}` };
      const choice = next();
      if (choice < 0.5) await client.set({ ...key, data: json({ writer: index, op }) });
      else if (choice < 0.8) {
        await client.update({
          ...key,
          ops: [
            { op: { case: "increment", value: { path: ["n"], by: 1n } } },
            { op: { case: "set", value: { path: ["by"], value: json(index) } } },
          ],
        });
      } else await client.delete(key);
    }
  }

  /** Joins, leaves and resumes subscribers at random moments until `stop` resolves. */
  async function churn(stopped: () => boolean, subscribers: Subscriber[]): Promise<void> {
    const next = seededRandom(7);
    let joins = 0;
    while (!stopped() && joins < MAX_JOINS) {
      await sleep(5 + next() * 25);
      const live = subscribers.filter((s) => s.live);
      if (live.length < MAX_LIVE_SUBSCRIBERS && next() < 0.6) {
        const itemId = next() < 0.25 ? `i${Math.floor(next() * ITEMS)}` : undefined;
        const kind = SUBSCRIBER_TRANSPORTS[Math.floor(next() * SUBSCRIBER_TRANSPORTS.length)];
        const view = new GroupView(undefined, itemId === undefined);
        subscribers.push({ reader: new ViewReader(running.client(kind), { streamName: STREAM, groupId: GROUP, itemId }, view), itemId, live: true });
        joins++;
      } else if (live.length > 0) {
        const leaving = live[Math.floor(next() * live.length)];
        await leaving.reader.leave();
        leaving.live = false;
        const view = leaving.reader.view;
        if (next() < 0.5 && view.offset !== undefined) {
          // Resume where it stopped, into the same view: the promise holds across the two streams.
          const request = { streamName: STREAM, groupId: GROUP, itemId: leaving.itemId, fromOffset: BigInt(view.offset) };
          subscribers.push({ reader: new ViewReader(running.client("connect-binary-h2"), request, view), itemId: leaving.itemId, live: true });
          joins++;
        }
      }
    }
  }

  it("gives every subscriber a snapshot, then every later change once, in order, matching List at the end", async () => {
    // The reference joins first and sees every change of the group from offset 0.
    const reference = new ViewReader(running.client("connect-binary-h2"), { streamName: STREAM, groupId: GROUP }, new GroupView(undefined, true));
    await waitFor(() => reference.view.offset !== undefined, "the reference snapshot");
    expect(reference.view.snapshotOffset).toBe(0);

    const subscribers: Subscriber[] = [];
    let writing = true;
    const churning = churn(() => !writing, subscribers);
    await Promise.all(Array.from({ length: WRITERS }, (_, index) => writer(index)));
    writing = false;
    await churning;

    const finalOffset = await adapter.currentOffset(STREAM, GROUP);
    expect(finalOffset).toBeGreaterThan(WRITERS * OPS_PER_WRITER * 0.8);
    await waitFor(() => reference.view.offset === finalOffset, "the reference to catch up");

    const byOffset = new Map(reference.view.changes.map((change) => [Number(change.offset), change]));
    const lastChangeOf = (itemId: string) => Math.max(0, ...reference.view.changes.filter((c) => c.itemId === itemId).map((c) => Number(c.offset)));
    const live = subscribers.filter((s) => s.live);
    await waitFor(
      () => live.every((s) => (s.itemId === undefined ? s.reader.view.offset === finalOffset : (s.reader.view.offset ?? 0) >= lastChangeOf(s.itemId))),
      "live subscribers to catch up",
    );

    const listed = viewItems((await running.client().list({ streamName: STREAM, groupId: GROUP, pageSize: 10_000 })).items);
    expect(reference.view.problems).toEqual([]);
    expect(reference.view.list()).toEqual(listed);
    expect(subscribers.length).toBeGreaterThan(10);

    for (const [index, subscriber] of subscribers.entries()) {
      const { view, error } = subscriber.reader;
      const label = `subscriber ${index} (${subscriber.itemId ?? "group"})`;
      expect(error, label).toBeUndefined();
      expect(view.problems, label).toEqual([]);
      for (const snapshot of view.snapshots) {
        expect(snapshot.items, `${label} snapshot at ${snapshot.offset}`).toEqual(stateAt(reference.view, snapshot.offset, subscriber.itemId));
      }
      for (const change of view.changes) {
        expect(summary(change), label).toEqual(summary(byOffset.get(Number(change.offset))));
        if (subscriber.itemId !== undefined) expect(change.itemId, label).toBe(subscriber.itemId);
      }
      if (subscriber.itemId !== undefined) {
        // No change of the item is missing between the first snapshot and the last message seen.
        const seen = new Set(view.changes.map((c) => Number(c.offset)));
        const expected = reference.view.changes
          .filter((c) => c.itemId === subscriber.itemId && Number(c.offset) > view.snapshotOffset! && Number(c.offset) <= view.offset!)
          .map((c) => Number(c.offset));
        expect(expected.filter((offset) => !seen.has(offset)), label).toEqual([]);
      }
    }
    for (const subscriber of live) {
      const expected = subscriber.itemId === undefined ? listed : listed.filter((item) => item.itemId === subscriber.itemId);
      expect(subscriber.reader.view.list()).toEqual(expected);
    }

    await Promise.all([reference, ...live.map((s) => s.reader)].map((reader) => reader.leave()));
    await waitFor(() => running.server.stats().subscriptions === 0, "every subscription to be released");
    expect(running.server.stats().groupFeeds).toBe(0);
    expect(adapter.watcherCount).toBe(0);
  });
});

/** The group (or one item of it) as of `offset`, replayed from the reference's changes. */
function stateAt(reference: GroupView, offset: number, itemId: string | undefined): ViewItem[] {
  const replay = new GroupView(0, true);
  for (const change of reference.changes) {
    if (Number(change.offset) > offset) break;
    replay.apply({ message: { case: "change", value: change } } as SubscribeResponse);
  }
  const items = replay.list();
  return itemId === undefined ? items : items.filter((item) => item.itemId === itemId);
}

function summary(change: Change | undefined) {
  return change && { offset: change.offset, type: change.type, itemId: change.itemId, revision: change.revision, data: plain(change.data) };
}
