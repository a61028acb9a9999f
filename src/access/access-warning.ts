import { isLoopback } from "./hosts.js";

/**
 * The warning to print when the server listens beyond this machine while anyone can
 * write (no API keys) and anyone can subscribe (no auth function); undefined otherwise.
 */
export function openAccessWarning(host: string, apiKeys: readonly string[], authFunction: string | undefined): string | undefined {
  if (isLoopback(host) || (apiKeys.length > 0 && authFunction !== undefined)) return undefined;
  const open = [
    apiKeys.length === 0 ? "anyone who can reach it may write and administer (set api_keys or III_STREAM_API_KEYS)" : undefined,
    authFunction === undefined ? "anyone may subscribe (set auth_function)" : undefined,
  ].filter((part) => part !== undefined);
  return `WARNING: listening on ${host}, beyond this machine: ${open.join("; ")}`;
}
