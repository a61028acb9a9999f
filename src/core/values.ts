import { ErrorCode, invalidArgument, StreamError } from "./errors.js";
import type { JsonValue } from "./json.js";

/** Default limit of one stored value, and of one request, in bytes. */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;

/**
 * Deepest nesting of arrays and objects in a stored value (each counts one level).
 * Protobuf decoders stop at 100 nested messages by default and every level of a
 * google.protobuf.Value costs two, so deeper values, though accepted over JSON, could
 * not be read back by binary and gRPC clients (a whole List or Subscribe would fail).
 */
export const MAX_VALUE_DEPTH = 32;

/**
 * Checks a value before it is stored or sent: within `maxBytes` of JSON, and only
 * content every client can read back.
 */
export function checkValue(maxBytes: number, field: string, value: JsonValue): void {
  const scan = new ValueScan();
  scan.visit(value, 0);
  // The common value is far below the limit by the scan's bound alone, so it is never
  // serialised; anything else is measured exactly, and the size is reported first.
  if (scan.problem === undefined && scan.boundBytes <= maxBytes) return;
  const bytes = Buffer.byteLength(JSON.stringify(value), "utf8");
  if (bytes > maxBytes) {
    throw new StreamError(ErrorCode.ResourceExhausted, `${field} is ${bytes} bytes of JSON; the limit is ${maxBytes}`);
  }
  if (scan.problem !== undefined) throw invalidArgument(`${field} contains ${scan.problem}`);
}

export function checkRevision(ifRevision: number | undefined): void {
  if (ifRevision !== undefined && !(Number.isSafeInteger(ifRevision) && ifRevision >= 0)) {
    throw invalidArgument("if_revision must be a non-negative integer");
  }
}

/** Characters of the longest number JSON.stringify writes, e.g. -0.0000012345678901234567. */
const MAX_NUMBER_CHARS = 25;

/**
 * One walk over a value: the first thing that makes it unfit to store, if any (a lone
 * surrogate, which no binary client could read back; a number JSON cannot carry;
 * nesting past MAX_VALUE_DEPTH), and an upper bound of its size as UTF-8 JSON. The
 * bound counts 6 bytes per UTF-16 unit of a string (a \uXXXX escape; no character
 * takes more). The recursion stops at MAX_VALUE_DEPTH, so deep values cannot
 * overflow the stack.
 */
class ValueScan {
  boundBytes = 0;
  problem: string | undefined;

  /** False once a problem is found, which ends the walk. */
  visit(value: JsonValue, depth: number): boolean {
    if (typeof value === "string") {
      this.boundBytes += 2 + 6 * value.length;
      if (value.isWellFormed()) return true;
      this.problem = "a string that is not valid UTF-8";
      return false;
    }
    if (typeof value === "number") {
      this.boundBytes += MAX_NUMBER_CHARS;
      if (Number.isFinite(value)) return true;
      this.problem = "a number that is NaN or infinite";
      return false;
    }
    if (value === null || typeof value !== "object") {
      this.boundBytes += 5;
      return true;
    }
    if (depth === MAX_VALUE_DEPTH) {
      this.problem = `arrays or objects nested deeper than ${MAX_VALUE_DEPTH} levels`;
      return false;
    }
    if (Array.isArray(value)) {
      this.boundBytes += 2 + value.length;
      for (let i = 0; i < value.length; i++) if (!this.visit(value[i], depth + 1)) return false;
      return true;
    }
    this.boundBytes += 2;
    for (const key in value) {
      if (!Object.hasOwn(value, key)) continue;
      // Quotes, colon and comma around the key.
      this.boundBytes += 4 + 6 * key.length;
      if (!key.isWellFormed()) {
        this.problem = "a key that is not valid UTF-8";
        return false;
      }
      if (!this.visit(value[key], depth + 1)) return false;
    }
    return true;
  }
}

