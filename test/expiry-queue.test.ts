import { describe, expect, it } from "vitest";
import { ExpiryQueue, type ExpiryEntry } from "../src/adapters/memory/expiry-queue.js";

/** The memory adapter's expiry index on its own: order, stale entries, bounded size. */
describe("the memory adapter's expiry queue", () => {
  const entry = (itemId: string, expiresAtMs: number): ExpiryEntry => ({ streamName: "s", groupId: "g", itemId, createdOffset: 1, expiresAtMs });

  it("lists due entries earliest first, up to the limit, and keeps them until their item is gone", () => {
    const current = new Map<string, number>();
    const queue = new ExpiryQueue((e) => current.get(e.itemId) === e.expiresAtMs);
    for (const [itemId, at] of [["c", 30], ["a", 10], ["d", 40], ["b", 20]] as const) {
      current.set(itemId, at);
      queue.push(entry(itemId, at));
    }
    expect(queue.due(25, 10).map((e) => e.itemId)).toEqual(["a", "b"]);
    expect(queue.due(100, 3).map((e) => e.itemId)).toEqual(["a", "b", "c"]);
    // Removed or given another expiry: the old entries are dropped when met.
    current.delete("a");
    current.set("b", 50);
    queue.push(entry("b", 50));
    expect(queue.due(45, 10).map((e) => e.itemId)).toEqual(["c", "d"]);
    expect(queue.due(100, 10).map((e) => [e.itemId, e.expiresAtMs])).toEqual([["c", 30], ["d", 40], ["b", 50]]);
  });

  it("stays bounded when one item is rewritten many times with a long expiry", () => {
    let latest = 0;
    const queue = new ExpiryQueue((e) => e.expiresAtMs === latest);
    for (let i = 1; i <= 100_000; i++) {
      latest = 1_000_000 + i;
      queue.push(entry("hot", latest));
    }
    expect(queue.size).toBeLessThanOrEqual(1024);
    expect(queue.due(Number.MAX_SAFE_INTEGER, 10).map((e) => e.expiresAtMs)).toEqual([latest]);
  });
});
