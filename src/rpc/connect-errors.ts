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
