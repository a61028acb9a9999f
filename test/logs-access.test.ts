import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryItemStore, RecordingLog } from "../src/index.js";
import type { WriteBatch } from "../src/core/item-store.js";
import { startServer, type RunningServer } from "./support/server.js";
import { json, StreamCursor } from "./support/subscribe-view.js";
import { join, openSocket, wsUrl } from "./support/ws-client.js";

/** An item store whose writes fail with a plain Error, as a broken disk or a bug would. */
class BrokenStore extends MemoryItemStore {
  override commitBatch(_batch: WriteBatch): never {
    throw new Error("the disk is on fire");
  }
}

const PEER = /^127\.0\.0\.1:\d+$/;

describe("the access log at debug", () => {
  const log = new RecordingLog("debug");
  let running: RunningServer;

  beforeAll(async () => {
    running = await startServer({ log });
  });
  afterAll(async () => {
    await running?.stop();
  });

  it("has one record per unary call: method, code, duration and peer", async () => {
    await running.client().set({ streamName: "s", groupId: "g", itemId: "a", data: json(1) });
    await expect(running.client().set({ streamName: "s", groupId: "g", itemId: "", data: json(1) })).rejects.toThrow();
    const calls = log.find("call").filter((record) => record.fields.method === "Set");
    expect(calls).toEqual([
      { level: "debug", message: "call", fields: { method: "Set", service: "iii.stream.v1.StreamService", code: "ok", duration_ms: expect.any(Number), peer: expect.stringMatching(PEER) } },
      { level: "debug", message: "call", fields: { method: "Set", service: "iii.stream.v1.StreamService", code: "invalid_argument", duration_ms: expect.any(Number), peer: expect.stringMatching(PEER) } },
    ]);
  });

  it("has one record per Subscribe that ends: stream, group, reason, duration, deliveries and peer", async () => {
    const cursor = new StreamCursor(running.client(), { streamName: "s", groupId: "g" });
    try {
      await cursor.next();
    } finally {
      cursor.close();
    }
    await expect.poll(() => log.find("subscription ended")).toHaveLength(1);
    expect(log.find("subscription ended")[0]).toMatchObject({
      level: "debug",
      fields: { transport: "subscribe", stream: "s", group: "g", reason: "client", deliveries: 1, duration_ms: expect.any(Number), peer: expect.stringMatching(PEER) },
    });
  });

  it("has one record per stream socket subscription that ends, and says when the server's shutdown ended it", async () => {
    const socket = await openSocket(wsUrl(running.url, "/"));
    try {
      socket.send(join("w1", "s", "g"));
      await socket.next((message) => message.subscriptionId === "w1");
    } finally {
      await socket.close();
    }
    await expect.poll(() => log.find("subscription ended").filter((record) => record.fields.transport === "stream_socket")).toHaveLength(1);
    expect(log.find("subscription ended").at(-1)).toMatchObject({ fields: { transport: "stream_socket", stream: "s", group: "g", reason: "client", peer: expect.stringMatching(PEER) } });

    const own = await startServer({ log });
    const cursor = new StreamCursor(own.client(), { streamName: "s", groupId: "shut" });
    try {
      await cursor.next();
      await own.stop();
    } finally {
      cursor.close();
    }
    expect(log.find("subscription ended").at(-1)).toMatchObject({ fields: { group: "shut", reason: "shutdown", error: expect.any(String) } });
  });
});

describe("logs at info", () => {
  it("have no access records, but an error record for a call the server failed, naming the method and the peer", async () => {
    const log = new RecordingLog("info");
    const running = await startServer({ log, backend: { items: new BrokenStore() } });
    try {
      await expect(running.client().set({ streamName: "s", groupId: "g", itemId: "a", data: json(1) })).rejects.toThrow(/disk is on fire/);
      const cursor = new StreamCursor(running.client(), { streamName: "s", groupId: "g" });
      try {
        await cursor.next();
      } finally {
        cursor.close();
      }
    } finally {
      await running.stop();
    }
    expect(log.records).toEqual([
      {
        level: "error",
        message: "call failed",
        fields: { method: "Set", service: "iii.stream.v1.StreamService", code: "internal", peer: expect.stringMatching(PEER), error: expect.stringContaining("the disk is on fire") },
      },
    ]);
  });
});
