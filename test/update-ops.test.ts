import { describe, it, expect } from "vitest";
import type { JsonValue } from "../src/index.js";
import { applyUpdateOps, UPDATE_LIMITS, type UpdateOp } from "../src/core/update-ops.js";

const MAX = Number.MAX_SAFE_INTEGER;
const MAX_BIG = BigInt(MAX);

const set = (path: string[], value: JsonValue): UpdateOp => ({ type: "set", path, value });
const merge = (path: string[], value: unknown): UpdateOp => ({ type: "merge", path, value });
const inc = (path: string[], by: bigint): UpdateOp => ({ type: "increment", path, by });
const dec = (path: string[], by: bigint): UpdateOp => ({ type: "decrement", path, by });
const append = (path: string[], value: JsonValue): UpdateOp => ({ type: "append", path, value });
const remove = (path: string[]): UpdateOp => ({ type: "remove", path });

/** Applies ops that are all expected to succeed and returns the resulting value. */
function ok(current: JsonValue | undefined, ...ops: UpdateOp[]): JsonValue {
  const outcome = applyUpdateOps(current, ops);
  expect(outcome.errors).toEqual([]);
  expect(outcome.applied).toBe(ops.length);
  return outcome.value;
}

/** Applies a single op expected to fail; checks the value is unchanged and returns the error. */
function fails(current: JsonValue | undefined, op: UpdateOp, code: string) {
  const outcome = applyUpdateOps(current, [op]);
  expect(outcome.applied).toBe(0);
  expect(outcome.errors).toHaveLength(1);
  expect(outcome.errors[0]).toMatchObject({ opIndex: 0, code });
  expect(outcome.value).toEqual(current === undefined ? {} : current);
  return outcome.errors[0];
}

/** `depth` levels of nested objects: depth 1 is `{}`. */
function nested(depth: number): JsonValue {
  let value: JsonValue = {};
  for (let i = 1; i < depth; i++) value = { a: value };
  return value;
}

describe("UPDATE_LIMITS", () => {
  it("exposes the documented limits", () => {
    expect(UPDATE_LIMITS).toEqual({ maxPathSegments: 32, maxSegmentBytes: 256, maxMergeDepth: 16, maxMergeKeys: 1024 });
  });
});

describe("set", () => {
  it("replaces the whole value at the root", () => {
    expect(ok({ a: 1 }, set([], [1, 2]))).toEqual([1, 2]);
  });

  it("creates the item on a missing root", () => {
    expect(ok(undefined, set([], "hello"))).toBe("hello");
  });

  it("sets a first-level key and keeps siblings", () => {
    expect(ok({ a: 1, b: 2 }, set(["a"], { x: true }))).toEqual({ a: { x: true }, b: 2 });
  });

  it("sets a key on a missing item (starts from {})", () => {
    expect(ok(undefined, set(["a"], 1))).toEqual({ a: 1 });
  });

  it("treats a dotted key as one literal key", () => {
    expect(ok({ user: { name: "x" } }, set(["user.name"], "y"))).toEqual({ user: { name: "x" }, "user.name": "y" });
  });

  it("fails with target_not_object on a non-object root and keeps it", () => {
    for (const root of ["s", 1, true, null, [1]] as JsonValue[]) {
      const error = fails(root, set(["a"], 1), "set.target_not_object");
      expect(error.message).toContain("'a'");
    }
  });

  it("creates missing parents on a multi-segment path", () => {
    expect(ok({ keep: 1 }, set(["a", "b", "c"], 5))).toEqual({ keep: 1, a: { b: { c: 5 } } });
  });

  it("replaces non-object intermediates on a multi-segment path", () => {
    expect(ok({ a: "str", b: [1], c: null, d: 3 }, set(["a", "x"], 1), set(["b", "x"], 2), set(["c", "x"], 3), set(["d", "x"], 4)))
      .toEqual({ a: { x: 1 }, b: { x: 2 }, c: { x: 3 }, d: { x: 4 } });
  });

  it("fails on a non-object root for a multi-segment path instead of replacing it", () => {
    fails("text", set(["a", "b"], 1), "set.target_not_object");
  });
});

describe("merge", () => {
  it("shallow-merges into the root object", () => {
    expect(ok({ a: 1, b: { x: 1 } }, merge([], { b: { y: 2 }, c: 3 }))).toEqual({ a: 1, b: { y: 2 }, c: 3 });
  });

  it("merges into a missing item", () => {
    expect(ok(undefined, merge([], { a: 1 }))).toEqual({ a: 1 });
  });

  it("is a silent no-op at a non-object root and still counts as applied", () => {
    for (const root of ["s", 1, false, null, [1, 2]] as JsonValue[]) {
      expect(ok(root, merge([], { a: 1 }))).toEqual(root);
    }
  });

  it("nested merge keeps siblings and overwrites same-named keys", () => {
    const value = ok({ a: { b: { x: 1, y: 2 }, other: true } }, merge(["a", "b"], { y: 3, z: 4 }));
    expect(value).toEqual({ a: { b: { x: 1, y: 3, z: 4 }, other: true } });
  });

  it("nested merge creates missing intermediates", () => {
    expect(ok({}, merge(["a", "b", "c"], { x: 1 }))).toEqual({ a: { b: { c: { x: 1 } } } });
  });

  it("nested merge replaces null, array, string and number intermediates", () => {
    for (const bad of [null, [1], "s", 7] as JsonValue[]) {
      expect(ok({ a: bad, keep: 1 }, merge(["a", "b"], { x: 1 }))).toEqual({ a: { b: { x: 1 } }, keep: 1 });
    }
  });

  it("nested merge replaces a non-object target", () => {
    expect(ok({ a: "str" }, merge(["a"], { x: 1 }))).toEqual({ a: { x: 1 } });
  });

  it("nested merge replaces a non-object root with {}", () => {
    expect(ok("text", merge(["a"], { x: 1 }))).toEqual({ a: { x: 1 } });
    expect(ok([1, 2], merge(["a", "b"], { x: 1 }))).toEqual({ a: { b: { x: 1 } } });
  });

  it("rejects non-object values", () => {
    for (const value of [null, [1], "s", 1, true, undefined, new Date(0)]) {
      fails({ a: 1 }, merge([], value), "merge.value.not_an_object");
    }
  });

  it("accepts exactly 1024 keys and rejects 1025", () => {
    const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    expect(Object.keys(ok({}, merge([], keys(1024))) as object)).toHaveLength(1024);
    fails({}, merge([], keys(1025)), "merge.value.too_many_keys");
  });

  it("rejects forbidden top-level keys", () => {
    for (const key of ["__proto__", "constructor", "prototype"]) {
      fails({}, merge([], JSON.parse(`{"ok":1,"${key}":{"polluted":true}}`)), "merge.value.proto_polluted");
    }
  });

  it("accepts 16 levels of nesting and rejects 17", () => {
    expect(ok({}, merge([], nested(16)))).toEqual(nested(16));
    fails({}, merge([], nested(17)), "merge.value.too_deep");
  });

  it("counts arrays as nesting levels", () => {
    let value: JsonValue = [];
    for (let i = 0; i < 15; i++) value = [value];
    fails({}, merge([], { a: value }), "merge.value.too_deep"); // object + 16 arrays
    expect(ok({}, merge([], { a: [[1]] }))).toEqual({ a: [[1]] });
  });

  it("stores nested __proto__ keys as own data properties without polluting prototypes", () => {
    const value = ok({}, merge([], JSON.parse('{"a":{"__proto__":{"polluted":true},"b":1}}'))) as {
      a: Record<string, JsonValue>;
    };
    expect(Object.getPrototypeOf(value.a)).toBe(Object.prototype);
    expect(Object.hasOwn(value.a, "__proto__")).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.stringify(value)).toBe('{"a":{"__proto__":{"polluted":true},"b":1}}');
    expect(value).toEqual(JSON.parse('{"a":{"__proto__":{"polluted":true},"b":1}}'));
  });

  it("merge → remove → merge recreates the field", () => {
    const value = ok({}, merge(["cfg"], { a: 1 }), remove(["cfg"]), merge(["cfg"], { b: 2 }));
    expect(value).toEqual({ cfg: { b: 2 } });
  });
});

describe("increment / decrement", () => {
  it("sets a missing root to by (increment) or -by (decrement)", () => {
    expect(ok(undefined, inc([], 5n))).toBe(5);
    expect(ok(undefined, dec([], 5n))).toBe(-5);
  });

  it("adds to a numeric root", () => {
    expect(ok(10, inc([], 5n))).toBe(15);
    expect(ok(10, dec([], 15n))).toBe(-5);
  });

  it("fails with not_number on an existing non-numeric root", () => {
    for (const root of ["s", true, null, [1], { a: 1 }] as JsonValue[]) {
      fails(root, inc([], 1n), "increment.not_number");
      fails(root, dec([], 1n), "decrement.not_number");
    }
  });

  it("initialises a missing key", () => {
    expect(ok({ other: 1 }, inc(["count"], 3n))).toEqual({ other: 1, count: 3 });
    expect(ok({}, dec(["count"], 3n))).toEqual({ count: -3 });
    expect(ok(undefined, inc(["count"], 1n))).toEqual({ count: 1 });
  });

  it("does not mistake inherited names such as toString for existing keys", () => {
    expect(ok({}, inc(["toString"], 1n))).toEqual({ toString: 1 });
  });

  it("adds to an existing numeric key", () => {
    expect(ok({ count: 41 }, inc(["count"], 1n))).toEqual({ count: 42 });
    expect(ok({ count: 41 }, dec(["count"], 1n))).toEqual({ count: 40 });
  });

  it("fails with not_number on non-numbers, including null, with a readable message", () => {
    for (const value of ["s", true, null, [1], { a: 1 }] as JsonValue[]) {
      fails({ count: value }, inc(["count"], 1n), "increment.not_number");
    }
    const error = fails({ count: "7" }, inc(["count"], 1n), "increment.not_number");
    expect(error.message).toBe("cannot increment 'count': it is a string, not a number");
    expect(fails({ count: null }, dec(["count"], 1n), "decrement.not_number").message).toContain("it is null");
  });

  it("still type-checks with by = 0", () => {
    fails({ count: "x" }, inc(["count"], 0n), "increment.not_number");
    expect(ok({ count: 3 }, inc(["count"], 0n))).toEqual({ count: 3 });
  });

  it("fails with target_not_object on a non-object root", () => {
    fails([1], inc(["a"], 1n), "increment.target_not_object");
    fails(5, dec(["a"], 1n), "decrement.target_not_object");
  });

  it("keeps floats as floats", () => {
    expect(ok({ x: 1.5 }, inc(["x"], 2n))).toEqual({ x: 3.5 });
    expect(ok(0.25, dec([], 1n))).toBe(-0.75);
  });

  it("is exact at the edge of the safe range", () => {
    expect(ok({ n: MAX - 1 }, inc(["n"], 1n))).toEqual({ n: MAX });
    expect(ok({ n: -MAX + 1 }, dec(["n"], 1n))).toEqual({ n: -MAX });
  });

  it("decrement by -(2^53-1) on a missing key gives 2^53-1", () => {
    expect(ok({}, dec(["n"], -MAX_BIG))).toEqual({ n: MAX });
    expect(ok(undefined, dec([], -MAX_BIG))).toBe(MAX);
    expect(ok({ n: 0 }, dec(["n"], -MAX_BIG))).toEqual({ n: MAX });
  });

  it("fails with out_of_range when the integer result overflows", () => {
    fails({ n: MAX }, inc(["n"], 1n), "increment.out_of_range");
    fails({ n: -MAX }, dec(["n"], 1n), "decrement.out_of_range");
  });

  it("fails with out_of_range when a float result leaves the safe range", () => {
    // 2^52 - 0.5 is a true float; adding 2^52 lands just above 2^53 - 1.
    const half = 2 ** 52 - 0.5;
    fails({ n: half }, inc(["n"], 2n ** 52n), "increment.out_of_range");
    fails({ n: -half }, dec(["n"], 2n ** 52n), "decrement.out_of_range");
    expect(ok({ n: half }, inc(["n"], 2n ** 52n - 1n))).toEqual({ n: half + (2 ** 52 - 1) });
  });

  it("fails with out_of_range on an already huge stored integer", () => {
    fails({ n: 1e300 }, inc(["n"], 1n), "increment.out_of_range");
  });

  it("fails with out_of_range on a huge by, even for a missing key", () => {
    fails({}, inc(["n"], MAX_BIG + 1n), "increment.out_of_range");
    fails(undefined, dec([], -(MAX_BIG + 1n)), "decrement.out_of_range");
    fails({ n: 0 }, inc(["n"], 2n ** 63n - 1n), "increment.out_of_range");
  });

  it("500 sequential increments by 2 give 1000", () => {
    const ops = Array.from({ length: 500 }, () => inc(["n"], 2n));
    const outcome = applyUpdateOps({}, ops);
    expect(outcome).toEqual({ value: { n: 1000 }, errors: [], applied: 500 });
  });

  it("creates parents on a multi-segment path and replaces non-object intermediates", () => {
    expect(ok({}, inc(["a", "b"], 2n))).toEqual({ a: { b: 2 } });
    expect(ok({ a: "s" }, dec(["a", "b"], 2n))).toEqual({ a: { b: -2 } });
    expect(ok({ a: { b: 1 } }, inc(["a", "b"], 2n))).toEqual({ a: { b: 3 } });
  });

  it("does not create parents when a multi-segment increment fails", () => {
    fails({ a: { b: "x" } }, inc(["a", "b"], 1n), "increment.not_number");
    fails({ a: "s" }, inc(["a", "b"], MAX_BIG + 1n), "increment.out_of_range");
  });

  it("fails on a non-object root for a multi-segment path", () => {
    fails(null, inc(["a", "b"], 1n), "increment.target_not_object");
  });
});

describe("append", () => {
  it("pushes onto a root array, nesting array values", () => {
    expect(ok([1], append([], 2))).toEqual([1, 2]);
    expect(ok([1], append([], [2, 3]))).toEqual([1, [2, 3]]);
  });

  it("appends to an existing empty root array", () => {
    expect(ok([], append([], "x"))).toEqual(["x"]);
  });

  it("concatenates strings at the root and rejects non-strings", () => {
    expect(ok("ab", append([], "cd"))).toBe("abcd");
    fails("ab", append([], 1), "append.type_mismatch");
  });

  it("turns a null root into the string or a one-element array", () => {
    expect(ok(null, append([], "s"))).toBe("s");
    expect(ok(null, append([], { a: 1 }))).toEqual([{ a: 1 }]);
  });

  it("treats a missing item as null at the root", () => {
    expect(ok(undefined, append([], "s"))).toBe("s");
    expect(ok(undefined, append([], 1))).toEqual([1]);
  });

  it("fails on object, number and boolean roots", () => {
    for (const root of [{ a: 1 }, 5, true] as JsonValue[]) fails(root, append([], 1), "append.type_mismatch");
  });

  it("pushes onto an existing field array, including an empty one", () => {
    expect(ok({ tags: ["a"] }, append(["tags"], "b"))).toEqual({ tags: ["a", "b"] });
    expect(ok({ tags: [] }, append(["tags"], "a"))).toEqual({ tags: ["a"] });
  });

  it("concatenates an existing string field, with a readable mismatch message", () => {
    expect(ok({ s: "ab" }, append(["s"], "c"))).toEqual({ s: "abc" });
    const error = fails({ s: "ab" }, append(["s"], [1]), "append.type_mismatch");
    expect(error.message).toBe("cannot append an array to 's': it is a string");
  });

  it("initialises a missing first-level field like null", () => {
    expect(ok({}, append(["s"], "x"))).toEqual({ s: "x" });
    expect(ok({}, append(["l"], 1))).toEqual({ l: [1] });
    expect(ok(undefined, append(["l"], [1]))).toEqual({ l: [[1]] });
  });

  it("turns a null field into the string or a one-element array", () => {
    expect(ok({ f: null }, append(["f"], "x"))).toEqual({ f: "x" });
    expect(ok({ f: null }, append(["f"], false))).toEqual({ f: [false] });
  });

  it("fails on object, number and boolean fields", () => {
    for (const field of [{}, 1, true] as JsonValue[]) fails({ f: field }, append(["f"], 1), "append.type_mismatch");
  });

  it("fails with target_not_object on a non-object root for key paths", () => {
    fails("s", append(["a"], 1), "append.target_not_object");
    fails([1], append(["a", "b"], 1), "append.target_not_object");
  });

  it("creates intermediates and always starts a missing nested leaf as a list", () => {
    expect(ok({}, append(["a", "b", "c"], "x"))).toEqual({ a: { b: { c: ["x"] } } });
    expect(ok({ a: 5 }, append(["a", "b"], 1))).toEqual({ a: { b: [1] } });
  });

  it("follows the target matrix for an existing nested leaf", () => {
    expect(ok({ a: { b: [1] } }, append(["a", "b"], 2))).toEqual({ a: { b: [1, 2] } });
    expect(ok({ a: { b: "x" } }, append(["a", "b"], "y"))).toEqual({ a: { b: "xy" } });
    expect(ok({ a: { b: null } }, append(["a", "b"], "y"))).toEqual({ a: { b: "y" } });
    expect(ok({ a: { b: null } }, append(["a", "b"], 1))).toEqual({ a: { b: [1] } });
    fails({ a: { b: 1 } }, append(["a", "b"], 1), "append.type_mismatch");
  });

  it("does not alias the appended value across ops", () => {
    const item = { n: 1 };
    const value = ok({ l: [] }, append(["l"], item), append(["l"], item)) as { l: { n: number }[] };
    value.l[0].n = 99;
    expect(value.l[1]).toEqual({ n: 1 });
    expect(item).toEqual({ n: 1 });
  });
});

describe("remove", () => {
  it("removing the root gives null", () => {
    expect(ok({ a: 1 }, remove([]))).toBeNull();
    expect(ok(undefined, remove([]))).toBeNull();
  });

  it("removes a key and keeps siblings", () => {
    expect(ok({ a: 1, b: 2 }, remove(["a"]))).toEqual({ b: 2 });
  });

  it("is silent for a missing key", () => {
    expect(ok({ a: 1 }, remove(["zzz"]))).toEqual({ a: 1 });
  });

  it("fails with target_not_object on a non-object root", () => {
    for (const root of ["s", 1, null, [1]] as JsonValue[]) fails(root, remove(["a"]), "remove.target_not_object");
    fails(null, remove(["a", "b"]), "remove.target_not_object");
  });

  it("removes a nested key", () => {
    expect(ok({ a: { b: 1, c: 2 } }, remove(["a", "b"]))).toEqual({ a: { c: 2 } });
  });

  it("is a silent no-op when a parent is missing or not an object", () => {
    for (const current of [{}, { a: "s" }, { a: null }, { a: [1] }, { a: { x: 1 } }] as JsonValue[]) {
      expect(ok(current, remove(["a", "b", "c"]))).toEqual(current);
    }
  });
});

describe("path validation", () => {
  const ops: Array<(path: string[]) => UpdateOp> = [
    (p) => set(p, 1),
    (p) => merge(p, { a: 1 }),
    (p) => inc(p, 1n),
    (p) => dec(p, 1n),
    (p) => append(p, 1),
    (p) => remove(p),
  ];

  it("accepts 32 segments", () => {
    const path = Array.from({ length: 32 }, (_, i) => `k${i}`);
    const value = ok({}, set(path, 1));
    let node: JsonValue = value;
    for (const key of path) node = (node as Record<string, JsonValue>)[key];
    expect(node).toBe(1);
  });

  it("rejects 33 segments with <op>.path.too_deep", () => {
    const path = Array.from({ length: 33 }, (_, i) => `k${i}`);
    for (const make of ops) fails({}, make(path), `${make(path).type}.path.too_deep`);
  });

  it("rejects an empty segment anywhere with <op>.path.empty_segment", () => {
    for (const make of ops) {
      fails({}, make([""]), `${make([]).type}.path.empty_segment`);
      fails({}, make(["a", "", "b"]), `${make([]).type}.path.empty_segment`);
    }
  });

  it("accepts a 256-byte segment and rejects 257 bytes, counting UTF-8", () => {
    expect(ok({}, set(["a".repeat(256)], 1))).toEqual({ ["a".repeat(256)]: 1 });
    fails({}, set(["a".repeat(257)], 1), "set.path.segment_too_long");
    // "é" is 2 bytes: 128 of them is 256 bytes, plus one ASCII char is 257.
    expect(ok({}, set(["é".repeat(128)], 1))).toEqual({ ["é".repeat(128)]: 1 });
    fails({}, merge(["x", "é".repeat(128) + "a"], {}), "merge.path.segment_too_long");
    // "😀" is 4 bytes in 2 UTF-16 units: 65 of them is 260 bytes but only 130 units.
    fails({}, append(["😀".repeat(65)], 1), "append.path.segment_too_long");
    for (const make of ops) fails({}, make(["€".repeat(86)]), `${make([]).type}.path.segment_too_long`);
  });

  it("rejects __proto__, constructor and prototype for every op", () => {
    for (const make of ops) {
      for (const key of ["__proto__", "constructor", "prototype"]) {
        fails({}, make([key]), `${make([]).type}.path.proto_polluted`);
        fails({}, make(["ok", key]), `${make([]).type}.path.proto_polluted`);
      }
    }
    expect(({} as Record<string, unknown>).a).toBeUndefined();
  });

  it("validates the path before touching a non-object root", () => {
    fails("text", merge(["__proto__"], { a: 1 }), "merge.path.proto_polluted");
  });

  it("names the path and op in error messages", () => {
    expect(fails({}, set(["a", "__proto__"], 1), "set.path.proto_polluted").message).toContain("[a, __proto__]");
    expect(fails(3, remove(["x"]), "remove.target_not_object").message).toContain("a number");
    expect(fails(true, inc([], 1n), "increment.not_number").message).toContain("root");
  });
});

describe("sequencing and purity", () => {
  it("keeps op indexes on partial failure and still applies later ops", () => {
    const outcome = applyUpdateOps({ n: 1, s: "x" }, [
      inc(["n"], 1n),
      inc(["s"], 1n),
      set(["__proto__"], 1),
      append(["s"], "y"),
      merge([], null),
      set(["done"], true),
    ]);
    expect(outcome.value).toEqual({ n: 2, s: "xy", done: true });
    expect(outcome.applied).toBe(3);
    expect(outcome.errors.map((e) => [e.opIndex, e.code])).toEqual([
      [1, "increment.not_number"],
      [2, "set.path.proto_polluted"],
      [4, "merge.value.not_an_object"],
    ]);
  });

  it("counts a silent no-op as applied", () => {
    expect(applyUpdateOps(5, [merge([], { a: 1 })]).applied).toBe(1);
    expect(applyUpdateOps({}, [remove(["missing"])]).applied).toBe(1);
  });

  it("returns {} with no errors for no ops on a missing item", () => {
    expect(applyUpdateOps(undefined, [])).toEqual({ value: {}, errors: [], applied: 0 });
  });

  it("a failed op on a missing item leaves it missing for root increment", () => {
    const outcome = applyUpdateOps(undefined, [set(["", "x"], 1), inc([], 7n)]);
    expect(outcome.value).toBe(7);
    expect(outcome.applied).toBe(1);
  });

  it("a successful op makes the item exist for later root ops", () => {
    const outcome = applyUpdateOps(undefined, [remove([]), inc([], 1n), append([], "s")]);
    expect(outcome.value).toBe("s");
    expect(outcome.errors.map((e) => e.code)).toEqual(["increment.not_number"]);
  });

  it("does not mutate the current value or the ops", () => {
    const current: JsonValue = { a: { b: [1] }, n: 1, s: "x", gone: 1 };
    const ops: UpdateOp[] = [
      append(["a", "b"], { deep: [1] }),
      merge(["a"], { c: { d: 1 } }),
      inc(["n"], 1n),
      append(["s"], "y"),
      remove(["gone"]),
      set(["a", "b", "z"], 1),
    ];
    const currentSnapshot = structuredClone(current);
    const opsSnapshot = structuredClone(ops);
    const outcome = applyUpdateOps(current, ops);
    expect(outcome.errors).toEqual([]);
    expect(current).toEqual(currentSnapshot);
    expect(ops).toEqual(opsSnapshot);
  });

  it("does not share structure with set or merge values", () => {
    const payload = { inner: { x: 1 } };
    const value = ok({}, set(["a"], payload), merge(["b"], payload)) as Record<string, { inner: { x: number } }>;
    value.a.inner.x = 2;
    value.b.inner.x = 3;
    expect(payload).toEqual({ inner: { x: 1 } });
  });

  it("copies own __proto__ keys of the current value safely", () => {
    const current = JSON.parse('{"__proto__":{"x":1},"a":1}') as JsonValue;
    const value = ok(current, set(["b"], 2)) as Record<string, JsonValue>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(JSON.stringify(value)).toBe('{"__proto__":{"x":1},"a":1,"b":2}');
  });
});
