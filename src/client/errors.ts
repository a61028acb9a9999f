/**
 * The client's errors: the server's StreamError with its code, whichever wire carried it.
 * The codes are the server's own (`ErrorCode`), so one `switch` serves both sides.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorCode, StreamError } from "../core/errors.js";

export { ErrorCode, StreamError };

const FROM_CONNECT: Partial<Record<Code, ErrorCode>> = {
  [Code.InvalidArgument]: ErrorCode.InvalidArgument,
  [Code.NotFound]: ErrorCode.NotFound,
  [Code.FailedPrecondition]: ErrorCode.FailedPrecondition,
  [Code.ResourceExhausted]: ErrorCode.ResourceExhausted,
  [Code.Unavailable]: ErrorCode.Unavailable,
  [Code.Unauthenticated]: ErrorCode.Unauthenticated,
  [Code.PermissionDenied]: ErrorCode.PermissionDenied,
  [Code.DeadlineExceeded]: ErrorCode.DeadlineExceeded,
  [Code.Aborted]: ErrorCode.Aborted,
};

const CODES = new Set<string>(Object.values(ErrorCode));

/**
 * Any failure of a call as a StreamError. A network failure (refused, reset, cut)
 * reaches Connect as `unavailable` or `unknown`/`internal` depending on where the bytes
 * stopped; all of them except a server's own `internal` are a reachability problem here.
 */
export function toStreamError(reason: unknown): StreamError {
  if (reason instanceof StreamError) return reason;
  const error = ConnectError.from(reason);
  const code = FROM_CONNECT[error.code] ?? (error.code === Code.Internal ? ErrorCode.Internal : ErrorCode.Unavailable);
  return new StreamError(code, error.rawMessage);
}

/** A stream socket's `error` event code (the server's ErrorCode values) as a StreamError. */
export function socketError(code: unknown, message: unknown): StreamError {
  const known = typeof code === "string" && CODES.has(code) ? (code as ErrorCode) : ErrorCode.Internal;
  return new StreamError(known, typeof message === "string" ? message : `the server refused the subscription (${String(code)})`);
}

/**
 * Errors a retry cannot fix: the credentials, the server's refusal, or the request
 * itself. A watch ends with them instead of retrying forever.
 */
export function isFinal(error: StreamError): boolean {
  return error.code === ErrorCode.Unauthenticated || error.code === ErrorCode.PermissionDenied || error.code === ErrorCode.InvalidArgument;
}
