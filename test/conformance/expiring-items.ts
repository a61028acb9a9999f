import { create } from "@bufbuild/protobuf";
import { Code, type Client } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { BatchWriteSchema, ChangeType, type StreamService } from "../../gen/iii/stream/v1/stream_pb.js";
import { expectConnectError } from "./expect-error.js";
import { json, op, value } from "./proto-values.js";
import { SubscriptionReader } from "./subscription-reader.js";

/** 10 years in ms: the longest ttl_ms a write may give. */
const TEN_YEARS_MS = 10n * 365n * 24n * 60n * 60n * 1000n;

/**
 * Expiring items (`ttl_ms`) through the public API, on a server that sweeps at its
 * default interval. Every wait is for a message that must come; nothing is timed.
 */
export function expiringItemsTests(client: () => Client<typeof StreamService>, streamName: (label: string) => string): void {
  describe("expiring items", () => {
    async function snapshotIds(stream: string): Promise<string[]> {
      const reader = new SubscriptionReader(client(), { streamName: stream, groupId: "g" });
      try {
        return (await reader.expectNext("snapshot")).items.map((item) => item.itemId);
      } finally {
        reader.close();
      }
    }

    it("stores expires_at_ms, then removes the item with one DELETE change marked expired; reads never show it again", async () => {
      const s = streamName("ttl-expiry");
      const reader = new SubscriptionReader(client(), { streamName: s, groupId: "g" });
      try {
        expect((await reader.expectNext("snapshot")).items).toEqual([]);
        const before = BigInt(Date.now());
        await client().set({ streamName: s, groupId: "g", itemId: "keep", data: value(1) });
        const set = await client().set({ streamName: s, groupId: "g", itemId: "brief", data: value({ who: "ann" }), ttlMs: 1500n });
        const after = BigInt(Date.now());
        expect(set.offset).toBe(2n);
        // Read at once: 1.5 s is far longer than one Get.
        const item = (await client().get({ streamName: s, groupId: "g", itemId: "brief" })).item!;
        expect(item.expiresAtMs >= before + 1500n && item.expiresAtMs <= after + 1500n).toBe(true);
        const kept = (await client().get({ streamName: s, groupId: "g", itemId: "keep" })).item!;
        expect(kept.expiresAtMs).toBe(0n);

        expect((await reader.expectNext("change")).itemId).toBe("keep");
        expect((await reader.expectNext("change")).itemId).toBe("brief");
        const removed = await reader.expectNext("change");
        expect([removed.type, removed.itemId, removed.expired, removed.offset, removed.revision]).toEqual([ChangeType.DELETE, "brief", true, 3n, 1n]);
        expect(json(removed.data)).toStrictEqual({ who: "ann" });

        expect((await client().get({ streamName: s, groupId: "g", itemId: "brief" })).item).toBeUndefined();
        expect((await client().list({ streamName: s, groupId: "g" })).items.map((i) => i.itemId)).toEqual(["keep"]);
        expect(await snapshotIds(s)).toEqual(["keep"]);
        // Nothing more came: the next change is the next write's, at the next offset.
        await client().delete({ streamName: s, groupId: "g", itemId: "keep" });
        const next = await reader.expectNext("change");
        expect([next.type, next.itemId, next.expired, next.offset]).toEqual([ChangeType.DELETE, "keep", false, 4n]);
      } finally {
        reader.close();
      }
    });

    it("never returns an expired item, and a write to one meets no item, after its own expiry DELETE", async () => {
      const s = streamName("ttl-hidden");
      const reader = new SubscriptionReader(client(), { streamName: s, groupId: "g" });
      try {
        await reader.expectNext("snapshot");
        await client().set({ streamName: s, groupId: "g", itemId: "a", data: value("old"), ttlMs: 1n });
        await clockPastOneMillisecondExpiry();
        expect((await client().get({ streamName: s, groupId: "g", itemId: "a" })).item).toBeUndefined();
        expect((await client().list({ streamName: s, groupId: "g" })).items).toEqual([]);
        expect(await snapshotIds(s)).toEqual([]);
        const itemReader = new SubscriptionReader(client(), { streamName: s, groupId: "g", itemId: "a" });
        try {
          expect((await itemReader.expectNext("snapshot")).items).toEqual([]);
        } finally {
          itemReader.close();
        }
        // Created afresh (revision 1, no old value), whoever removed the expired one.
        const written = await client().set({ streamName: s, groupId: "g", itemId: "a", data: value("new"), ifRevision: 0n });
        expect([written.oldValue, written.revision, written.offset]).toEqual([undefined, 1n, 3n]);

        const changes = [await reader.expectNext("change"), await reader.expectNext("change"), await reader.expectNext("change")];
        expect(changes.map((c) => [c.type, c.expired, c.offset])).toEqual([
          [ChangeType.CREATE, false, 1n],
          [ChangeType.DELETE, true, 2n],
          [ChangeType.CREATE, false, 3n],
        ]);
        const current = (await client().get({ streamName: s, groupId: "g", itemId: "a" })).item!;
        expect([json(current.data), current.expiresAtMs]).toEqual(["new", 0n]);
      } finally {
        reader.close();
      }
    });

    it("a write without ttl_ms clears the expiry; Update takes ttl_ms too", async () => {
      const s = streamName("ttl-clear");
      const key = { streamName: s, groupId: "g", itemId: "i" };
      await client().set({ ...key, data: value({ n: 1 }), ttlMs: 3_600_000n });
      const first = (await client().get(key)).item!;
      expect(first.expiresAtMs > BigInt(Date.now())).toBe(true);
      await client().set({ ...key, data: value({ n: 2 }) });
      expect((await client().get(key)).item!.expiresAtMs).toBe(0n);

      const updated = await client().update({ ...key, ops: [op.increment(["n"], 1)], ttlMs: 3_600_000n });
      expect(json(updated.newValue)).toStrictEqual({ n: 3 });
      const withExpiry = (await client().get(key)).item!;
      expect(withExpiry.expiresAtMs > BigInt(Date.now())).toBe(true);
      // An update where no op applies writes nothing, the expiry included.
      await client().update({ ...key, ops: [op.append(["n"], 1)] });
      expect((await client().get(key)).item!.expiresAtMs).toBe(withExpiry.expiresAtMs);
      await client().update({ ...key, ops: [op.increment(["n"], 1)] });
      expect((await client().get(key)).item!.expiresAtMs).toBe(0n);
      expect((await client().list({ streamName: s, groupId: "g" })).items.map((i) => i.expiresAtMs)).toEqual([0n]);
    });

    it("takes ttl_ms per write of a Batch: each written item expires on its own, with its own expired DELETE", async () => {
      const s = streamName("ttl-batch");
      const reader = new SubscriptionReader(client(), { streamName: s, groupId: "g" });
      try {
        await reader.expectNext("snapshot");
        const response = await client().batch({
          streamName: s,
          groupId: "g",
          writes: [
            create(BatchWriteSchema, { itemId: "brief", ttlMs: 1n, write: { case: "set", value: value("b") } }),
            create(BatchWriteSchema, { itemId: "kept", write: { case: "set", value: value("k") } }),
            create(BatchWriteSchema, { itemId: "counted", ttlMs: 3_600_000n, write: { case: "update", value: { ops: [op.increment(["n"], 1)] } } }),
          ],
        });
        expect([response.firstOffset, response.lastOffset]).toEqual([1n, 3n]);
        await clockPastOneMillisecondExpiry();
        expect((await client().get({ streamName: s, groupId: "g", itemId: "brief" })).item).toBeUndefined();
        expect((await client().get({ streamName: s, groupId: "g", itemId: "kept" })).item!.expiresAtMs).toBe(0n);
        expect((await client().get({ streamName: s, groupId: "g", itemId: "counted" })).item!.expiresAtMs > BigInt(Date.now())).toBe(true);
        const changes = [await reader.expectNext("change"), await reader.expectNext("change"), await reader.expectNext("change"), await reader.expectNext("change")];
        expect(changes.map((c) => [c.type, c.itemId, c.expired, c.offset])).toEqual([
          [ChangeType.CREATE, "brief", false, 1n],
          [ChangeType.CREATE, "kept", false, 2n],
          [ChangeType.CREATE, "counted", false, 3n],
          [ChangeType.DELETE, "brief", true, 4n],
        ]);
      } finally {
        reader.close();
      }
    });

    it("refuses a Batch with an absurd ttl_ms, or one on a delete, with INVALID_ARGUMENT and changes nothing", async () => {
      const s = streamName("ttl-batch-bad");
      await client().set({ streamName: s, groupId: "g", itemId: "i", data: value(1) });
      const good = create(BatchWriteSchema, { itemId: "j", write: { case: "set", value: value(2) } });
      const absurd = create(BatchWriteSchema, { itemId: "i", ttlMs: TEN_YEARS_MS + 1n, write: { case: "set", value: value(3) } });
      await expectConnectError(client().batch({ streamName: s, groupId: "g", writes: [good, absurd] }), Code.InvalidArgument, /writes\[1\].*ttl_ms/);
      const onDelete = create(BatchWriteSchema, { itemId: "i", ttlMs: 1000n, write: { case: "delete", value: true } });
      await expectConnectError(client().batch({ streamName: s, groupId: "g", writes: [good, onDelete] }), Code.InvalidArgument, /writes\[1\].*ttl_ms/);
      const listed = (await client().list({ streamName: s, groupId: "g" })).items;
      expect(listed.map((item) => [item.itemId, json(item.data), item.revision])).toEqual([["i", 1, 1n]]);
    });

    it("refuses ttl_ms of 0 or over 10 years with INVALID_ARGUMENT and changes nothing", async () => {
      const s = streamName("ttl-absurd");
      const key = { streamName: s, groupId: "g", itemId: "i" };
      await client().set({ ...key, data: value(1) });
      for (const ttlMs of [TEN_YEARS_MS + 1n, 2n ** 64n - 1n, 0n]) {
        await expectConnectError(client().set({ ...key, data: value(2), ttlMs }), Code.InvalidArgument, /ttl_ms/);
        await expectConnectError(client().update({ ...key, ops: [op.increment([], 1)], ttlMs }), Code.InvalidArgument, /ttl_ms/);
        await expectConnectError(client().set({ ...key, itemId: "other", data: value(2), ttlMs }), Code.InvalidArgument, /ttl_ms/);
      }
      await expectConnectError(client().set({ ...key, data: value(2), ttlMs: TEN_YEARS_MS + 1n }), Code.InvalidArgument, /more than 10 years/);
      const item = (await client().get(key)).item!;
      expect([json(item.data), item.revision, item.expiresAtMs]).toEqual([1, 1n, 0n]);
      expect((await client().list({ streamName: s, groupId: "g" })).items).toHaveLength(1);
      // Exactly 10 years is accepted.
      const longest = await client().set({ ...key, data: value(3), ttlMs: TEN_YEARS_MS });
      expect(longest.offset).toBe(2n);
    });
  });
}

/**
 * A read in a write's own millisecond still sees an item written with `ttl_ms: 1`. Waiting for the clock
 * (not for the sweeper, whose interval is far longer) means the reads after it must hide the item by themselves.
 */
async function clockPastOneMillisecondExpiry(): Promise<void> {
  const answeredAt = Date.now();
  while (Date.now() <= answeredAt + 1) await new Promise((resolve) => setTimeout(resolve, 1));
}
