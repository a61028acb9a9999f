import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { ApiKeys } from "../access/api-keys.js";
import { StreamService } from "../../gen/iii/stream/v1/stream_pb.js";
import { TriggerService } from "../../gen/iii/stream/v1/triggers_pb.js";

/**
 * Requires one of the API keys on every call that writes or administers: the unary
 * StreamService calls and every TriggerService call. Subscribe is left to the auth
 * function, health checks stay open.
 */
export function apiKeyInterceptor(keys: ApiKeys): Interceptor {
  return (next) => async (req) => {
    if (needsKey(req.service.typeName, req.method.methodKind) && !keys.accepts(req.header.get("authorization"))) {
      throw new ConnectError("a valid API key is required: send Authorization: Bearer <key>", Code.Unauthenticated);
    }
    return next(req);
  };
}

function needsKey(service: string, methodKind: string): boolean {
  if (service === TriggerService.typeName) return true;
  return service === StreamService.typeName && methodKind === "unary";
}
