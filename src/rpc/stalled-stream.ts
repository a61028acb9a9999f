import type http from "node:http";
import http2 from "node:http2";
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { ErrorCode, type StreamError } from "../core/stream-error.js";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;

/** The raw Node.js request of an RPC; the server puts it in every handler context. */
export const NODE_REQUEST = createContextKey<NodeRequest | undefined>(undefined, { description: "node request" });

/**
 * How long a failed subscription waits for its client to read again before the stream
 * is cut. A client that is merely slow reads within this time and gets the error
 * message itself; one that stopped reading would otherwise keep the RPC open forever.
 */
export const STALL_GRACE_MS = 1000;

/**
 * When a server stream fails while the client has stopped reading, flow control holds
 * the response writer, and the error can never be written. This cuts the stream after
 * `STALL_GRACE_MS` unless the returned function is called first (the writer moved on).
 */
export function cutStreamIfStalled(context: HandlerContext, error: StreamError): () => void {
  const request = context.values.get(NODE_REQUEST);
  if (!request) return () => undefined;
  const timer = setTimeout(() => cutStream(request, error), STALL_GRACE_MS);
  timer.unref();
  return () => clearTimeout(timer);
}

/**
 * HTTP/2: resets the stream with a code that Connect and gRPC clients report as the
 * error's code (ENHANCE_YOUR_CALM is RESOURCE_EXHAUSTED; REFUSED_STREAM, UNAVAILABLE).
 * HTTP/1.1 has no way to end one response early but to drop the connection.
 */
function cutStream(request: NodeRequest, error: StreamError): void {
  if ("stream" in request) {
    const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_REFUSED_STREAM } = http2.constants;
    if (!request.stream.closed) {
      request.stream.close(error.code === ErrorCode.ResourceExhausted ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_REFUSED_STREAM);
    }
  } else {
    request.socket.destroy();
  }
}
