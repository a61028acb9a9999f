import type { ConnectError } from "@connectrpc/connect";
import {
  createEndStreamSerialization,
  endStreamFlag,
  grpcStatusOk,
  setTrailerStatus,
  trailerFlag,
  trailerSerialize,
} from "./connect-internals.js";
import { envelope } from "./envelope.js";
import type { ProtocolFamily } from "./wire-protocol.js";

/**
 * How a stream reports its status: gRPC in HTTP trailers (or, before any message, in
 * the headers of a trailers-only response); gRPC-Web in a trailer frame (flag 0x80);
 * Connect in an end-stream frame (flag 0x02) holding `{}` or `{"error": ...}`. The
 * contents are built by Connect's own functions, so they read exactly as before.
 */
export type StreamEnd = { trailers: Record<string, string>; frame?: undefined } | { frame: Buffer; trailers?: undefined };

const endStreamSerialization = createEndStreamSerialization(undefined);

export function streamEnd(family: ProtocolFamily, error: ConnectError | undefined): StreamEnd {
  switch (family) {
    case "grpc":
      return { trailers: Object.fromEntries(grpcStatus(error)) };
    case "grpc-web":
      return { frame: envelope(trailerFlag, trailerSerialize(grpcStatus(error))) };
    case "connect":
      return { frame: envelope(endStreamFlag, endStreamSerialization.serialize({ metadata: new Headers(), error })) };
  }
}

/** `grpc-status` (and `grpc-message`, percent-encoded, plus the error's metadata) as Connect sets them. */
function grpcStatus(error: ConnectError | undefined): Headers {
  return setTrailerStatus(new Headers({ "grpc-status": grpcStatusOk }), error);
}
