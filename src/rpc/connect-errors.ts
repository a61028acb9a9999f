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

/** The edge of the core: a StreamError becomes the ConnectError with the same code. */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof StreamError) return new ConnectError(error.message, CONNECT_CODES[error.code]);
  return ConnectError.from(error);
}

/** Runs a handler and reports any core error it throws with its Connect code. */
export async function guard<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw toConnectError(error);
  }
}
