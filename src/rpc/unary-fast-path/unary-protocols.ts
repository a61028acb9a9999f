import { connectTimeout, grpcHeaders, type ProtocolHeaders } from "../subscribe-stream/wire-protocol.js";

/** What differs between the protocols a unary call may speak, as connect-es answers them. */
export interface UnaryProtocol extends ProtocolHeaders {
  /** The response header naming a compressed body (Connect) or compressed envelopes (gRPC, gRPC-Web). */
  readonly responseEncodingHeader: string;
}

function connect(binary: boolean): UnaryProtocol {
  return {
    family: "connect",
    binary,
    contentType: binary ? "application/proto" : "application/json",
    ...connectTimeout,
    encodingHeader: "content-encoding",
    acceptEncodingHeader: "accept-encoding",
    responseEncodingHeader: "content-encoding",
  };
}

function grpc(family: "grpc" | "grpc-web", binary: boolean): UnaryProtocol {
  return { ...grpcHeaders(family, binary), responseEncodingHeader: "grpc-encoding" };
}

/**
 * The request content types the fast path takes, each exactly as clients send it, and
 * the protocol connect-es negotiates for it (its Connect handler first, so a bare
 * `application/json` is Connect's unary JSON). Any other spelling (a charset
 * parameter, upper case, the streaming `connect+` types, gRPC-Web's base64 `-text`)
 * is left to Connect's own negotiation, which answers it or refuses it as before.
 */
const BY_CONTENT_TYPE: ReadonlyMap<string, UnaryProtocol> = new Map([
  ["application/proto", connect(true)],
  ["application/json", connect(false)],
  ["application/grpc", grpc("grpc", true)],
  ["application/grpc+proto", grpc("grpc", true)],
  ["application/grpc+json", grpc("grpc", false)],
  ["application/grpc-web", grpc("grpc-web", true)],
  ["application/grpc-web+proto", grpc("grpc-web", true)],
  ["application/grpc-web+json", grpc("grpc-web", false)],
]);

/** The protocol of a unary request by its exact content type; undefined when the fast path leaves it to Connect. */
export function unaryProtocolOf(contentType: string | undefined): UnaryProtocol | undefined {
  return contentType === undefined ? undefined : BY_CONTENT_TYPE.get(contentType);
}
