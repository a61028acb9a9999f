/** Plain JSON values to and from the wire's `google.protobuf.Value`, and 64-bit fields to numbers. */
import { fromJson, toJson } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import type { JsonObject, JsonValue } from "../core/json.js";
import { ErrorCode, StreamError } from "./errors.js";

export type { JsonObject, JsonValue };

export function toValue(value: JsonValue): Value {
  if (value === undefined) throw new StreamError(ErrorCode.InvalidArgument, "a value is required (use null for none)");
  try {
    return fromJson(ValueSchema, value);
  } catch (error) {
    throw new StreamError(ErrorCode.InvalidArgument, `not a JSON value: ${(error as Error).message}`);
  }
}

export function fromValue(value: Value | undefined): JsonValue {
  return value === undefined ? null : (toJson(ValueSchema, value) as JsonValue);
}

export function optionalValue(value: Value | undefined): JsonValue | undefined {
  return value === undefined ? undefined : (toJson(ValueSchema, value) as JsonValue);
}

/**
 * Offsets, revisions and times are uint64/int64 on the wire; every one the server
 * produces is a safe integer (offsets and revisions grow by one per write, times are
 * milliseconds), so they are plain numbers here.
 */
export function toNumber(value: bigint): number {
  return Number(value);
}
