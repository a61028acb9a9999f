import { create, fromJson, toJson, type JsonObject } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import type { JsonValue } from "../../src/index.js";
import { UpdateOpSchema, type UpdateOp } from "../../gen/iii/stream/v1/stream_pb.js";

/** A JSON value as the google.protobuf.Value a request carries. */
export function value(json: JsonValue): Value {
  return fromJson(ValueSchema, json);
}

/** A response's google.protobuf.Value as JSON; undefined when the field is absent. */
export function json(message: Value | undefined): JsonValue | undefined {
  return message === undefined ? undefined : (toJson(ValueSchema, message) as JsonValue);
}

/** UpdateOp builders, one per case of the oneof. */
export const op = {
  set: (path: string[], json: JsonValue): UpdateOp =>
    create(UpdateOpSchema, { op: { case: "set", value: { path, value: value(json) } } }),
  /** `json` undefined leaves the Struct unset. */
  merge: (path: string[], json: JsonObject | undefined): UpdateOp =>
    create(UpdateOpSchema, { op: { case: "merge", value: { path, value: json } } }),
  increment: (path: string[], by: bigint | number): UpdateOp =>
    create(UpdateOpSchema, { op: { case: "increment", value: { path, by: BigInt(by) } } }),
  decrement: (path: string[], by: bigint | number): UpdateOp =>
    create(UpdateOpSchema, { op: { case: "decrement", value: { path, by: BigInt(by) } } }),
  append: (path: string[], json: JsonValue): UpdateOp =>
    create(UpdateOpSchema, { op: { case: "append", value: { path, value: value(json) } } }),
  remove: (path: string[]): UpdateOp => create(UpdateOpSchema, { op: { case: "remove", value: { path } } }),
  /** An op with no case set: what an unknown op looks like once decoded. */
  none: (): UpdateOp => create(UpdateOpSchema, {}),
};
