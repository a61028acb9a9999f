/**
 * The port through which the engine, the stores, the delivery pump, the transports and
 * the functions runtime count what they do. It knows nothing of the metrics library
 * behind it (the server's Prometheus registry, see server/prometheus-metrics.ts), and
 * its no-op default lets every component run without one.
 *
 * Everything here is called per request, per subscription, per store commit or per
 * delivery batch, never per subscriber per message: the fan-out path calls `delivered`
 * once per write on a socket, whatever number of messages and subscriptions it carries.
 * Label values are drawn from small fixed sets; the one free-form value, a stream name,
 * is passed along and used only when the operator opts in.
 */

/** How a subscriber is connected: `Subscribe` over Connect/gRPC/gRPC-Web, a stream-socket WebSocket, or in process. */
export type SubscriptionTransport = "subscribe" | "stream_socket" | "in_process";

/**
 * Why a subscription ended: its client left or unsubscribed (`client`), it fell too far
 * behind (`slow_consumer`), the server is stopping (`shutdown`), its call's deadline
 * passed (`deadline`), or anything else went wrong (`error`).
 */
export type SubscriptionEndReason = "client" | "slow_consumer" | "shutdown" | "deadline" | "error";

/** The writes the engine counts, by their StreamService method. */
export type WriteOp = "set" | "update" | "delete" | "send" | "batch";

/** How one trigger call went: see TriggerDispatcher. */
export type TriggerCallOutcome = "ok" | "failed" | "timeout" | "skipped" | "dropped";

/** The wire protocol of an RPC, as its content type says. */
export type RpcProtocol = "connect" | "grpc" | "grpc_web";

export interface Metrics {
  /** One RPC finished (a Subscribe call when its stream ended); `code` is Connect's name of the status ("ok", "invalid_argument", ...). */
  rpcFinished(method: string, protocol: RpcProtocol, code: string, seconds: number): void;
  subscriptionOpened(transport: SubscriptionTransport, streamName: string): void;
  subscriptionEnded(transport: SubscriptionTransport, reason: SubscriptionEndReason, streamName: string): void;
  /**
   * One write on a subscriber's socket carried `count` messages. `lagSeconds`: from the
   * commit of its oldest change or event to now (undefined when it carried only
   * snapshots and heartbeats, which no commit caused).
   */
  delivered(transport: SubscriptionTransport, count: number, lagSeconds: number | undefined): void;
  /** A write of `op` succeeded. */
  written(op: WriteOp, streamName: string): void;
  /** A store committed `batchSize` writes and events together in `seconds` (batchSize 1 for a store that commits each alone). */
  committed(store: string, batchSize: number, seconds: number): void;
  /** One trigger call ended; `seconds` is undefined for a call that never ran (dropped). */
  triggerCalled(triggerType: string, outcome: TriggerCallOutcome, seconds: number | undefined): void;
}

const nothing = (): void => undefined;

/** Counts nothing: the default of every component, and the server's with metrics turned off. */
export const NO_METRICS: Metrics = {
  rpcFinished: nothing,
  subscriptionOpened: nothing,
  subscriptionEnded: nothing,
  delivered: nothing,
  written: nothing,
  committed: nothing,
  triggerCalled: nothing,
};

/** Seconds since `start`, a `performance.now()` reading. */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000;
}
