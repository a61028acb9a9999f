import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NO_METRICS } from "../src/core/metrics.js";
import { StreamEngine } from "../src/core/engine.js";
import { FileStore, type GroupMessage } from "../src/index.js";

const root = mkdtempSync(join(tmpdir(), "iii-stream-queued-writes-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** An engine on a fresh file store that records the size of each commit. */
async function openEngine(name: string) {
  const store = FileStore.open({ dataDir: join(root, name) });
  const commits: number[] = [];
  const engine = new StreamEngine({ store, metrics: { ...NO_METRICS, committed: (_store, size) => void commits.push(size) }, expirySweepMs: 0 });
  const seen: string[] = [];
  await store.watch("s", "g", (message: GroupMessage) => {
    if (message.kind === "change") seen.push(`${message.type} ${message.itemId} r${message.revision} @${message.offset}`);
  });
  return { engine, commits, seen, close: () => engine.shutdown() };
}

const key = { streamName: "s", groupId: "g", itemId: "hot" };

describe("writers of one item on the file store", () => {
  it("join one commit instead of waiting an fsync each, answered and delivered in call order", async () => {
    const { engine, commits, seen, close } = await openEngine("set");
    try {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => engine.set(key, i)));
      expect(results.map((r) => r.revision)).toStrictEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(results.map((r) => r.oldValue)).toStrictEqual([undefined, ...Array.from({ length: 19 }, (_, i) => i)]);
      expect(results.map((r) => r.offset)).toStrictEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(seen).toStrictEqual(Array.from({ length: 20 }, (_, i) => `${i === 0 ? "create" : "update"} hot r${i + 1} @${i + 1}`));
      // One commit for the first write, one for the 19 that queued behind it.
      expect(commits.length).toBeLessThanOrEqual(2);
      expect(await engine.get(key)).toMatchObject({ data: 19, revision: 20 });
    } finally {
      await close();
    }
  });

  it("check if_revision, apply update ops and delete against the queued writes before them", async () => {
    const { engine, commits, seen, close } = await openEngine("mixed");
    try {
      const settled = await Promise.allSettled<unknown>([
        engine.set(key, { n: 1 }),
        engine.update(key, [{ type: "increment", path: ["n"], by: 2n }]),
        engine.set(key, { n: 10 }, 2),
        engine.set(key, { n: 99 }, 2),
        engine.delete(key),
        engine.set(key, { n: 5 }),
      ]);
      expect(settled.map((s) => s.status)).toStrictEqual(["fulfilled", "fulfilled", "fulfilled", "rejected", "fulfilled", "fulfilled"]);
      const value = (index: number) => (settled[index] as PromiseFulfilledResult<Record<string, unknown>>).value;
      expect(value(1)).toMatchObject({ oldValue: { n: 1 }, newValue: { n: 3 }, revision: 2, offset: 2 });
      expect(String((settled[3] as PromiseRejectedResult).reason)).toMatch(/if_revision is 2 but the item is at revision 3/);
      expect(value(4)).toMatchObject({ oldValue: { n: 10 }, offset: 4 });
      expect(value(5)).toMatchObject({ oldValue: undefined, revision: 1, offset: 5 });
      expect(seen).toStrictEqual(["create hot r1 @1", "update hot r2 @2", "update hot r3 @3", "delete hot r3 @4", "create hot r1 @5"]);
      expect(commits.length).toBeLessThanOrEqual(2);
      expect(await engine.get(key)).toMatchObject({ data: { n: 5 }, revision: 1 });
    } finally {
      await close();
    }
  });

  it("an update that changes nothing answers with the offset of the write queued before it, once committed", async () => {
    const { engine, close } = await openEngine("no-op");
    try {
      const [, unchanged] = await Promise.all([engine.set(key, { s: "text" }), engine.update(key, [{ type: "increment", path: ["s"], by: 1n }])]);
      expect(unchanged).toMatchObject({ oldValue: { s: "text" }, newValue: { s: "text" }, revision: 1, offset: 1 });
      expect(unchanged.errors).toHaveLength(1);
    } finally {
      await close();
    }
  });

  it("a Batch and a write with a request id among them are decided against the committed item, and none is lost", async () => {
    const { engine, seen, close } = await openEngine("mixed-paths");
    try {
      const results = await Promise.all([
        engine.set(key, "a"),
        engine.set(key, "b"),
        engine.set(key, "c", undefined, { requestId: "with-id" }),
        engine.batch("s", "g", [{ itemId: "hot", set: "d" }]),
        engine.set(key, "e"),
      ]);
      expect(results).toHaveLength(5);
      // Every write landed exactly once, each as a revision of its own.
      expect(seen).toHaveLength(5);
      expect(seen.map((line) => line.split(" ")[2])).toStrictEqual(["r1", "r2", "r3", "r4", "r5"]);
      const retry = await engine.set(key, "c", undefined, { requestId: "with-id" });
      expect(retry.revision).toBe((results[2] as { revision: number }).revision);
      expect(seen).toHaveLength(5);
    } finally {
      await close();
    }
  });

  it("a write with a time to live is waited for: the next writer reads the item as committed", async () => {
    const { engine, close } = await openEngine("ttl");
    try {
      const [first, second] = await Promise.all([engine.set(key, 1, undefined, { ttlMs: 60_000 }), engine.set(key, 2)]);
      expect([first.revision, second.revision]).toStrictEqual([1, 2]);
      const item = await engine.get(key);
      expect(item).toMatchObject({ data: 2, revision: 2 });
      expect(item?.expiresAtMs).toBeUndefined();
    } finally {
      await close();
    }
  });
});
