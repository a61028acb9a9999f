import type { ConnectError } from "@connectrpc/connect";
import {
  endStreamFlag,
  parseConnectContentType,
  parseConnectTimeout,
  parseGrpcContentType,
  parseGrpcTimeout,
  parseGrpcWebContentType,
} from "./connect-internals.js";

export type ProtocolFamily = "grpc" | "grpc-web" | "connect";

/** What differs between the protocols a call may speak, unary or streaming. */
export interface ProtocolHeaders {
  readonly family: ProtocolFamily;
  /** Protobuf binary messages; JSON (the proto3 JSON mapping) otherwise. */
  readonly binary: boolean;
  /** Content type of the response. */
  readonly contentType: string;
  /** Request headers, lower-case as Node.js gives them. */
  readonly timeoutHeader: string;
  readonly encodingHeader: string;
  readonly acceptEncodingHeader: string;
  parseTimeout(value: string | null): { timeoutMs?: number; error?: ConnectError };
}

/** What differs between the protocols a Subscribe call may speak. */
export interface WireProtocol extends ProtocolHeaders {
  /** Flag of a request envelope that ends the stream and carries no message (Connect only). */
  readonly requestEndStreamFlag: number | undefined;
}

/** Connect's default: any timeout a client asks for is accepted. */
const MAX_TIMEOUT_MS = Number.MAX_SAFE_INTEGER;

/** Connect's timeout header (`connect-timeout-ms`), the same for unary and streaming calls. */
export const connectTimeout = {
  timeoutHeader: "connect-timeout-ms",
  parseTimeout: (value: string | null) => parseConnectTimeout(value, MAX_TIMEOUT_MS),
} as const;

/** gRPC and gRPC-Web name their headers alike for unary and streaming calls. */
export function grpcHeaders(family: "grpc" | "grpc-web", binary: boolean): ProtocolHeaders {
  return {
    family,
    binary,
    contentType: `application/${family}+${binary ? "proto" : "json"}`,
    timeoutHeader: "grpc-timeout",
    encodingHeader: "grpc-encoding",
    acceptEncodingHeader: "grpc-accept-encoding",
    parseTimeout: (value) => parseGrpcTimeout(value, MAX_TIMEOUT_MS),
  };
}

function connectProtocol(binary: boolean): WireProtocol {
  return {
    family: "connect",
    binary,
    contentType: binary ? "application/connect+proto" : "application/connect+json",
    ...connectTimeout,
    encodingHeader: "connect-content-encoding",
    acceptEncodingHeader: "connect-accept-encoding",
    requestEndStreamFlag: endStreamFlag,
  };
}

function grpcProtocol(family: "grpc" | "grpc-web", binary: boolean): WireProtocol {
  return { ...grpcHeaders(family, binary), requestEndStreamFlag: undefined };
}

const PROTOCOLS = {
  connect: { binary: connectProtocol(true), json: connectProtocol(false) },
  grpc: { binary: grpcProtocol("grpc", true), json: grpcProtocol("grpc", false) },
  grpcWeb: { binary: grpcProtocol("grpc-web", true), json: grpcProtocol("grpc-web", false) },
};

const pick = (protocols: { binary: WireProtocol; json: WireProtocol }, binary: boolean) => (binary ? protocols.binary : protocols.json);

/**
 * The protocol of a request by its content type, among those Connect accepts for a
 * server-streaming method; undefined for anything else, including
 * `application/grpc-web-text` (base64), which Connect does not serve either.
 */
export function detectProtocol(contentType: string | undefined): WireProtocol | undefined {
  if (contentType === undefined) return undefined;
  const connect = parseConnectContentType(contentType);
  if (connect) return connect.stream ? pick(PROTOCOLS.connect, connect.binary) : undefined;
  const grpc = parseGrpcContentType(contentType);
  if (grpc) return pick(PROTOCOLS.grpc, grpc.binary);
  const grpcWeb = parseGrpcWebContentType(contentType);
  if (grpcWeb && !grpcWeb.text) return pick(PROTOCOLS.grpcWeb, grpcWeb.binary);
  return undefined;
}
