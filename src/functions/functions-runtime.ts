import { createHash } from "node:crypto";
import type { Metrics } from "../core/metrics.js";
import type { GroupMessage } from "../core/model.js";
import type { JsonValue } from "../core/json.js";
import { checkName, groupKey } from "../core/names.js";
import type { EngineHooks } from "../core/hooks.js";
import { ErrorCode, StreamError } from "../core/errors.js";
import { errorFields, silentLog, type Log } from "../core/log.js";
import type { Tracer } from "../core/tracer.js";
import type { HandshakeInfo } from "../access/handshake.js";
import type { FleetBus } from "../core/fleet-bus.js";
import { FleetCalls } from "./fleet-calls.js";
import { FleetMembership } from "./fleet-membership.js";
import { FunctionRegistry } from "./function-registry.js";
import type { FunctionHandler, FunctionInfo, FunctionInvoker } from "./types.js";
import { type FunctionRecord, type RegistrationStore, type TriggerRecord } from "../core/registrations.js";
import { checkFunctionUrl } from "./remote-function.js";
import { FunctionHosts } from "./function-hosts.js";
import { SubscriptionGate } from "./subscription-gate.js";
import { TriggerDispatcher, type TriggerStats } from "./trigger-dispatcher.js";
import { streamTriggerPayload } from "./trigger-payloads.js";
import { checkTrigger, TriggerRegistry, type TriggerInput } from "./trigger-registry.js";

export interface FunctionsOptions {
  /** In-process functions by id; more can be added with `registerFunction`. */
  handlers?: Record<string, FunctionHandler>;
  /** Remote functions registered at start (the config file's `functions`), replacing stored ones with the same id. */
  remote?: FunctionRecord[];
  /**
   * Triggers registered at start (the config file's `triggers`). One without an id
   * gets one derived from its content, so restarting with the same file does not add
   * it twice.
   */
  triggers?: TriggerInput[];
  /** The function that authenticates every subscriber. Default none: everyone may subscribe. */
  authFunction?: string;
  /** How long one trigger call may take. Default 30,000 ms, long enough for a backend that does real work. */
  functionTimeoutMs?: number;
  /** How long the auth function may take. Default 5,000 ms: a subscriber waits for it before anything flows. */
  authTimeoutMs?: number;
  /**
   * Where trigger calls' spans go (see DispatcherOptions.tracer).
   * @default passThroughTracer: nothing recorded, incoming trace contexts passed on
   */
  tracer?: Tracer;
  /** Where failures (of triggers, the auth function, reloads) are reported. Default: nowhere (silentLog); the server passes its log. */
  log?: Log;
}

/** FunctionsOptions plus the ports of the backend the runtime keeps its state in. */
export interface FunctionsRuntimeOptions extends FunctionsOptions {
  /**
   * Where remote functions and triggers are kept: the backend's registration store (the
   * server gives an in-process one when the backend has none).
   */
  registrations: RegistrationStore;
  /**
   * How this instance calls the worker functions of the other instances sharing the
   * backend, and they its own. Default none: a worker function can only be called on the
   * instance its worker is connected to.
   */
  fleet?: FleetBus;
  /**
   * The hosts remote functions may be registered at (the server resolves its
   * `allowedFunctionHosts` option into this). Default: loopback only, the server's
   * default without API keys.
   */
  allowedHosts?: FunctionHosts;
  /** Where trigger calls are counted (see TriggerDispatcher). Default: nowhere. */
  metrics?: Metrics;
}

export interface TriggerInfo extends TriggerRecord {
  stats: TriggerStats;
}

export const DEFAULT_FUNCTION_TIMEOUT_MS = 30_000;
export const DEFAULT_AUTH_TIMEOUT_MS = 5_000;

/**
 * Functions, triggers and the subscription gate of one server. Remote functions and
 * triggers live in the registration store; this instance keeps a copy that it
 * reloads after each of its own changes and whenever the store reports one made
 * elsewhere.
 */
export class FunctionsRuntime {
  private readonly functions = new FunctionRegistry();
  private readonly triggers = new TriggerRegistry();
  private readonly dispatcher: TriggerDispatcher;
  private readonly gate: SubscriptionGate;
  /** What the engine calls: stream triggers on every change and event, join and leave around subscriptions. */
  readonly hooks: EngineHooks;
  private readonly store: RegistrationStore;
  /** Worker functions and triggers across the instances sharing the backend, when it has a fleet bus. */
  private readonly fleet: FleetMembership | undefined;
  private readonly functionTimeoutMs: number;
  private readonly allowedHosts: FunctionHosts;
  /** Stored functions this server refuses to call, already reported, by `id url`: each is logged once. */
  private readonly refusedStored = new Set<string>();
  private readonly log: Log;
  private stopWatching: (() => void) | undefined;
  private reloading: Promise<void> | undefined;
  private reloadAgain: Promise<void> | undefined;

  constructor(private readonly options: FunctionsRuntimeOptions) {
    this.store = options.registrations;
    this.allowedHosts = options.allowedHosts ?? FunctionHosts.loopback;
    this.functionTimeoutMs = checkTimeout("function timeout", options.functionTimeoutMs ?? DEFAULT_FUNCTION_TIMEOUT_MS);
    this.log = options.log ?? silentLog;
    this.fleet =
      options.fleet === undefined
        ? undefined
        : new FleetMembership({
            bus: options.fleet,
            calls: new FleetCalls(options.fleet),
            registry: this.functions,
            workerTriggers: () => this.triggers.workerTriggers(),
            timeoutMs: this.functionTimeoutMs,
            log: this.log,
          });
    this.dispatcher = new TriggerDispatcher({
      invoke: (functionId, payload) => this.functions.invoke(functionId, payload, this.functionTimeoutMs),
      log: this.log,
      tracer: options.tracer,
      metrics: options.metrics,
    });
    this.gate = new SubscriptionGate({
      functions: this.functions,
      triggers: this.triggers,
      dispatcher: this.dispatcher,
      authFunction: options.authFunction === undefined ? undefined : checkName("auth_function", options.authFunction),
      authTimeoutMs: checkTimeout("auth timeout", options.authTimeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS),
      log: this.log,
    });
    this.hooks = { afterCommit: (message) => this.fireStreamTriggers(message), ...this.gate.hooks };
    for (const [functionId, handler] of Object.entries(options.handlers ?? {})) this.registerFunction(functionId, handler);
  }

  /** Registers the declared functions and triggers, then loads everything stored. */
  async start(): Promise<void> {
    // All are checked before any is saved, so a bad one leaves the store as it was.
    const declared = (this.options.remote ?? []).map((record) => this.checkRemote(record));
    for (const record of declared) await this.store.saveFunction(record);
    for (const input of this.options.triggers ?? []) {
      await this.store.saveTrigger(checkTrigger({ ...input, triggerId: input.triggerId ?? declaredTriggerId(input) }));
    }
    await this.fleet?.start();
    this.stopWatching = this.store.onChange(() => {
      this.sync().catch((error: unknown) => this.log.error("cannot reload functions and triggers", errorFields(error)));
    });
    await this.sync();
  }

  /**
   * Lets pending trigger calls (leave handlers of the last subscribers, say) finish for
   * up to `graceMs`, then drops those not started and ends those still running.
   */
  async close(graceMs: number): Promise<void> {
    this.stopWatching?.();
    await this.dispatcher.idle(graceMs);
    this.dispatcher.close();
    this.functions.close();
    await this.fleet?.close();
  }

  /** Registers (or replaces) an in-process function; the returned function removes it. Never stored. */
  registerFunction(functionId: string, handler: FunctionHandler): () => void {
    return this.functions.registerInProcess(checkName("function_id", functionId), handler);
  }

  /** The seam for the WebSocket bridge: a function offered by a connected worker. */
  registerWorkerFunction(functionId: string, invoker: FunctionInvoker, options: { listed?: boolean } = {}): () => void {
    const remove = this.functions.registerWorker(checkName("function_id", functionId), invoker, options.listed ?? true);
    this.fleet?.workersChanged();
    return () => {
      remove();
      this.fleet?.workersChanged();
    };
  }

  /**
   * The seam for the WebSocket bridge: a trigger registered by a connected worker.
   * It is never stored (a stored one would outlive the worker and fire at a function
   * that is gone); the returned function removes it when the worker disconnects. With a
   * fleet, it is announced with this instance's entry, so every instance fires it for
   * the writes it takes for as long as the worker and this instance are there.
   */
  registerWorkerTrigger(input: TriggerInput): () => void {
    const record = checkTrigger(input);
    this.triggers.addWorker(record);
    this.fleet?.workersChanged();
    return () => {
      this.triggers.removeWorker(record);
      this.fleet?.workersChanged();
    };
  }

  async registerRemoteFunction(record: FunctionRecord): Promise<void> {
    const checked = this.checkRemote(record);
    if (this.functions.isLocal(checked.functionId)) {
      throw new StreamError(
        ErrorCode.FailedPrecondition,
        `function "${checked.functionId}" is provided in process or by a worker here; choose another id`,
      );
    }
    await this.store.saveFunction(checked);
    await this.sync();
  }

  async unregisterFunction(functionId: string): Promise<boolean> {
    const found = await this.store.deleteFunction(checkName("function_id", functionId));
    await this.sync();
    return found;
  }

  /** Adds a trigger, or replaces the one with the same id; resolves with its id. */
  async registerTrigger(input: TriggerInput): Promise<string> {
    const record = checkTrigger(input);
    await this.store.saveTrigger(record);
    await this.sync();
    return record.triggerId;
  }

  async unregisterTrigger(triggerId: string): Promise<boolean> {
    const found = await this.store.deleteTrigger(checkName("trigger_id", triggerId));
    await this.sync();
    return found;
  }

  /**
   * Calls a function wherever it is served (in process, by a worker here or on another
   * instance, or remotely). Default timeout: the function timeout.
   */
  invoke(functionId: string, payload: JsonValue, timeoutMs = this.functionTimeoutMs): Promise<JsonValue | undefined> {
    return this.functions.invoke(functionId, payload, timeoutMs);
  }

  listFunctions(): FunctionInfo[] {
    return this.functions.list();
  }

  listTriggers(): TriggerInfo[] {
    return this.triggers.list().map((trigger) => ({ ...trigger, stats: this.dispatcher.statsOf(trigger.triggerId) }));
  }

  /** Runs the auth function for a Subscribe call or a WebSocket handshake; see SubscriptionGate. */
  authenticate(handshake: HandshakeInfo): Promise<JsonValue> {
    return this.gate.authenticate(handshake);
  }

  private fireStreamTriggers(message: GroupMessage): void {
    const triggers = this.triggers.matching("stream", message);
    if (triggers.length === 0) return;
    const payload = streamTriggerPayload(message);
    // Calls for one item (or for the item-less events of one group) keep their order.
    const orderKey = groupKey(message.streamName, message.groupId, message.itemId);
    for (const trigger of triggers) this.dispatcher.dispatch(trigger, orderKey, payload);
  }

  /**
   * Reloads from the store. A call made while a reload runs gets one more reload
   * after it, so what it sees is never older than the call; callers meanwhile share it.
   */
  private sync(): Promise<void> {
    if (!this.reloading) {
      this.reloading = this.reload().finally(() => (this.reloading = undefined));
      return this.reloading;
    }
    this.reloadAgain ??= this.reloading
      .catch(() => undefined)
      .then(() => {
        this.reloadAgain = undefined;
        return this.sync();
      });
    return this.reloadAgain;
  }

  private async reload(): Promise<void> {
    const [stored, fleetTriggers] = await Promise.all([this.store.load(), this.fleet?.refresh()]);
    this.functions.replaceRemote(stored.functions.filter((record) => this.callable(record)));
    // Worker triggers are never stored: they stay as they are.
    this.triggers.replaceShared([...stored.triggers, ...(fleetTriggers ?? [])]);
  }

  /** A URL checked, normalised and on an allowed host; the function id checked. */
  private checkRemote(record: FunctionRecord): FunctionRecord {
    const url = checkFunctionUrl(record.url);
    this.allowedHosts.check(url);
    return { functionId: checkName("function_id", record.functionId), url };
  }

  /**
   * Whether a stored function may be called from here. Registrations made before URLs
   * were checked, or by an instance sharing the backend under other rules, may not pass
   * this server's: they stay stored but are never called (nor listed), with one log line.
   */
  private callable(record: FunctionRecord): boolean {
    try {
      this.checkRemote(record);
      return true;
    } catch (error) {
      const key = `${record.functionId} ${record.url}`;
      if (!this.refusedStored.has(key)) {
        this.refusedStored.add(key);
        this.log.warn("stored function is not callable here", { function_id: record.functionId, ...errorFields(error) });
      }
      return false;
    }
  }
}

/** The same declaration always gets the same id. */
function declaredTriggerId(input: TriggerInput): string {
  const content = JSON.stringify([input.type, input.functionId, input.config ?? {}]);
  return `config-${createHash("sha256").update(content).digest("hex").slice(0, 16)}`;
}

function checkTimeout(name: string, ms: number): number {
  if (!(Number.isSafeInteger(ms) && ms > 0)) {
    throw new StreamError(ErrorCode.InvalidArgument, `${name} must be a positive number of milliseconds, got ${ms}`);
  }
  return ms;
}
