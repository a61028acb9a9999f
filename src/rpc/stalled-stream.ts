import type http from "node:http";
import http2 from "node:http2";
import { Code } from "@connectrpc/connect";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;

/**
 * How long an ended subscription waits for its client to read the rest of the stream
 * (the final status included) before the stream is cut. A client that is merely slow
 * reads within this time and gets the error message itself; one that stopped reading
 * would otherwise keep the stream, and the memory it holds, forever.
 */
export const STALL_GRACE_MS = 1000;

/**
 * Ends a stream whose client stopped reading. HTTP/2: resets the stream with a code
 * that Connect and gRPC clients report as the error's code (ENHANCE_YOUR_CALM is
 * RESOURCE_EXHAUSTED; REFUSED_STREAM, UNAVAILABLE). HTTP/1.1 has no way to end one
 * response early but to drop the connection.
 */
export function cutStream(request: NodeRequest, code: Code | undefined): void {
  if ("stream" in request) {
    const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_REFUSED_STREAM } = http2.constants;
    if (!request.stream.closed) {
      request.stream.close(code === Code.ResourceExhausted ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_REFUSED_STREAM);
    }
  } else {
    request.socket.destroy();
  }
}
