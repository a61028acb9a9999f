/**
 * The reference's `stream::*` functions (spec section 2) on top of the engine, for
 * workers: snake_case JSON inputs (unknown fields ignored) and the reference's exact
 * result shapes. Semantics are the engine's (names are validated, an update where no
 * op applies writes nothing).
 */
import { isJsonObject, type JsonObject, type JsonValue } from "../core/json.js";
import type { StreamEngine } from "../core/engine.js";
import { ErrorCode, StreamError } from "../core/errors.js";
import type { UpdateOp } from "../core/update-ops.js";
import { listWholeGroup, listWholeStore, listWholeStream } from "./unpaged-lists.js";

/** The error object of an invocation result, as the reference sends it. */
export interface ErrorBody {
  code: string;
  message: string;
}

/** A call's outcome: `result` undefined means "no result" (the field is left out). */
export type CallOutcome = { result: JsonValue | undefined } | { error: ErrorBody };

type StreamFunction = (engine: StreamEngine, input: JsonObject) => Promise<JsonValue | undefined>;

/** An input that does not have the function's shape (the reference's `deserialization_error`). */
class InputError extends Error {}

const FUNCTIONS: Record<string, StreamFunction> = {
  "stream::set": async (engine, input) => {
    const result = await engine.set(itemKey(input), required(input, "data"), undefined, { ttlMs: optionalTtl(input) });
    return { old_value: result.oldValue ?? null, new_value: result.newValue ?? null };
  },
  "stream::get": async (engine, input) => (await engine.get(itemKey(input)))?.data,
  "stream::delete": async (engine, input) => ({ old_value: (await engine.delete(itemKey(input))).oldValue ?? null }),
  "stream::update": async (engine, input) => {
    const ops = required(input, "ops");
    if (!Array.isArray(ops)) throw new InputError("invalid type for `ops`, expected a sequence");
    const result = await engine.update(itemKey(input), ops.map(updateOp), undefined, { ttlMs: optionalTtl(input) });
    const reply: JsonObject = { old_value: result.oldValue ?? null, new_value: result.newValue ?? null };
    // Left out when empty, as the reference does.
    if (result.errors.length > 0) {
      reply.errors = result.errors.map((e) => ({ op_index: e.opIndex, code: e.code, message: e.message }));
    }
    return reply;
  },
  "stream::send": async (engine, input) => {
    const id = optionalString(input, "id");
    await engine.send({ streamName: string(input, "stream_name"), groupId: string(input, "group_id"), itemId: id }, string(input, "type"), input.data ?? null);
    return null;
  },
  "stream::list": async (engine, input) => listWholeGroup(engine, string(input, "stream_name"), string(input, "group_id")),
  "stream::list_groups": async (engine, input) => listWholeStream(engine, string(input, "stream_name")),
  "stream::list_all": async (engine) => {
    const streams = await listWholeStore(engine);
    return { stream: streams.map((s) => ({ id: s.streamName, groups: s.groups })), count: streams.length };
  },
};

/** The reference's code for a storage failure of each function (note `list`'s). */
const STORE_ERROR_CODES: Record<string, string> = {
  "stream::set": "STREAM_SET_ERROR",
  "stream::get": "STREAM_GET_ERROR",
  "stream::delete": "STREAM_DELETE_ERROR",
  "stream::update": "STREAM_UPDATE_ERROR",
  "stream::send": "STREAM_SEND_ERROR",
  "stream::list": "STREAM_GET_GROUP_ERROR",
  "stream::list_groups": "STREAM_LIST_GROUPS_ERROR",
  "stream::list_all": "STREAM_LIST_ALL_ERROR",
};

export function isStreamFunction(functionId: string): boolean {
  return Object.hasOwn(FUNCTIONS, functionId);
}

/**
 * Runs a `stream::*` function. Errors are the reference's: `deserialization_error`
 * for an input of the wrong shape, `STREAM_*_ERROR` when the store fails; a value
 * the engine refuses gets the engine's code (`invalid_argument`, `resource_exhausted`).
 */
export async function callStreamFunction(engine: StreamEngine, functionId: string, data: JsonValue | undefined): Promise<CallOutcome> {
  try {
    // list_all needs no input at all; the others need their fields.
    const input = data == null && functionId === "stream::list_all" ? {} : data;
    if (!isJsonObject(input)) throw new InputError("invalid type, expected an object");
    return { result: await FUNCTIONS[functionId](engine, input) };
  } catch (error) {
    return { error: errorBody(functionId, error) };
  }
}

function errorBody(functionId: string, error: unknown): ErrorBody {
  if (error instanceof InputError) {
    return { code: "deserialization_error", message: `Failed to deserialize input for ${functionId}: ${error.message}` };
  }
  if (error instanceof StreamError && !isStoreFailure(error.code)) return { code: error.code, message: error.message };
  const reason = error instanceof Error ? error.message : String(error);
  return { code: STORE_ERROR_CODES[functionId], message: reason };
}

function isStoreFailure(code: ErrorCode): boolean {
  return code === ErrorCode.Unavailable || code === ErrorCode.Internal || code === ErrorCode.Aborted;
}

function itemKey(input: JsonObject): { streamName: string; groupId: string; itemId: string } {
  return { streamName: string(input, "stream_name"), groupId: string(input, "group_id"), itemId: string(input, "item_id") };
}

function required(input: JsonObject, field: string): JsonValue {
  const value = input[field];
  if (value === undefined) throw new InputError(`missing field \`${field}\``);
  return value;
}

function string(input: JsonObject, field: string): string {
  const value = required(input, field);
  if (typeof value !== "string") throw new InputError(`invalid type for \`${field}\`, expected a string`);
  return value;
}

function optionalString(input: JsonObject, field: string): string | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new InputError(`invalid type for \`${field}\`, expected a string`);
  return value;
}

/**
 * `ttl_ms`, an addition to the reference's input (see SetRequest.ttl_ms): absent or null
 * for an item that never expires. A number out of range is the engine's to refuse.
 */
function optionalTtl(input: JsonObject): number | undefined {
  const value = input.ttl_ms;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number") throw new InputError("invalid type for `ttl_ms`, expected an integer");
  return value;
}

/**
 * One op in the reference's tagged form. `set`, `increment`, `decrement` and `remove`
 * take one key as a string (`""` = the whole value); `merge` and `append` also take an
 * array of keys, and no path at all. A malformed op fails the whole call, as there.
 */
function updateOp(raw: JsonValue, index: number): UpdateOp {
  if (!isJsonObject(raw)) throw new InputError(`ops[${index}]: invalid type, expected an object`);
  const type = raw.type;
  switch (type) {
    case "set":
      return { type, path: keyPath(raw.path, index), value: raw.value ?? null };
    case "increment":
    case "decrement":
      return { type, path: keyPath(raw.path, index), by: amount(raw.by, index) };
    case "remove":
      return { type, path: keyPath(raw.path, index) };
    case "merge":
      return { type, path: nestedPath(raw.path, index), value: raw.value };
    case "append":
      return { type, path: nestedPath(raw.path, index), value: raw.value ?? null };
    default:
      throw new InputError(`ops[${index}]: unknown variant ${JSON.stringify(type ?? null)}, expected one of set, merge, increment, decrement, append, remove`);
  }
}

function keyPath(path: JsonValue | undefined, index: number): string[] {
  if (typeof path !== "string") throw new InputError(`ops[${index}].path: invalid type, expected a string`);
  return path === "" ? [] : [path];
}

function nestedPath(path: JsonValue | undefined, index: number): string[] {
  if (path === undefined || path === null || path === "") return [];
  if (typeof path === "string") return [path];
  if (Array.isArray(path) && path.every((segment) => typeof segment === "string")) return path as string[];
  throw new InputError(`ops[${index}].path: invalid type, expected a string or a sequence of strings`);
}

function amount(by: JsonValue | undefined, index: number): bigint {
  if (typeof by !== "number" || !Number.isInteger(by)) throw new InputError(`ops[${index}].by: invalid type, expected an integer`);
  return BigInt(by);
}
