import { createHash, timingSafeEqual } from "node:crypto";
import type http from "node:http";

/**
 * The functions a restricted worker connection may invoke by default: the reads.
 * Writing from a browser is the operator's decision (`browser_allowed_functions`).
 */
export const DEFAULT_BROWSER_ALLOWED_FUNCTIONS: readonly string[] = [
  "stream::get",
  "stream::list",
  "stream::list_groups",
  "stream::list_all",
];

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

/**
 * A worker connection is privileged, and may invoke every function and register
 * join and leave triggers, when it is not a browser page (no Origin header) and,
 * with API keys configured, presents one as `Authorization: Bearer <key>` (the Node
 * SDK's `headers` option). Without API keys anyone who reaches the port may write
 * over Connect too, so a non-browser connection is privileged then as well.
 */
export function isPrivileged(request: http.IncomingMessage, apiKeys: readonly string[]): boolean {
  if (request.headers.origin !== undefined) return false;
  if (apiKeys.length === 0) return true;
  const match = /^Bearer +(\S+) *$/i.exec(request.headers.authorization ?? "");
  return match !== null && isKnownKey(match[1], apiKeys);
}

/** Compares digests of equal length, so the comparison takes the same time whatever the key. */
function isKnownKey(key: string, apiKeys: readonly string[]): boolean {
  const digest = sha256(key);
  let known = false;
  for (const candidate of apiKeys) known = timingSafeEqual(sha256(candidate), digest) || known;
  return known;
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
