import type http from "node:http";
import type http2 from "node:http2";
import { cors } from "@connectrpc/connect";

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;

/**
 * Whether a request from `origin` may use the server from a browser page. Requests
 * without an Origin header do not come from a page (browsers always send one on
 * WebSocket handshakes and cross-origin fetches) and are not a matter of origins.
 * `"*"` in the list allows every origin.
 */
export function originAllowed(origin: string | undefined, allowedOrigins: readonly string[]): boolean {
  if (origin === undefined) return true;
  return allowedOrigins.includes("*") || allowedOrigins.includes(origin);
}

/** How long a browser may cache a preflight answer: two hours, Chromium's cap. */
const PREFLIGHT_MAX_AGE_SECONDS = 7200;

/**
 * CORS for pages on other origins that call the API with connect-web (Connect or
 * gRPC-Web). Only origins in `allowedOrigins` (or any, with `"*"`) get CORS headers;
 * with the default empty list no page on another origin may call, and browsers
 * block it. An origin listed by name may also send credentials (cookies for the auth
 * function); `"*"` never lets credentials through.
 *
 * Returns true when it has answered the request itself (a preflight).
 */
export function corsHandler(allowedOrigins: readonly string[]): (req: Request, res: Response) => boolean {
  const allowHeaders = [...cors.allowedHeaders, "Authorization"].join(", ");
  const allowMethods = cors.allowedMethods.join(", ");
  const exposeHeaders = cors.exposedHeaders.join(", ");
  return (req, res) => {
    const origin = req.headers.origin;
    if (origin === undefined || allowedOrigins.length === 0 || !originAllowed(origin, allowedOrigins)) return false;
    res.setHeader("Access-Control-Allow-Origin", origin);
    res.setHeader("Vary", "Origin");
    if (allowedOrigins.includes(origin)) res.setHeader("Access-Control-Allow-Credentials", "true");
    if (req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
      res.setHeader("Access-Control-Allow-Methods", allowMethods);
      res.setHeader("Access-Control-Allow-Headers", allowHeaders);
      res.setHeader("Access-Control-Max-Age", String(PREFLIGHT_MAX_AGE_SECONDS));
      res.statusCode = 204;
      res.end();
      return true;
    }
    res.setHeader("Access-Control-Expose-Headers", exposeHeaders);
    return false;
  };
}
