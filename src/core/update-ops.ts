/**
 * Partial-update operations on a stored JSON item (set, merge, increment,
 * decrement, append, remove). Pure: no I/O, never mutates its inputs.
 *
 * Ops apply in order on a private copy, best effort per op: an op that fails is
 * reported with its index and skipped without having changed anything, and the
 * following ops still apply.
 *
 * The client library bundles this file to apply delta changes exactly as the server
 * applied the update, in browsers too: it must import nothing but json.ts.
 */
import { isJsonObject, jsonTypeName, type JsonObject, type JsonValue } from "./json.js";

export type UpdateOp =
  | { type: "set"; path: string[]; value: JsonValue }
  | { type: "merge"; path: string[]; value: unknown } // must be a plain object to be valid
  | { type: "increment"; path: string[]; by: bigint }
  | { type: "decrement"; path: string[]; by: bigint }
  | { type: "append"; path: string[]; value: JsonValue }
  | { type: "remove"; path: string[] };

export interface UpdateOpError {
  opIndex: number;
  code: string;
  message: string;
}

export interface UpdateOutcome {
  value: JsonValue;
  errors: UpdateOpError[];
  applied: number;
}

export const UPDATE_LIMITS = {
  maxPathSegments: 32,
  maxSegmentBytes: 256,
  maxMergeDepth: 16,
  maxMergeKeys: 1024,
} as const;

const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const MAX_SAFE_BIG = BigInt(MAX_SAFE);

/** The document being updated. `exists` is false only while the item was missing and no op has succeeded yet. */
interface Doc {
  root: JsonValue;
  exists: boolean;
}

/**
 * Aborts the current op. A plain class rather than an Error: failures are
 * expected control flow, so a stack trace would be wasted work.
 */
class OpFailure {
  constructor(
    readonly code: string,
    readonly message: string,
  ) {}
}

/** `current` is undefined when the item does not exist. Never mutates `current` or the ops. */
export function applyUpdateOps(current: JsonValue | undefined, ops: readonly UpdateOp[]): UpdateOutcome {
  const doc: Doc = current === undefined ? { root: {}, exists: false } : { root: cloneJson(current), exists: true };
  const errors: UpdateOpError[] = [];
  let applied = 0;
  ops.forEach((op, opIndex) => {
    try {
      applyOp(doc, op);
      applied++;
      doc.exists = true;
    } catch (failure) {
      if (!(failure instanceof OpFailure)) throw failure;
      errors.push({ opIndex, code: failure.code, message: failure.message });
    }
  });
  return { value: doc.root, errors, applied };
}

function applyOp(doc: Doc, op: UpdateOp): void {
  checkPath(op.type, op.path);
  switch (op.type) {
    case "set": {
      const value = op.value;
      return updateAt(doc, "set", op.path, () => cloneJson(value));
    }
    case "merge":
      return applyMerge(doc, op.path, checkMergeValue(op.value));
    case "increment":
    case "decrement":
      return applyAddition(doc, op.type, op.path, op.by);
    case "append":
      return applyAppend(doc, op.path, op.value);
    case "remove":
      return applyRemove(doc, op.path);
  }
}

// ---------------------------------------------------------------- operations

function applyMerge(doc: Doc, path: readonly string[], source: JsonObject): void {
  if (path.length === 0) {
    // A root merge into a scalar or array is deliberately a silent no-op (reference behaviour).
    if (isJsonObject(doc.root)) mergeInto(doc.root, source);
    return;
  }
  if (!isJsonObject(doc.root)) doc.root = {};
  mergeInto(ensureObjectPath(doc.root, path), source);
}

function applyAddition(doc: Doc, type: "increment" | "decrement", path: readonly string[], by: bigint): void {
  if (!isSafeBigInt(by)) {
    throw new OpFailure(
      `${type}.out_of_range`,
      `cannot ${type} ${describePath(path)} by ${by}: the amount is outside ±${MAX_SAFE}`,
    );
  }
  const delta = type === "increment" ? by : -by;
  updateAt(doc, type, path, (old) => {
    if (old === undefined) return Number(delta);
    if (typeof old !== "number") {
      throw new OpFailure(
        `${type}.not_number`,
        `cannot ${type} ${describePath(path)}: it is ${withArticle(jsonTypeName(old))}, not a number`,
      );
    }
    const sum = addExactly(old, delta);
    if (sum === undefined) {
      throw new OpFailure(
        `${type}.out_of_range`,
        `cannot ${type} ${describePath(path)}: the result would be outside ±${MAX_SAFE}`,
      );
    }
    return sum;
  });
}

function applyAppend(doc: Doc, path: readonly string[], value: JsonValue): void {
  updateAt(doc, "append", path, (old) => {
    // A missing nested leaf is always a list; a missing root or first-level field starts out like null.
    if (old === undefined && path.length > 1) return [cloneJson(value)];
    return appendTo(old ?? null, value, path);
  });
}

function applyRemove(doc: Doc, path: readonly string[]): void {
  if (path.length === 0) {
    // Removing the root keeps the item, with a null value.
    doc.root = null;
    return;
  }
  const root = requireObjectRoot(doc, "remove", path);
  const parent = readPath(root, path.slice(0, -1));
  if (isJsonObject(parent)) delete parent[path[path.length - 1]];
}

// ------------------------------------------------------------------ helpers

/**
 * Replaces the value at `path` with `next(old)`, where `old` is undefined when
 * the item or the field is missing. `next` runs before anything is written, so
 * a failure it throws leaves the document untouched.
 */
function updateAt(
  doc: Doc,
  type: UpdateOp["type"],
  path: readonly string[],
  next: (old: JsonValue | undefined) => JsonValue,
): void {
  if (path.length === 0) {
    doc.root = next(doc.exists ? doc.root : undefined);
    return;
  }
  const root = requireObjectRoot(doc, type, path);
  const value = next(readPath(root, path));
  setOwn(ensureObjectPath(root, path.slice(0, -1)), path[path.length - 1], value);
}

function requireObjectRoot(doc: Doc, type: UpdateOp["type"], path: readonly string[]): JsonObject {
  if (isJsonObject(doc.root)) return doc.root;
  throw new OpFailure(
    `${type}.target_not_object`,
    `cannot ${type} ${describePath(path)}: the item is ${withArticle(jsonTypeName(doc.root))}, not an object`,
  );
}

/** The value at `path`, or undefined when it or any parent is missing or not an object. */
function readPath(root: JsonObject, path: readonly string[]): JsonValue | undefined {
  let node: JsonValue | undefined = root;
  for (const segment of path) {
    if (!isJsonObject(node)) return undefined;
    node = ownValue(node, segment);
  }
  return node;
}

/** Walks `segments`, creating `{}` for each step that is missing or not an object, and returns the last object. */
function ensureObjectPath(root: JsonObject, segments: readonly string[]): JsonObject {
  let node = root;
  for (const segment of segments) {
    const child = ownValue(node, segment);
    if (isJsonObject(child)) {
      node = child;
    } else {
      const fresh: JsonObject = {};
      setOwn(node, segment, fresh);
      node = fresh;
    }
  }
  return node;
}

/** The append matrix shared by every path shape once the target value is known. */
function appendTo(target: JsonValue, value: JsonValue, path: readonly string[]): JsonValue {
  if (Array.isArray(target)) {
    target.push(cloneJson(value));
    return target;
  }
  if (typeof target === "string" && typeof value === "string") return target + value;
  if (target === null) return typeof value === "string" ? value : [cloneJson(value)];
  throw new OpFailure(
    "append.type_mismatch",
    `cannot append ${withArticle(jsonTypeName(value))} to ${describePath(path)}: it is ${withArticle(jsonTypeName(target))}`,
  );
}

/** Shallow merge: top-level keys of `source` overwrite those of `target`, siblings are kept. */
function mergeInto(target: JsonObject, source: JsonObject): void {
  for (const key of Object.keys(source)) setOwn(target, key, cloneJson(source[key]));
}

/**
 * Adds an int64 delta to a JSON number, returning undefined when the result
 * leaves the range where doubles are exact. Integers go through bigint so that
 * large values do not pick up rounding errors.
 */
function addExactly(current: number, delta: bigint): number | undefined {
  if (Number.isInteger(current)) {
    const sum = BigInt(current) + delta;
    return isSafeBigInt(sum) ? Number(sum) : undefined;
  }
  const sum = current + Number(delta);
  // The comparison is false for NaN and ±Infinity too.
  return Math.abs(sum) <= MAX_SAFE ? sum : undefined;
}

function isSafeBigInt(value: bigint): boolean {
  return value >= -MAX_SAFE_BIG && value <= MAX_SAFE_BIG;
}

// ---------------------------------------------------------------- validation

function checkPath(type: UpdateOp["type"], path: readonly string[]): void {
  const fail = (problem: string, message: string): never => {
    throw new OpFailure(`${type}.path.${problem}`, `${type} path ${message}`);
  };
  const { maxPathSegments, maxSegmentBytes } = UPDATE_LIMITS;
  if (path.length > maxPathSegments) {
    fail("too_deep", `has ${path.length} segments; at most ${maxPathSegments} are allowed`);
  }
  if (path.includes("")) fail("empty_segment", `${describePath(path)} has an empty segment`);
  const longIndex = path.findIndex((segment) => utf8LengthExceeds(segment, maxSegmentBytes));
  if (longIndex >= 0) {
    fail("segment_too_long", `segment ${longIndex} is longer than ${maxSegmentBytes} UTF-8 bytes`);
  }
  const forbidden = path.find((segment) => FORBIDDEN_KEYS.has(segment));
  if (forbidden !== undefined) fail("proto_polluted", `${describePath(path)} uses the forbidden key '${forbidden}'`);
}

function checkMergeValue(value: unknown): JsonObject {
  const fail = (problem: string, message: string): never => {
    throw new OpFailure(`merge.value.${problem}`, `merge value ${message}`);
  };
  const { maxMergeKeys, maxMergeDepth } = UPDATE_LIMITS;
  if (!isPlainObject(value)) return fail("not_an_object", `must be an object, got ${withArticle(jsonTypeName(value))}`);
  const keys = Object.keys(value);
  if (keys.length > maxMergeKeys) {
    fail("too_many_keys", `has ${keys.length} keys; at most ${maxMergeKeys} are allowed`);
  }
  const forbidden = keys.find((key) => FORBIDDEN_KEYS.has(key));
  if (forbidden !== undefined) fail("proto_polluted", `uses the forbidden key '${forbidden}'`);
  if (exceedsDepth(value, maxMergeDepth)) fail("too_deep", `is nested deeper than ${maxMergeDepth} levels`);
  return value as JsonObject;
}

/** Objects and arrays count one level each, scalars none; stops as soon as the budget is spent. */
function exceedsDepth(value: unknown, budget: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (budget === 0) return true;
  const children: unknown[] = Array.isArray(value) ? value : Object.values(value);
  return children.some((child) => exceedsDepth(child, budget - 1));
}

function utf8LengthExceeds(text: string, limit: number): boolean {
  // Every UTF-16 unit encodes to at least one byte, so long strings are rejected without scanning.
  if (text.length > limit) return true;
  let bytes = 0;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes > limit;
}

// ------------------------------------------------------------ JSON plumbing

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Reads only own properties, so keys like `toString` are not found on the prototype. */
function ownValue(object: JsonObject, key: string): JsonValue | undefined {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/** Assigning `__proto__` would change the prototype; defining it stores a plain data property instead. */
function setOwn(object: JsonObject, key: string, value: JsonValue): void {
  if (key === "__proto__") {
    Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

function cloneJson(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(cloneJson);
  if (!isJsonObject(value)) return value;
  const copy: JsonObject = {};
  for (const key of Object.keys(value)) setOwn(copy, key, cloneJson(value[key]));
  return copy;
}

function withArticle(name: string): string {
  if (name === "null" || name === "undefined") return name;
  return /^[aeiou]/.test(name) ? `an ${name}` : `a ${name}`;
}

/** `root`, `'key'` for a first-level key, or `[a, b]` for a nested path. */
function describePath(path: readonly string[]): string {
  if (path.length === 0) return "root";
  if (path.length === 1) return `'${path[0]}'`;
  return `[${path.join(", ")}]`;
}
