import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, MemoryItemStore } from "../src/index.js";
import { StreamEngine } from "../src/core/engine.js";
import { STALL_GRACE_MS } from "../src/rpc/stalled-stream.js";
import { startServer, type RunningServer, type TransportKind } from "./support/server.js";
import { GroupView, json, StreamCursor, ViewReader, viewItems, waitFor } from "./support/subscribe-view.js";

const QUEUE_LIMIT = 32;
/** Incompressible, so that compression cannot keep a stalled stream's buffers from filling. */
const bigValue = () => randomBytes(24_000).toString("base64");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("a subscriber that falls behind (in process)", () => {
  it("is ended with RESOURCE_EXHAUSTED naming the offset it last took, its queue never above the limit", async () => {
    const store = new MemoryItemStore();
    const engine = new StreamEngine({ store, queueLimits: { maxMessages: 8 } });
    try {
      const subscription = await engine.subscribe({ streamName: "s", groupId: "g" });
      const iterator = subscription[Symbol.asyncIterator]();
      expect((await iterator.next()).value?.message.kind).toBe("snapshot");
      for (let i = 1; i <= 3; i++) await engine.set({ streamName: "s", groupId: "g", itemId: "a" }, i);
      for (let i = 1; i <= 3; i++) expect((await iterator.next()).value?.offset).toBe(i);

      let largest = 0;
      for (let i = 0; i < 100; i++) {
        await engine.set({ streamName: "s", groupId: "g", itemId: `i${i}` }, i);
        largest = Math.max(largest, subscription.pending);
      }
      expect(largest).toBeLessThanOrEqual(8);
      expect(subscription.ended).toBe(true);
      await expect(iterator.next()).rejects.toMatchObject({ code: ErrorCode.ResourceExhausted, message: expect.stringMatching(/from_offset=3$/) });
      expect([engine.stats().subscriptions, engine.stats().groupFeeds, store.watcherCount]).toEqual([0, 0, 0]);
    } finally {
      await engine.close();
    }
  });
});

describe("a slow subscriber (over the network)", () => {
  let running: RunningServer;
  const adapter = new MemoryItemStore();

  beforeAll(async () => {
    running = await startServer({ backend: { items: adapter }, queueLimits: { maxMessages: QUEUE_LIMIT } });
  });
  afterAll(async () => {
    await running?.stop();
  });

  /**
   * Writes big values over the network until the slow subscriber's queue has
   * overflowed (only the fast one is left), then a few more. Returns every reply.
   */
  async function writeUntilOverflow(groupId: string): Promise<number[]> {
    const client = running.client("connect-binary-h2");
    const offsets: number[] = [];
    let extra = 10;
    for (let i = 0; i < 2000 && extra > 0; i++) {
      const reply = await client.set({ streamName: "s", groupId, itemId: `i${i % 16}`, data: json(bigValue()) });
      offsets.push(Number(reply.offset));
      if (running.server.stats().subscriptions === 1) extra--;
    }
    return offsets;
  }

  async function expectEverythingReleased(): Promise<void> {
    await waitFor(() => running.server.stats().subscriptions === 0, "every subscription to be released");
    expect(running.server.stats().groupFeeds).toBe(0);
    expect(adapter.watcherCount).toBe(0);
  }

  function expectFastSawEverything(fast: ViewReader, offsets: number[]) {
    expect(fast.error).toBeUndefined();
    expect(fast.view.problems).toEqual([]);
    expect(fast.view.changes.map((c) => Number(c.offset))).toEqual(offsets);
  }

  /**
   * How each transport reports the end of a stream whose client was not reading: HTTP/2
   * resets the stream after its short grace period, HTTP/1.1 keeps the status for the
   * client to read.
   */
  const expectCut: Record<"h1" | "h2", (error: ConnectError) => void> = {
    // RST_STREAM with ENHANCE_YOUR_CALM, which gRPC maps to RESOURCE_EXHAUSTED; connect-node
    // 2.1 reports Node's stream error before it looks at the code: INTERNAL, naming it.
    h2: (error) => expect([error.code, error.rawMessage]).toEqual([Code.Internal, expect.stringContaining("NGHTTP2_ENHANCE_YOUR_CALM")]),
    // HTTP/1.1 cannot overtake the unread bytes: the status is written after them, and the
    // connection waits (HTTP1_STALL_GRACE_MS) for the client to read it.
    h1: (error) => expect([error.code, error.rawMessage]).toEqual([Code.ResourceExhausted, expect.stringMatching(/messages behind; resume with from_offset=\d+$/)]),
  };

  it.each<[TransportKind, "h1" | "h2"]>([
    ["connect-binary-h2", "h2"],
    ["grpc", "h2"],
    ["connect-binary-h1", "h1"],
  ])("ends the stream of a client that stopped reading, without slowing the writer or a fast subscriber (%s)", async (kind, http) => {
    const groupId = `stalled-${kind}`;
    const fast = new ViewReader(running.client("connect-binary-h2"), { streamName: "s", groupId }, new GroupView(undefined, true));
    const stalled = new StreamCursor(running.client(kind), { streamName: "s", groupId });
    try {
      const stalledView = new GroupView(undefined, true);
      stalledView.apply(await stalled.next());
      await waitFor(() => fast.view.offset !== undefined && running.server.stats().subscriptions === 2, "both subscribers");

      const offsets = await writeUntilOverflow(groupId);
      expect(offsets).toEqual(Array.from({ length: offsets.length }, (_, i) => i + 1));
      await waitFor(() => fast.view.offset === offsets.length, "the fast subscriber to catch up");
      expectFastSawEverything(fast, offsets);

      // The stalled client reads again only after the grace period: by then its stream was cut.
      await sleep(2 * STALL_GRACE_MS);
      const { error, read } = await stalled.failure();
      for (const response of read) stalledView.apply(response);
      expect(stalledView.problems).toEqual([]);
      expectCut[http](error);
    } finally {
      stalled.close();
      await fast.leave();
    }
    await expectEverythingReleased();
  });

  it("ends a client that reads too slowly with RESOURCE_EXHAUSTED in the stream, and it resumes from its last offset", async () => {
    const groupId = "slow-reader";
    const fast = new ViewReader(running.client("connect-binary-h2"), { streamName: "s", groupId }, new GroupView(undefined, true));
    const slow = new StreamCursor(running.client("connect-binary-h2"), { streamName: "s", groupId });
    const slowView = new GroupView(undefined, true);
    let failure: ConnectError | undefined;
    const reading = (async () => {
      for (;;) {
        try {
          slowView.apply(await slow.next(10_000));
        } catch (error) {
          failure = ConnectError.from(error);
          return;
        }
        await sleep(50);
      }
    })();
    try {
      await waitFor(() => slowView.offset !== undefined && fast.view.offset !== undefined, "both snapshots");
      const offsets = await writeUntilOverflow(groupId);
      await reading;
      expect(failure?.code).toBe(Code.ResourceExhausted);
      expect(failure?.rawMessage).toMatch(new RegExp(`from_offset=${slowView.offset}$`));
      expect(slowView.problems).toEqual([]);

      await waitFor(() => fast.view.offset === offsets.length, "the fast subscriber to catch up");
      expectFastSawEverything(fast, offsets);

      const resumed = new ViewReader(running.client("connect-binary-h2"), { streamName: "s", groupId, fromOffset: BigInt(slowView.offset!) }, slowView);
      await waitFor(() => slowView.offset === offsets.length, "the resumed subscriber to catch up");
      await resumed.leave();
      expect(resumed.error).toBeUndefined();
      expect(slowView.problems).toEqual([]);
      expect(slowView.list()).toEqual(viewItems((await running.client().list({ streamName: "s", groupId })).items));
    } finally {
      slow.close();
      await fast.leave();
    }
    await expectEverythingReleased();
  });
});
