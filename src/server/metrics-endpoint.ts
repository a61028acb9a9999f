import http from "node:http";
import { ErrorCode, StreamError } from "../core/errors.js";
import type { PrometheusMetrics } from "./prometheus-metrics.js";

export const METRICS_PATH = "/metrics";

/** What serving needs of a request and a response, HTTP/1.1 or HTTP/2 alike. */
type Request = { readonly method?: string };
type Response = { writeHead(status: number, headers: Record<string, string>): unknown; end(body: string): unknown };

/** `GET /metrics` (or HEAD): the Prometheus text exposition; any other method is 405. */
export function serveMetrics(metrics: PrometheusMetrics, req: Request, res: Response): void {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" });
    res.end("use GET\n");
    return;
  }
  metrics.scrape().then(
    (body) => {
      res.writeHead(200, { "content-type": metrics.contentType });
      res.end(req.method === "HEAD" ? "" : body);
    },
    (error: unknown) => {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(`metrics failed: ${StreamError.from(error).message}\n`);
    },
  );
}

/**
 * The separate `metrics_port`: plain HTTP/1.1 serving `/metrics` and nothing else, so
 * that it can be opened to the monitoring network while the service port is not (or
 * the other way round). No Host check: it serves nothing but counts, and a scraper
 * names the pod or node address, which the service port's check would refuse.
 */
export class MetricsListener {
  private readonly server: http.Server;

  constructor(metrics: PrometheusMetrics) {
    this.server = http.createServer((req, res) => {
      if ((req.url ?? "/").split("?", 1)[0] === METRICS_PATH) return serveMetrics(metrics, req, res);
      res.writeHead(404, { "content-type": "text/plain" });
      res.end(`only ${METRICS_PATH} is served on this port\n`);
    });
  }

  get port(): number | undefined {
    const address = this.server.address();
    return typeof address === "object" && address !== null ? address.port : undefined;
  }

  listen(port: number, host: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", (error: NodeJS.ErrnoException) =>
        reject(new StreamError(ErrorCode.Unavailable, `cannot listen for metrics on ${host}:${port}: ${error.code === "EADDRINUSE" ? "the address is already in use" : error.message}`)),
      );
      this.server.listen(port, host, () => resolve());
    });
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
