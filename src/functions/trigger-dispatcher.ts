import type { JsonObject, JsonValue } from "../core/json.js";
import { ErrorCode, StreamError } from "../core/errors.js";
import type { TriggerRecord } from "../core/registrations.js";
import { NO_METRICS, secondsSince, type Metrics } from "../core/metrics.js";
import { errorFields, type Log } from "../core/log.js";
import { currentTrace, withTrace, type TraceContext } from "../core/trace-context.js";
import { passThroughTracer, type Tracer } from "../core/tracer.js";

/** Calls of one trigger made by this instance. */
export interface TriggerStats {
  /** Handler calls started. */
  calls: number;
  /** Condition or handler calls that failed, timeouts included. */
  failures: number;
  /** Of the failures, those that timed out. */
  timeouts: number;
  /** Handler calls skipped because the condition returned false. */
  skipped: number;
  /** Calls never made because too many were pending. */
  dropped: number;
}

/** How one trigger call went. */
export type TriggerOutcome =
  | { kind: "skipped" }
  | { kind: "done"; result: JsonValue | undefined }
  | { kind: "failed"; error: StreamError };

export interface DispatcherOptions {
  /** Calls a function, with the per-call timeout applied. */
  invoke: (functionId: string, payload: JsonValue) => Promise<JsonValue | undefined>;
  log: Log;
  /**
   * Where each trigger call's span goes; a call runs inside it, so a remote function
   * gets it as its parent in `traceparent`. Default: passThroughTracer (no spans
   * recorded; a write's incoming trace context still reaches the functions it triggers).
   */
  tracer?: Tracer;
  /**
   * Most trigger calls waiting or running, over all triggers. Beyond it new calls are
   * dropped, logged and counted. Default 10,000: handlers that cannot keep up must not
   * grow memory without bound, and a short burst still fits.
   */
  maxPendingCalls?: number;
  /**
   * Most calls of one trigger running at once (each for a different item). Default 32:
   * a busy stream cannot open thousands of requests to one backend, and a trigger whose
   * handler hangs only holds back its own calls.
   */
  maxConcurrentPerTrigger?: number;
  /** Where each call's outcome and duration are counted, by trigger type. Default: nowhere. */
  metrics?: Metrics;
}

type Task = () => Promise<void>;

/** The calls of one trigger: one FIFO per item, and the items whose next call may start. */
interface Lane {
  /** The trigger's type, for the calls dropped at close. */
  type: string;
  running: number;
  queues: Map<string, Task[]>;
  ready: string[];
}

/** How often, at most, dropped calls are logged. */
const DROP_LOG_INTERVAL_MS = 5000;

/**
 * Runs trigger calls in the background. The write that caused them never waits and
 * never sees their outcome. The calls of one trigger for one item (its "order key")
 * run one after another, in the order they were dispatched, which is offset order;
 * everything else runs concurrently. Failures are logged with the trigger and
 * function ids and counted per trigger.
 */
export class TriggerDispatcher {
  private readonly lanes = new Map<string, Lane>();
  private readonly stats = new Map<string, TriggerStats>();
  private readonly maxPending: number;
  private readonly maxConcurrent: number;
  private readonly metrics: Metrics;
  private pending = 0;
  private droppedSinceLog = 0;
  private lastDropLog = 0;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  private readonly tracer: Tracer;

  constructor(private readonly options: DispatcherOptions) {
    this.tracer = options.tracer ?? passThroughTracer;
    this.maxPending = options.maxPendingCalls ?? 10_000;
    this.maxConcurrent = options.maxConcurrentPerTrigger ?? 32;
    this.metrics = options.metrics ?? NO_METRICS;
  }

  /** Queues a call of `trigger` behind earlier calls with the same order key; returns at once. */
  dispatch(trigger: TriggerRecord, orderKey: string, payload: JsonObject): void {
    if (this.closed) return;
    if (this.pending >= this.maxPending) {
      this.drop(trigger);
      return;
    }
    this.pending++;
    const lane = this.lane(trigger);
    // The write's trace, taken now: the call runs later, outside the write's context.
    const trace = currentTrace();
    const task: Task = async () => {
      await this.run(trigger, payload, trace);
    };
    const queue = lane.queues.get(orderKey);
    if (queue) {
      queue.push(task);
      return;
    }
    lane.queues.set(orderKey, [task]);
    lane.ready.push(orderKey);
    this.pump(trigger.triggerId, lane);
  }

  /**
   * Calls the trigger's condition (if any) and then its handler, now, in a span of the
   * trace of what caused it (default: the trace being handled now). Never rejects: a
   * failure is logged, counted and returned.
   */
  async run(trigger: TriggerRecord, payload: JsonObject, cause: TraceContext | undefined = currentTrace()): Promise<TriggerOutcome> {
    const start = performance.now();
    const outcome = await this.traced(trigger, payload, cause);
    const kind = outcome.kind === "done" ? "ok" : outcome.kind === "skipped" ? "skipped" : outcome.error.code === ErrorCode.DeadlineExceeded ? "timeout" : "failed";
    this.metrics.triggerCalled(trigger.type, kind, secondsSince(start));
    return outcome;
  }

  /** The calls inside a span of `cause`'s trace, when there is a trace to continue or the tracer records. */
  private async traced(trigger: TriggerRecord, payload: JsonObject, cause: TraceContext | undefined): Promise<TriggerOutcome> {
    if (cause === undefined && !this.tracer.recording) return this.runOnce(trigger, payload);
    const span = this.tracer.start(`trigger ${trigger.type}`, "client", cause, {
      "iii.trigger.id": trigger.triggerId,
      "iii.trigger.type": trigger.type,
      "iii.function.id": trigger.functionId,
    });
    if (span.context === undefined) return this.runOnce(trigger, payload);
    const outcome = await withTrace(span.context, () => this.runOnce(trigger, payload));
    span.end(outcome.kind === "failed" ? { code: outcome.error.code, message: outcome.error.message } : undefined);
    return outcome;
  }

  private async runOnce(trigger: TriggerRecord, payload: JsonObject): Promise<TriggerOutcome> {
    const stats = this.counters(trigger.triggerId);
    const condition = trigger.config.conditionFunctionId;
    if (condition !== undefined) {
      const passed = await this.call(trigger, condition, payload);
      if (passed.kind === "failed") return passed;
      // Only an explicit false skips: no result, null, true or anything else passes.
      if (passed.result === false) {
        stats.skipped++;
        return { kind: "skipped" };
      }
    }
    stats.calls++;
    return this.call(trigger, trigger.functionId, payload);
  }

  /** Calls of the trigger waiting or running in memory (an at-most-once trigger's lag). */
  waiting(triggerId: string): number {
    let count = 0;
    for (const queue of this.lanes.get(triggerId)?.queues.values() ?? []) count += queue.length;
    return count;
  }

  /** A copy of the trigger's counters. */
  statsOf(triggerId: string): TriggerStats {
    return { ...this.counters(triggerId) };
  }

  /** Resolves when no call is pending, or after `timeoutMs`, whichever comes first. */
  async idle(timeoutMs: number): Promise<void> {
    if (this.pending === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      timer = setTimeout(resolve, timeoutMs);
    });
    clearTimeout(timer);
  }

  /**
   * Stops taking calls and drops those that have not started (counted as dropped);
   * calls already running go on.
   */
  close(): void {
    this.closed = true;
    let discarded = 0;
    for (const [triggerId, lane] of this.lanes) {
      const waiting = new Set(lane.ready);
      for (const [orderKey, queue] of lane.queues) {
        // A queue whose key waits for a slot has nothing running; otherwise its head runs.
        const dropped = waiting.has(orderKey) ? queue.splice(0) : queue.splice(1);
        if (queue.length === 0) lane.queues.delete(orderKey);
        this.counters(triggerId).dropped += dropped.length;
        for (let i = 0; i < dropped.length; i++) this.metrics.triggerCalled(lane.type, "dropped", undefined);
        discarded += dropped.length;
      }
      lane.ready = [];
      if (lane.queues.size === 0) this.lanes.delete(triggerId);
    }
    this.pending -= discarded;
    if (discarded > 0) this.options.log.warn("trigger calls dropped at shutdown", { dropped: discarded });
    if (this.pending === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private async call(
    trigger: TriggerRecord,
    functionId: string,
    payload: JsonValue,
  ): Promise<Exclude<TriggerOutcome, { kind: "skipped" }>> {
    try {
      return { kind: "done", result: await this.options.invoke(functionId, payload) };
    } catch (caught) {
      const error = StreamError.from(caught);
      const stats = this.counters(trigger.triggerId);
      stats.failures++;
      if (error.code === ErrorCode.DeadlineExceeded) stats.timeouts++;
      this.options.log.error("trigger call failed", {
        trigger_id: trigger.triggerId,
        trigger_type: trigger.type,
        function_id: functionId,
        ...(trigger.config.streamName !== undefined ? { stream: trigger.config.streamName } : {}),
        ...errorFields(error),
      });
      return { kind: "failed", error };
    }
  }

  private counters(triggerId: string): TriggerStats {
    let stats = this.stats.get(triggerId);
    if (!stats) this.stats.set(triggerId, (stats = { calls: 0, failures: 0, timeouts: 0, skipped: 0, dropped: 0 }));
    return stats;
  }

  private lane(trigger: TriggerRecord): Lane {
    let lane = this.lanes.get(trigger.triggerId);
    if (!lane) this.lanes.set(trigger.triggerId, (lane = { type: trigger.type, running: 0, queues: new Map(), ready: [] }));
    return lane;
  }

  /** Starts the next call of each ready item while the trigger has free slots. */
  private pump(triggerId: string, lane: Lane): void {
    while (lane.running < this.maxConcurrent && lane.ready.length > 0) {
      const orderKey = lane.ready.shift()!;
      const queue = lane.queues.get(orderKey)!;
      lane.running++;
      void queue[0]().finally(() => this.finished(triggerId, lane, orderKey, queue));
    }
  }

  private finished(triggerId: string, lane: Lane, orderKey: string, queue: Task[]): void {
    lane.running--;
    queue.shift();
    if (queue.length > 0) lane.ready.push(orderKey);
    else lane.queues.delete(orderKey);
    if (lane.running === 0 && lane.queues.size === 0) this.lanes.delete(triggerId);
    else this.pump(triggerId, lane);
    this.pending--;
    if (this.pending === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private drop(trigger: TriggerRecord): void {
    this.counters(trigger.triggerId).dropped++;
    this.metrics.triggerCalled(trigger.type, "dropped", undefined);
    this.droppedSinceLog++;
    const now = Date.now();
    if (now - this.lastDropLog < DROP_LOG_INTERVAL_MS) return;
    this.options.log.warn("trigger calls dropped: handlers are slower than writes", {
      trigger_id: trigger.triggerId,
      function_id: trigger.functionId,
      dropped: this.droppedSinceLog,
      pending: this.pending,
    });
    this.lastDropLog = now;
    this.droppedSinceLog = 0;
  }
}
