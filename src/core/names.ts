import { invalidArgument } from "./errors.js";

/** Longest stream name, group id or item id, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 256;

/**
 * Checks a stream name, group id or item id: non-empty, well-formed UTF-8, at most
 * 256 bytes. Names are opaque: any character, ':' included, is allowed, because
 * adapters never build keys by joining names with a separator.
 */
export function checkName(field: string, value: unknown): string {
  if (typeof value !== "string") throw invalidArgument(`${field} must be a string`);
  if (value.length === 0) throw invalidArgument(`${field} must not be empty`);
  if (!value.isWellFormed()) throw invalidArgument(`${field} is not valid UTF-8`);
  // A UTF-16 unit takes at most 3 bytes of UTF-8, so most names need no counting.
  if (value.length * 3 > MAX_NAME_BYTES) {
    const bytes = Buffer.byteLength(value, "utf8");
    if (bytes > MAX_NAME_BYTES) {
      throw invalidArgument(`${field} is ${bytes} bytes long; the limit is ${MAX_NAME_BYTES}`);
    }
  }
  return value;
}

/**
 * One string for a group, or for one item of it, to key maps and locks by. Length
 * prefixes keep it unambiguous whatever the names contain; the item id, never empty,
 * comes last as it is, so an item's key never equals its group's.
 */
export function groupKey(streamName: string, groupId: string, itemId?: string): string {
  const group = `${streamName.length}:${streamName}${groupId.length}:${groupId}`;
  return itemId === undefined ? group : group + itemId;
}

/**
 * Byte order of the UTF-8 encoding, the order ListGroups and ListAll promise on every
 * adapter (JavaScript's own string order is by UTF-16 unit, which differs above U+FFFF).
 */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
