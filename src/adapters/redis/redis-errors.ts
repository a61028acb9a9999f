import { ErrorCode, StreamError } from "../../core/errors.js";

/**
 * Replies with which Redis says "not now" rather than "wrong": loading a dataset,
 * a busy script, a cluster resharding or failing over, out of memory.
 */
const TRANSIENT_REPLIES = /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|OOM|MOVED|ASK)\b/;

/**
 * Runs one adapter operation and turns whatever Redis or the connection throws into
 * a StreamError: UNAVAILABLE when Redis cannot be reached or cannot serve now (the
 * client may retry, or resume a subscription), INTERNAL for anything else.
 */
export async function withRedisErrors<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw toStreamError(operation, error);
  }
}

export function toStreamError(operation: string, error: unknown): StreamError {
  if (error instanceof StreamError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const isReply = error instanceof Error && error.name === "ReplyError";
  if (isReply && !TRANSIENT_REPLIES.test(message)) {
    return new StreamError(ErrorCode.Internal, `Redis refused ${operation}: ${message}`);
  }
  return new StreamError(ErrorCode.Unavailable, `Redis is unavailable (${operation}): ${message}`);
}
