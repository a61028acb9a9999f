import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ItemStore, ItemWrite } from "../../src/core/item-store.js";
import type { JsonValue } from "../../src/core/json.js";
import type { GroupMessage, ItemChange, ItemPage, ItemPageRequest, StoredItem } from "../../src/core/model.js";
import { compareBytes } from "../../src/core/names.js";
import { uniqueNames } from "./unique-names.js";

/** A store under test and how to let go of it (close it, remove its files or keys). */
export interface StoreUnderTest {
  store: ItemStore;
  close(): Promise<void>;
}

/**
 * What every ItemStore must do for paging, read through the port alone: pages of a
 * group's items (order, cursors, size bounds, consistency while others write), pages
 * of group and stream names, counts, single-item snapshots, and the incarnation fields
 * of changes. A test file plugs an adapter in with one line:
 *
 *     defineStorePagesSuite("memory", async () => { const store = new MemoryItemStore(); return { store, close: () => store.close() }; });
 *
 * One store serves the whole suite; every test writes streams of its own.
 */
export function defineStorePagesSuite(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`item store pages: ${name}`, () => {
    let subject: StoreUnderTest | undefined;
    let store: ItemStore;
    const streamName = uniqueNames(`pages-${name}`);

    beforeAll(async () => {
      subject = await makeStore();
      store = subject.store;
    });

    afterAll(async () => {
      await subject?.close();
    });

    const unbounded: Omit<ItemPageRequest, "afterCreatedOffset"> = { maxItems: 10_000, maxBytes: Number.MAX_SAFE_INTEGER };

    describe("readItems", () => {
      it("pages in insertion order: an overwrite keeps its place, a re-created item moves to the end", async () => {
        const writer = new GroupWriter(store, streamName("order"), "g");
        const ids = Array.from({ length: 23 }, (_, i) => `item-${(i * 7) % 23}`);
        for (const id of ids) await writer.set(id, { id });
        await writer.set("item-5", "overwritten");
        await writer.delete("item-9");
        await writer.set("item-9", "re-created");

        const pages = await readAll(store, writer.streamName, "g", { maxItems: 4, maxBytes: Number.MAX_SAFE_INTEGER });
        const expected = [...ids.filter((id) => id !== "item-9"), "item-9"];
        expect(pages.flatMap((page) => page.items.map((item) => item.itemId))).toStrictEqual(expected);
        expect(pages.map((page) => page.items.length)).toStrictEqual([4, 4, 4, 4, 4, 3]);
        expect(pages.map((page) => page.more)).toStrictEqual([true, true, true, true, true, false]);
        expect(pages.every((page) => page.offset === writer.offset)).toBe(true);

        const items = pages.flatMap((page) => page.items);
        const createdOffset = ids.indexOf("item-5") + 1;
        expect(items.find((item) => item.itemId === "item-5")).toMatchObject({ data: "overwritten", revision: 2, createdOffset });
        expect(items.at(-1)).toMatchObject({ itemId: "item-9", data: "re-created", revision: 1, createdOffset: 26 });
        expect(isIncreasing(items.map((item) => item.createdOffset))).toBe(true);
        // Whatever the adapter, a page returns what getItem returns.
        for (const item of items) expect(await store.getItem(writer.streamName, "g", item.itemId)).toStrictEqual(item);
      });

      it("starts after any created offset, existing or not", async () => {
        const writer = new GroupWriter(store, streamName("cursor"), "g");
        for (const id of ["a", "b", "c", "d"]) await writer.set(id, id);
        await writer.delete("b");
        const after = async (afterCreatedOffset: number) =>
          (await store.readItems(writer.streamName, "g", { afterCreatedOffset, ...unbounded })).items.map((item) => item.itemId);
        expect(await after(0)).toStrictEqual(["a", "c", "d"]);
        expect(await after(1)).toStrictEqual(["c", "d"]);
        // Created offset 2 was b's, deleted since: the cursor still holds.
        expect(await after(2)).toStrictEqual(["c", "d"]);
        expect(await after(4)).toStrictEqual([]);
        expect(await after(1000)).toStrictEqual([]);
      });

      it("ends a page with the item that reaches maxBytes, and always returns the first item", async () => {
        const writer = new GroupWriter(store, streamName("bytes"), "g");
        // Each item counts 11: its value's JSON text ("xxxxxxxx" with its quotes) and its one-letter id.
        for (const id of ["a", "b", "c", "d"]) await writer.set(id, "x".repeat(8));
        await writer.set("h", "y".repeat(200_000));
        await writer.set("e", "x".repeat(8));
        const s = writer.streamName;
        const ids = (page: ItemPage) => page.items.map((item) => item.itemId);

        expect(ids(await store.readItems(s, "g", { afterCreatedOffset: 0, maxItems: 100, maxBytes: 22 }))).toStrictEqual(["a", "b"]);
        expect(ids(await store.readItems(s, "g", { afterCreatedOffset: 0, maxItems: 100, maxBytes: 23 }))).toStrictEqual(["a", "b", "c"]);
        expect(ids(await store.readItems(s, "g", { afterCreatedOffset: 0, maxItems: 100, maxBytes: 1 }))).toStrictEqual(["a"]);
        expect(ids(await store.readItems(s, "g", { afterCreatedOffset: 0, maxItems: 2, maxBytes: 1000 }))).toStrictEqual(["a", "b"]);
        // Below the bound before it, the huge item still comes, and ends the page.
        const withHuge = await store.readItems(s, "g", { afterCreatedOffset: 2, maxItems: 100, maxBytes: 30 });
        expect([ids(withHuge), withHuge.more]).toStrictEqual([["c", "d", "h"], true]);
        // First in its page, it comes alone.
        const alone = await store.readItems(s, "g", { afterCreatedOffset: 4, maxItems: 100, maxBytes: 30 });
        expect([ids(alone), alone.more]).toStrictEqual([["h"], true]);
        expect((alone.items[0].data as string).length).toBe(200_000);
        const last = await store.readItems(s, "g", { afterCreatedOffset: 5, maxItems: 100, maxBytes: 30 });
        expect([ids(last), last.more, last.offset]).toStrictEqual([["e"], false, 6]);
        // Exactly full by count: nothing beyond, so no more.
        const full = await store.readItems(s, "g", { afterCreatedOffset: 4, maxItems: 2, maxBytes: Number.MAX_SAFE_INTEGER });
        expect([ids(full), full.more]).toStrictEqual([["h", "e"], false]);
      });

      it("pages a group most of whose items were deleted, and re-created", async () => {
        const writer = new GroupWriter(store, streamName("holes"), "g");
        const ids = Array.from({ length: 600 }, (_, i) => `i${i}`);
        await Promise.all(ids.map((id) => writer.set(id, id)));
        const deleted = ids.filter((_, i) => i % 10 !== 3);
        await Promise.all(deleted.map((id) => writer.delete(id)));
        await Promise.all(deleted.slice(0, 50).map((id) => writer.set(id, "again")));
        const expected = [...writer.stateAt(writer.offset).values()].sort((a, b) => a.createdOffset - b.createdOffset);
        for (const maxItems of [1, 7, 1000]) {
          const pages = await readAll(store, writer.streamName, "g", { maxItems, maxBytes: Number.MAX_SAFE_INTEGER });
          expect(pages.flatMap((page) => page.items.map(comparable))).toStrictEqual(expected);
        }
        // A cursor taken before the deletes still leads to the same place.
        const fromDeleted = await store.readItems(writer.streamName, "g", { afterCreatedOffset: 100, maxItems: 3, maxBytes: Number.MAX_SAFE_INTEGER });
        expect(fromDeleted.items.map(comparable)).toStrictEqual(expected.filter((item) => item.createdOffset > 100).slice(0, 3));
      });

      it("reads a missing group as an empty last page at offset 0, an emptied one at its offset", async () => {
        const s = streamName("missing");
        expect(await store.readItems(s, "never", { afterCreatedOffset: 0, ...unbounded })).toStrictEqual({ items: [], offset: 0, more: false });
        const writer = new GroupWriter(store, s, "emptied");
        await writer.set("a", 1);
        await writer.set("b", 2);
        await writer.delete("a");
        await writer.delete("b");
        expect(await store.readItems(s, "emptied", { afterCreatedOffset: 0, ...unbounded })).toStrictEqual({ items: [], offset: 4, more: false });
        expect(await store.readItems(s, "emptied", { afterCreatedOffset: 3, ...unbounded })).toStrictEqual({ items: [], offset: 4, more: false });
      });

      it("pages consistently while writes run between the pages and alongside them", async () => {
        const writer = new GroupWriter(store, streamName("concurrent"), "g");
        const fixture = await fillMixedGroup(writer);
        const pages: Array<{ request: ItemPageRequest; page: ItemPage }> = [];
        let afterCreatedOffset = 0;
        let round = 0;
        for (;;) {
          if (round > MAX_PAGES) throw new Error("no last page: the cursor does not move");
          const request = { afterCreatedOffset, maxItems: 7, maxBytes: Number.MAX_SAFE_INTEGER };
          let page: ItemPage | undefined;
          if (round % 2 === 0) {
            page = await store.readItems(writer.streamName, "g", request);
            // Changes right where the next page starts.
            await fixture.writeRound(round, { near: page.items.at(-1)?.createdOffset });
          } else {
            // Changes right where this page starts, in flight while it is read.
            await fixture.writeRound(round, {
              near: afterCreatedOffset,
              midway: async () => {
                page = await store.readItems(writer.streamName, "g", request);
              },
            });
          }
          if (!page) throw new Error("no page was read");
          pages.push({ request, page });
          round++;
          if (!page.more) break;
          afterCreatedOffset = page.items.at(-1)!.createdOffset;
        }
        expect(round).toBeGreaterThan(10);
        checkPaging(writer, fixture, pages);
      });

      it("pages consistently while a writer runs on its own", async () => {
        const writer = new GroupWriter(store, streamName("writer-loop"), "g");
        const fixture = await fillMixedGroup(writer);
        const pages: Array<{ request: ItemPageRequest; page: ItemPage }> = [];
        let done = false;
        const pager = async () => {
          let afterCreatedOffset = 0;
          try {
            for (;;) {
              if (pages.length > MAX_PAGES) throw new Error("no last page: the cursor does not move");
              const request = { afterCreatedOffset, maxItems: 5, maxBytes: 200 };
              const page = await store.readItems(writer.streamName, "g", request);
              pages.push({ request, page });
              if (!page.more) return;
              afterCreatedOffset = page.items.at(-1)!.createdOffset;
              // Let the writer's commits (and any I/O they wait for) take turns with the pages.
              await new Promise((resolve) => setImmediate(resolve));
            }
          } finally {
            done = true;
          }
        };
        const writerLoop = async () => {
          for (let round = 0; !done; round++) {
            await fixture.writeRound(round);
            // A store that commits without I/O would otherwise never let the pager run.
            await new Promise((resolve) => setImmediate(resolve));
          }
        };
        await Promise.all([pager(), writerLoop()]);
        expect(pages.length).toBeGreaterThan(10);
        checkPaging(writer, fixture, pages);
      });
    });

    describe("snapshotItem", () => {
      it("reads one item with the offset it reflects", async () => {
        const s = streamName("snapshot-item");
        expect(await store.snapshotItem(s, "g", "a")).toStrictEqual({ items: [], offset: 0 });
        const writer = new GroupWriter(store, s, "g");
        await writer.set("a", { v: 1 });
        await writer.set("b", { v: 2 });
        await writer.set("a", { v: 3 });
        const { items, offset } = await store.snapshotItem(s, "g", "a");
        expect(offset).toBe(3);
        expect(items).toStrictEqual([{ itemId: "a", data: { v: 3 }, revision: 2, createdOffset: 1, updatedAtMs: writer.lastTimestamp("a") }]);
        expect(await store.snapshotItem(s, "g", "missing")).toStrictEqual({ items: [], offset: 3 });
      });

      it("reads the item and the offset in one step while writes run", async () => {
        const writer = new GroupWriter(store, streamName("snapshot-item-writes"), "g");
        await writer.set("other", 0);
        const snapshots: Array<{ items: StoredItem[]; offset: number }> = [];
        for (let round = 0; round < 30; round++) {
          const writes = Promise.all([
            round % 5 === 4 ? writer.delete("a") : writer.set("a", round),
            writer.set("other", round),
          ]);
          snapshots.push(await store.snapshotItem(writer.streamName, "g", "a"));
          await writes;
          snapshots.push(await store.snapshotItem(writer.streamName, "g", "a"));
        }
        for (const snapshot of snapshots) {
          const expected = writer.stateAt(snapshot.offset).get("a");
          expect(snapshot.items.map(comparable)).toStrictEqual(expected ? [expected] : []);
        }
      });
    });

    describe("listGroups and countGroups", () => {
      const groupIds = ["b", "a", "é", "z", "😀", "\uE000", "A", "ab", "ä", "中", "a b", "a😀", "a\uFFFF"];

      it("pages a stream's non-empty groups in byte order, after any name", async () => {
        const s = streamName("groups");
        for (const groupId of groupIds) await new GroupWriter(store, s, groupId).set("item", groupId);
        const sorted = [...groupIds].sort(compareBytes);
        // Byte order is not JavaScript's order here: U+E000 sorts before the emoji.
        expect(sorted.indexOf("\uE000")).toBeLessThan(sorted.indexOf("😀"));

        for (const limit of [1, 3, 5, 100]) expect(await allGroups(store, s, limit)).toStrictEqual(sorted);
        expect(await store.listGroups(s, { after: "aa", limit: 3 })).toStrictEqual(sorted.filter((id) => compareBytes(id, "aa") > 0).slice(0, 3));
        expect(await store.listGroups(s, { after: sorted.at(-1), limit: 3 })).toStrictEqual([]);
        expect(await store.countGroups(s)).toBe(groupIds.length);
        expect(await store.listGroups(streamName("no-groups"), { after: undefined, limit: 10 })).toStrictEqual([]);
        expect(await store.countGroups(streamName("no-groups"))).toBe(0);
      });

      it("leaves out emptied groups and groups that were only watched, and takes back a refilled one", async () => {
        const s = streamName("emptied-groups");
        const kept = new GroupWriter(store, s, "kept");
        await kept.set("a", 1);
        const emptied = new GroupWriter(store, s, "é-emptied");
        await emptied.set("a", 1);
        await emptied.set("b", 2);
        const unwatch = await store.watch(s, "watched", () => undefined);
        try {
          expect(await allGroups(store, s, 1)).toStrictEqual(["kept", "é-emptied"]);
          await emptied.delete("a");
          expect(await store.countGroups(s)).toBe(2);
          await emptied.delete("b");
          expect(await allGroups(store, s, 1)).toStrictEqual(["kept"]);
          expect(await store.countGroups(s)).toBe(1);
          await emptied.set("c", 3);
          expect(await allGroups(store, s, 1)).toStrictEqual(["kept", "é-emptied"]);
          expect(await store.countGroups(s)).toBe(2);
        } finally {
          unwatch();
        }
      });

      it("pages a stream of many groups", async () => {
        const s = streamName("many-groups");
        const ids = Array.from({ length: 300 }, (_, i) => `g${(i * 37) % 300}`);
        await Promise.all(ids.map((id) => new GroupWriter(store, s, id).set("item", id)));
        expect(await store.countGroups(s)).toBe(300);
        expect(await allGroups(store, s, 64)).toStrictEqual([...ids].sort(compareBytes));
      });
    });

    describe("listStreams", () => {
      it("pages the streams that have a non-empty group, in byte order", async () => {
        // Every stream of this test starts with `base`, so they sort together, right after it.
        const base = streamName("streams");
        const suffixes = ["/b", "/ä", "/😀", "/\uE000", "/a", "/a b", "/two"];
        const writers = new Map(suffixes.map((suffix) => [suffix, new GroupWriter(store, base + suffix, "g")]));
        for (const writer of writers.values()) await writer.set("item", 1);
        await new GroupWriter(store, base + "/two", "g2").set("item", 2);
        const emptied = new GroupWriter(store, base + "/emptied", "g");
        await emptied.set("item", 1);
        await emptied.delete("item");
        const unwatch = await store.watch(base + "/watched", "g", () => undefined);
        try {
          const expected = suffixes.map((suffix) => base + suffix).sort(compareBytes);
          for (const limit of [1, 2, 100]) expect(await streamsUnder(store, base, limit)).toStrictEqual(expected);

          await writers.get("/b")!.delete("item");
          expect(await streamsUnder(store, base, 2)).toStrictEqual(expected.filter((stream) => stream !== base + "/b"));
          // One of its two groups emptied: the stream stays.
          await writers.get("/two")!.delete("item");
          expect(await streamsUnder(store, base, 2)).toContain(base + "/two");
          await emptied.set("item", 2);
          expect(await streamsUnder(store, base, 3)).toContain(base + "/emptied");
        } finally {
          unwatch();
        }
      });
    });

    describe("changes", () => {
      it("carry oldUpdatedAtMs and createdOffset through create, update, delete and re-create", async () => {
        const writer = new GroupWriter(store, streamName("change-fields"), "g");
        const delivered = new Delivery();
        const unwatch = await store.watch(writer.streamName, "g", (message) => delivered.push(message));
        try {
          const committed = [
            await writer.set("a", 1, 1000),
            await writer.set("a", 2, 2000),
            await writer.set("keep", "k", 2500),
            await writer.delete("a", 3000),
            await writer.set("a", 3, 4000),
            await writer.set("a", 4, 5000),
          ];
          const expected = [
            { type: "create", itemId: "a", offset: 1, revision: 1, createdOffset: 1, oldUpdatedAtMs: undefined, oldValue: undefined, data: 1 },
            { type: "update", itemId: "a", offset: 2, revision: 2, createdOffset: 1, oldUpdatedAtMs: 1000, oldValue: 1, data: 2 },
            { type: "create", itemId: "keep", offset: 3, revision: 1, createdOffset: 3, oldUpdatedAtMs: undefined, oldValue: undefined, data: "k" },
            { type: "delete", itemId: "a", offset: 4, revision: 2, createdOffset: 1, oldUpdatedAtMs: 2000, oldValue: 2, data: 2 },
            { type: "create", itemId: "a", offset: 5, revision: 1, createdOffset: 5, oldUpdatedAtMs: undefined, oldValue: undefined, data: 3 },
            { type: "update", itemId: "a", offset: 6, revision: 2, createdOffset: 5, oldUpdatedAtMs: 4000, oldValue: 3, data: 4 },
          ];
          expect(committed.map(changeFields)).toStrictEqual(expected);
          expect((await delivered.waitFor(6)).map(changeFields)).toStrictEqual(expected);
          expect((await store.changesSince(writer.streamName, "g", 0))!.map(changeFields)).toStrictEqual(expected);
          expect((await store.changesSince(writer.streamName, "g", 3))!.map(changeFields)).toStrictEqual(expected.slice(3));
          expect(committed.map((change) => change.timestampMs)).toStrictEqual([1000, 2000, 2500, 3000, 4000, 5000]);
        } finally {
          unwatch();
        }
      });
    });
  });
}

/** More pages than any test here needs: a paging loop that gets this far is stuck. */
const MAX_PAGES = 5000;

/**
 * Writes one group through `commit` and keeps the log of every committed change, which
 * is the truth pages are checked against.
 */
class GroupWriter {
  readonly log: ItemChange[] = [];
  private readonly current = new Map<string, { revision: number; createdOffset: number; updatedAtMs: number }>();
  private clock = 1;

  constructor(
    private readonly store: ItemStore,
    readonly streamName: string,
    readonly groupId: string,
  ) {}

  /** The group offset after the writes so far (all of them committed). */
  get offset(): number {
    return this.log.reduce((highest, change) => Math.max(highest, change.offset), 0);
  }

  createdOffsetOf(itemId: string): number | undefined {
    return this.current.get(itemId)?.createdOffset;
  }

  lastTimestamp(itemId: string): number | undefined {
    return this.current.get(itemId)?.updatedAtMs;
  }

  set(itemId: string, value: JsonValue, timestampMs?: number): Promise<ItemChange> {
    return this.commit(itemId, value, timestampMs);
  }

  delete(itemId: string, timestampMs?: number): Promise<ItemChange> {
    return this.commit(itemId, undefined, timestampMs);
  }

  /** The group's items after the changes up to `offset`, as the log tells. */
  stateAt(offset: number): Map<string, Comparable> {
    const state = new Map<string, Comparable>();
    for (const change of [...this.log].sort((a, b) => a.offset - b.offset)) {
      if (change.offset > offset) break;
      if (change.type === "delete") state.delete(change.itemId);
      else state.set(change.itemId, { itemId: change.itemId, data: change.data, revision: change.revision, createdOffset: change.createdOffset });
    }
    return state;
  }

  private async commit(itemId: string, value: JsonValue | undefined, timestampMs = this.clock++): Promise<ItemChange> {
    const known = this.current.get(itemId);
    const write: ItemWrite = {
      streamName: this.streamName,
      groupId: this.groupId,
      itemId,
      expectedRevision: known?.revision ?? 0,
      expectedCreatedOffset: known?.createdOffset,
      value,
      timestampMs,
    };
    const result = await this.store.commit(write);
    if (!result.ok) throw new Error(`commit of ${itemId} refused at revision ${result.currentRevision}`);
    const change = result.change;
    this.log.push(change);
    if (change.type === "delete") this.current.delete(itemId);
    else this.current.set(itemId, { revision: change.revision, createdOffset: change.createdOffset, updatedAtMs: timestampMs });
    return change;
  }
}

/**
 * A group of 120 items, mixed: stable items (overwritten now and then, never deleted),
 * items that get deleted, items that get deleted and re-created. Each round of writes
 * deletes two items (one just after the cursor `near`, one far from it), deletes and
 * re-creates one, overwrites three stable items (two just after `near`) and creates a
 * new one. With `midway`, the read is issued among the writes of the round's second
 * half, which are then in flight together.
 */
async function fillMixedGroup(writer: GroupWriter) {
  const stable: string[] = [];
  const doomed: string[] = [];
  const recreated: string[] = [];
  for (let i = 0; i < 120; i++) {
    const kind = i % 6;
    if (kind < 3) stable.push(`s${i}`);
    else if (kind === 3 || kind === 5) doomed.push(`d${i}`);
    else recreated.push(`r${i}`);
  }
  const all = [...stable, ...doomed, ...recreated].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
  for (const id of all) await writer.set(id, { id, round: -1 });

  /** The first `count` ids of `list` created after `near`, in created order; taken out of `list` when `take`. */
  const after = (list: string[], near: number, count: number, take: boolean): string[] => {
    const found = list
      .filter((id) => (writer.createdOffsetOf(id) ?? 0) > near)
      .sort((a, b) => writer.createdOffsetOf(a)! - writer.createdOffsetOf(b)!)
      .slice(0, count);
    if (take) for (const id of found) list.splice(list.indexOf(id), 1);
    return found;
  };
  const writeRound = async (round: number, options: { near?: number; midway?: () => Promise<void> } = {}): Promise<void> => {
    const near = options.near ?? 0;
    const far = round % 2 === 0 ? doomed.pop() : doomed.shift();
    const nearVictims = after(doomed, near, 1, true);
    const again = after(recreated, near, 1, true)[0] ?? recreated.pop();
    const overwrite = new Set([...after(stable, near, 2, false), stable[(round * 7) % stable.length]]);
    const fresh = `n${round}`;
    await Promise.all([far === undefined ? undefined : writer.delete(far), again === undefined ? undefined : writer.delete(again)]);
    await Promise.all([
      options.midway?.(),
      ...nearVictims.map((id) => writer.delete(id)),
      ...[...overwrite].map((id) => writer.set(id, { id, round })),
      again === undefined ? undefined : writer.set(again, { id: again, round }),
      writer.set(fresh, { id: fresh, round }),
    ]);
  };
  return { stable, writeRound };
}

/**
 * The checks of paging under writers: each page is exactly the group's state at the
 * page's offset from its cursor on (so the offset was read with the items), items that
 * existed throughout come exactly once, nothing comes twice, cursors only move forward.
 */
function checkPaging(
  writer: GroupWriter,
  fixture: { stable: string[] },
  pages: Array<{ request: ItemPageRequest; page: ItemPage }>,
): void {
  for (const { request, page } of pages) {
    const expected = [...writer.stateAt(page.offset).values()]
      .filter((item) => item.createdOffset > request.afterCreatedOffset)
      .sort((a, b) => a.createdOffset - b.createdOffset);
    expect(page.items.map(comparable)).toStrictEqual(expected.slice(0, page.items.length));
    expect(page.more).toBe(expected.length > page.items.length);
    if (expected.length > 0) expect(page.items.length).toBeGreaterThan(0);
    expect(page.items.length).toBeLessThanOrEqual(request.maxItems);
  }
  const items = pages.flatMap(({ page }) => page.items);
  expect(isIncreasing(items.map((item) => item.createdOffset))).toBe(true);
  const ids = items.map((item) => item.itemId);
  for (const id of fixture.stable) expect(ids.filter((seen) => seen === id)).toHaveLength(1);
  // An incarnation (an item id and its created offset) comes at most once.
  const incarnations = items.map((item) => `${item.itemId}@${item.createdOffset}`);
  expect(new Set(incarnations).size).toBe(incarnations.length);
  // Nothing comes in a page read after its delete.
  for (const { page } of pages) {
    for (const item of page.items) {
      const deleted = writer.log.find((change) => change.type === "delete" && change.itemId === item.itemId && change.createdOffset === item.createdOffset);
      if (deleted) expect(deleted.offset).toBeGreaterThan(page.offset);
    }
  }
  // The writers did change things in between: deletes, re-creates and new items.
  expect(writer.log.some((change) => change.type === "delete")).toBe(true);
  expect(ids.some((id) => id.startsWith("n"))).toBe(true);
}

/** Collects a watcher's messages; `waitFor` resolves once there are `count` of them. */
class Delivery {
  readonly messages: GroupMessage[] = [];
  private waiter: { count: number; resolve: () => void } | undefined;

  push(message: GroupMessage): void {
    this.messages.push(message);
    if (this.waiter && this.messages.length >= this.waiter.count) this.waiter.resolve();
  }

  async waitFor(count: number): Promise<ItemChange[]> {
    if (this.messages.length < count) await new Promise<void>((resolve) => (this.waiter = { count, resolve }));
    return this.messages.filter((message): message is ItemChange => message.kind === "change");
  }
}

interface Comparable {
  itemId: string;
  data: JsonValue;
  revision: number;
  createdOffset: number;
}

function comparable(item: StoredItem): Comparable {
  return { itemId: item.itemId, data: item.data, revision: item.revision, createdOffset: item.createdOffset };
}

function changeFields(change: ItemChange) {
  return {
    type: change.type,
    itemId: change.itemId,
    offset: change.offset,
    revision: change.revision,
    createdOffset: change.createdOffset,
    oldUpdatedAtMs: change.oldUpdatedAtMs,
    oldValue: change.oldValue,
    data: change.data,
  };
}

async function readAll(store: ItemStore, streamName: string, groupId: string, bounds: Omit<ItemPageRequest, "afterCreatedOffset">): Promise<ItemPage[]> {
  const pages: ItemPage[] = [];
  let afterCreatedOffset = 0;
  for (;;) {
    if (pages.length > MAX_PAGES) throw new Error(`no last page after ${MAX_PAGES} pages: the cursor does not move`);
    const page = await store.readItems(streamName, groupId, { afterCreatedOffset, ...bounds });
    pages.push(page);
    if (!page.more) return pages;
    afterCreatedOffset = page.items.at(-1)!.createdOffset;
  }
}

async function allGroups(store: ItemStore, streamName: string, limit: number): Promise<string[]> {
  const names: string[] = [];
  for (let pages = 0; ; pages++) {
    if (pages > MAX_PAGES) throw new Error(`no last page after ${MAX_PAGES} pages: the cursor does not move`);
    const page = await store.listGroups(streamName, { after: names.at(-1), limit });
    expect(page.length).toBeLessThanOrEqual(limit);
    names.push(...page);
    if (page.length < limit) return names;
  }
}

/** The streams whose names start with `base`, paged from just after it. */
async function streamsUnder(store: ItemStore, base: string, limit: number): Promise<string[]> {
  const names: string[] = [];
  let after = base;
  for (let pages = 0; ; pages++) {
    if (pages > MAX_PAGES) throw new Error(`no last page after ${MAX_PAGES} pages: the cursor does not move`);
    const page = await store.listStreams({ after, limit });
    expect(page.length).toBeLessThanOrEqual(limit);
    expect(isSortedByBytes([after, ...page])).toBe(true);
    const ours = page.filter((name) => name.startsWith(base));
    names.push(...ours);
    if (ours.length < page.length || page.length < limit) return names;
    after = page.at(-1)!;
  }
}

function isIncreasing(values: number[]): boolean {
  return values.every((value, i) => i === 0 || values[i - 1] < value);
}

function isSortedByBytes(names: string[]): boolean {
  return names.every((name, i) => i === 0 || compareBytes(names[i - 1], name) < 0);
}
