import { ErrorCode } from "../src/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "./support/server.js";
import { StreamCursor } from "./support/subscribe-view.js";

describe("what the server tells tests and metrics", () => {
  let running: RunningServer;

  beforeAll(async () => {
    running = await startServer();
  });
  afterAll(async () => {
    await running?.stop();
  });

  it("counts subscriptions, the group feeds they share, functions and triggers", async () => {
    expect(running.server.stats()).toEqual({ subscriptions: 0, groupFeeds: 0, functions: 0, triggers: 0, webSockets: 0 });
    const remove = running.server.registerFunction("stats::echo", (payload) => payload);
    await running.server.functions.registerTrigger({ triggerId: "stats", type: "stream", functionId: "stats::echo", config: { streamName: "s" } });
    const cursors = [
      new StreamCursor(running.client(), { streamName: "s", groupId: "g" }),
      new StreamCursor(running.client(), { streamName: "s", groupId: "g", itemId: "a" }),
      new StreamCursor(running.client(), { streamName: "s", groupId: "h" }),
    ];
    try {
      for (const cursor of cursors) await cursor.next();
      expect(running.server.stats()).toEqual({ subscriptions: 3, groupFeeds: 2, functions: 1, triggers: 1, webSockets: 0 });
    } finally {
      for (const cursor of cursors) cursor.close();
      remove();
      await running.server.functions.unregisterTrigger("stats");
    }
    await expect.poll(() => running.server.stats()).toEqual({ subscriptions: 0, groupFeeds: 0, functions: 0, triggers: 0, webSockets: 0 });
  });

  it("invokes a function by id, and fails an unknown one with NOT_FOUND", async () => {
    const remove = running.server.registerFunction("stats::double", (payload) => (payload as number) * 2);
    try {
      expect(await running.server.invoke("stats::double", 21)).toBe(42);
      await expect(running.server.invoke("stats::missing", null, 1000)).rejects.toMatchObject({ code: ErrorCode.NotFound });
    } finally {
      remove();
    }
  });
});
