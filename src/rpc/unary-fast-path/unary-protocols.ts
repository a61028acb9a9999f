import type { ConnectError } from "@connectrpc/connect";
import { parseConnectTimeout, parseGrpcTimeout } from "../subscribe-stream/connect-internals.js";

export type UnaryFamily = "connect" | "grpc" | "grpc-web";

/** What differs between the protocols a unary call may speak, as connect-es answers them. */
export interface UnaryProtocol {
  readonly family: UnaryFamily;
  /** Protobuf binary messages; JSON (the proto3 JSON mapping) otherwise. */
  readonly binary: boolean;
  /** The response's content type, as connect-es writes it for this request content type. */
  readonly contentType: string;
  /** Request headers, lower-case as Node.js gives them. */
  readonly timeoutHeader: string;
  readonly encodingHeader: string;
  readonly acceptEncodingHeader: string;
  /** The response header naming a compressed body (Connect) or compressed envelopes (gRPC, gRPC-Web). */
  readonly responseEncodingHeader: string;
  parseTimeout(value: string | null): { timeoutMs?: number; error?: ConnectError };
}

/** Connect's default: any timeout a client asks for is accepted. */
const MAX_TIMEOUT_MS = Number.MAX_SAFE_INTEGER;

function connect(binary: boolean): UnaryProtocol {
  return {
    family: "connect",
    binary,
    contentType: binary ? "application/proto" : "application/json",
    timeoutHeader: "connect-timeout-ms",
    encodingHeader: "content-encoding",
    acceptEncodingHeader: "accept-encoding",
    responseEncodingHeader: "content-encoding",
    parseTimeout: (value) => parseConnectTimeout(value, MAX_TIMEOUT_MS),
  };
}

function grpc(family: "grpc" | "grpc-web", binary: boolean): UnaryProtocol {
  return {
    family,
    binary,
    contentType: `application/${family}+${binary ? "proto" : "json"}`,
    timeoutHeader: "grpc-timeout",
    encodingHeader: "grpc-encoding",
    acceptEncodingHeader: "grpc-accept-encoding",
    responseEncodingHeader: "grpc-encoding",
    parseTimeout: (value) => parseGrpcTimeout(value, MAX_TIMEOUT_MS),
  };
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
