import type http from "node:http";
import type { ApiKeys } from "../access/api-keys.js";

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
 * A worker connection is privileged, and may invoke every function and register
 * join and leave triggers, when it is not a browser page (no Origin header) and,
 * with API keys configured, presents one as `Authorization: Bearer <key>` (the Node
 * SDK's `headers` option). Without API keys anyone who reaches the port may write
 * over Connect too, so a non-browser connection is privileged then as well.
 * Reading is decided apart from privilege (ReadAccess): a restricted connection may
 * read only when keys are not configured, an auth function accepted it, or reads are public.
 */
export function isPrivileged(request: http.IncomingMessage, apiKeys: ApiKeys): boolean {
  if (request.headers.origin !== undefined) return false;
  return !apiKeys.configured || apiKeys.accepts(request.headers.authorization);
}
