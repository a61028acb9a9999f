import http from "node:http";
import type { AddressInfo } from "node:net";
import { fromJson, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { JsonValue } from "../../src/index.js";
import { FunctionService } from "../../gen/iii/stream/v1/triggers_pb.js";

export type RemoteHandler = (functionId: string, payload: JsonValue) => Promise<JsonValue | undefined> | JsonValue | undefined;

export interface FunctionServer {
  /** The base URL to register. */
  url: string;
  calls: Array<{ functionId: string; payload: JsonValue }>;
  close(): Promise<void>;
}

/** A FunctionService implemented with Connect's generated service, on its own port. */
export function startConnectFunctionServer(handle: RemoteHandler): Promise<FunctionServer> {
  const calls: FunctionServer["calls"] = [];
  const handler = connectNodeAdapter({
    routes: (router: ConnectRouter) =>
      router.service(FunctionService, {
        invoke: async (req) => {
          const payload = toJson(ValueSchema, req.payload!) as JsonValue;
          calls.push({ functionId: req.functionId, payload });
          const result = await handle(req.functionId, payload);
          return { result: result === undefined ? undefined : fromJson(ValueSchema, result) };
        },
      }),
  });
  return listen(http.createServer(handler), calls);
}

/**
 * A FunctionService written as any backend without generated code would: a plain
 * HTTP POST handler that reads `{functionId, payload}` and answers `{result}` (or
 * `{}` for no result). A thrown error becomes a 500.
 */
export function startPlainFunctionServer(handle: RemoteHandler): Promise<FunctionServer> {
  const calls: FunctionServer["calls"] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      void (async () => {
        if (req.method !== "POST" || req.url !== "/iii.stream.v1.FunctionService/Invoke") {
          res.writeHead(404).end();
          return;
        }
        // Like the simplest HTTP servers, it cannot read a chunked body.
        if (req.headers["content-length"] === undefined) {
          res.writeHead(411).end();
          return;
        }
        try {
          const { functionId, payload } = JSON.parse(body) as { functionId: string; payload: JsonValue };
          calls.push({ functionId, payload });
          const result = await handle(functionId, payload);
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify(result === undefined ? {} : { result }));
        } catch (error) {
          res.writeHead(500, { "content-type": "application/json" });
          res.end(JSON.stringify({ code: "internal", message: String(error) }));
        }
      })();
    });
  });
  return listen(server, calls);
}

async function listen(server: http.Server, calls: FunctionServer["calls"]): Promise<FunctionServer> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Polls until `check` passes (it throws until then) or `timeoutMs` runs out; rethrows its last error. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** A promise with its resolve function, for handlers that a test releases. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
