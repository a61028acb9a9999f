import http from "node:http";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { StreamService } from "../../gen/iii/stream/v1/stream_pb.js";
import type { UnaryProtocol } from "./jobs.js";

export type StreamClient = Client<typeof StreamService>;

export interface UnaryClient {
  client: StreamClient;
  close(): void;
}

/**
 * A StreamService client over one of the three wire protocols the suite compares:
 * HTTP/2 ones share one connection, as a backend's client would; HTTP/1.1 opens up to
 * one keep-alive connection per concurrent caller, since HTTP/1.1 cannot multiplex.
 */
export function unaryClient(protocol: UnaryProtocol, url: string, concurrency: number): UnaryClient {
  switch (protocol) {
    case "connect-binary-h2": {
      const sessionManager = new Http2SessionManager(url);
      const transport = createConnectTransport({ baseUrl: url, httpVersion: "2", useBinaryFormat: true, sessionManager });
      return { client: createClient(StreamService, transport), close: () => sessionManager.abort() };
    }
    case "grpc": {
      const sessionManager = new Http2SessionManager(url);
      const transport = createGrpcTransport({ baseUrl: url, sessionManager });
      return { client: createClient(StreamService, transport), close: () => sessionManager.abort() };
    }
    case "connect-json-h1": {
      const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
      const transport = createConnectTransport({ baseUrl: url, httpVersion: "1.1", useBinaryFormat: false, nodeOptions: { agent } });
      return { client: createClient(StreamService, transport), close: () => agent.destroy() };
    }
  }
}
