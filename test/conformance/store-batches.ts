import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_REQUESTS_PER_GROUP, type BatchCommitResult, type BatchWrite, type ItemStore, type RequestRecord } from "../../src/core/item-store.js";
import type { GroupMessage, ItemChange } from "../../src/core/model.js";
import type { StoreUnderTest } from "./store-pages.js";
import { uniqueNames } from "./unique-names.js";

/**
 * What every ItemStore must do with a batch of writes (WriteBatch), read through the
 * port alone: all or nothing, consecutive offsets, writes to one item applied in order,
 * changes handed to watchers together, and request records (found, refused as
 * duplicates, forgotten when they expire). A test file plugs an adapter in with one line,
 * as for defineStorePagesSuite.
 */
export function defineStoreBatchesSuite(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`item store batches: ${name}`, () => {
    let subject: StoreUnderTest | undefined;
    let store: ItemStore;
    const streamName = uniqueNames(`batches-${name}`);

    beforeAll(async () => {
      subject = await makeStore();
      store = subject.store;
    });

    afterAll(async () => {
      await subject?.close();
    });

    function commit(s: string, writes: BatchWrite[], request?: RequestRecord, timestampMs = 1000): Promise<BatchCommitResult> {
      return store.commitBatch({ streamName: s, groupId: "g", writes, timestampMs, request });
    }

    function changesOf(result: BatchCommitResult): ItemChange[] {
      if (!result.ok) throw new Error(`refused: ${JSON.stringify(result)}`);
      return result.changes;
    }

    it("commits the writes at consecutive offsets, in order, and reports the offset after them", async () => {
      const s = streamName("consecutive");
      changesOf(await commit(s, [{ itemId: "x", expectedRevision: 0, value: "x" }]));
      const result = await commit(s, [
        { itemId: "a", expectedRevision: 0, value: { n: 1 } },
        { itemId: "x", expectedRevision: 1, value: "x2", expectedCreatedOffset: 1 },
        { itemId: "b", expectedRevision: 0, value: [1, 2] },
      ]);
      const changes = changesOf(result);
      expect(changes.map((change) => [change.offset, change.type, change.itemId, change.revision])).toStrictEqual([
        [2, "create", "a", 1],
        [3, "update", "x", 2],
        [4, "create", "b", 1],
      ]);
      expect(changes[1]).toMatchObject({ data: "x2", oldValue: "x", createdOffset: 1 });
      expect(result.ok && result.offset).toBe(4);
      expect(await store.currentOffset(s, "g")).toBe(4);
      expect(await store.changesSince(s, "g", 1)).toStrictEqual(changes);
      const page = await store.readItems(s, "g", { afterCreatedOffset: 0, maxItems: 10, maxBytes: 1e9 });
      expect(page.items.map((item) => [item.itemId, item.data, item.revision, item.createdOffset])).toStrictEqual([
        ["x", "x2", 2, 1],
        ["a", { n: 1 }, 1, 2],
        ["b", [1, 2], 1, 4],
      ]);
    });

    it("applies writes to one item in order: create, overwrite, delete, create again", async () => {
      const s = streamName("same-item");
      const changes = changesOf(
        await commit(s, [
          { itemId: "i", expectedRevision: 0, value: 1 },
          { itemId: "i", expectedRevision: 1, value: 2 },
          { itemId: "keep", expectedRevision: 0, value: "k" },
          { itemId: "i", expectedRevision: 2, value: undefined },
          { itemId: "i", expectedRevision: 0, value: 3 },
        ]),
      );
      expect(changes.map((change) => [change.offset, change.type, change.data, change.revision, change.createdOffset])).toStrictEqual([
        [1, "create", 1, 1, 1],
        [2, "update", 2, 2, 1],
        [3, "create", "k", 1, 3],
        [4, "delete", 2, 2, 1],
        [5, "create", 3, 1, 5],
      ]);
      expect(await store.getItem(s, "g", "i")).toMatchObject({ data: 3, revision: 1, createdOffset: 5 });
    });

    it("writes nothing when a write in the middle fails its check, and names it", async () => {
      const s = streamName("all-or-nothing");
      changesOf(await commit(s, [{ itemId: "a", expectedRevision: 0, value: "a1" }, { itemId: "b", expectedRevision: 0, value: "b1" }]));
      const before = await store.readItems(s, "g", { afterCreatedOffset: 0, maxItems: 10, maxBytes: 1e9 });
      const messages: GroupMessage[] = [];
      const stop = await store.watch(s, "g", (message) => messages.push(message));
      try {
        const refusals = [
          // A stale revision in the middle.
          await commit(s, [{ itemId: "a", expectedRevision: 1, value: "a2" }, { itemId: "b", expectedRevision: 7, value: "b2" }, { itemId: "c", expectedRevision: 0, value: 1 }]),
          // Deleting a missing item.
          await commit(s, [{ itemId: "a", expectedRevision: 1, value: undefined }, { itemId: "zz", expectedRevision: 0, value: undefined }]),
          // A second write that does not account for the first.
          await commit(s, [{ itemId: "a", expectedRevision: 1, value: "a2" }, { itemId: "a", expectedRevision: 1, value: "a3" }]),
          // A stale incarnation.
          await commit(s, [{ itemId: "c", expectedRevision: 0, value: 1 }, { itemId: "b", expectedRevision: 1, expectedCreatedOffset: 99, value: 2 }]),
        ];
        expect(refusals).toStrictEqual([
          { ok: false, reason: "precondition", index: 1, currentRevision: 1 },
          { ok: false, reason: "precondition", index: 1, currentRevision: 0 },
          { ok: false, reason: "precondition", index: 1, currentRevision: 2 },
          { ok: false, reason: "precondition", index: 1, currentRevision: 1 },
        ]);
        expect(await store.readItems(s, "g", { afterCreatedOffset: 0, maxItems: 10, maxBytes: 1e9 })).toStrictEqual(before);
        expect(await store.currentOffset(s, "g")).toBe(2);
        // Proof that nothing was handed out: the next change is the first a watcher gets.
        changesOf(await commit(s, [{ itemId: "a", expectedRevision: 1, value: "a2" }]));
        await until(() => messages.length >= 1);
        expect(messages.map((message) => message.offset)).toStrictEqual([3]);
      } finally {
        stop();
      }
    });

    it("hands a batch's changes to watchers one after another, nothing between them", async () => {
      const s = streamName("contiguous");
      const messages: GroupMessage[] = [];
      const stop = await store.watch(s, "g", (message) => messages.push(message));
      try {
        const singles = Array.from({ length: 20 }, (_, i) => store.commit({ streamName: s, groupId: "g", itemId: `s${i}`, expectedRevision: 0, value: i, timestampMs: 1 }));
        const batches = Array.from({ length: 5 }, (_, b) =>
          commit(s, Array.from({ length: 10 }, (_, i) => ({ itemId: `b${b}-${i}`, expectedRevision: 0, value: i }))),
        );
        const results = await Promise.all([...singles, ...batches]);
        expect(results.every((result) => result.ok)).toBe(true);
        await until(() => messages.length >= 70);
        expect(messages.map((message) => message.offset)).toStrictEqual(Array.from({ length: 70 }, (_, i) => i + 1));
        for (let b = 0; b < 5; b++) {
          const at = messages.findIndex((message) => message.kind === "change" && message.itemId === `b${b}-0`);
          expect(messages.slice(at, at + 10).map((message) => (message as ItemChange).itemId)).toStrictEqual(
            Array.from({ length: 10 }, (_, i) => `b${b}-${i}`),
          );
        }
      } finally {
        stop();
      }
    });

    describe("request records", () => {
      const record = (requestId: string, expiresAtMs: number, response = `{"r":"${requestId}"}`): RequestRecord => ({
        requestId,
        fingerprint: `fp-${requestId}`,
        response,
        expiresAtMs,
      });

      it("remembers a request with its batch; the same id again is a duplicate that writes nothing", async () => {
        const s = streamName("duplicate");
        expect(await store.findRequest(s, "g", "r1", 1000)).toBeUndefined();
        changesOf(await commit(s, [{ itemId: "a", expectedRevision: 0, value: 1 }, { itemId: "b", expectedRevision: 0, value: 2 }], record("r1", 5000), 1000));
        const stored = { ...record("r1", 5000), offset: 2 };
        expect(await store.findRequest(s, "g", "r1", 1001)).toStrictEqual(stored);
        // Even writes that would pass their checks are refused with the id.
        expect(await commit(s, [{ itemId: "c", expectedRevision: 0, value: 3 }], record("r1", 9000, "other"), 2000)).toStrictEqual({
          ok: false,
          reason: "duplicate",
          request: stored,
        });
        expect(await store.getItem(s, "g", "c")).toBeUndefined();
        expect(await store.currentOffset(s, "g")).toBe(2);
        // Ids are per group.
        expect(await store.findRequest(s, "other", "r1", 1001)).toBeUndefined();
        expect(await store.findRequest(streamName("duplicate-other"), "g", "r1", 1001)).toBeUndefined();
      });

      it("remembers a request that wrote nothing, at the group offset of its commit", async () => {
        const s = streamName("no-writes");
        changesOf(await commit(s, [{ itemId: "a", expectedRevision: 0, value: 1 }]));
        const result = await commit(s, [], record("empty", 5000), 1000);
        expect(result).toStrictEqual({ ok: true, changes: [], offset: 1 });
        expect(await store.findRequest(s, "g", "empty", 1000)).toStrictEqual({ ...record("empty", 5000), offset: 1 });
        // In a group that was never written, too.
        const fresh = streamName("no-writes-fresh");
        expect(await commit(fresh, [], record("empty", 5000), 1000)).toStrictEqual({ ok: true, changes: [], offset: 0 });
        expect(await store.findRequest(fresh, "g", "empty", 1000)).toMatchObject({ offset: 0 });
      });

      it("does not remember a batch that failed its checks", async () => {
        const s = streamName("refused");
        expect(await commit(s, [{ itemId: "a", expectedRevision: 3, value: 1 }], record("r", 5000))).toMatchObject({ ok: false, reason: "precondition" });
        expect(await store.findRequest(s, "g", "r", 1000)).toBeUndefined();
      });

      it("forgets a request once it expires: the id can be used again", async () => {
        const s = streamName("expiry");
        changesOf(await commit(s, [{ itemId: "a", expectedRevision: 0, value: 1 }], record("r", 2000), 1000));
        expect(await store.findRequest(s, "g", "r", 1999)).toBeDefined();
        expect(await store.findRequest(s, "g", "r", 2000)).toBeUndefined();
        const again = await commit(s, [{ itemId: "a", expectedRevision: 1, value: 2 }], record("r", 9000, "second"), 2000);
        expect(changesOf(again).map((change) => change.offset)).toStrictEqual([2]);
        expect(await store.findRequest(s, "g", "r", 2000)).toStrictEqual({ ...record("r", 9000, "second"), offset: 2 });
      });

      it(`keeps at most ${MAX_REQUESTS_PER_GROUP} records per group, forgetting the oldest first`, async () => {
        const s = streamName("bound");
        const results = await Promise.all(
          Array.from({ length: MAX_REQUESTS_PER_GROUP + 1 }, (_, i) => commit(s, [], record(`r${i}`, 1_000_000 + i), 1000)),
        );
        expect(results.every((result) => result.ok)).toBe(true);
        expect(await store.findRequest(s, "g", "r0", 1000)).toBeUndefined();
        expect(await store.findRequest(s, "g", "r1", 1000)).toBeDefined();
        expect(await store.findRequest(s, "g", `r${MAX_REQUESTS_PER_GROUP}`, 1000)).toBeDefined();
        // The next record pushes out the next oldest.
        expect((await commit(s, [], record("one-more", 2_000_000), 1000)).ok).toBe(true);
        expect(await store.findRequest(s, "g", "r1", 1000)).toBeUndefined();
        expect(await store.findRequest(s, "g", "r2", 1000)).toBeDefined();
      });

      it("keeps responses exactly, JSON text of any characters", async () => {
        const s = streamName("response");
        const response = JSON.stringify([{ o: "line\nbreak", n: { "é": "\u2028", q: '"' } }]);
        changesOf(await commit(s, [{ itemId: "a", expectedRevision: 0, value: 1 }], record("ré\u00e9 id", 5000, response)));
        expect((await store.findRequest(s, "g", "ré\u00e9 id", 1000))?.response).toBe(response);
      });
    });
  });
}

/** Waits for a watcher that hands messages over asynchronously (Redis). */
async function until(condition: () => boolean): Promise<void> {
  for (let tries = 0; !condition(); tries++) {
    if (tries > 500) throw new Error("the watcher never got the messages");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
