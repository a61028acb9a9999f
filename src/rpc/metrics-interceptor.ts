import { ConnectError, type Interceptor, type StreamResponse } from "@connectrpc/connect";
import type { Metrics, RpcProtocol } from "../core/metrics.js";
import { secondsSince } from "../core/metrics.js";
import { codeName } from "./connect-errors.js";
import { nextCall } from "./next-call.js";

/**
 * Counts every call Connect serves: method, status code, wire protocol and duration.
 * Put it first in the list (outermost), so that calls another interceptor refuses (a
 * missing API key) are counted with their code too. A server-streaming call is counted
 * when its last message has been sent. Subscribe does not pass through Connect; its
 * call counts itself (subscribe-call.ts).
 */
export function metricsInterceptor(metrics: Metrics): Interceptor {
  // Not async: one promise per call (the `then` below) instead of an async function's.
  return (next) => (req) => {
    const start = performance.now();
    const method = `${req.service.typeName}/${req.method.name}`;
    const protocol = protocolOf(req.header.get("content-type"));
    return nextCall(next, req).then(
      (res) => {
        if (!res.stream) {
          metrics.rpcFinished(method, protocol, "ok", secondsSince(start));
          return res;
        }
        return { ...res, message: countedStream(res, (code) => metrics.rpcFinished(method, protocol, code, secondsSince(start))) } as StreamResponse;
      },
      (error: unknown) => {
        metrics.rpcFinished(method, protocol, codeName(ConnectError.from(error).code), secondsSince(start));
        throw error;
      },
    );
  };
}

async function* countedStream<T>(res: { message: AsyncIterable<T> }, done: (code: string) => void): AsyncIterable<T> {
  let code = "canceled";
  try {
    yield* res.message;
    code = "ok";
  } catch (error) {
    code = codeName(ConnectError.from(error).code);
    throw error;
  } finally {
    done(code);
  }
}

/** The protocol a content type names: `application/grpc-web…`, `application/grpc…`, anything else Connect. */
export function protocolOf(contentType: string | null | undefined): RpcProtocol {
  if (contentType?.startsWith("application/grpc")) return contentType.startsWith("application/grpc-web") ? "grpc_web" : "grpc";
  return "connect";
}

