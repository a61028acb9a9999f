/** Any JSON value, as stored and delivered. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/**
 * The JSON type name used in error messages: null, boolean, number, string, array or
 * object. It takes any value because update ops describe input not yet known to be
 * JSON (an absent one is "undefined").
 */
export function jsonTypeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
