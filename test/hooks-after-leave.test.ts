import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EngineHooks, ErrorCode, StreamError } from "../src/index.js";
import { startServer, type RunningServer } from "./support/server.js";
import { StreamCursor } from "./support/subscribe-view.js";
import { RecordingLog } from "../src/index.js";

describe("afterLeave", () => {
  const joined: string[] = [];
  const left: string[] = [];
  const gate: EngineHooks = {
    beforeJoin: async (join) => {
      if (join.groupId === "closed") throw new StreamError(ErrorCode.PermissionDenied, "closed");
      joined.push(join.subscriptionId);
    },
    afterLeave: (join) => void left.push(`gate ${join.subscriptionId}`),
  };
  const broken: EngineHooks = {
    afterLeave: () => {
      throw new Error("this hook is broken on purpose");
    },
  };
  const last: EngineHooks = { afterLeave: (join) => void left.push(`last ${join.subscriptionId}`) };
  let running: RunningServer;
  const log = new RecordingLog();

  beforeAll(async () => {
    running = await startServer({ hooks: [gate, broken, last], log });
  });
  afterAll(async () => {
    await running?.stop();
  });

  it("runs every hook once, in list order, when a client cancels its subscription", async () => {
    joined.length = 0;
    left.length = 0;
    const cursor = new StreamCursor(running.client(), { streamName: "s", groupId: "open" });
    await cursor.next();
    expect(left).toEqual([]);
    cursor.close();
    await expect.poll(() => left.length).toBe(2);
    const [id] = joined;
    expect(left).toEqual([`gate ${id}`, `last ${id}`]);
    expect(log.find("afterLeave hook failed")).toEqual([
      expect.objectContaining({ level: "error", fields: expect.objectContaining({ stream: "s", group: "open", subscription_id: id, error: "this hook is broken on purpose" }) }),
    ]);
    expect(running.server.stats().subscriptions).toBe(0);
  });

  it("does not run for a join that beforeJoin refused", async () => {
    left.length = 0;
    const cursor = new StreamCursor(running.client(), { streamName: "s", groupId: "closed" });
    try {
      expect((await cursor.failure()).error.rawMessage).toBe("closed");
    } finally {
      cursor.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(left).toEqual([]);
  });

  it("runs when the server's shutdown ends the subscription", async () => {
    const own = await startServer({ hooks: [gate, last] });
    joined.length = 0;
    left.length = 0;
    const cursor = new StreamCursor(own.client(), { streamName: "s", groupId: "open" });
    try {
      await cursor.next();
      await own.stop();
      const [id] = joined;
      expect(left).toEqual([`gate ${id}`, `last ${id}`]);
    } finally {
      cursor.close();
      await own.stop();
    }
  });
});
