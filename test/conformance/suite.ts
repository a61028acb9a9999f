import type { JsonObject } from "@bufbuild/protobuf";
import { Code, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ItemStore, JsonValue } from "../../src/index.js";
import { ChangeType, type StreamService, type UpdateOp } from "../../gen/iii/stream/v1/stream_pb.js";
import { startServer, type RunningServer } from "../support/server.js";
import { expectConnectError } from "./expect-error.js";
import { expiringItemsTests } from "./expiring-items.js";
import { json, op, value } from "./proto-values.js";
import { SubscriptionReader } from "./subscription-reader.js";
import { uniqueNames } from "./unique-names.js";
import { describeBatchesAndRequestIds } from "./writes-suite.js";

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/**
 * The behaviour every storage adapter must show through the public API. A test file
 * plugs an adapter in with one line:
 *
 *     defineConformanceSuite("memory", () => new MemoryItemStore());
 *
 * The suite starts a real server around the adapter (the server closes it on stop)
 * and talks to it with a real Connect client (binary over HTTP/2). `cleanup` runs
 * after the server has stopped, e.g. to remove a data directory.
 */
export function defineConformanceSuite(
  name: string,
  makeAdapter: () => Promise<ItemStore> | ItemStore,
  cleanup?: () => Promise<void>,
): void {
  describe(`conformance: ${name} adapter`, () => {
    let running: RunningServer | undefined;
    let client: Client<typeof StreamService>;
    const streamName = uniqueNames(`conf-${name}`);

    beforeAll(async () => {
      running = await startServer({ backend: { items: await makeAdapter() } });
      client = running.client("connect-binary-h2");
    });

    afterAll(async () => {
      try {
        await running?.stop();
      } finally {
        await cleanup?.();
      }
    });

    /** Items and offset of a group, read through a Subscribe snapshot (independent of the write path). */
    async function groupState(stream: string, groupId: string) {
      const reader = new SubscriptionReader(client, { streamName: stream, groupId });
      try {
        const snapshot = await reader.expectNext("snapshot");
        return {
          offset: snapshot.offset,
          items: snapshot.items.map((item) => ({ id: item.itemId, data: json(item.data), revision: item.revision })),
        };
      } finally {
        reader.close();
      }
    }

    async function listed(stream: string, groupId: string): Promise<Array<[string, JsonValue | undefined]>> {
      const { items } = await client.list({ streamName: stream, groupId });
      return items.map((item) => [item.itemId, json(item.data)]);
    }

    function setItem(stream: string, groupId: string, itemId: string, data: JsonValue, ifRevision?: bigint) {
      return client.set({ streamName: stream, groupId, itemId, data: value(data), ifRevision });
    }

    function update(stream: string, groupId: string, itemId: string, ops: UpdateOp[], ifRevision?: bigint) {
      return client.update({ streamName: stream, groupId, itemId, ops, ifRevision });
    }

    describe("Set", () => {
      it("creates, then overwrites: old_value absent then present, revision 1, 2, 3", async () => {
        const s = streamName("set");
        const first = await setItem(s, "g", "i", { n: 1 });
        expect(first.oldValue).toBeUndefined();
        expect(json(first.newValue)).toStrictEqual({ n: 1 });
        expect([first.revision, first.offset]).toEqual([1n, 1n]);

        const second = await setItem(s, "g", "i", "two");
        expect(json(second.oldValue)).toStrictEqual({ n: 1 });
        expect(json(second.newValue)).toBe("two");
        expect([second.revision, second.offset]).toEqual([2n, 2n]);

        const third = await setItem(s, "g", "i", null);
        expect(json(third.oldValue)).toBe("two");
        expect(third.newValue).toBeDefined();
        expect(json(third.newValue)).toBeNull();
        expect([third.revision, third.offset]).toEqual([3n, 3n]);

        // A stored null is a present old value, not an absent one.
        const fourth = await setItem(s, "g", "i", 4);
        expect(fourth.oldValue).toBeDefined();
        expect(json(fourth.oldValue)).toBeNull();
        expect(fourth.revision).toBe(4n);
      });

      it("advances the group offset by exactly one per change, across the group's items", async () => {
        const s = streamName("offsets");
        const offsets = [
          (await setItem(s, "g", "a", 1)).offset,
          (await setItem(s, "g", "b", 1)).offset,
          (await setItem(s, "g", "a", 2)).offset,
          (await update(s, "g", "c", [op.increment(["n"], 1)])).offset,
          (await client.delete({ streamName: s, groupId: "g", itemId: "b" })).offset,
          (await setItem(s, "g", "b", 3)).offset,
        ];
        expect(offsets).toEqual([1n, 2n, 3n, 4n, 5n, 6n]);
        expect((await groupState(s, "g")).offset).toBe(6n);
      });

      it("keeps offsets independent per group and per stream", async () => {
        const s = streamName("independent");
        const other = streamName("independent-other");
        expect((await setItem(s, "g1", "i", 1)).offset).toBe(1n);
        expect((await setItem(s, "g1", "j", 1)).offset).toBe(2n);
        expect((await setItem(s, "g2", "i", 1)).offset).toBe(1n);
        expect((await setItem(other, "g1", "i", 1)).offset).toBe(1n);
        expect((await setItem(s, "g1", "i", 2)).offset).toBe(3n);
        expect((await setItem(s, "g2", "i", 2)).offset).toBe(2n);
      });
    });

    describe("Get", () => {
      it("returns the item with its revision and the time of its last write", async () => {
        const s = streamName("get");
        const before = Date.now();
        await setItem(s, "g", "i", { a: [1, 2] });
        const after = Date.now();
        const { item } = await client.get({ streamName: s, groupId: "g", itemId: "i" });
        expect(item?.itemId).toBe("i");
        expect(json(item?.data)).toStrictEqual({ a: [1, 2] });
        expect(item?.revision).toBe(1n);
        const written = Number(item?.updatedAtMs);
        expect(written).toBeGreaterThanOrEqual(before);
        expect(written).toBeLessThanOrEqual(after);

        await setItem(s, "g", "i", "again");
        const again = (await client.get({ streamName: s, groupId: "g", itemId: "i" })).item;
        expect(again?.revision).toBe(2n);
        expect(Number(again?.updatedAtMs)).toBeGreaterThanOrEqual(written);
      });

      it("returns no item for a missing item, group or stream", async () => {
        const s = streamName("get-missing");
        await setItem(s, "g", "i", 1);
        for (const [stream, groupId, itemId] of [
          [s, "g", "missing"],
          [s, "missing", "i"],
          [streamName("never"), "g", "i"],
        ]) {
          expect((await client.get({ streamName: stream, groupId, itemId })).item).toBeUndefined();
        }
      });
    });

    describe("Delete", () => {
      it("returns the old value and advances the offset; a missing item changes nothing", async () => {
        const s = streamName("delete");
        await setItem(s, "g", "a", { v: "a" });
        await setItem(s, "g", "b", { v: "b" });
        await setItem(s, "g", "c", { v: "c" });

        const deleted = await client.delete({ streamName: s, groupId: "g", itemId: "a" });
        expect(json(deleted.oldValue)).toStrictEqual({ v: "a" });
        expect(deleted.offset).toBe(4n);
        expect((await client.get({ streamName: s, groupId: "g", itemId: "a" })).item).toBeUndefined();
        expect((await listed(s, "g")).map(([id]) => id)).toEqual(["b", "c"]);

        const again = await client.delete({ streamName: s, groupId: "g", itemId: "a" });
        expect(again.oldValue).toBeUndefined();
        expect(again.offset).toBe(4n);
        expect((await groupState(s, "g")).offset).toBe(4n);

        const never = await client.delete({ streamName: streamName("never"), groupId: "g", itemId: "a" });
        expect(never.oldValue).toBeUndefined();
        expect(never.offset).toBe(0n);
      });

      it("a deleted item comes back at revision 1, at the end of List, and the offset keeps growing", async () => {
        const s = streamName("recreate");
        await setItem(s, "g", "a", 1);
        await setItem(s, "g", "a", 2);
        await setItem(s, "g", "b", 1);
        await client.delete({ streamName: s, groupId: "g", itemId: "a" });
        const recreated = await setItem(s, "g", "a", 3);
        expect(recreated.oldValue).toBeUndefined();
        expect([recreated.revision, recreated.offset]).toEqual([1n, 5n]);
        expect(await listed(s, "g")).toEqual([
          ["b", 1],
          ["a", 3],
        ]);
      });

      it("deletes a stored null (present, not absent)", async () => {
        const s = streamName("delete-null");
        await setItem(s, "g", "n", null);
        const deleted = await client.delete({ streamName: s, groupId: "g", itemId: "n" });
        expect(deleted.oldValue).toBeDefined();
        expect(json(deleted.oldValue)).toBeNull();
        expect(deleted.offset).toBe(2n);
      });
    });

    describe("if_revision", () => {
      it("on Set: writes on a match, FAILED_PRECONDITION and nothing changed otherwise; 0 = must not exist", async () => {
        const s = streamName("cas-set");
        expect((await setItem(s, "g", "i", "v1", 0n)).revision).toBe(1n);
        await expectConnectError(setItem(s, "g", "i", "x", 0n), Code.FailedPrecondition, /revision/);
        expect((await setItem(s, "g", "i", "v2", 1n)).revision).toBe(2n);
        await expectConnectError(setItem(s, "g", "i", "x", 1n), Code.FailedPrecondition, /revision/);
        await expectConnectError(setItem(s, "g", "i", "x", 3n), Code.FailedPrecondition, /revision/);
        await expectConnectError(setItem(s, "g", "missing", "x", 1n), Code.FailedPrecondition, /not exist/);

        const state = await groupState(s, "g");
        expect(state.items).toEqual([{ id: "i", data: "v2", revision: 2n }]);
        expect(state.offset).toBe(2n);
      });

      it("on Update: applies on a match, FAILED_PRECONDITION and nothing changed otherwise", async () => {
        const s = streamName("cas-update");
        const created = await update(s, "g", "i", [op.increment(["n"], 1)], 0n);
        expect([created.revision, json(created.newValue)]).toEqual([1n, { n: 1 }]);
        await expectConnectError(update(s, "g", "i", [op.increment(["n"], 1)], 0n), Code.FailedPrecondition);
        await expectConnectError(update(s, "g", "i", [op.increment(["n"], 1)], 2n), Code.FailedPrecondition);
        const applied = await update(s, "g", "i", [op.increment(["n"], 1)], 1n);
        expect([applied.revision, json(applied.newValue)]).toEqual([2n, { n: 2 }]);
        await expectConnectError(update(s, "g", "missing", [op.set([], 1)], 1n), Code.FailedPrecondition);

        const state = await groupState(s, "g");
        expect(state.items).toEqual([{ id: "i", data: { n: 2 }, revision: 2n }]);
        expect(state.offset).toBe(2n);
      });

      it("on Delete: deletes on a match, FAILED_PRECONDITION and nothing changed otherwise", async () => {
        const s = streamName("cas-delete");
        const del = (itemId: string, ifRevision: bigint) => client.delete({ streamName: s, groupId: "g", itemId, ifRevision });
        await setItem(s, "g", "i", "v");
        await expectConnectError(del("i", 2n), Code.FailedPrecondition, /revision/);
        await expectConnectError(del("i", 0n), Code.FailedPrecondition, /revision/);
        expect((await groupState(s, "g")).items).toEqual([{ id: "i", data: "v", revision: 1n }]);

        const deleted = await del("i", 1n);
        expect([json(deleted.oldValue), deleted.offset]).toEqual(["v", 2n]);
        const absent = await del("i", 0n);
        expect([absent.oldValue, absent.offset]).toEqual([undefined, 2n]);
        await expectConnectError(del("i", 1n), Code.FailedPrecondition, /not exist/);
        expect(await groupState(s, "g")).toEqual({ items: [], offset: 2n });
      });
    });

    describe("Update operations", () => {
      it("set: nested paths create their parents, a dot is part of the key, an empty path is the root", async () => {
        const s = streamName("op-set");
        const created = await update(s, "g", "i", [op.set(["a", "b", "c"], 1), op.set(["x.y"], true), op.set(["a", "k"], [])]);
        expect(created.oldValue).toBeUndefined();
        expect(created.errors).toEqual([]);
        expect(json(created.newValue)).toStrictEqual({ a: { b: { c: 1 }, k: [] }, "x.y": true });
        expect([created.revision, created.offset]).toEqual([1n, 1n]);

        const replaced = await update(s, "g", "i", [op.set([], [1, { z: null }])]);
        expect(json(replaced.oldValue)).toStrictEqual({ a: { b: { c: 1 }, k: [] }, "x.y": true });
        expect(json(replaced.newValue)).toStrictEqual([1, { z: null }]);
        expect([replaced.revision, replaced.offset]).toEqual([2n, 2n]);
      });

      it("merge: shallow at the root or at a nested path, siblings kept", async () => {
        const s = streamName("op-merge");
        await setItem(s, "g", "i", { a: 1, b: { x: 1 } });
        const result = await update(s, "g", "i", [
          op.merge([], { b: { y: 2 }, c: 3 }),
          op.merge(["p", "q"], { z: 1 }),
          op.merge(["b"], { w: 0 }),
          op.merge(["e.f"], {}),
        ]);
        expect(result.errors).toEqual([]);
        expect(json(result.newValue)).toStrictEqual({ a: 1, b: { y: 2, w: 0 }, c: 3, p: { q: { z: 1 } }, "e.f": {} });
        expect(result.revision).toBe(2n);
      });

      it("increment and decrement: missing fields start at 0, nested paths, floats, exact at 2^53-1", async () => {
        const s = streamName("op-add");
        await setItem(s, "g", "i", { n: 10, f: 0.5, big: MAX_SAFE - 2, small: -(MAX_SAFE - 2) });
        const result = await update(s, "g", "i", [
          op.increment(["n"], 5),
          op.decrement(["n"], 20),
          op.increment(["deep", "count"], 3),
          op.decrement(["fresh"], 4),
          op.increment(["f"], 1),
          op.increment(["big"], 2),
          op.decrement(["small"], 2),
          op.increment(["n"], -1),
        ]);
        expect(result.errors).toEqual([]);
        expect(json(result.newValue)).toStrictEqual({
          n: -6,
          f: 1.5,
          big: MAX_SAFE,
          small: -MAX_SAFE,
          deep: { count: 3 },
          fresh: -4,
        });
      });

      it("append: arrays, strings, missing fields and nested paths", async () => {
        const s = streamName("op-append");
        await setItem(s, "g", "i", { list: [1], s: "ab", nil: null });
        const result = await update(s, "g", "i", [
          op.append(["list"], { x: 1 }),
          op.append(["list"], []),
          op.append(["s"], "cd"),
          op.append(["newString"], "str"),
          op.append(["newList"], 5),
          op.append(["nil"], { o: 1 }),
          op.append(["nested", "list"], "a"),
          op.append(["nested", "list"], "b"),
        ]);
        expect(result.errors).toEqual([]);
        expect(json(result.newValue)).toStrictEqual({
          list: [1, { x: 1 }, []],
          s: "abcd",
          nil: [{ o: 1 }],
          newString: "str",
          newList: [5],
          nested: { list: ["a", "b"] },
        });
      });

      it("remove: nested keys, missing keys silently, the root to null (the item stays)", async () => {
        const s = streamName("op-remove");
        await setItem(s, "g", "i", { a: { b: 1, c: 2 }, d: 3, "e.f": 4 });
        const nested = await update(s, "g", "i", [op.remove(["a", "b"]), op.remove(["d"]), op.remove(["e.f"]), op.remove(["zz", "y"])]);
        expect(nested.errors).toEqual([]);
        expect(json(nested.newValue)).toStrictEqual({ a: { c: 2 } });

        const root = await update(s, "g", "i", [op.remove([])]);
        expect(root.newValue).toBeDefined();
        expect(json(root.newValue)).toBeNull();
        expect(root.revision).toBe(3n);
        expect((await groupState(s, "g")).items).toEqual([{ id: "i", data: null, revision: 3n }]);
      });

      it("reports every per-op error code with its op_index and writes nothing when no op applies", async () => {
        const s = streamName("op-errors");
        const initial = { s: "text", max: MAX_SAFE, min: -MAX_SAFE, num: 5 };
        await setItem(s, "g", "i", initial);
        let deep: JsonObject = { leaf: 1 };
        for (let level = 1; level < 17; level++) deep = { d: deep };
        const manyKeys = Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [`k${i}`, i]));
        const cases: Array<[UpdateOp, string]> = [
          [op.increment(["s"], 1), "increment.not_number"],
          [op.decrement(["s"], 1), "decrement.not_number"],
          [op.increment(["max"], 1), "increment.out_of_range"],
          [op.decrement(["min"], 1), "decrement.out_of_range"],
          [op.increment(["num"], 2n ** 53n), "increment.out_of_range"],
          [op.decrement(["num"], -(2n ** 63n)), "decrement.out_of_range"],
          [op.append(["num"], "x"), "append.type_mismatch"],
          [op.append(["s"], 1), "append.type_mismatch"],
          [op.merge([], undefined), "merge.value.not_an_object"],
          [op.merge([], manyKeys), "merge.value.too_many_keys"],
          [op.merge([], JSON.parse('{"__proto__": {"polluted": true}}') as JsonObject), "merge.value.proto_polluted"],
          [op.merge([], deep), "merge.value.too_deep"],
        ];
        const result = await update(s, "g", "i", cases.map(([o]) => o));
        expect(result.errors.map((e) => [e.opIndex, e.code])).toEqual(cases.map(([, code], index) => [index, code]));
        for (const error of result.errors) expect(error.message.length).toBeGreaterThan(0);
        expect(json(result.oldValue)).toStrictEqual(initial);
        expect(json(result.newValue)).toStrictEqual(initial);
        expect([result.revision, result.offset]).toEqual([1n, 1n]);
        expect((await groupState(s, "g")).offset).toBe(1n);
      });

      it("reports target_not_object for every op that needs an object root", async () => {
        const s = streamName("op-not-object");
        await setItem(s, "g", "i", 7);
        const cases: Array<[UpdateOp, string]> = [
          [op.set(["a"], 1), "set.target_not_object"],
          [op.increment(["a"], 1), "increment.target_not_object"],
          [op.decrement(["a"], 1), "decrement.target_not_object"],
          [op.append(["a"], 1), "append.target_not_object"],
          [op.remove(["a"]), "remove.target_not_object"],
        ];
        const result = await update(s, "g", "i", cases.map(([o]) => o));
        expect(result.errors.map((e) => [e.opIndex, e.code])).toEqual(cases.map(([, code], index) => [index, code]));
        expect([json(result.newValue), result.revision, result.offset]).toEqual([7, 1n, 1n]);
      });

      it("all-failing ops (every path error of every op) on a missing item create nothing and emit nothing", async () => {
        const s = streamName("op-path-errors");
        await setItem(s, "g", "other", 1);
        const badPaths: Array<[string[], string]> = [
          [Array.from({ length: 33 }, (_, i) => `p${i}`), "too_deep"],
          [["a", ""], "empty_segment"],
          [["x".repeat(257)], "segment_too_long"],
          [["é".repeat(129)], "segment_too_long"],
          [["a", "__proto__"], "proto_polluted"],
          [["constructor"], "proto_polluted"],
          [["a", "prototype", "b"], "proto_polluted"],
        ];
        const builders: Array<[string, (path: string[]) => UpdateOp]> = [
          ["set", (path) => op.set(path, 1)],
          ["merge", (path) => op.merge(path, { a: 1 })],
          ["increment", (path) => op.increment(path, 1)],
          ["decrement", (path) => op.decrement(path, 1)],
          ["append", (path) => op.append(path, 1)],
          ["remove", (path) => op.remove(path)],
        ];
        const cases = builders.flatMap(([type, build]) =>
          badPaths.map(([path, problem]) => [build(path), `${type}.path.${problem}`] as const),
        );

        const reader = new SubscriptionReader(client, { streamName: s, groupId: "g" });
        try {
          expect((await reader.expectNext("snapshot")).offset).toBe(1n);
          const result = await update(s, "g", "i", cases.map(([o]) => o));
          expect(result.errors.map((e) => [e.opIndex, e.code])).toEqual(cases.map(([, code], index) => [index, code]));
          expect([result.oldValue, result.newValue, result.revision, result.offset]).toEqual([undefined, undefined, 0n, 1n]);
          expect((await client.get({ streamName: s, groupId: "g", itemId: "i" })).item).toBeUndefined();

          // Nothing was emitted: the next message is the change of this later write.
          await setItem(s, "g", "after", 2);
          const change = await reader.expectNext("change");
          expect([change.itemId, change.offset]).toEqual(["after", 2n]);
        } finally {
          reader.close();
        }
      });

      it("an Update without ops creates nothing on a missing item and writes nothing on an existing one", async () => {
        const s = streamName("op-none");
        const missing = await update(s, "g", "i", []);
        expect([missing.oldValue, missing.newValue, missing.errors, missing.revision, missing.offset]).toEqual([
          undefined,
          undefined,
          [],
          0n,
          0n,
        ]);
        expect((await client.listGroups({ streamName: s })).groups).toEqual([]);

        await setItem(s, "g", "i", { a: 1 });
        const reader = new SubscriptionReader(client, { streamName: s, groupId: "g" });
        try {
          expect((await reader.expectNext("snapshot")).offset).toBe(1n);
          const existing = await update(s, "g", "i", []);
          expect([json(existing.oldValue), json(existing.newValue), existing.revision, existing.offset]).toEqual([
            { a: 1 },
            { a: 1 },
            1n,
            1n,
          ]);
          expect((await update(s, "g", "missing", [])).offset).toBe(1n);

          // Nothing was emitted: the next message is the change of this later write.
          await setItem(s, "g", "after", 2);
          expect(await reader.expectNext("change")).toMatchObject({ itemId: "after", offset: 2n });
        } finally {
          reader.close();
        }
      });

      it("is best effort: failed ops are skipped and reported, the others apply in one change", async () => {
        const s = streamName("op-partial");
        const result = await update(s, "g", "i", [
          op.increment(["a"], 2),
          op.increment(["a", "__proto__"], 1),
          op.append(["a"], 1),
          op.set(["b"], []),
          op.increment(["b"], 1),
          op.set(["c"], {}),
        ]);
        expect(result.errors.map((e) => [e.opIndex, e.code])).toEqual([
          [1, "increment.path.proto_polluted"],
          [2, "append.type_mismatch"],
          [4, "increment.not_number"],
        ]);
        expect(json(result.newValue)).toStrictEqual({ a: 2, b: [], c: {} });
        expect([result.revision, result.offset]).toEqual([1n, 1n]);
        expect((await groupState(s, "g")).offset).toBe(1n);
      });
    });

    describe("values", () => {
      const samples: Array<[string, JsonValue]> = [
        ["empty array", []],
        ["empty object", {}],
        ["nested empties", { a: [], b: {}, c: [[], {}], d: { e: { f: [] } } }],
        ["nested nulls", { a: null, b: [null, { c: null }], d: [[null]] }],
        ["top-level null", null],
        ["booleans", [true, false]],
        ["empty string", ""],
        ["unicode", { "héllo wörld": "日本語 🌍 👩‍👩‍👧 \u0000 \n\t\"\\ \u2028", "🔑": ["ÿ", "\uffff", "𝄞"] }],
        ["largest exact integers", [MAX_SAFE, -MAX_SAFE, 0, -1]],
        ["floats", [0.1, -2.5, 1e-300, 5e-324, 1.7976931348623157e308, 123456.789e10]],
        ["mixed", { list: [1, "two", { three: [3] }], n: 1.5, t: true }],
      ];

      it.each(samples)("%s round-trips exactly through Set, Get, List, Subscribe and Update", async (_label, sample) => {
        const s = streamName("values");
        const set = await setItem(s, "g", "i", sample);
        expect(json(set.newValue)).toStrictEqual(sample);
        expect(json((await client.get({ streamName: s, groupId: "g", itemId: "i" })).item?.data)).toStrictEqual(sample);
        expect(await listed(s, "g")).toStrictEqual([["i", sample]]);
        expect((await groupState(s, "g")).items[0].data).toStrictEqual(sample);

        const updated = await update(s, "g", "u", [op.set([], sample)]);
        expect(json(updated.newValue)).toStrictEqual(sample);
        expect(json((await client.get({ streamName: s, groupId: "g", itemId: "u" })).item?.data)).toStrictEqual(sample);
      });
    });

    describe("List, ListGroups, ListAll", () => {
      it("List returns items in insertion order; an overwrite keeps its place", async () => {
        const s = streamName("list");
        for (const id of ["c", "a", "b"]) await setItem(s, "g", id, id);
        await setItem(s, "g", "a", "A");
        const { items } = await client.list({ streamName: s, groupId: "g" });
        expect(items.map((item) => [item.itemId, json(item.data), item.revision])).toEqual([
          ["c", "c", 1n],
          ["a", "A", 2n],
          ["b", "b", 1n],
        ]);
        expect((await client.list({ streamName: s, groupId: "missing" })).items).toEqual([]);
      });

      it("ListGroups is sorted by bytes; an emptied group vanishes but its offset keeps counting", async () => {
        const s = streamName("groups");
        for (const groupId of ["b", "é", "a", "B", "9", "10"]) await setItem(s, groupId, "i", 1);
        expect((await client.listGroups({ streamName: s })).groups).toEqual(["10", "9", "B", "a", "b", "é"]);

        await client.delete({ streamName: s, groupId: "a", itemId: "i" });
        expect((await client.listGroups({ streamName: s })).groups).toEqual(["10", "9", "B", "b", "é"]);
        expect(await groupState(s, "a")).toEqual({ items: [], offset: 2n });
        expect((await setItem(s, "a", "j", 1)).offset).toBe(3n);
        expect((await client.listGroups({ streamName: s })).groups).toContain("a");
        expect((await client.listGroups({ streamName: streamName("none") })).groups).toEqual([]);
      });

      it("ListAll lists every stream with its groups, sorted, with the count; emptied streams vanish", async () => {
        const prefix = streamName("all");
        await setItem(`${prefix}-b`, "y", "i", 1);
        await setItem(`${prefix}-b`, "x", "i", 1);
        await setItem(`${prefix}-a`, "z", "i", 1);
        await setItem(`${prefix}-c`, "w", "i", 1);
        await client.delete({ streamName: `${prefix}-c`, groupId: "w", itemId: "i" });

        const streams = [];
        let pageToken = "";
        do {
          const page = await client.listAll({ pageToken });
          expect(page.count).toBe(page.streams.length);
          streams.push(...page.streams);
          pageToken = page.nextPageToken;
        } while (pageToken !== "");
        const names = streams.map((stream) => stream.streamName);
        expect(names).toEqual([...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
        expect(new Set(names).size).toBe(names.length);
        for (const stream of streams) expect(stream.groups.length).toBeGreaterThan(0);
        const ours = streams.filter((stream) => stream.streamName.startsWith(prefix));
        expect(ours.map((stream) => [stream.streamName, stream.groups])).toEqual([
          [`${prefix}-a`, ["z"]],
          [`${prefix}-b`, ["x", "y"]],
        ]);
      });

      it("List pages in insertion order; next_page_token is empty on the last page", async () => {
        const s = streamName("pages");
        const ids = Array.from({ length: 25 }, (_, i) => `item-${(i * 7) % 25}`);
        for (const id of ids) await setItem(s, "g", id, id);
        const pages: string[][] = [];
        let pageToken = "";
        do {
          const page = await client.list({ streamName: s, groupId: "g", pageSize: 10, pageToken });
          pages.push(page.items.map((item) => item.itemId));
          pageToken = page.nextPageToken;
        } while (pageToken !== "");
        expect(pages.map((page) => page.length)).toEqual([10, 10, 5]);
        expect(pages.flat()).toEqual(ids);
        // The default page (1,000) holds all 25, in one page.
        const whole = await client.list({ streamName: s, groupId: "g" });
        expect([whole.items.length, whole.nextPageToken]).toEqual([25, ""]);
      });

      it("List paging while others write: each item that exists throughout exactly once, new ones at most once, deleted ones never after the delete", async () => {
        const s = streamName("paging-writers");
        const initial = Array.from({ length: 120 }, (_, i) => `old-${i}`);
        for (let i = 0; i < initial.length; i += 20) await Promise.all(initial.slice(i, i + 20).map((id) => setItem(s, "g", id, 0)));
        const deleted = new Set<string>();
        const created: string[] = [];
        let paging = true;
        const writer = (async () => {
          for (let n = 0; paging; n++) {
            const target = initial[(n * 37) % initial.length];
            if (n % 5 === 0 && !deleted.has(target)) {
              // Recorded before the call: a page may only omit it, never return it, once its delete is acknowledged.
              await client.delete({ streamName: s, groupId: "g", itemId: target });
              deleted.add(target);
            } else if (n % 3 === 0) {
              const id = `new-${n}`;
              await setItem(s, "g", id, n);
              created.push(id);
            } else if (!deleted.has(target)) {
              await setItem(s, "g", target, n);
            }
          }
        })();
        const seen: string[] = [];
        let pageToken = "";
        do {
          const deletedBefore = new Set(deleted);
          const page = await client.list({ streamName: s, groupId: "g", pageSize: 7, pageToken });
          const ids = page.items.map((item) => item.itemId);
          expect(ids.filter((id) => deletedBefore.has(id))).toEqual([]);
          seen.push(...ids);
          pageToken = page.nextPageToken;
          await new Promise((resolve) => setTimeout(resolve, 2));
        } while (pageToken !== "");
        paging = false;
        await writer;
        expect(new Set(seen).size).toBe(seen.length);
        for (const id of initial) if (!deleted.has(id)) expect(seen, id).toContain(id);
        expect(deleted.size).toBeGreaterThan(0);
        expect(created.length).toBeGreaterThan(0);
      });

      it("ListGroups and ListAll page in sorted order; ListAll bounds each stream's groups and counts them", async () => {
        const s = streamName("group-pages");
        const groups = ["é", "a", "B", "10", "9", "zz", "ä", "b", "A", "c", "d"];
        for (const groupId of groups) await setItem(s, groupId, "i", 1);
        const sorted = [...groups].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        const pages: string[][] = [];
        let pageToken = "";
        do {
          const page = await client.listGroups({ streamName: s, pageSize: 4, pageToken });
          pages.push(page.groups);
          pageToken = page.nextPageToken;
        } while (pageToken !== "");
        expect(pages.map((page) => page.length)).toEqual([4, 4, 3]);
        expect(pages.flat()).toEqual(sorted);

        const prefix = streamName("all-pages");
        for (const suffix of ["c", "a", "b"]) for (const groupId of ["g1", "g2", "g3"]) await setItem(`${prefix}-${suffix}`, groupId, "i", 1);
        const streams = [];
        pageToken = "";
        do {
          const page = await client.listAll({ pageSize: 2, groupsPerStream: 2, pageToken });
          expect(page.streams.length).toBeLessThanOrEqual(2);
          streams.push(...page.streams);
          pageToken = page.nextPageToken;
        } while (pageToken !== "");
        const ours = streams.filter((stream) => stream.streamName.startsWith(prefix));
        expect(ours.map((stream) => [stream.streamName, stream.groups, stream.groupCount])).toEqual([
          [`${prefix}-a`, ["g1", "g2"], 3],
          [`${prefix}-b`, ["g1", "g2"], 3],
          [`${prefix}-c`, ["g1", "g2"], 3],
        ]);
      });

      it("refuses a negative page size and a malformed, edited or foreign page token, changing nothing", async () => {
        const s = streamName("bad-pages");
        for (const id of ["a", "b", "c"]) await setItem(s, "g", id, id);
        await setItem(s, "h", "a", 1);
        const { nextPageToken } = await client.list({ streamName: s, groupId: "g", pageSize: 1 });
        expect(nextPageToken).not.toBe("");
        const before = await groupState(s, "g");
        await expectConnectError(client.list({ streamName: s, groupId: "g", pageSize: -1 }), Code.InvalidArgument, /page_size/);
        await expectConnectError(client.listGroups({ streamName: s, pageSize: -5 }), Code.InvalidArgument, /page_size/);
        await expectConnectError(client.listAll({ groupsPerStream: -1 }), Code.InvalidArgument, /groups_per_stream/);
        await expectConnectError(client.list({ streamName: s, groupId: "g", pageToken: "garbage" }), Code.InvalidArgument, /page_token/);
        const edited = `${nextPageToken.slice(0, 3)}${nextPageToken[3] === "A" ? "B" : "A"}${nextPageToken.slice(4)}`;
        await expectConnectError(client.list({ streamName: s, groupId: "g", pageToken: edited }), Code.InvalidArgument, /page_token/);
        await expectConnectError(client.list({ streamName: s, groupId: "h", pageToken: nextPageToken }), Code.InvalidArgument, /another list/);
        await expectConnectError(client.listGroups({ streamName: s, pageToken: nextPageToken }), Code.InvalidArgument, /another list/);
        expect(await groupState(s, "g")).toEqual(before);
        const rest = await client.list({ streamName: s, groupId: "g", pageToken: nextPageToken });
        expect(rest.items.map((item) => item.itemId)).toEqual(["b", "c"]);
      });

      it("names are opaque: separators inside names never collide", async () => {
        for (const separator of [":", "::", "/", "\u0000", "|", ".", "\\", " ", "*"]) {
          const base = streamName("names");
          const triples: Array<[string, string, string]> = [
            [`${base}a${separator}b`, "c", "d"],
            [`${base}a`, `b${separator}c`, "d"],
            [`${base}a`, "b", `c${separator}d`],
            [`${base}a${separator}b${separator}c`, "d", "e"],
          ];
          for (const [index, [stream, groupId, itemId]] of triples.entries()) {
            expect((await setItem(stream, groupId, itemId, index)).offset).toBe(1n);
          }
          for (const [index, [stream, groupId, itemId]] of triples.entries()) {
            expect(await listed(stream, groupId)).toEqual([[itemId, index]]);
            expect(json((await client.get({ streamName: stream, groupId, itemId })).item?.data)).toBe(index);
          }
          expect((await client.listGroups({ streamName: `${base}a` })).groups).toEqual(["b", `b${separator}c`]);
          expect((await client.listGroups({ streamName: `${base}a${separator}b` })).groups).toEqual(["c"]);
          const all = (await client.listAll({})).streams.filter((stream) => stream.streamName.startsWith(base));
          expect(all.map((stream) => stream.streamName)).toEqual(
            [`${base}a`, `${base}a${separator}b`, `${base}a${separator}b${separator}c`].sort((a, b) =>
              Buffer.compare(Buffer.from(a), Buffer.from(b)),
            ),
          );
        }
      });
    });

    describeBatchesAndRequestIds(() => client, streamName);

    describe("Send and Subscribe", () => {
      it("Send reaches group and item subscribers with the current offset and does not advance it", async () => {
        const s = streamName("send");
        await setItem(s, "g", "i", 1);
        const group = new SubscriptionReader(client, { streamName: s, groupId: "g" });
        const item = new SubscriptionReader(client, { streamName: s, groupId: "g", itemId: "i" });
        try {
          await group.expectNext("snapshot");
          await item.expectNext("snapshot");
          const before = Date.now();
          await client.send({ streamName: s, groupId: "g", type: "ping", data: value({ x: [1, null] }) });
          await client.send({ streamName: s, groupId: "g", type: "other", itemId: "j", data: value(null) });
          await client.send({ streamName: s, groupId: "g", type: "mine", itemId: "i" });

          const ping = await group.expectNext("event");
          expect([ping.type, ping.itemId, json(ping.data), ping.offset]).toEqual(["ping", undefined, { x: [1, null] }, 1n]);
          expect(Number(ping.timestampMs)).toBeGreaterThanOrEqual(before);
          const other = await group.expectNext("event");
          expect([other.type, other.itemId, json(other.data)]).toEqual(["other", "j", null]);
          expect((await group.expectNext("event")).type).toBe("mine");

          // The item subscriber only sees the event for its item.
          const mine = await item.expectNext("event");
          expect([mine.type, mine.itemId, json(mine.data), mine.offset]).toEqual(["mine", "i", null, 1n]);

          expect((await setItem(s, "g", "i", 2)).offset).toBe(2n);
          expect((await item.expectNext("change")).offset).toBe(2n);
        } finally {
          group.close();
          item.close();
        }
      });

      it("Send to a group nobody wrote to succeeds and stores nothing", async () => {
        const s = streamName("send-empty");
        await client.send({ streamName: s, groupId: "g", type: "ping", data: value(1) });
        expect((await client.listGroups({ streamName: s })).groups).toEqual([]);
        expect(await groupState(s, "g")).toEqual({ items: [], offset: 0n });
      });

      it("Subscribe starts with a snapshot and then delivers every change in order", async () => {
        const s = streamName("subscribe");
        await setItem(s, "g", "a", { v: 1 });
        await setItem(s, "g", "b", { v: 2 });
        const reader = new SubscriptionReader(client, { streamName: s, groupId: "g" });
        try {
          const snapshot = await reader.expectNext("snapshot");
          expect(snapshot.offset).toBe(2n);
          expect(snapshot.items.map((item) => [item.itemId, json(item.data), item.revision])).toEqual([
            ["a", { v: 1 }, 1n],
            ["b", { v: 2 }, 1n],
          ]);

          const before = Date.now();
          await setItem(s, "g", "c", "new");
          await update(s, "g", "a", [op.increment(["v"], 1)]);
          await client.delete({ streamName: s, groupId: "g", itemId: "a" });

          const created = await reader.expectNext("change");
          expect([created.type, created.itemId, json(created.data), created.revision, created.offset]).toEqual([
            ChangeType.CREATE,
            "c",
            "new",
            1n,
            3n,
          ]);
          expect(Number(created.timestampMs)).toBeGreaterThanOrEqual(before);
          const updated = await reader.expectNext("change");
          expect([updated.type, updated.itemId, json(updated.data), updated.revision, updated.offset]).toEqual([
            ChangeType.UPDATE,
            "a",
            { v: 2 },
            2n,
            4n,
          ]);
          const deleted = await reader.expectNext("change");
          expect([deleted.type, deleted.itemId, json(deleted.data), deleted.revision, deleted.offset]).toEqual([
            ChangeType.DELETE,
            "a",
            { v: 2 },
            2n,
            5n,
          ]);
        } finally {
          reader.close();
        }
      });

      it("an item subscription sees only that item; from_offset resumes without a snapshot", async () => {
        const s = streamName("subscribe-item");
        await setItem(s, "g", "i", 1);
        await setItem(s, "g", "j", 1);
        await setItem(s, "g", "i", 2);
        const item = new SubscriptionReader(client, { streamName: s, groupId: "g", itemId: "i" });
        const resumed = new SubscriptionReader(client, { streamName: s, groupId: "g", fromOffset: 1n });
        try {
          const snapshot = await item.expectNext("snapshot");
          expect([snapshot.offset, snapshot.items.map((x) => [x.itemId, json(x.data)])]).toEqual([3n, [["i", 2]]]);
          const missed = [await resumed.expectNext("change"), await resumed.expectNext("change")];
          expect(missed.map((c) => [c.itemId, c.offset])).toEqual([
            ["j", 2n],
            ["i", 3n],
          ]);

          await setItem(s, "g", "j", 2);
          await setItem(s, "g", "i", 3);
          const change = await item.expectNext("change");
          expect([change.itemId, json(change.data), change.offset]).toEqual(["i", 3, 5n]);
          expect((await resumed.expectNext("change")).offset).toBe(4n);
          expect((await resumed.expectNext("change")).offset).toBe(5n);
        } finally {
          item.close();
          resumed.close();
        }
      });
    });

    expiringItemsTests(() => client, streamName);

    describe("concurrency", () => {
      it("500 concurrent increments by 2 on one item end at exactly 1000, each revision seen once", async () => {
        const s = streamName("increments");
        const results = await Promise.all(
          Array.from({ length: 500 }, () => update(s, "g", "counter", [op.increment(["n"], 2)])),
        );
        for (const result of results) expect(result.errors).toEqual([]);
        const revisions = results.map((result) => Number(result.revision)).sort((a, b) => a - b);
        expect(revisions).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
        const offsets = results.map((result) => Number(result.offset)).sort((a, b) => a - b);
        expect(offsets).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
        // Each response reports the value its own revision produced.
        for (const result of results) expect(json(result.newValue)).toStrictEqual({ n: 2 * Number(result.revision) });

        const { item } = await client.get({ streamName: s, groupId: "g", itemId: "counter" });
        expect([json(item?.data), item?.revision]).toEqual([{ n: 1000 }, 500n]);
      });

      it("concurrent Sets of many items of one group get offsets 1..N, each exactly once", async () => {
        const s = streamName("sets");
        const count = 200;
        const results = await Promise.all(Array.from({ length: count }, (_, i) => setItem(s, "g", `item-${i}`, i)));
        const offsets = results.map((result) => Number(result.offset)).sort((a, b) => a - b);
        expect(offsets).toEqual(Array.from({ length: count }, (_, i) => i + 1));
        for (const result of results) expect(result.revision).toBe(1n);
        const state = await groupState(s, "g");
        expect(state.offset).toBe(BigInt(count));
        expect(state.items).toHaveLength(count);
      });
    });
  });
}
