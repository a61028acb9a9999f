import { createHash, timingSafeEqual } from "node:crypto";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { StreamService } from "../../gen/iii/stream/v1/stream_pb.js";
import { TriggerService } from "../../gen/iii/stream/v1/triggers_pb.js";

/**
 * Requires `Authorization: Bearer <key>` with one of `keys` on every call that writes
 * or administers: the unary StreamService calls and every TriggerService call.
 * Subscribe is left to the auth function, health checks stay open.
 */
export function apiKeyInterceptor(keys: readonly string[]): Interceptor {
  // Comparing digests of equal length lets the comparison take the same time whatever the key.
  const digests = keys.map(sha256);
  const isKnown = (key: string) => {
    const digest = sha256(key);
    let known = false;
    for (const candidate of digests) known = timingSafeEqual(candidate, digest) || known;
    return known;
  };
  return (next) => async (req) => {
    if (needsKey(req.service.typeName, req.method.methodKind)) {
      const match = /^Bearer +(\S+) *$/i.exec(req.header.get("authorization") ?? "");
      if (!match || !isKnown(match[1])) {
        throw new ConnectError("a valid API key is required: send Authorization: Bearer <key>", Code.Unauthenticated);
      }
    }
    return next(req);
  };
}

function needsKey(service: string, methodKind: string): boolean {
  if (service === TriggerService.typeName) return true;
  return service === StreamService.typeName && methodKind === "unary";
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
