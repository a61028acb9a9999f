import type http from "node:http";
import http2 from "node:http2";
import { Code } from "@connectrpc/connect";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;

/**
 * How long an ended subscription waits for its client to read the rest of the stream
 * (the final status included) before the stream is cut. A client that is merely slow
 * reads within this time and gets the error message itself; one that stopped reading
 * would otherwise keep the stream, and the memory it holds, forever.
 *
 * HTTP/2: 1 s, since the reset that cuts the stream carries the reason itself
 * (ENHANCE_YOUR_CALM reads as RESOURCE_EXHAUSTED). HTTP/1.1: 30 s, since cutting
 * means dropping the connection, and the client, once it reads again, would see a
 * broken connection instead of the error written after its last message; what it
 * still holds is bounded (the queue is dropped; only the socket's buffer remains).
 */
export const STALL_GRACE_MS = 1000;
export const HTTP1_STALL_GRACE_MS = 30_000;

/** See STALL_GRACE_MS. */
export function stallGraceMs(request: NodeRequest): number {
  return "stream" in request ? STALL_GRACE_MS : HTTP1_STALL_GRACE_MS;
}

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
