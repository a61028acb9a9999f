import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, MemoryItemStore } from "../src/index.js";
import { StreamEngine } from "../src/core/engine.js";
import { startServer, type RunningServer, type TransportKind } from "./support/server.js";
import { GroupView, StreamCursor, waitFor } from "./support/subscribe-view.js";
import { eventOf, join, openSocket, wsUrl } from "./support/ws-client.js";

/*
 * A subscriber's queue is bounded in bytes as well as messages (QueueLimits.maxBytes,
 * default 4 MiB): 16 KiB changes to a client that stopped reading end it after about
 * 256 of them (plus what the kernel and its transport buffer), not after the 4,096
 * messages of the count bound, and it learns why once it reads again.
 */
const CHANGE_BYTES = 16 * 1024;
/** Incompressible, so that no compression keeps a stalled stream's buffers from filling. */
const value = () => randomBytes((CHANGE_BYTES * 3) / 4).toString("base64");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The count bound alone would hold 4,096 of these changes, besides what the kernel buffers. */
const MOST_WRITES = 4000;
/**
 * The byte bound must end the subscriber well before that: 4 MiB of queue is 256
 * changes, and the kernel's socket buffers on loopback hold a few megabytes more.
 */
const ENDED_WITHIN = 2000;

describe("the byte bound of a subscriber's queue (in process)", () => {
  it("ends a subscriber that holds more than maxBytes queued, naming the offset it last took", async () => {
    const store = new MemoryItemStore();
    const engine = new StreamEngine({ store, queueLimits: { maxBytes: 256 * 1024 } });
    try {
      const subscription = await engine.subscribe({ streamName: "s", groupId: "g" });
      const iterator = subscription[Symbol.asyncIterator]();
      expect((await iterator.next()).value?.message.kind).toBe("snapshot");
      await engine.set({ streamName: "s", groupId: "g", itemId: "a" }, value());
      expect((await iterator.next()).value?.offset).toBe(1);
      let written = 1;
      while (!subscription.ended && written < 100) await engine.set({ streamName: "s", groupId: "g", itemId: `i${written++}` }, value());
      // 256 KiB hold 15 of these changes and their overhead; the 16th ends it.
      expect(written).toBe(17);
      await expect(iterator.next()).rejects.toMatchObject({
        code: ErrorCode.ResourceExhausted,
        message: expect.stringMatching(/more than 262144 bytes behind; resume with from_offset=1$/),
      });
    } finally {
      await engine.close();
    }
  });

  it("always takes a message into an empty queue, however large", async () => {
    const engine = new StreamEngine({ store: new MemoryItemStore(), queueLimits: { maxBytes: 1024 } });
    try {
      const subscription = await engine.subscribe({ streamName: "s", groupId: "g" });
      const iterator = subscription[Symbol.asyncIterator]();
      await iterator.next();
      await engine.set({ streamName: "s", groupId: "g", itemId: "big" }, value());
      expect((await iterator.next()).value?.offset).toBe(1);
      expect(subscription.ended).toBe(false);
    } finally {
      await engine.close();
    }
  });
});

describe("the byte bound over the network (default 4 MiB)", () => {
  let running: RunningServer;

  beforeAll(async () => {
    running = await startServer({});
  });
  afterAll(async () => {
    await running?.stop();
  });

  /** Writes 16 KiB changes until no subscriber of the group is left; returns how many it took. */
  async function writeUntilEnded(groupId: string): Promise<number> {
    const client = running.client("connect-binary-h2");
    for (let i = 1; i <= MOST_WRITES; i++) {
      await client.set({ streamName: "s", groupId, itemId: `i${i % 64}`, data: { kind: { case: "stringValue", value: value() } } });
      if (running.server.stats().subscriptions === 0) return i;
    }
    return MOST_WRITES;
  }

  it.each<[TransportKind, string]>([
    ["connect-binary-h2", "HTTP/2: the reset that cuts the stream names the reason"],
    ["grpc", "HTTP/2 gRPC"],
    ["connect-json-h1", "HTTP/1.1: the error is written after the last message, and the connection waits for the client to read it"],
  ])("ends a Subscribe client that stopped reading, well before the count bound (%s)", async (kind) => {
    const groupId = `stalled-${kind}`;
    const stalled = new StreamCursor(running.client(kind), { streamName: "s", groupId });
    try {
      const view = new GroupView(undefined, true);
      view.apply(await stalled.next());
      await waitFor(() => running.server.stats().subscriptions === 1, "the subscriber");
      const written = await writeUntilEnded(groupId);
      // 4 MiB of queue plus what the HTTP/2 window, the socket and the kernel hold.
      expect(written).toBeLessThan(ENDED_WITHIN);

      // Reads again two seconds later: past HTTP/2's grace, within HTTP/1.1's.
      await sleep(2000);
      const { error, read } = await stalled.failure();
      for (const response of read) view.apply(response);
      expect(view.problems).toEqual([]);
      expect(read.length).toBeLessThan(written);
      expectResourceExhausted(error, kind === "connect-json-h1" ? view.offset : undefined);
    } finally {
      stalled.close();
    }
    await waitFor(() => running.server.stats().subscriptions === 0, "the subscription to be released");
  });

  it("closes a stream socket whose client stopped reading with 4429, well before the count bound", async () => {
    const socket = await openSocket(wsUrl(running.url));
    try {
      socket.send(join("slow", "s", "ws-stalled"));
      await socket.next(eventOf("slow", "sync"));
      const raw = (socket.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      raw.pause();
      const written = await writeUntilEnded("ws-stalled");
      expect(written).toBeLessThan(ENDED_WITHIN);
      raw.resume();
      const closed = await socket.closed;
      expect(closed.code).toBe(4429);
    } finally {
      await socket.close();
    }
  });
});

/**
 * HTTP/2 clients see either the status in the trailers (when they read it in time) or
 * the stream reset with ENHANCE_YOUR_CALM, which gRPC reads as RESOURCE_EXHAUSTED and
 * connect-node 2.1 as INTERNAL naming it. On HTTP/1.1 the status itself arrives,
 * naming the offset to resume from.
 */
function expectResourceExhausted(error: ConnectError, resumeFrom: number | undefined): void {
  if (resumeFrom !== undefined) {
    expect([Code[error.code], error.rawMessage]).toEqual(["ResourceExhausted", expect.stringMatching(new RegExp(`bytes behind; resume with from_offset=${resumeFrom}$`))]);
    return;
  }
  const reset = error.rawMessage.includes("NGHTTP2_ENHANCE_YOUR_CALM");
  expect(reset || error.code === Code.ResourceExhausted, `${Code[error.code]}: ${error.rawMessage}`).toBe(true);
}
