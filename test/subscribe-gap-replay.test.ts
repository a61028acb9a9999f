import { describe, expect, it } from "vitest";
import { ErrorCode, type GroupMessage, MemoryItemStore, type StreamError } from "../src/index.js";
import { StreamEngine } from "../src/core/engine.js";
import type { GroupListener, GroupLossListener } from "../src/core/item-store.js";
import type { Subscription } from "../src/core/subscription.js";

/**
 * A store that delivers at most once, as a broker does: `tamper` sees every message
 * before the watchers and decides what reaches them, now or later. The engine's group
 * feed alone must turn that back into every change exactly once, in order.
 */
class LossyStore extends MemoryItemStore {
  tamper: (message: GroupMessage, pass: (message: GroupMessage) => void) => void = (message, pass) => pass(message);
  private readonly losses = new Set<GroupLossListener>();

  override async watch(streamName: string, groupId: string, listener: GroupListener, onLoss?: GroupLossListener): Promise<() => void> {
    const unwatch = await super.watch(streamName, groupId, (message) => this.tamper(message, listener));
    if (onLoss) this.losses.add(onLoss);
    return () => {
      if (onLoss) this.losses.delete(onLoss);
      unwatch();
    };
  }

  /** What a broker reconnect reports. */
  loseInTransit(replayable: boolean): void {
    for (const onLoss of this.losses) onLoss("the broker connection dropped", replayable);
  }
}

const key = (itemId: string) => ({ streamName: "s", groupId: "g", itemId });

/** Offsets of the changes a subscription has queued, after its snapshot. */
function changeOffsets(subscription: Subscription): number[] {
  const offsets: number[] = [];
  for (let delivery = subscription.take(); delivery; delivery = subscription.take()) {
    if (delivery.message.kind === "change") offsets.push(delivery.message.offset);
  }
  return offsets;
}

async function withEngine(store: LossyStore, use: (engine: StreamEngine, subscription: Subscription) => Promise<void>): Promise<void> {
  const engine = new StreamEngine({ store: store });
  try {
    await engine.set(key("a"), 0);
    const subscription = await engine.subscribe({ streamName: "s", groupId: "g" });
    expect(subscription.take()?.message).toMatchObject({ kind: "snapshot", offset: 1 });
    await use(engine, subscription);
  } finally {
    await engine.close();
  }
}

/** Lets replays from history (a few promise turns) finish. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe("the group feed fills gaps in what the store delivers", () => {
  it("replays a dropped change from history when the next one arrives, and passes each on once, in order", async () => {
    const store = new LossyStore();
    store.tamper = (message, pass) => {
      if (!(message.kind === "change" && message.offset === 3)) pass(message);
    };
    await withEngine(store, async (engine, subscription) => {
      for (let i = 1; i <= 4; i++) await engine.set(key(`i${i}`), i);
      await settle();
      expect(changeOffsets(subscription)).toEqual([2, 3, 4, 5]);
    });
  });

  it("drops a change delivered late, after the gap it left was filled from history", async () => {
    const store = new LossyStore();
    let late: (() => void) | undefined;
    store.tamper = (message, pass) => {
      if (message.kind === "change" && message.offset === 2) late = () => pass(message);
      else pass(message);
    };
    await withEngine(store, async (engine, subscription) => {
      await engine.set(key("b"), 1);
      await engine.set(key("c"), 2);
      await settle();
      late?.();
      await engine.set(key("d"), 3);
      await settle();
      expect(changeOffsets(subscription)).toEqual([2, 3, 4]);
    });
  });

  it("replays what was lost when the store reports a loss, even when nothing else is written", async () => {
    const store = new LossyStore();
    let dropping = false;
    store.tamper = (message, pass) => {
      if (!dropping) pass(message);
    };
    await withEngine(store, async (engine, subscription) => {
      await engine.set(key("b"), 1);
      dropping = true;
      await engine.set(key("c"), 2);
      await engine.set(key("d"), 3);
      dropping = false;
      store.loseInTransit(true);
      await settle();
      expect(changeOffsets(subscription)).toEqual([2, 3, 4]);
      expect(subscription.ended).toBe(false);
    });
  });

  it("ends the subscribers with UNAVAILABLE when the history no longer holds the missing changes", async () => {
    const store = new LossyStore({ historyLimit: 2 });
    store.tamper = (message, pass) => {
      if (!(message.kind === "change" && message.offset >= 2 && message.offset <= 4)) pass(message);
    };
    await withEngine(store, async (engine, subscription) => {
      let failure: StreamError | undefined;
      subscription.onEnd((error) => (failure = error));
      for (let i = 1; i <= 4; i++) await engine.set(key(`i${i}`), i);
      await settle();
      expect(failure?.code).toBe(ErrorCode.Unavailable);
      expect(failure?.message).toMatch(/lost in transit; resume with from_offset/);
      expect(engine.stats()).toEqual({ subscriptions: 0, groupFeeds: 0 });
    });
  });

  it("ends the subscribers with UNAVAILABLE when the store says delivery cannot go on", async () => {
    const store = new LossyStore();
    await withEngine(store, async (engine, subscription) => {
      let failure: StreamError | undefined;
      subscription.onEnd((error) => (failure = error));
      store.loseInTransit(false);
      expect(failure?.code).toBe(ErrorCode.Unavailable);
      expect(engine.stats()).toEqual({ subscriptions: 0, groupFeeds: 0 });
    });
  });
});

