import http2 from "node:http2";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { createStreamServer, type StreamServer, type StreamServerOptions } from "../../src/index.js";
import { StreamService } from "../../gen/iii/stream/v1/stream_pb.js";

export type TransportKind = "connect-json-h1" | "connect-binary-h1" | "connect-json-h2" | "connect-binary-h2" | "grpc" | "grpc-web";

export const ALL_TRANSPORTS: TransportKind[] = [
  "connect-json-h1",
  "connect-binary-h1",
  "connect-json-h2",
  "connect-binary-h2",
  "grpc",
  "grpc-web",
];

export function transportFor(baseUrl: string, kind: TransportKind): Transport {
  switch (kind) {
    case "connect-json-h1":
      return createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false });
    case "connect-binary-h1":
      return createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true });
    case "connect-json-h2":
      return createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: false });
    case "connect-binary-h2":
      return createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true });
    case "grpc":
      return createGrpcTransport({ baseUrl });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion: "1.1" });
  }
}

export interface RunningServer {
  server: StreamServer;
  url: string;
  client(kind?: TransportKind): Client<typeof StreamService>;
  stop(): Promise<void>;
}

/** Starts a real server on a free port. Stop it in afterAll. */
export async function startServer(options: StreamServerOptions = {}): Promise<RunningServer> {
  const server = createStreamServer({ port: 0, shutdownGraceMs: 500, ...options });
  await server.start();
  const url = server.url;
  return {
    server,
    url,
    client: (kind: TransportKind = "connect-binary-h2") => createClient(StreamService, transportFor(url, kind)),
    stop: () => server.stop(),
  };
}

export { http2 };
