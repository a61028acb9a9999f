import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";

/**
 * A router handler replaced by `run`, keeping the properties Connect's router and adapters
 * read from it (its path, method, protocols and content types), so the wrapper is routed and
 * negotiated exactly as the handler it wraps.
 */
export function wrappedHandler(
  handler: UniversalHandler,
  run: (req: UniversalServerRequest) => Promise<UniversalServerResponse>,
): UniversalHandler {
  return Object.assign(run, {
    protocolNames: handler.protocolNames,
    service: handler.service,
    method: handler.method,
    requestPath: handler.requestPath,
    allowedMethods: handler.allowedMethods,
    supportedContentType: handler.supportedContentType,
  });
}
