import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_TRANSPORTS, startServer, type RunningServer } from "./support/server.js";
import { json, StreamCursor } from "./support/subscribe-view.js";

const HEARTBEAT_MS = 150;

describe("Subscribe heartbeats", () => {
  let running: RunningServer;

  beforeAll(async () => {
    running = await startServer({ heartbeatMs: HEARTBEAT_MS });
  });
  afterAll(async () => {
    await running?.stop();
  });

  async function withCursor<T>(cursor: StreamCursor, use: (cursor: StreamCursor) => Promise<T>): Promise<T> {
    try {
      return await use(cursor);
    } finally {
      cursor.close();
    }
  }

  it.each(ALL_TRANSPORTS)("keeps a quiet stream alive with heartbeats carrying the current offset (%s)", async (kind) => {
    const groupId = `quiet-${kind}`;
    await running.client().set({ streamName: "s", groupId, itemId: "a", data: json(1) });
    await running.client().set({ streamName: "s", groupId, itemId: "a", data: json(2) });
    await withCursor(new StreamCursor(running.client(kind), { streamName: "s", groupId }), async (cursor) => {
      expect((await cursor.next()).message.case).toBe("snapshot");
      for (let beat = 0; beat < 2; beat++) {
        const message = (await cursor.next()).message;
        expect(message.case === "heartbeat" && Number(message.value.offset)).toBe(2);
      }
    });
  });

  it("gives an item subscriber the group's offset, from which it can resume without missing the item", async () => {
    const key = { streamName: "s", groupId: "items" };
    await running.client().set({ ...key, itemId: "mine", data: json(0) });
    let resumeFrom = 0;
    await withCursor(new StreamCursor(running.client(), { ...key, itemId: "mine" }), async (cursor) => {
      expect((await cursor.next()).message.case).toBe("snapshot");
      for (let i = 0; i < 3; i++) await running.client().set({ ...key, itemId: "other", data: json(i) });
      const message = (await cursor.next()).message;
      expect(message.case).toBe("heartbeat");
      resumeFrom = Number(message.value!.offset);
    });
    expect(resumeFrom).toBe(4);
    await running.client().set({ ...key, itemId: "mine", data: json(1) });
    await withCursor(new StreamCursor(running.client(), { ...key, itemId: "mine", fromOffset: BigInt(resumeFrom) }), async (cursor) => {
      const message = (await cursor.next()).message;
      expect(message.case === "change" && [message.value.itemId, Number(message.value.offset)]).toEqual(["mine", 5]);
    });
  });

  it("sends heartbeats for a group nobody wrote to, at offset 0", async () => {
    await withCursor(new StreamCursor(running.client(), { streamName: "s", groupId: "never-written" }), async (cursor) => {
      const snapshot = (await cursor.next()).message;
      expect(snapshot.case === "snapshot" && [snapshot.value.items.length, Number(snapshot.value.offset)]).toEqual([0, 0]);
      const beat = (await cursor.next()).message;
      expect(beat.case === "heartbeat" && Number(beat.value.offset)).toBe(0);
    });
  });

  it("sends no heartbeat while changes keep the stream busy", async () => {
    // A longer interval than the other tests, so that a loaded machine's pauses stay well within it.
    const heartbeatMs = 800;
    const busy = await startServer({ heartbeatMs });
    const key = { streamName: "s", groupId: "busy", itemId: "a" };
    const changes = 20;
    try {
      await withCursor(new StreamCursor(busy.client(), { streamName: "s", groupId: "busy" }), async (cursor) => {
        expect((await cursor.next()).message.case).toBe("snapshot");
        const writing = (async () => {
          for (let i = 0; i < changes; i++) {
            await busy.server.engine.set(key, i);
            await new Promise((resolve) => setTimeout(resolve, heartbeatMs / 16));
          }
        })();
        const kinds = [];
        for (let i = 0; i < changes; i++) kinds.push((await cursor.next()).message.case);
        await writing;
        expect(kinds).toEqual(Array(changes).fill("change"));
      });
    } finally {
      await busy.stop();
    }
  });
});
