import { createHash } from "node:crypto";
import type { JsonValue } from "./json.js";
import { invalidArgument } from "./errors.js";
import { MAX_REQUEST_ID_BYTES } from "./item-store.js";
import type { UpdateOpError } from "./update-ops.js";

/**
 * Default `idempotency_window_ms`: ten minutes, far longer than any client retries a
 * request it got no answer to, short enough that a busy group's records stay few.
 */
export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 10 * 60 * 1000;

/** Checks a request id (see MAX_REQUEST_ID_BYTES); `undefined` (none given) passes. */
export function checkRequestId(requestId: string | undefined): void {
  if (requestId === undefined) return;
  if (requestId.length === 0) throw invalidArgument("request_id must not be empty; leave it out for a request that is not retried");
  const bytes = Buffer.byteLength(requestId, "utf8");
  if (bytes > MAX_REQUEST_ID_BYTES) throw invalidArgument(`request_id is ${bytes} bytes; the limit is ${MAX_REQUEST_ID_BYTES}`);
}

/**
 * Names a request's body (its method and every field but the request id), so that a
 * retry can be told from another request that reuses the id. A hash: records stay
 * small however large the values written.
 */
export function fingerprint(method: string, body: unknown): string {
  const text = JSON.stringify([method, body], (_key, value: unknown) => (typeof value === "bigint" ? `${value}n` : value));
  return createHash("sha256").update(text).digest("base64url");
}

/** What one write of a request answered, as a retry must answer it again. */
export interface RecordedResult {
  oldValue: JsonValue | undefined;
  newValue: JsonValue | undefined;
  revision: number;
  /**
   * How far below the group offset after the commit the write's offset is: 0 for the
   * batch's last change, 1 for the one before, ...; a write that changed nothing has the
   * offset of the change before it (or the group's before the batch).
   */
  offsetBelow: number;
  errors: UpdateOpError[];
}

interface EncodedResult {
  o?: JsonValue;
  n?: JsonValue;
  r: number;
  d: number;
  e?: UpdateOpError[];
}

/** The response part of a RequestRecord: JSON text without raw newlines (see the Redis record format). */
export function encodeResults(results: readonly RecordedResult[]): string {
  const encoded: EncodedResult[] = results.map((result) => ({
    o: result.oldValue,
    n: result.newValue,
    r: result.revision,
    d: result.offsetBelow,
    ...(result.errors.length > 0 ? { e: result.errors } : {}),
  }));
  return JSON.stringify(encoded);
}

export function decodeResults(response: string): RecordedResult[] {
  return (JSON.parse(response) as EncodedResult[]).map((result) => ({
    oldValue: result.o,
    newValue: result.n,
    revision: result.r,
    offsetBelow: result.d,
    errors: result.e ?? [],
  }));
}
