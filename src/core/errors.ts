/**
 * Error codes of the domain. They mirror the gRPC status codes so that every
 * transport can map them one to one (Connect code, HTTP status, WebSocket close code).
 */
export enum ErrorCode {
  InvalidArgument = "invalid_argument",
  NotFound = "not_found",
  FailedPrecondition = "failed_precondition",
  ResourceExhausted = "resource_exhausted",
  Unavailable = "unavailable",
  Unauthenticated = "unauthenticated",
  PermissionDenied = "permission_denied",
  DeadlineExceeded = "deadline_exceeded",
  Aborted = "aborted",
  Internal = "internal",
}

/** The one error type of the core. Transports translate it at their edge. */
export class StreamError extends Error {
  override readonly name = "StreamError";
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }

  /**
   * Any caught value as a StreamError: a StreamError as it is, anything else (a bug, a
   * library's error) with `code` and its message, so that every edge maps one type.
   */
  static from(reason: unknown, code: ErrorCode = ErrorCode.Internal): StreamError {
    if (reason instanceof StreamError) return reason;
    return new StreamError(code, reason instanceof Error ? reason.message : String(reason));
  }
}

export function invalidArgument(message: string): StreamError {
  return new StreamError(ErrorCode.InvalidArgument, message);
}
