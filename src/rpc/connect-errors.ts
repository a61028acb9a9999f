import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorCode, StreamError } from "../core/errors.js";

const CONNECT_CODES: Record<ErrorCode, Code> = {
  [ErrorCode.InvalidArgument]: Code.InvalidArgument,
  [ErrorCode.NotFound]: Code.NotFound,
  [ErrorCode.FailedPrecondition]: Code.FailedPrecondition,
  [ErrorCode.ResourceExhausted]: Code.ResourceExhausted,
  [ErrorCode.Unavailable]: Code.Unavailable,
  [ErrorCode.Unauthenticated]: Code.Unauthenticated,
  [ErrorCode.PermissionDenied]: Code.PermissionDenied,
  [ErrorCode.DeadlineExceeded]: Code.DeadlineExceeded,
  [ErrorCode.Aborted]: Code.Aborted,
  [ErrorCode.Internal]: Code.Internal,
};

/**
 * The edge of the core: a StreamError becomes the ConnectError with the same code. Anything
 * else that is not already a ConnectError (a store's plain Error, a bug) is the server's own
 * failure, INTERNAL by StreamError.from, where Connect alone would call it UNKNOWN.
 */
export function toConnectError(error: unknown): ConnectError {
  // A cancelled call (the client went away) stays CANCELED, as Connect reports it.
  if (error instanceof ConnectError || (error instanceof Error && error.name === "AbortError")) return ConnectError.from(error);
  const normalized = StreamError.from(error);
  return new ConnectError(normalized.message, CONNECT_CODES[normalized.code], undefined, undefined, error);
}

/** Runs a handler and reports any core error it throws with its Connect code. */
export async function guard<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw toConnectError(error);
  }
}

/**
 * A failure to read a request's own bytes, reported as the client's mistake. connect-es
 * 2.1.2 reports a binary message it cannot decode (random bytes, invalid UTF-8 in a
 * string, nesting beyond the decoder's recursion limit) and an undecodable compressed
 * envelope as INTERNAL, though the same mistakes in JSON are INVALID_ARGUMENT; only code
 * that reads nothing but the request may use this, since there INTERNAL can only mean that.
 */
export function asUndecodable(error: unknown): unknown {
  if (!(error instanceof ConnectError) || error.code !== Code.Internal) return error;
  // Connect's decoding errors carry no details; the metadata and the cause are kept.
  return new ConnectError(error.rawMessage, Code.InvalidArgument, error.metadata, undefined, error.cause);
}

const CODE_NAMES = new Map<Code | undefined, string>([[undefined, "ok"]]);
for (const [name, code] of Object.entries(Code)) {
  if (typeof code === "number") CODE_NAMES.set(code, name.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase());
}

/** Connect's wire name of a code ("invalid_argument"); "ok" for none. */
export function codeName(code: Code | undefined): string {
  return CODE_NAMES.get(code) ?? "unknown";
}
