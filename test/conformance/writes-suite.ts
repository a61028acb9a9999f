import { create } from "@bufbuild/protobuf";
import { Code, type Client } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import type { JsonValue } from "../../src/index.js";
import { BatchWriteSchema, type BatchWrite, type StreamService, type UpdateOp } from "../../gen/iii/stream/v1/stream_pb.js";
import { expectConnectError } from "./expect-error.js";
import { json, op, value } from "./proto-values.js";
import { SubscriptionReader } from "./subscription-reader.js";

/** BatchWrite builders, one per case of the oneof. */
export const write = {
  set: (itemId: string, data: JsonValue, ifRevision?: bigint): BatchWrite =>
    create(BatchWriteSchema, { itemId, ifRevision, write: { case: "set", value: value(data) } }),
  update: (itemId: string, ops: UpdateOp[], ifRevision?: bigint): BatchWrite =>
    create(BatchWriteSchema, { itemId, ifRevision, write: { case: "update", value: { ops } } }),
  delete: (itemId: string, ifRevision?: bigint): BatchWrite => create(BatchWriteSchema, { itemId, ifRevision, write: { case: "delete", value: true } }),
};

/**
 * Batch and request_id through the public API, as part of the conformance suite (see
 * suite.ts, which calls this inside its describe with its server's client).
 */
export function describeBatchesAndRequestIds(client: () => Client<typeof StreamService>, streamName: (label: string) => string): void {
  /** Items and offset of a group, read through a Subscribe snapshot (independent of the write path). */
  async function groupState(s: string, groupId = "g") {
    const reader = new SubscriptionReader(client(), { streamName: s, groupId });
    try {
      const snapshot = await reader.expectNext("snapshot");
      return { offset: snapshot.offset, items: snapshot.items.map((item) => [item.itemId, json(item.data), item.revision]) };
    } finally {
      reader.close();
    }
  }

  function batch(s: string, writes: BatchWrite[], requestId?: string) {
    return client().batch({ streamName: s, groupId: "g", writes, requestId });
  }

  describe("Batch", () => {
    it("applies every write at consecutive offsets and answers each in order", async () => {
      const s = streamName("batch");
      await client().set({ streamName: s, groupId: "g", itemId: "x", data: value({ n: 1 }) });
      const response = await batch(s, [write.set("a", "A"), write.update("x", [op.increment(["n"], 2)]), write.delete("x"), write.set("b", [1])]);
      expect(response.results.map((r) => [json(r.oldValue), json(r.newValue), r.revision, r.offset])).toStrictEqual([
        [undefined, "A", 1n, 2n],
        [{ n: 1 }, { n: 3 }, 2n, 3n],
        [{ n: 3 }, undefined, 0n, 4n],
        [undefined, [1], 1n, 5n],
      ]);
      expect([response.firstOffset, response.lastOffset]).toStrictEqual([2n, 5n]);
      expect(await groupState(s)).toStrictEqual({ offset: 5n, items: [["a", "A", 1n], ["b", [1], 1n]] });
    });

    it("applies two writes to one item in order, each if_revision against the one before", async () => {
      const s = streamName("batch-same-item");
      const response = await batch(s, [write.set("i", 1, 0n), write.update("i", [op.increment([], 1)], 1n), write.set("i", "three", 2n)]);
      expect(response.results.map((r) => [json(r.newValue), r.revision, r.offset])).toStrictEqual([
        [1, 1n, 1n],
        [2, 2n, 2n],
        ["three", 3n, 3n],
      ]);
      expect(await groupState(s)).toStrictEqual({ offset: 3n, items: [["i", "three", 3n]] });
    });

    it("writes nothing when a precondition in the middle fails, and names the first failing write", async () => {
      const s = streamName("batch-atomic");
      await client().set({ streamName: s, groupId: "g", itemId: "a", data: value(1) });
      await client().set({ streamName: s, groupId: "g", itemId: "b", data: value(1) });
      const before = await groupState(s);
      const reader = new SubscriptionReader(client(), { streamName: s, groupId: "g" });
      try {
        await reader.expectNext("snapshot");
        await expectConnectError(
          batch(s, [write.set("a", 2, 1n), write.set("new", 1), write.set("b", 2, 5n), write.set("c", 3, 9n), write.delete("a")]),
          Code.FailedPrecondition,
          /^writes\[2\]: revision mismatch: if_revision is 5 but the item is at revision 1/,
        );
        // A later write counting on an earlier one of the same batch that did not happen.
        await expectConnectError(batch(s, [write.set("a", 2, 1n), write.set("a", 3, 1n)]), Code.FailedPrecondition, /^writes\[1\]: .*at revision 2/);
        expect(await groupState(s)).toStrictEqual(before);
        // The subscriber saw nothing of the refused batches: the next change is the first it gets.
        await client().set({ streamName: s, groupId: "g", itemId: "z", data: value(0) });
        expect((await reader.expectNext("change")).offset).toBe(3n);
      } finally {
        reader.close();
      }
    });

    it("reports update-op errors in the write's result; a write whose ops all fail takes no offset", async () => {
      const s = streamName("batch-op-errors");
      await client().set({ streamName: s, groupId: "g", itemId: "t", data: value("text") });
      const response = await batch(s, [
        write.set("a", { n: 1 }),
        write.update("a", [op.increment(["n"], 1), op.set(["s"], "x"), op.increment(["s"], 1)]),
        write.update("t", [op.increment(["n"], 1)]),
        write.delete("nothing-here"),
        write.set("b", true),
      ]);
      const [setA, updateA, updateT, deleteMissing, setB] = response.results;
      expect([setA.offset, updateA.offset, updateT.offset, deleteMissing.offset, setB.offset]).toStrictEqual([2n, 3n, 3n, 3n, 4n]);
      expect(json(updateA.newValue)).toStrictEqual({ n: 2, s: "x" });
      expect(updateA.errors.map((e) => e.opIndex)).toStrictEqual([2]);
      expect([json(updateT.oldValue), json(updateT.newValue), updateT.revision, updateT.errors.length]).toStrictEqual(["text", "text", 1n, 1]);
      expect([deleteMissing.oldValue, deleteMissing.newValue, deleteMissing.revision]).toStrictEqual([undefined, undefined, 0n]);
      expect([response.firstOffset, response.lastOffset]).toStrictEqual([2n, 4n]);
      expect(await groupState(s)).toStrictEqual({ offset: 4n, items: [["t", "text", 1n], ["a", { n: 2, s: "x" }, 2n], ["b", true, 1n]] });
    });

    it("a batch that changes nothing answers with the group offset", async () => {
      const s = streamName("batch-nothing");
      await client().set({ streamName: s, groupId: "g", itemId: "a", data: value(1) });
      const response = await batch(s, [write.delete("missing"), write.update("a", [op.increment(["x"], 1)])]);
      expect([response.firstOffset, response.lastOffset, response.results.map((r) => r.offset)]).toStrictEqual([1n, 1n, [1n, 1n]]);
    });

    it("reaches a subscriber as consecutive changes with nothing in between, while others write", async () => {
      const s = streamName("batch-contiguous");
      const reader = new SubscriptionReader(client(), { streamName: s, groupId: "g" });
      try {
        await reader.expectNext("snapshot");
        const singles = Array.from({ length: 30 }, (_, i) => client().set({ streamName: s, groupId: "g", itemId: `single-${i}`, data: value(i) }));
        const batches = Array.from({ length: 4 }, (_, b) => batch(s, Array.from({ length: 25 }, (_, i) => write.set(`batch-${b}-${i}`, i))));
        const responses = await Promise.all(batches);
        await Promise.all(singles);
        const seen: Array<{ offset: bigint; itemId: string }> = [];
        while (seen.length < 130) {
          const change = await reader.expectNext("change");
          seen.push({ offset: change.offset, itemId: change.itemId });
        }
        expect(seen.map((c) => c.offset)).toStrictEqual(Array.from({ length: 130 }, (_, i) => BigInt(i + 1)));
        for (const [b, response] of responses.entries()) {
          const at = seen.findIndex((c) => c.offset === response.firstOffset);
          expect(response.lastOffset - response.firstOffset).toBe(24n);
          expect(seen.slice(at, at + 25).map((c) => c.itemId)).toStrictEqual(Array.from({ length: 25 }, (_, i) => `batch-${b}-${i}`));
        }
      } finally {
        reader.close();
      }
    });

    it("refuses bad batches with INVALID_ARGUMENT and changes nothing", async () => {
      const s = streamName("batch-bad");
      await client().set({ streamName: s, groupId: "g", itemId: "a", data: value(1) });
      const before = await groupState(s);
      await expectConnectError(batch(s, []), Code.InvalidArgument, /writes is empty/);
      await expectConnectError(
        batch(s, Array.from({ length: 1001 }, (_, i) => write.set(`i${i}`, i))),
        Code.InvalidArgument,
        /1001 writes; the limit is 1000/,
      );
      await expectConnectError(
        batch(s, [write.set("b", 1), create(BatchWriteSchema, { itemId: "c" })]),
        Code.InvalidArgument,
        /writes\[1\] has no operation/,
      );
      await expectConnectError(
        batch(s, [write.set("b", 1), create(BatchWriteSchema, { itemId: "c", write: { case: "delete", value: false } })]),
        Code.InvalidArgument,
        /writes\[1\]\.delete must be true/,
      );
      await expectConnectError(batch(s, [write.set("b", 1), write.set("", 1)]), Code.InvalidArgument, /writes\[1\]\.item_id/);
      await expectConnectError(batch(s, [write.set("b", 1)], "r".repeat(129)), Code.InvalidArgument, /request_id is 129 bytes; the limit is 128/);
      // Multi-byte characters count by their bytes.
      await expectConnectError(batch(s, [write.set("b", 1)], "é".repeat(65)), Code.InvalidArgument, /request_id is 130 bytes/);
      await expectConnectError(batch(s, [write.set("b", 1)], ""), Code.InvalidArgument, /request_id must not be empty/);
      expect(await groupState(s)).toStrictEqual(before);
      // 1,000 writes is within the limit.
      const full = await batch(s, Array.from({ length: 1000 }, (_, i) => write.set(`i${i}`, i)));
      expect([full.firstOffset, full.lastOffset]).toStrictEqual([2n, 1001n]);
    });
  });

  describe("request_id", () => {
    it("a retried Set writes nothing and answers as the first did", async () => {
      const s = streamName("rid-set");
      const first = await client().set({ streamName: s, groupId: "g", itemId: "i", data: value({ v: 1 }), requestId: "set-1" });
      const again = await client().set({ streamName: s, groupId: "g", itemId: "i", data: value({ v: 1 }), requestId: "set-1" });
      expect(again).toStrictEqual(first);
      expect(await groupState(s)).toStrictEqual({ offset: 1n, items: [["i", { v: 1 }, 1n]] });
      // A new id writes again.
      expect((await client().set({ streamName: s, groupId: "g", itemId: "i", data: value({ v: 1 }), requestId: "set-2" })).revision).toBe(2n);
    });

    it("a retried Update with if_revision answers as the first did, though the revision moved on", async () => {
      const s = streamName("rid-update");
      await client().set({ streamName: s, groupId: "g", itemId: "i", data: value({ n: 1, s: "text" }) });
      const request = { streamName: s, groupId: "g", itemId: "i", ops: [op.increment(["n"], 5), op.increment(["s"], 1)], ifRevision: 1n, requestId: "up" };
      const first = await client().update(request);
      expect([json(first.newValue), first.revision, first.offset, first.errors.map((e) => e.opIndex)]).toStrictEqual([{ n: 6, s: "text" }, 2n, 2n, [1]]);
      expect(await client().update(request)).toStrictEqual(first);
      expect(await groupState(s)).toStrictEqual({ offset: 2n, items: [["i", { n: 6, s: "text" }, 2n]] });
    });

    it("a retried Delete and a retried Batch answer as the first did", async () => {
      const s = streamName("rid-delete-batch");
      await client().set({ streamName: s, groupId: "g", itemId: "i", data: value("x") });
      const deleted = await client().delete({ streamName: s, groupId: "g", itemId: "i", requestId: "del" });
      expect(await client().delete({ streamName: s, groupId: "g", itemId: "i", requestId: "del" })).toStrictEqual(deleted);
      const writes = [write.set("a", 1), write.update("a", [op.increment([], 1)]), write.set("b", 2)];
      const first = await batch(s, writes, "batch-1");
      expect([first.firstOffset, first.lastOffset]).toStrictEqual([3n, 5n]);
      expect(await batch(s, writes, "batch-1")).toStrictEqual(first);
      expect(await groupState(s)).toStrictEqual({ offset: 5n, items: [["a", 2, 2n], ["b", 2, 1n]] });
    });

    it("a retried Send reaches subscribers once", async () => {
      const s = streamName("rid-send");
      const reader = new SubscriptionReader(client(), { streamName: s, groupId: "g" });
      try {
        await reader.expectNext("snapshot");
        const send = { streamName: s, groupId: "g", type: "ping", data: value(1), requestId: "ping-1" };
        await client().send(send);
        await client().send(send);
        await client().send({ ...send, type: "after", requestId: "ping-2" });
        expect((await reader.expectNext("event")).type).toBe("ping");
        expect((await reader.expectNext("event")).type).toBe("after");
      } finally {
        reader.close();
      }
    });

    it("the same id with another body is FAILED_PRECONDITION and writes nothing; ids are per group", async () => {
      const s = streamName("rid-conflict");
      await client().set({ streamName: s, groupId: "g", itemId: "i", data: value(1), requestId: "same" });
      await expectConnectError(
        client().set({ streamName: s, groupId: "g", itemId: "i", data: value(2), requestId: "same" }),
        Code.FailedPrecondition,
        /request_id "same" was already used for another request/,
      );
      await expectConnectError(client().delete({ streamName: s, groupId: "g", itemId: "i", requestId: "same" }), Code.FailedPrecondition);
      await expectConnectError(batch(s, [write.set("i", 1)], "same"), Code.FailedPrecondition);
      await expectConnectError(client().send({ streamName: s, groupId: "g", type: "t", requestId: "same" }), Code.FailedPrecondition);
      expect(await groupState(s)).toStrictEqual({ offset: 1n, items: [["i", 1, 1n]] });
      // Another group, or another stream, has ids of its own.
      expect((await client().set({ streamName: s, groupId: "h", itemId: "i", data: value(2), requestId: "same" })).offset).toBe(1n);
      expect((await client().set({ streamName: streamName("rid-other"), groupId: "g", itemId: "i", data: value(2), requestId: "same" })).offset).toBe(1n);
    });

    it("a failed request is not remembered: its retry runs again", async () => {
      const s = streamName("rid-failed");
      const request = { streamName: s, groupId: "g", itemId: "i", data: value(1), ifRevision: 1n, requestId: "later" };
      await expectConnectError(client().set(request), Code.FailedPrecondition, /revision mismatch/);
      await client().set({ streamName: s, groupId: "g", itemId: "i", data: value(0) });
      expect((await client().set(request)).revision).toBe(2n);
    });

    it("concurrent requests with one id write once and all get the same answer", async () => {
      const s = streamName("rid-race");
      const request = { streamName: s, groupId: "g", itemId: "i", ops: [op.increment(["n"], 1)], requestId: "once" };
      const answers = await Promise.all(Array.from({ length: 10 }, () => client().update(request)));
      for (const answer of answers) expect(answer).toStrictEqual(answers[0]);
      expect(await groupState(s)).toStrictEqual({ offset: 1n, items: [["i", { n: 1 }, 1n]] });
    });
  });
}
