/**
 * Unary calls are served while fan-out is behind (issue 13, item 5): 20,000
 * subscriptions with 100 writes/s offered held other clients' Set+Get for seconds,
 * because every queued flush ran in one event-loop turn and a request that arrived
 * meanwhile waited for all of them. Here a Get is issued once a large backlog of
 * deliveries is pending, and must be answered before the backlog has reached every
 * subscriber: an ordering, not a duration.
 */
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SubscribeRequestSchema } from "../gen/iii/stream/v1/stream_pb.js";
import { MemoryItemStore, silentLog } from "../src/index.js";
import { StreamEngine } from "../src/core/engine.js";
import { FlushScheduler } from "../src/core/flush-scheduler.js";
import type { Subscription } from "../src/core/subscription.js";
import { startServer, type RunningServer } from "./support/server.js";
import { json } from "./support/subscribe-view.js";

/** Enough deliveries that flushing them takes many slices on any machine (about 100 ms of work on a fast one). */
const SUBSCRIPTIONS = 1000;
const SESSIONS = 10;
const CHANGES = 100;
const STREAM = "fairness";
/**
 * HTTP/2 flow-control windows far above what a session receives here, so that nothing
 * but the server's own scheduling decides when deliveries reach the client.
 */
const WINDOW = 1 << 26;
const ENVELOPE_HEADER = 5;
const END_STREAM_FLAG = 0b10;

let running: RunningServer;
const sessions: http2.ClientHttp2Session[] = [];

beforeAll(async () => {
  running = await startServer({ log: silentLog });
});

afterAll(async () => {
  for (const session of sessions) session.destroy();
  await running.stop();
});

/** Subscribe calls (Connect binary) that only count the messages they receive; no decoding beyond the envelopes. */
class CountingSubscribers {
  /** Messages received after each call's first (its snapshot). */
  changes = 0;
  ended = 0;
  private joined = 0;
  private onJoined: (() => void) | undefined;

  open(groupId: string): Promise<void> {
    const request = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { streamName: STREAM, groupId }));
    const envelope = Buffer.alloc(ENVELOPE_HEADER + request.length);
    envelope.writeUInt32BE(request.length, 1);
    envelope.set(request, ENVELOPE_HEADER);
    const joined = new Promise<void>((resolve) => (this.onJoined = resolve));
    for (let s = 0; s < SESSIONS; s++) {
      const session = http2.connect(running.url, { settings: { initialWindowSize: WINDOW } });
      session.on("connect", () => session.setLocalWindowSize(WINDOW));
      session.on("error", () => undefined);
      sessions.push(session);
      for (let c = 0; c < SUBSCRIPTIONS / SESSIONS; c++) this.call(session, envelope);
    }
    return joined;
  }

  private call(session: http2.ClientHttp2Session, envelope: Buffer): void {
    const stream = session.request({
      ":method": "POST",
      ":path": "/iii.stream.v1.StreamService/Subscribe",
      "content-type": "application/connect+proto",
      "connect-protocol-version": "1",
    });
    let pending: Buffer = Buffer.alloc(0);
    let first = true;
    stream.on("data", (chunk: Buffer) => {
      let buffer = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (buffer.length >= ENVELOPE_HEADER) {
        const end = ENVELOPE_HEADER + buffer.readUInt32BE(1);
        if (buffer.length < end) break;
        if ((buffer[0] & END_STREAM_FLAG) !== 0) this.ended++;
        else if (first) {
          first = false;
          if (++this.joined === SUBSCRIPTIONS) this.onJoined?.();
        } else this.changes++;
        buffer = buffer.subarray(end);
      }
      pending = buffer;
    });
    stream.on("error", () => undefined);
    stream.end(envelope);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("unary calls while fan-out is behind", () => {
  it("answers a Get issued behind a large backlog of deliveries before the backlog has reached every subscriber", async () => {
    const subscribers = new CountingSubscribers();
    await subscribers.open("hot");
    const writer = running.client("connect-binary-h2");
    const probe = running.client("connect-binary-h2");
    // Both connections are open and their paths warm before the burst.
    await Promise.all([
      writer.set({ streamName: STREAM, groupId: "warm-up", itemId: "w", data: json(0) }),
      probe.set({ streamName: STREAM, groupId: "cold", itemId: "p", data: json(0) }),
    ]);
    const expected = SUBSCRIPTIONS * CHANGES;

    // Every write is acknowledged, so its fan-out is queued before the Get is sent.
    await Promise.all(Array.from({ length: CHANGES }, (_, i) => writer.set({ streamName: STREAM, groupId: "hot", itemId: `i${i % 8}`, data: json(i) })));
    await probe.get({ streamName: STREAM, groupId: "cold", itemId: "p" });
    const deliveredWhenAnswered = subscribers.changes;

    while (subscribers.changes < expected && subscribers.ended === 0) await sleep(10);
    expect({ delivered: subscribers.changes, ended: subscribers.ended }).toEqual({ delivered: expected, ended: 0 });
    // Before: the whole backlog was flushed in the turn of the writes, ahead of the Get.
    expect(deliveredWhenAnswered).toBeLessThan(expected);
  }, 60_000);
});

describe("the fan-out of a large group", () => {
  it("runs after the write that made it, in the scheduler's turns, and hands every subscriber every change once, in order", async () => {
    const engine = new StreamEngine({ store: new MemoryItemStore(), scheduler: new FlushScheduler() });
    try {
      const subscriptions: Subscription[] = await Promise.all(Array.from({ length: SUBSCRIPTIONS }, () => engine.subscribe({ streamName: STREAM, groupId: "large" })));
      for (const subscription of subscriptions) expect(subscription.take()?.message.kind).toBe("snapshot");
      for (let i = 0; i < 5; i++) await engine.set({ streamName: STREAM, groupId: "large", itemId: `i${i}` }, i);
      // Before: each write handed its change to all of them before it returned.
      expect(subscriptions.filter((subscription) => subscription.pending > 0)).toHaveLength(0);
      while (subscriptions.some((subscription) => subscription.pending < 5)) await sleep(1);
      const offsets = new Set(subscriptions.map((subscription) => JSON.stringify(Array.from({ length: 5 }, () => subscription.take()?.offset))));
      expect([...offsets]).toEqual([JSON.stringify([1, 2, 3, 4, 5])]);
    } finally {
      await engine.close();
    }
  });
});
