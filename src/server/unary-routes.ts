import type { Interceptor } from "@connectrpc/connect";
import type { StreamEngine } from "../core/engine.js";
import type { FunctionsRuntime } from "../functions/functions-runtime.js";
import { StreamService } from "../../gen/iii/stream/v1/stream_pb.js";
import { TriggerService } from "../../gen/iii/stream/v1/triggers_pb.js";
import { callContextValues } from "../rpc/call-peer.js";
import { streamService } from "../rpc/stream-service.js";
import { triggerService } from "../rpc/trigger-service.js";
import { UnaryFastPath } from "../rpc/unary-fast-path/unary-endpoint.js";
import { STRICT_JSON } from "./http-routes.js";

/**
 * The unary methods of StreamService and TriggerService on the fast path, with the same
 * implementations, interceptors, limits and JSON options as connectRoutes gives Connect,
 * so that a call is answered the same whichever path serves it.
 */
export function unaryRoutes(options: { engine: StreamEngine; functions: FunctionsRuntime; interceptors: Interceptor[]; readMaxBytes: number }): UnaryFastPath {
  return new UnaryFastPath({
    services: [
      { service: StreamService, impl: streamService(options.engine) },
      { service: TriggerService, impl: triggerService(options.functions) },
    ],
    interceptors: options.interceptors,
    readMaxBytes: options.readMaxBytes,
    jsonOptions: STRICT_JSON,
    contextValues: callContextValues,
  });
}
