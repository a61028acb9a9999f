import { createContextKey, type Interceptor } from "@connectrpc/connect";
import type { JsonValue } from "../core/json.js";
import { handshakeFromNode, type HandshakeInfo } from "../functions/auth-request.js";
import { StreamService } from "../../gen/iii/stream/v1/stream_pb.js";
import { toConnectError } from "./connect-errors.js";
import { NODE_REQUEST } from "./stalled-stream.js";

/** The context the auth function gave a Subscribe call; Subscribe passes it to the engine. */
export const SUBSCRIBER_CONTEXT = createContextKey<JsonValue>(null, { description: "subscriber context" });

/**
 * Runs the auth function before a Subscribe call starts, so a refused subscriber ends
 * with UNAUTHENTICATED before anything is read or sent.
 */
export function subscriberAuthInterceptor(authenticate: (handshake: HandshakeInfo) => Promise<JsonValue>): Interceptor {
  return (next) => async (req) => {
    if (req.method === StreamService.method.subscribe) {
      const nodeRequest = req.contextValues.get(NODE_REQUEST);
      const handshake = nodeRequest ? handshakeFromNode(nodeRequest) : { headers: req.header.entries(), url: req.url, peer: undefined };
      try {
        req.contextValues.set(SUBSCRIBER_CONTEXT, await authenticate(handshake));
      } catch (error) {
        throw toConnectError(error);
      }
    }
    return next(req);
  };
}
