/**
 * Update ops as JSON, for the stores that keep a change's ops in their history (the
 * file adapter's rows, Redis's change messages). The shape is that of the proto3 JSON
 * mapping of `UpdateOp` (`{"increment": {"path": ["n"], "by": "1"}}`), so a stored
 * change reads like the wire: amounts are decimal strings, since JSON numbers lose
 * int64 digits.
 */
import { isJsonObject, type JsonObject, type JsonValue } from "./json.js";
import type { UpdateOp } from "./update-ops.js";

export function updateOpsToJson(ops: readonly UpdateOp[]): JsonValue[] {
  return ops.map((op): JsonValue => {
    switch (op.type) {
      case "set":
      case "append":
        return { [op.type]: { path: op.path, value: op.value } };
      case "merge":
        // Only an applied merge is ever kept, and its value was a plain object then.
        return { merge: { path: op.path, value: op.value as JsonObject } };
      case "increment":
      case "decrement":
        return { [op.type]: { path: op.path, by: op.by.toString() } };
      case "remove":
        return { remove: { path: op.path } };
    }
  });
}

/** The ops `updateOpsToJson` gave; undefined when the text is not such a list (a record of another version). */
export function updateOpsFromJson(json: JsonValue): UpdateOp[] | undefined {
  if (!Array.isArray(json)) return undefined;
  const ops: UpdateOp[] = [];
  for (const entry of json) {
    if (!isJsonObject(entry)) return undefined;
    const [type] = Object.keys(entry);
    const body = entry[type];
    if (!isJsonObject(body) || !Array.isArray(body.path) || !body.path.every((segment) => typeof segment === "string")) return undefined;
    const path = body.path as string[];
    switch (type) {
      case "set":
      case "append":
        if (!("value" in body)) return undefined;
        ops.push({ type, path, value: body.value });
        break;
      case "merge":
        ops.push({ type, path, value: body.value });
        break;
      case "increment":
      case "decrement":
        if (typeof body.by !== "string" || !/^-?\d+$/.test(body.by)) return undefined;
        ops.push({ type, path, by: BigInt(body.by) });
        break;
      case "remove":
        ops.push({ type, path });
        break;
      default:
        return undefined;
    }
  }
  return ops;
}
