import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChangeType, type SubscribeResponse } from "../gen/iii/stream/v1/stream_pb.js";
import { ALL_TRANSPORTS, startServer, type RunningServer } from "./support/server.js";
import { json, plain, StreamCursor, viewItems } from "./support/subscribe-view.js";

/** A message reduced to what these tests compare. */
function brief(response: SubscribeResponse) {
  const message = response.message;
  switch (message.case) {
    case "snapshot":
      return { snapshot: viewItems(message.value.items).map((i) => [i.itemId, i.data, i.revision]), offset: Number(message.value.offset) };
    case "change":
      return {
        change: ChangeType[message.value.type],
        itemId: message.value.itemId,
        data: plain(message.value.data),
        revision: Number(message.value.revision),
        offset: Number(message.value.offset),
      };
    case "event":
      return { event: message.value.type, itemId: message.value.itemId, data: plain(message.value.data), offset: Number(message.value.offset) };
    default:
      return { other: message.case };
  }
}

describe("item subscriptions and events", () => {
  let running: RunningServer;

  beforeAll(async () => {
    running = await startServer();
  });
  afterAll(async () => {
    await running?.stop();
  });

  async function withCursors<T>(requests: Array<{ groupId: string; itemId?: string }>, use: (cursors: StreamCursor[]) => Promise<T>): Promise<T> {
    const cursors = requests.map((request) => new StreamCursor(running.client(), { streamName: "s", ...request }));
    try {
      return await use(cursors);
    } finally {
      for (const cursor of cursors) cursor.close();
    }
  }

  const set = (groupId: string, itemId: string, data: unknown) =>
    running.client().set({ streamName: "s", groupId, itemId, data: json(data as never) });
  const del = (groupId: string, itemId: string) => running.client().delete({ streamName: "s", groupId, itemId });
  const send = (groupId: string, type: string, data: unknown, itemId?: string) =>
    running.client().send({ streamName: "s", groupId, type, data: json(data as never), itemId });

  it("snapshots one item (or nothing) at the group's offset, then only that item's changes", async () => {
    await set("items", "a", 1);
    await set("items", "b", 1);
    await withCursors([{ groupId: "items", itemId: "a" }, { groupId: "items", itemId: "missing" }], async ([a, missing]) => {
      expect(brief(await a.next())).toEqual({ snapshot: [["a", 1, 1]], offset: 2 });
      expect(brief(await missing.next())).toEqual({ snapshot: [], offset: 2 });
      await set("items", "b", 2);
      await set("items", "a", 2);
      await del("items", "a");
      await set("items", "missing", "here");
      await set("items", "a", 3);
      expect([brief(await a.next()), brief(await a.next()), brief(await a.next())]).toEqual([
        { change: "UPDATE", itemId: "a", data: 2, revision: 2, offset: 4 },
        // A delete carries the removed value and the revision it had.
        { change: "DELETE", itemId: "a", data: 2, revision: 2, offset: 5 },
        { change: "CREATE", itemId: "a", data: 3, revision: 1, offset: 7 },
      ]);
      expect(brief(await missing.next())).toEqual({ change: "CREATE", itemId: "missing", data: "here", revision: 1, offset: 6 });
    });
  });

  it("delivers an event to the group's subscribers, and to the item's when it names one, in order with changes", async () => {
    await set("events", "a", 0);
    const requests = [{ groupId: "events" }, { groupId: "events", itemId: "a" }, { groupId: "events", itemId: "b" }];
    await withCursors(requests, async ([group, itemA, itemB]) => {
      for (const cursor of [group, itemA, itemB]) expect(brief(await cursor.next()).offset).toBe(1);
      await send("events", "to-group", { x: 1 });
      await send("events", "to-a", [1, "two"], "a");
      await set("events", "a", 1);
      await send("events", "after", null, "a");
      await set("events", "b", 1);

      const toGroup = { event: "to-group", itemId: undefined, data: { x: 1 }, offset: 1 };
      const toA = { event: "to-a", itemId: "a", data: [1, "two"], offset: 1 };
      const changeA = { change: "UPDATE", itemId: "a", data: 1, revision: 2, offset: 2 };
      const after = { event: "after", itemId: "a", data: null, offset: 2 };
      const changeB = { change: "CREATE", itemId: "b", data: 1, revision: 1, offset: 3 };
      expect(await Promise.all([1, 2, 3, 4, 5].map(() => group.next().then(brief)))).toEqual([toGroup, toA, changeA, after, changeB]);
      expect(await Promise.all([1, 2, 3].map(() => itemA.next().then(brief)))).toEqual([toA, changeA, after]);
      // Events without an item, or for another item, never reach b's subscriber.
      expect(brief(await itemB.next())).toEqual(changeB);
    });
  });

  it.each(ALL_TRANSPORTS)("carries events and item changes over %s", async (kind) => {
    const groupId = `wire-${kind}`;
    const cursor = new StreamCursor(running.client(kind), { streamName: "s", groupId, itemId: "a" });
    try {
      expect(brief(await cursor.next())).toEqual({ snapshot: [], offset: 0 });
      await send(groupId, "hello", { big: 2 ** 53 - 1, text: "é" }, "a");
      await set(groupId, "a", { nested: [true, null] });
      expect(brief(await cursor.next())).toEqual({ event: "hello", itemId: "a", data: { big: 2 ** 53 - 1, text: "é" }, offset: 0 });
      expect(brief(await cursor.next())).toEqual({ change: "CREATE", itemId: "a", data: { nested: [true, null] }, revision: 1, offset: 1 });
    } finally {
      cursor.close();
    }
  });

  it("does not replay events sent before the subscription", async () => {
    await set("past", "a", 0);
    await send("past", "before", 1);
    await withCursors([{ groupId: "past" }], async ([cursor]) => {
      expect(brief(await cursor.next())).toMatchObject({ offset: 1 });
      await send("past", "later", 2);
      expect(brief(await cursor.next())).toEqual({ event: "later", itemId: undefined, data: 2, offset: 1 });
    });
  });
});
