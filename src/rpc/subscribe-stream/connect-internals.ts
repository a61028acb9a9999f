/**
 * Every connect-es symbol the Subscribe endpoint, the unary fast path (../unary-fast-path)
 * and undecodable-requests.ts (which decodes requests ahead of Connect by the same
 * steps) use that connect-es marks
 * `@private Internal code, does not follow semantic versioning`, and only those.
 *
 * Why: Subscribe is served beside Connect rather than through it (see
 * subscribe-endpoint.ts), yet must read requests and report statuses byte for byte as
 * Connect does for the other methods. Reusing Connect's own envelope parsing,
 * compression negotiation, content-type and timeout parsing and status serialization
 * keeps it so; writing them again would drift. The price is that these functions may
 * change in any release, so:
 * - they are imported here and nowhere else, so that an upgrade has one file to read;
 * - `@connectrpc/connect` and `@connectrpc/connect-node` are pinned to exactly 2.1.2,
 *   the version these signatures and behaviours were read from;
 * - test/connect-internals.test.ts checks that each exists, is what we call it as, and
 *   behaves on a small sample as the endpoint relies on. When it fails after an
 *   upgrade, adapt the callers (request-reader.ts, stream-end.ts, wire-protocol.ts,
 *   ../undecodable-requests.ts, ../unary-fast-path/*)
 *   before moving the pin.
 */
export {
  compressionNegotiate,
  createAsyncIterable,
  createMethodSerializationLookup,
  envelopeCompress,
  pipe,
  readAllBytes,
  transformCompressEnvelope,
  transformJoinEnvelopes,
  transformDecompressEnvelope,
  transformParseEnvelope,
  transformSplitEnvelope,
  validateReadWriteMaxBytes,
  type Serialization,
} from "@connectrpc/connect/protocol";
export {
  createEndStreamSerialization,
  endStreamFlag,
  errorToJsonBytes,
  codeToHttpStatus,
  trailerMux,
  parseContentType as parseConnectContentType,
  parseTimeout as parseConnectTimeout,
} from "@connectrpc/connect/protocol-connect";
export {
  grpcStatusOk,
  parseContentType as parseGrpcContentType,
  parseTimeout as parseGrpcTimeout,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
export {
  parseContentType as parseGrpcWebContentType,
  trailerFlag,
  trailerSerialize,
} from "@connectrpc/connect/protocol-grpc-web";
