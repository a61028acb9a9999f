import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { TallyCounter, type TallyCounterSeries } from "./tally-counter.js";
import { TallyHistogram, type TallyHistogramSeries } from "./tally-histogram.js";
import type { Metrics, RpcProtocol, SubscriptionEndReason, SubscriptionTransport, TriggerCallOutcome, WriteOp } from "../core/metrics.js";

/** What the gauges read when scraped, instead of being kept up to date on every change. */
export interface MetricsSources {
  storeReady(): boolean;
  /** The store's connections and whether each is up (Redis); undefined for a store without any. */
  storeConnections(): Record<string, boolean> | undefined;
  webSocketConnections(): Record<string, number>;
  /** Every trigger's lag and dead letters (see FunctionsRuntime.listTriggerLoads). */
  triggerLoads?(): Promise<Array<{ triggerId: string; lag: number; deadLetters: number }>>;
  /** Open TCP connections of the service port (every protocol). Absent: not exported. */
  connections?(): number;
  /** The package version and the store's name, exported as `iii_stream_build_info`. Absent: not exported. */
  build?: { version: string; adapter: string };
}

export interface PrometheusMetricsOptions {
  /** Add a `stream` label (the stream name) to writes and subscriptions. See MetricsOptions.streamLabels. */
  streamLabels: boolean;
  sources: MetricsSources;
}

/** From 0.5 ms to 10 s: a unary call on loopback takes well under a millisecond, a slow one seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** From 0.1 ms (a memory commit) to 1 s (an fsync on a struggling disk). */
const COMMIT_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];
/** Up to the 30 s default function timeout and beyond. */
const TRIGGER_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const TRANSPORTS: SubscriptionTransport[] = ["subscribe", "stream_socket", "in_process"];
const OPS: WriteOp[] = ["set", "update", "delete", "send", "batch"];

/**
 * The process's own metrics (`process_*`, `nodejs_*`), in a registry of their own that
 * every server's scrape includes: they describe the process, not a server, and each
 * registration starts an event-loop monitor and a GC observer that are never stopped,
 * which a process starting many servers (tests) would pile up.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * The Metrics port over prom-client, in a registry of this server's own (never the
 * global one, so that several servers in one process keep their counts apart). The
 * children of the busiest series are bound once, so that counting does no label lookup.
 */
export class PrometheusMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly streamLabels: boolean;
  private readonly rpcRequests: TallyCounter;
  private readonly rpcDuration: TallyHistogram;
  /** Each call's series by method, protocol and code (a few dozen at most), so that a call builds one key. */
  private readonly rpcSeries = new Map<string, { requests: TallyCounterSeries; duration: TallyHistogramSeries }>();
  private readonly subscriptions: Gauge<string>;
  private readonly subscriptionsEnded: Counter<string>;
  /** Deliveries since the last scrape, added to their counter when scraped: the fan-out path only adds to a number. */
  private readonly deliveriesPending: Record<SubscriptionTransport, number> = { subscribe: 0, stream_socket: 0, in_process: 0 };
  private readonly deliveryLag: TallyHistogram;
  private readonly writes: TallyCounter;
  /** Bound once; absent with stream labels, whose series depend on the stream. */
  private readonly writesByOp: Record<WriteOp, TallyCounterSeries> | undefined;
  private readonly commitDuration: TallyHistogram;
  private readonly commitBatch: TallyHistogram;
  private readonly triggerCalls: Counter<"trigger_type" | "outcome">;
  private readonly triggerDuration: Histogram<"trigger_type">;

  constructor(options: PrometheusMetricsOptions) {
    const registers = [this.registry];
    const { sources } = options;
    this.streamLabels = options.streamLabels;
    const stream = this.streamLabels ? ["stream"] : [];
    this.rpcRequests = new TallyCounter(
      "iii_stream_rpc_requests_total",
      "RPCs finished, by method, status code and wire protocol (Subscribe when its stream ends).",
      ["method", "code", "protocol"],
    );
    this.registry.registerMetric(this.rpcRequests.asMetric());
    this.rpcDuration = new TallyHistogram(
      "iii_stream_rpc_duration_seconds",
      "How long RPCs took, from the call to its status (for Subscribe, the stream's lifetime).",
      LATENCY_BUCKETS,
      ["method", "protocol"],
    );
    this.registry.registerMetric(this.rpcDuration.asMetric());
    this.subscriptions = new Gauge({
      name: "iii_stream_subscriptions",
      help: "Subscriptions open now, by transport.",
      labelNames: ["transport", ...stream],
      registers,
    });
    this.subscriptionsEnded = new Counter({
      name: "iii_stream_subscriptions_ended_total",
      help: "Subscriptions ended, by transport and reason (client, slow_consumer, shutdown, deadline, error).",
      labelNames: ["transport", "reason", ...stream],
      registers,
    });
    const pending = this.deliveriesPending;
    new Counter({
      name: "iii_stream_deliveries_total",
      help: "Messages written to subscribers' sockets, by transport.",
      labelNames: ["transport"],
      registers,
      collect() {
        for (const transport of TRANSPORTS) {
          if (pending[transport] === 0) continue;
          this.inc({ transport }, pending[transport]);
          pending[transport] = 0;
        }
      },
    });
    this.deliveryLag = new TallyHistogram(
      "iii_stream_delivery_lag_seconds",
      "From the commit of a change or event to its write on a subscriber's socket; observed once per write, for its oldest message.",
      LATENCY_BUCKETS,
    );
    this.registry.registerMetric(this.deliveryLag.asMetric());
    this.writes = new TallyCounter("iii_stream_writes_total", "Writes that succeeded, by operation (set, update, delete, send).", ["op", ...stream]);
    this.registry.registerMetric(this.writes.asMetric());
    this.writesByOp = this.streamLabels ? undefined : (Object.fromEntries(OPS.map((op) => [op, this.writes.labels(op)])) as Record<WriteOp, TallyCounterSeries>);
    // Read from the outbox at scrape time; labelled by trigger id, which operators choose
    // and which are few (each one is a registration).
    let loads: Promise<Array<{ triggerId: string; lag: number; deadLetters: number }>> | undefined;
    const readLoads = () => (loads ??= (sources.triggerLoads?.() ?? Promise.resolve([])).finally(() => setImmediate(() => (loads = undefined))));
    new Gauge({
      name: "iii_stream_trigger_lag",
      help: "Calls of a trigger waiting to be delivered: stored and undelivered (at least once), or queued in memory (at most once).",
      labelNames: ["trigger"],
      registers,
      async collect() {
        this.reset();
        for (const load of await readLoads()) this.set({ trigger: load.triggerId }, load.lag);
      },
    });
    new Gauge({
      name: "iii_stream_trigger_dead_letters",
      help: "Calls of an at-least-once trigger kept as dead letters after their last attempt failed.",
      labelNames: ["trigger"],
      registers,
      async collect() {
        this.reset();
        for (const load of await readLoads()) this.set({ trigger: load.triggerId }, load.deadLetters);
      },
    });
    this.commitDuration = new TallyHistogram(
      "iii_stream_commit_duration_seconds",
      "How long one store commit took (the file store's: one group-commit transaction, fsync included).",
      COMMIT_BUCKETS,
      ["adapter"],
    );
    this.registry.registerMetric(this.commitDuration.asMetric());
    this.commitBatch = new TallyHistogram("iii_stream_commit_batch_size", "Writes and events per store commit (above 1 only with the file store's group commit).", BATCH_BUCKETS, ["adapter"]);
    this.registry.registerMetric(this.commitBatch.asMetric());
    this.triggerCalls = new Counter({
      name: "iii_stream_trigger_calls_total",
      help: "Trigger calls, by trigger type and outcome (ok, failed, timeout, skipped, dropped).",
      labelNames: ["trigger_type", "outcome"],
      registers,
    });
    this.triggerDuration = new Histogram({
      name: "iii_stream_trigger_duration_seconds",
      help: "How long a trigger call took, its condition included (dropped calls are not timed).",
      labelNames: ["trigger_type"],
      buckets: TRIGGER_BUCKETS,
      registers,
    });
    new Gauge({
      name: "iii_stream_websocket_connections",
      help: "Open WebSocket connections, by protocol (stream_socket, worker; other: not decided yet, or telemetry).",
      labelNames: ["protocol"],
      registers,
      collect() {
        for (const [protocol, count] of Object.entries(sources.webSocketConnections())) this.set({ protocol }, count);
      },
    });
    new Gauge({
      name: "iii_stream_store_ready",
      help: "1 when the store can serve requests, writes included; 0 otherwise.",
      registers,
      collect() {
        this.set(sources.storeReady() ? 1 : 0);
      },
    });
    if (sources.connections) {
      const open = sources.connections;
      new Gauge({
        name: "iii_stream_connections",
        help: "Open TCP connections of the service port, whatever their protocol.",
        registers,
        collect() {
          this.set(open());
        },
      });
    }
    if (sources.build) {
      // The usual "info" gauge: always 1, its labels are the information (the console's server page reads it).
      new Gauge({ name: "iii_stream_build_info", help: "1, labelled with the package version and the store adapter.", labelNames: ["version", "adapter"], registers }).set(
        { version: sources.build.version, adapter: sources.build.adapter },
        1,
      );
    }
    const connections = sources.storeConnections();
    if (connections !== undefined) {
      new Gauge({
        name: "iii_stream_redis_connected",
        help: "1 while the Redis adapter's connection (commands, subscriber) is up; 0 otherwise.",
        labelNames: ["connection"],
        registers,
        collect() {
          for (const [connection, up] of Object.entries(sources.storeConnections() ?? {})) this.set({ connection }, up ? 1 : 0);
        },
      });
    }
  }

  /** The exposition of this server's metrics and the process's, in the Prometheus text format. */
  async scrape(): Promise<string> {
    const [process, own] = await Promise.all([processMetrics().metrics(), this.registry.metrics()]);
    return `${process}\n${own}`;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  rpcFinished(method: string, protocol: RpcProtocol, code: string, seconds: number): void {
    const key = `${method} ${protocol} ${code}`;
    let series = this.rpcSeries.get(key);
    if (!series) {
      series = { requests: this.rpcRequests.labels(method, code, protocol), duration: this.rpcDuration.labels(method, protocol) };
      this.rpcSeries.set(key, series);
    }
    series.requests.inc();
    series.duration.observe(seconds);
  }

  subscriptionOpened(transport: SubscriptionTransport, streamName: string): void {
    if (this.streamLabels) this.subscriptions.labels(transport, streamName).inc();
    else this.subscriptions.labels(transport).inc();
  }

  subscriptionEnded(transport: SubscriptionTransport, reason: SubscriptionEndReason, streamName: string): void {
    if (this.streamLabels) {
      this.subscriptions.labels(transport, streamName).dec();
      this.subscriptionsEnded.labels(transport, reason, streamName).inc();
    } else {
      this.subscriptions.labels(transport).dec();
      this.subscriptionsEnded.labels(transport, reason).inc();
    }
  }

  delivered(transport: SubscriptionTransport, count: number, lagSeconds: number | undefined): void {
    this.deliveriesPending[transport] += count;
    if (lagSeconds !== undefined) this.deliveryLag.observe(lagSeconds);
  }

  written(op: WriteOp, streamName: string): void {
    if (this.writesByOp) this.writesByOp[op].inc();
    else this.writes.labels(op, streamName).inc();
  }

  committed(store: string, batchSize: number, seconds: number): void {
    this.commitDuration.labels(store).observe(seconds);
    this.commitBatch.labels(store).observe(batchSize);
  }

  triggerCalled(triggerType: string, outcome: TriggerCallOutcome, seconds: number | undefined): void {
    this.triggerCalls.labels(triggerType, outcome).inc();
    if (seconds !== undefined) this.triggerDuration.labels(triggerType).observe(seconds);
  }
}
