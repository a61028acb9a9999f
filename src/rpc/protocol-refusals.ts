import type { DescMethod } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { wrappedHandler } from "./wrapped-handler.js";

/**
 * The content types each protocol takes for a method, as connect-es 2.1.2 matches them:
 * Connect's unary protocol its bare `application/json` and `application/proto`, its
 * streaming protocol the `connect+` forms; gRPC and gRPC-Web their binary and JSON
 * forms (not gRPC-Web's base64 `-text` variant, which connect-es does not serve).
 */
function acceptedContentTypes(method: DescMethod): string[] {
  const connect = method.methodKind === "unary" ? ["application/json", "application/proto"] : ["application/connect+json", "application/connect+proto"];
  return [
    ...connect,
    "application/grpc",
    "application/grpc+proto",
    "application/grpc+json",
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpc-web+json",
  ];
}

/**
 * Makes the refusals Connect sends with an empty body say what was wrong and what is
 * accepted, on each of the router's handlers: 415 (no or an unsupported Content-Type)
 * names the content types the method takes, 405 the HTTP methods. connect-es answers
 * both from its protocol negotiation with a bare status, which leaves a user with
 * `curl` nothing to go on; nothing else of the answer changes.
 */
export function explainProtocolRefusals(router: ConnectRouter): void {
  router.handlers.forEach((handler, index) => {
    router.handlers[index] = explaining(handler);
  });
}

function explaining(handler: UniversalHandler): UniversalHandler {
  const accepted = acceptedContentTypes(handler.method);
  const explained = async (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
    const response = await handler(req);
    if (response.body !== undefined) return response;
    if (response.status === 415) {
      const given = req.header.get("content-type");
      const problem = given === null || given === "" ? "the request has no Content-Type" : `Content-Type ${JSON.stringify(given)} is not one it accepts`;
      return explanation(response, `${req.method} ${handler.requestPath}: ${problem}; it accepts ${accepted.join(", ")}`);
    }
    if (response.status === 405) {
      return explanation(response, `${handler.requestPath} is called with ${handler.allowedMethods.join(" or ")}, not ${req.method}`);
    }
    return response;
  };
  return wrappedHandler(handler, explained);
}

function explanation(response: UniversalServerResponse, text: string): UniversalServerResponse {
  const header = new Headers(response.header);
  header.set("content-type", "text/plain; charset=utf-8");
  header.set("x-content-type-options", "nosniff");
  const bytes = new TextEncoder().encode(`${text}\n`);
  return {
    ...response,
    header,
    body: (async function* () {
      yield bytes;
    })(),
  };
}
