import { describe, expect, it } from "vitest";
import { MemoryItemStore } from "../src/index.js";
import { compareBytes } from "../src/core/names.js";
import { SortedNames } from "../src/adapters/memory/sorted-names.js";
import { defineStorePagesSuite } from "./conformance/store-pages.js";

defineStorePagesSuite("memory", async () => {
  const store = new MemoryItemStore();
  return { store, close: () => store.close() };
});

describe("SortedNames (the memory store's group and stream listings)", () => {
  /** Deterministic names over ranges whose UTF-16 and UTF-8 orders differ. */
  function names(count: number, seed: number): string[] {
    const alphabet = ["a", "b", "z", "é", "中", "\uD7FF", "\uE000", "\uFFFD", "😀", "𝄞", " ", "0"];
    let state = seed;
    // The high bits of a linear congruential generator; its low bits repeat too soon.
    const next = () => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state >>> 16;
    };
    return Array.from({ length: count }, () => Array.from({ length: 1 + (next() % 4) }, () => alphabet[next() % alphabet.length]).join(""));
  }

  it("pages in byte order through adds and removes, across folds", () => {
    const set = new SortedNames();
    const reference = new Set<string>();
    const pool = names(3000, 7);
    expect(new Set(pool).size).toBeGreaterThan(1000);
    let step = 0;
    for (let round = 0; round < 40; round++) {
      // Bursts of adds and removes of different sizes, so that some pages fold and some do not.
      const burst = round % 3 === 0 ? 400 : 25;
      for (let i = 0; i < burst; i++) {
        const name = pool[(step++ * 7919) % pool.length];
        if (round % 4 === 3 || (reference.has(name) && i % 2 === 0)) {
          set.delete(name);
          reference.delete(name);
        } else {
          set.add(name);
          reference.add(name);
        }
      }
      const sorted = [...reference].sort(compareBytes);
      expect(set.size).toBe(reference.size);
      const paged: string[] = [];
      // Bounded, so that a cursor that fails to move ends the test instead of hanging it.
      for (let pages = 0; pages <= sorted.length; pages++) {
        const page = set.page(paged.at(-1), 1 + (round % 50));
        paged.push(...page);
        if (page.length === 0) break;
      }
      expect(paged).toStrictEqual(sorted);
      // After a name that is not in the set, too.
      const probe = pool[round];
      expect(set.page(probe, 5)).toStrictEqual(sorted.filter((name) => compareBytes(name, probe) > 0).slice(0, 5));
    }
  });

  it("ignores adding a present name and removing a missing one", () => {
    const set = new SortedNames();
    set.add("b");
    set.add("b");
    set.delete("zz");
    expect(set.page(undefined, 10)).toStrictEqual(["b"]);
    for (let i = 0; i < 100; i++) set.add(`n${i}`);
    set.page(undefined, 1);
    set.add("n5");
    set.delete("missing");
    expect(set.size).toBe(101);
  });
});
