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
}

export function invalidArgument(message: string): StreamError {
  return new StreamError(ErrorCode.InvalidArgument, message);
}
