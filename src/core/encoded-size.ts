import type { JsonValue } from "./json.js";
import type { StoredItem } from "./model.js";

/**
 * Bytes a message adds beside its values on any wire (field tags, revision, offsets,
 * timestamps, the stream socket's wrapper): an over-estimate for small messages, so
 * that many tiny items or changes are not counted as nearly free.
 */
export const MESSAGE_OVERHEAD_BYTES = 64;
/** The same for one item inside a snapshot or a List page. */
export const ITEM_OVERHEAD_BYTES = 32;

/**
 * An estimate of what an item costs encoded, in JSON or in protobuf (a protobuf Value
 * of a JSON text is about as long as the text): the unit of snapshot chunks and List
 * pages. One serialisation, made once per item of a chunk that every subscriber shares.
 */
export function itemBytes(item: StoredItem): number {
  return jsonLength(item.data) + item.itemId.length + ITEM_OVERHEAD_BYTES;
}

/** The length of a value's JSON text, without serialising the common small values. */
export function jsonLength(value: JsonValue): number {
  // Strings and numbers, the most common small values, without a serialisation.
  if (typeof value === "string") return value.length + 2;
  if (typeof value === "number" || typeof value === "boolean" || value === null) return 8;
  return JSON.stringify(value).length;
}
