import { describe, expect, it } from "vitest";
import { MemoryItemStore } from "../src/index.js";
import { Delivery } from "../src/core/delivery.js";
import { StreamEngine } from "../src/core/engine.js";
import type { Subscription } from "../src/core/subscription.js";

const SUBSCRIBERS = 10_000;

describe("fan-out to 10,000 subscribers of one group", () => {
  it("hands every subscriber the very same delivery, encoded once, and leaves no feed behind", async () => {
    const store = new MemoryItemStore();
    const engine = new StreamEngine({ store });
    try {
      await engine.set({ streamName: "s", groupId: "g", itemId: "a" }, { n: 0 });
      const subscriptions: Subscription[] = [];
      for (let batch = 0; batch < SUBSCRIBERS; batch += 1000) {
        subscriptions.push(...(await Promise.all(Array.from({ length: 1000 }, () => engine.subscribe({ streamName: "s", groupId: "g" })))));
      }
      expect([engine.stats().subscriptions, engine.stats().groupFeeds, store.watcherCount]).toEqual([SUBSCRIBERS, 1, 1]);
      for (const subscription of subscriptions) expect(subscription.take()?.message.kind).toBe("snapshot");

      await engine.set({ streamName: "s", groupId: "g", itemId: "a" }, { n: 1 });
      const received = subscriptions.map((subscription) => subscription.take());
      const first = received[0] as Delivery;
      expect(first.message).toMatchObject({ kind: "change", offset: 2, data: { n: 1 } });
      expect(received.every((delivery) => delivery === first)).toBe(true);

      let encodings = 0;
      const wire = Delivery.format("wire", () => ++encodings);
      for (const delivery of received) delivery!.encoded(wire);
      expect(encodings).toBe(1);

      for (const subscription of subscriptions) subscription.end();
      expect([engine.stats().subscriptions, engine.stats().groupFeeds, store.watcherCount]).toEqual([0, 0, 0]);
    } finally {
      await engine.close();
    }
  });
});
