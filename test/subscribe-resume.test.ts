import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryItemStore } from "../src/index.js";
import type { SubscribeResponse } from "../gen/iii/stream/v1/stream_pb.js";
import { startServer, type RunningServer } from "./support/server.js";
import { GroupView, json, StreamCursor, viewItems } from "./support/subscribe-view.js";

const HISTORY_LIMIT = 5;
const QUEUE_LIMIT = 8;

function offsetOf(response: SubscribeResponse): number {
  const message = response.message;
  if (message.case === undefined) throw new Error("empty message");
  return Number(message.value.offset);
}

describe("Subscribe with from_offset", () => {
  let running: RunningServer;
  const adapter = new MemoryItemStore({ historyLimit: HISTORY_LIMIT });

  beforeAll(async () => {
    running = await startServer({ backend: { items: adapter }, queueLimits: { maxMessages: QUEUE_LIMIT } });
  });
  afterAll(async () => {
    await running?.stop();
  });

  async function write(groupId: string, count: number, itemIds = ["a", "b", "c"]): Promise<number> {
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const reply = await running.client().set({ streamName: "s", groupId, itemId: itemIds[i % itemIds.length], data: json(i) });
      offset = Number(reply.offset);
    }
    return offset;
  }

  async function withCursor<T>(request: { groupId: string; itemId?: string; fromOffset?: bigint }, use: (cursor: StreamCursor) => Promise<T>): Promise<T> {
    const cursor = new StreamCursor(running.client(), { streamName: "s", ...request });
    try {
      return await use(cursor);
    } finally {
      cursor.close();
    }
  }

  it("starts with the retained changes after the offset, without a snapshot, and continues live", async () => {
    await write("live", 4);
    await withCursor({ groupId: "live", fromOffset: 1n }, async (cursor) => {
      const first = await Promise.all([cursor.next(), cursor.next(), cursor.next()]);
      expect(first.map((r) => [r.message.case, offsetOf(r)])).toEqual([["change", 2], ["change", 3], ["change", 4]]);
      await write("live", 1);
      const live = await cursor.next();
      expect([live.message.case, offsetOf(live)]).toEqual(["change", 5]);
    });
  });

  it("sends nothing until the next change when the offset is the group's current one", async () => {
    const current = await write("current", 3);
    await withCursor({ groupId: "current", fromOffset: BigInt(current) }, async (cursor) => {
      const next = cursor.next();
      await running.client().send({ streamName: "s", groupId: "current", type: "ping", data: json(null) });
      await write("current", 1);
      const event = await next;
      expect([event.message.case, offsetOf(event)]).toEqual(["event", current]);
      const change = await cursor.next();
      expect([change.message.case, offsetOf(change)]).toEqual(["change", current + 1]);
    });
  });

  it("keeps a bounded history per group: resumes from the last HISTORY_LIMIT changes, else a fresh snapshot", async () => {
    const current = await write("trimmed", 20);
    await write("other", 2);
    const oldest = current - HISTORY_LIMIT;
    await withCursor({ groupId: "trimmed", fromOffset: BigInt(oldest) }, async (cursor) => {
      const changes = await Promise.all(Array.from({ length: HISTORY_LIMIT }, () => cursor.next()));
      expect(changes.map((r) => [r.message.case, offsetOf(r)])).toEqual(
        Array.from({ length: HISTORY_LIMIT }, (_, i) => ["change", oldest + 1 + i]),
      );
    });
    await withCursor({ groupId: "trimmed", fromOffset: BigInt(oldest - 1) }, async (cursor) => {
      const first = await cursor.next();
      expect([first.message.case, offsetOf(first)]).toEqual(["snapshot", current]);
      const listed = (await running.client().list({ streamName: "s", groupId: "trimmed" })).items;
      expect(first.message.case === "snapshot" && viewItems(first.message.value.items)).toEqual(viewItems(listed));
    });
    // Another group's history is its own: writes to "trimmed" did not push it out.
    await withCursor({ groupId: "other", fromOffset: 0n }, async (cursor) => {
      expect([(await cursor.next()).message.case, (await cursor.next()).message.case]).toEqual(["change", "change"]);
    });
  });

  it("sends a fresh snapshot when the offset is ahead of the group", async () => {
    const current = await write("ahead", 2);
    await withCursor({ groupId: "ahead", fromOffset: BigInt(current + 10) }, async (cursor) => {
      const first = await cursor.next();
      expect([first.message.case, offsetOf(first)]).toEqual(["snapshot", current]);
    });
  });

  it("sends a snapshot after the group was emptied, whose history is gone, and resumes at the emptying offset", async () => {
    await write("emptied", 3);
    for (const itemId of ["a", "b", "c"]) await running.client().delete({ streamName: "s", groupId: "emptied", itemId });
    const emptiedAt = 6;
    await withCursor({ groupId: "emptied", fromOffset: 2n }, async (cursor) => {
      const first = await cursor.next();
      expect(first.message.case === "snapshot" && [first.message.value.items.length, offsetOf(first)]).toEqual([0, emptiedAt]);
    });
    await withCursor({ groupId: "emptied", fromOffset: BigInt(emptiedAt) }, async (cursor) => {
      const next = cursor.next();
      await write("emptied", 1);
      const change = await next;
      expect([change.message.case, offsetOf(change)]).toEqual(["change", emptiedAt + 1]);
    });
  });

  it("resumes an item subscription with only that item's later changes", async () => {
    await write("item", 3); // a@1 b@2 c@3
    await write("item", 3); // a@4 b@5 c@6
    await withCursor({ groupId: "item", itemId: "b", fromOffset: 2n }, async (cursor) => {
      const first = await cursor.next();
      expect(first.message.case === "change" && [first.message.value.itemId, offsetOf(first)]).toEqual(["b", 5]);
      await write("item", 3); // a@7 b@8 c@9
      const live = await cursor.next();
      expect(live.message.case === "change" && [live.message.value.itemId, offsetOf(live)]).toEqual(["b", 8]);
    });
  });

  it("sends a snapshot instead of more retained changes than the subscriber's queue holds", async () => {
    const wide = new MemoryItemStore({ historyLimit: 100 });
    const server = await startServer({ backend: { items: wide }, queueLimits: { maxMessages: QUEUE_LIMIT } });
    try {
      for (let i = 0; i < 3 * QUEUE_LIMIT; i++) await server.server.engine.set({ streamName: "s", groupId: "g", itemId: `i${i}` }, i);
      const view = new GroupView(1, true);
      const cursor = new StreamCursor(server.client(), { streamName: "s", groupId: "g", fromOffset: 1n });
      try {
        view.apply(await cursor.next());
        expect([view.kinds, view.offset]).toEqual([["snapshot"], 3 * QUEUE_LIMIT]);
      } finally {
        cursor.close();
      }
    } finally {
      await server.stop();
    }
  });

  it("rejects an offset beyond 2^53 - 1", async () => {
    await withCursor({ groupId: "live", fromOffset: 1n << 60n }, async (cursor) => {
      const error = await cursor.next().catch((e: unknown) => ConnectError.from(e));
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    });
  });
});
