/**
 * Where the server is in its life, as readiness sees it: only "ready" takes new clients.
 * "draining" is the first part of a stop (see `drainMs`): everything is still served,
 * but a load balancer should send new clients elsewhere.
 */
export type Readiness = "ready" | "starting" | "draining" | "stopping" | "store_unavailable";

export interface HealthState {
  readiness: Readiness;
  /** The store's short name ("memory", "file", "redis"). */
  adapter: string;
}

/** What of a Node request (HTTP/1.1 or HTTP/2) the endpoints read and write. */
interface HealthRequest {
  readonly method?: string;
  readonly url?: string;
}
interface HealthResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: string): unknown;
}

const REASONS: Record<Exclude<Readiness, "ready">, (adapter: string) => string> = {
  starting: () => "the server has not finished starting",
  draining: () => "the server is stopping and drains first (drain_ms): it still serves, but new clients should go to another instance",
  stopping: () => "the server is stopping",
  store_unavailable: (adapter) => `the ${adapter} store is not ready (see the server's log)`,
};

/**
 * The HTTP health endpoints, for GET and HEAD:
 * - `/livez`: 200 while the process answers at all; a failing one means restart it.
 * - `/readyz`: 200 when the store is ready and the server is not draining or stopping,
 *   503 otherwise, with the state and why; a failing one means send no new clients.
 * - `/healthz`: 200 or 503 with `{status: "ok" | "unavailable", adapter}`, as before
 *   `/readyz` existed, for the clients and scripts that read it.
 * Returns false (and leaves the request alone) for anything else.
 */
export function serveHealth(req: HealthRequest, res: HealthResponse, state: () => HealthState): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  const path = (req.url ?? "/").split("?")[0];
  let answer: { code: number; body: object };
  if (path === "/livez") answer = { code: 200, body: { status: "ok" } };
  else if (path === "/readyz") {
    const { readiness, adapter } = state();
    answer =
      readiness === "ready"
        ? { code: 200, body: { status: "ready", adapter } }
        : { code: 503, body: { status: readiness, adapter, reason: REASONS[readiness](adapter) } };
  } else if (path === "/healthz") {
    const { readiness, adapter } = state();
    answer = { code: readiness === "ready" ? 200 : 503, body: { status: readiness === "ready" ? "ok" : "unavailable", adapter } };
  } else return false;
  // Probes poll: a cached answer would hide the change they look for.
  res.writeHead(answer.code, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(req.method === "HEAD" ? "" : JSON.stringify(answer.body));
  return true;
}
