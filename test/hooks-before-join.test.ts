import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EngineHooks, ErrorCode, type JoinInfo, StreamError } from "../src/index.js";
import { startServer, type RunningServer } from "./support/server.js";
import { json, StreamCursor } from "./support/subscribe-view.js";

describe("beforeJoin", () => {
  const calls: string[] = [];
  const joins: JoinInfo[] = [];
  const record: EngineHooks = {
    beforeJoin: async (join) => {
      calls.push(`record ${join.groupId}`);
      joins.push(join);
    },
  };
  const gate: EngineHooks = {
    beforeJoin: async (join) => {
      // Late on purpose: the next entry must still wait for this one.
      await new Promise((resolve) => setTimeout(resolve, 20));
      calls.push(`gate ${join.groupId}`);
      if (join.groupId === "closed") throw new StreamError(ErrorCode.PermissionDenied, "closed to everyone");
    },
  };
  const after: EngineHooks = { beforeJoin: async (join) => void calls.push(`after ${join.groupId}`) };
  let running: RunningServer;

  beforeAll(async () => {
    running = await startServer({ hooks: [record, gate, after] });
    await running.client().set({ streamName: "s", groupId: "open", itemId: "a", data: json(1) });
  });
  afterAll(async () => {
    await running?.stop();
  });

  it("runs every hook in list order, each after the one before has finished, then serves the snapshot", async () => {
    calls.length = 0;
    const cursor = new StreamCursor(running.client(), { streamName: "s", groupId: "open", itemId: "a" });
    try {
      expect((await cursor.next()).message.case).toBe("snapshot");
      expect(calls).toEqual(["record open", "gate open", "after open"]);
      expect(joins.at(-1)).toMatchObject({ streamName: "s", groupId: "open", itemId: "a", context: null, subscriptionId: expect.any(String) });
      expect(running.server.stats().subscriptions).toBe(1);
    } finally {
      cursor.close();
    }
  });

  it("refuses the join with the error of the hook that threw, and the hooks after it do not run", async () => {
    calls.length = 0;
    const cursor = new StreamCursor(running.client(), { streamName: "s", groupId: "closed" });
    try {
      const { error, read } = await cursor.failure();
      expect(read).toEqual([]);
      expect(error).toBeInstanceOf(ConnectError);
      expect([error.code, error.rawMessage]).toEqual([Code.PermissionDenied, "closed to everyone"]);
      expect(calls).toEqual(["record closed", "gate closed"]);
    } finally {
      cursor.close();
    }
    await expect.poll(() => running.server.stats()).toMatchObject({ subscriptions: 0, groupFeeds: 0 });
  });
});
