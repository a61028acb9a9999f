import type { ParseArgsConfig } from "node:util";

/**
 * The flags of `iii-stream` when it serves. They live apart from the server code so that the
 * entry can tell a serve line from a client command without loading the server.
 */
export const SERVE_FLAGS = {
  port: { type: "string" },
  host: { type: "string" },
  adapter: { type: "string" },
  "data-dir": { type: "string" },
  "sync-interval-ms": { type: "string" },
  "redis-url": { type: "string" },
  "redis-prefix": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "drain-ms": { type: "string" },
  "idempotency-window-ms": { type: "string" },
  "metrics-port": { type: "string" },
  "no-metrics": { type: "boolean" },
  console: { type: "string" },
  "no-unary-fast-path": { type: "boolean" },
  config: { type: "string" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;
