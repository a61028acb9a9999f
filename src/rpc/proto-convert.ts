import { create, fromJson, toJson, type JsonObject as ProtoJsonObject } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import type { ChangeType as CoreChangeType, StoredItem } from "../core/model.js";
import type { JsonValue } from "../core/json.js";
import { invalidArgument } from "../core/errors.js";
import type { UpdateOp } from "../core/update-ops.js";
import { ChangeType, ItemSchema, UpdateOpSchema, type Item, type UpdateOp as ProtoUpdateOp } from "../../gen/iii/stream/v1/stream_pb.js";

/** A request's google.protobuf.Value as plain JSON; rejects unset values and NaN/Infinity. */
export function valueFromProto(field: string, value: Value | undefined, required: boolean): JsonValue {
  if (value === undefined) {
    if (required) throw invalidArgument(`${field} is required`);
    return null;
  }
  try {
    return toJson(ValueSchema, value) as JsonValue;
  } catch (error) {
    throw invalidArgument(`${field} is not a JSON value: ${(error as Error).message}`);
  }
}

export function valueToProto(value: JsonValue): Value;
export function valueToProto(value: JsonValue | undefined): Value | undefined;
export function valueToProto(value: JsonValue | undefined): Value | undefined {
  return value === undefined ? undefined : fromJson(ValueSchema, value);
}

export function itemToProto(item: StoredItem): Item {
  return create(ItemSchema, {
    itemId: item.itemId,
    data: valueToProto(item.data),
    revision: BigInt(item.revision),
    updatedAtMs: BigInt(item.updatedAtMs),
    expiresAtMs: BigInt(item.expiresAtMs ?? 0),
  });
}

export const CHANGE_TYPES: Record<CoreChangeType, ChangeType> = {
  create: ChangeType.CREATE,
  update: ChangeType.UPDATE,
  delete: ChangeType.DELETE,
};

/** Proto update ops as engine ops. An op with nothing set is a bad request as a whole. */
export function updateOpsFromProto(ops: ProtoUpdateOp[]): UpdateOp[] {
  return ops.map((op, index): UpdateOp => {
    const field = `ops[${index}]`;
    switch (op.op.case) {
      case "set":
        return { type: "set", path: op.op.value.path, value: valueFromProto(`${field}.set.value`, op.op.value.value, false) };
      case "merge":
        // An absent struct is reported per op (merge.value.not_an_object), like any other non-object.
        return { type: "merge", path: op.op.value.path, value: op.op.value.value as ProtoJsonObject | undefined };
      case "increment":
        return { type: "increment", path: op.op.value.path, by: op.op.value.by };
      case "decrement":
        return { type: "decrement", path: op.op.value.path, by: op.op.value.by };
      case "append":
        return { type: "append", path: op.op.value.path, value: valueFromProto(`${field}.append.value`, op.op.value.value, false) };
      case "remove":
        return { type: "remove", path: op.op.value.path };
      default:
        throw invalidArgument(`${field} names no operation (expected one of set, merge, increment, decrement, append, remove)`);
    }
  });
}

/** Engine ops (ones that applied, so a merge's value is an object) as proto update ops, for delta changes. */
export function updateOpsToProto(ops: readonly UpdateOp[]): ProtoUpdateOp[] {
  return ops.map((op) => {
    switch (op.type) {
      case "set":
      case "append":
        return create(UpdateOpSchema, { op: { case: op.type, value: { path: op.path, value: valueToProto(op.value) } } });
      case "merge":
        return create(UpdateOpSchema, { op: { case: "merge", value: { path: op.path, value: op.value as ProtoJsonObject } } });
      case "increment":
      case "decrement":
        return create(UpdateOpSchema, { op: { case: op.type, value: { path: op.path, by: op.by } } });
      case "remove":
        return create(UpdateOpSchema, { op: { case: "remove", value: { path: op.path } } });
    }
  });
}

/** A uint64 request field as a number; values past 2^53-1 cannot be offsets or revisions. */
export function countFromProto(field: string, value: bigint | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument(`${field} is out of range`);
  return Number(value);
}

/**
 * `ttl_ms` as a number. A value past 2^53-1 is far beyond the engine's limit, which
 * it names (MAX_TTL_MS), so it is passed on as such rather than refused as out of range.
 */
export function ttlFromProto(value: bigint | undefined): number | undefined {
  if (value === undefined) return undefined;
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}
