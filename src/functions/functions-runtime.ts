import { createHash } from "node:crypto";
import type { Metrics } from "../core/metrics.js";
import type { GroupMessage } from "../core/model.js";
import type { JsonValue } from "../core/json.js";
import { checkName, groupKey } from "../core/names.js";
import { decodePageToken, encodePageToken } from "../core/page-token.js";
import type { EngineHooks } from "../core/hooks.js";
import { ErrorCode, invalidArgument, StreamError } from "../core/errors.js";
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
import { DurableDelivery } from "./durable-delivery.js";
import { deliveryIdOf, replayDeliveryId, type OutboxCounts, type PendingCall, type TriggerOutbox } from "../core/outbox.js";
import type { ItemChange } from "../core/model.js";
import { randomUUID } from "node:crypto";

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
  /**
   * The backend's outbox of `at_least_once` triggers, which its item store fills on
   * commit. Default none: such triggers are refused with FAILED_PRECONDITION.
   */
  outbox?: TriggerOutbox;
  /**
   * The retained changes of a group after an offset (ItemStore.changesSince), which
   * ReplayTrigger re-delivers. Default none: replay is refused with FAILED_PRECONDITION.
   */
  changesSince?: (streamName: string, groupId: string, afterOffset: number) => Promise<ItemChange[] | undefined>;
  /**
   * How often an idle `at_least_once` trigger looks for calls added by other instances or
   * for a lease to take over (see DurableDeliveryOptions.pollMs). Default 250 ms.
   */
  outboxPollMs?: number;
}

export interface TriggerInfo extends TriggerRecord {
  stats: TriggerStats;
}

/** A trigger with what waits in its outbox (always 0 and 0 for an at-most-once trigger). */
export interface TriggerLoad extends TriggerInfo {
  /** Calls stored and not yet delivered nor dead (at least once). */
  lag: number;
  deadLetters: number;
}

/** A page of dead letters. */
export interface DeadLetterPage {
  deadLetters: PendingCall[];
  nextPageToken: string;
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
  /** Delivers the calls of `at_least_once` triggers from the outbox; absent without one. */
  private readonly durable: DurableDelivery | undefined;
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
  /** Whether any stored trigger is at least once (see durableTriggerIds). */
  private hasDurableTriggers = false;
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
    const outbox = options.outbox;
    this.durable =
      outbox === undefined
        ? undefined
        : new DurableDelivery({
            outbox,
            run: (trigger, payload) => this.dispatcher.run(trigger, payload, undefined),
            callable: (functionId) => this.functions.has(functionId),
            log: this.log,
            pollMs: options.outboxPollMs,
          });
    this.hooks = {
      afterCommit: (message) => this.fireStreamTriggers(message),
      durableTriggers: (target) => this.durableTriggerIds(target),
      ...this.gate.hooks,
    };
    for (const [functionId, handler] of Object.entries(options.handlers ?? {})) this.registerFunction(functionId, handler);
  }

  /** Registers the declared functions and triggers, then loads everything stored. */
  async start(): Promise<void> {
    // All are checked before any is saved, so a bad one leaves the store as it was.
    const declared = (this.options.remote ?? []).map((record) => this.checkRemote(record));
    for (const record of declared) await this.store.saveFunction(record);
    for (const input of this.options.triggers ?? []) {
      await this.store.saveTrigger(this.checkDurable(checkTrigger({ ...input, triggerId: input.triggerId ?? declaredTriggerId(input) })));
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
    await this.durable?.close();
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
    // A worker's trigger lives as long as its connection: it keeps at most once delivery.
    const record = checkTrigger(input);
    if (record.config.delivery === "at_least_once") {
      throw new StreamError(ErrorCode.InvalidArgument, "a worker's trigger is delivered at most once; register an at_least_once trigger with RegisterTrigger");
    }
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
    const record = this.checkDurable(checkTrigger(input));
    await this.store.saveTrigger(record);
    await this.sync();
    return record.triggerId;
  }

  async unregisterTrigger(triggerId: string): Promise<boolean> {
    const found = await this.store.deleteTrigger(checkName("trigger_id", triggerId));
    await this.sync();
    // Its pending calls and dead letters have nobody to go to any more.
    if (found) await this.options.outbox?.forget(triggerId);
    return found;
  }

  /** Every trigger with its lag and dead letters, read from the outbox (see TriggerLoad). */
  async listTriggerLoads(): Promise<TriggerLoad[]> {
    const outbox = this.options.outbox;
    return Promise.all(
      this.listTriggers().map(async (trigger) => {
        const counts: OutboxCounts =
          outbox !== undefined && trigger.type === "stream" ? await outbox.counts(trigger.triggerId) : { pending: 0, dead: 0 };
        return { ...trigger, lag: counts.pending + this.dispatcher.waiting(trigger.triggerId), deadLetters: counts.dead };
      }),
    );
  }

  /** A page of a trigger's dead letters, oldest first (page size 0 for 100, at most 1,000). */
  async listDeadLetters(triggerId: string, pageSize: number, pageToken: string): Promise<DeadLetterPage> {
    const trigger = this.streamTrigger(triggerId);
    const size = pageSize === 0 ? 100 : pageSize;
    if (!(Number.isSafeInteger(size) && size >= 1 && size <= 1000)) throw invalidArgument(`page_size must be between 0 and 1000, got ${pageSize}`);
    const scope = { kind: "dead-letters", triggerId: trigger.triggerId } as const;
    const after = decodePageToken(scope, pageToken) ?? "";
    const outbox = this.options.outbox;
    if (outbox === undefined) return { deadLetters: [], nextPageToken: "" };
    const page = await outbox.deadLetters(trigger.triggerId, after, size + 1);
    const more = page.length > size;
    if (more) page.length = size;
    return { deadLetters: page, nextPageToken: more ? encodePageToken(scope, page.at(-1)!.entryId) : "" };
  }

  /** Puts dead letters (all when `deliveryIds` is empty) back into the outbox; resolves with how many. */
  async retryDeadLetters(triggerId: string, deliveryIds: readonly string[]): Promise<number> {
    const trigger = this.streamTrigger(triggerId);
    const outbox = this.options.outbox;
    if (outbox === undefined) return 0;
    const retried = await outbox.reviveDeadLetters(trigger.triggerId, deliveryIds);
    this.durable?.wake(trigger.triggerId);
    return retried;
  }

  /**
   * Delivers again the retained changes of a group after `fromOffset` that match the
   * trigger, in offset order, each with the delivery id of the change plus `/r<replay id>`.
   * An at-least-once trigger gets them through its outbox (so with retries and dead
   * letters), an at-most-once one from memory.
   */
  async replayTrigger(triggerId: string, groupId: string, fromOffset: number): Promise<number> {
    const trigger = this.streamTrigger(triggerId);
    const filter = trigger.config.groupId;
    if (groupId === "" && filter === undefined) throw invalidArgument("group_id is required: the trigger matches every group");
    const group = groupId === "" ? filter! : checkName("group_id", groupId);
    if (filter !== undefined && filter !== group) {
      throw invalidArgument(`trigger "${trigger.triggerId}" only matches group "${filter}", not "${group}"`);
    }
    if (!(Number.isSafeInteger(fromOffset) && fromOffset >= 0)) throw invalidArgument("from_offset must be a non-negative integer");
    const changesSince = this.options.changesSince;
    if (changesSince === undefined) throw new StreamError(ErrorCode.FailedPrecondition, "this server cannot read the history of groups");
    const streamName = trigger.config.streamName!;
    const changes = await changesSince(streamName, group, fromOffset);
    if (changes === undefined) {
      throw new StreamError(
        ErrorCode.FailedPrecondition,
        `the history of group "${group}" no longer holds every change after offset ${fromOffset} (or the offset is ahead of the group)`,
      );
    }
    const matching = changes.filter((change) => trigger.config.itemId === undefined || trigger.config.itemId === change.itemId);
    const replayId = randomUUID().slice(0, 8);
    if (trigger.config.delivery === "at_least_once" && this.options.outbox !== undefined) {
      const calls = matching.map((change) => ({ deliveryId: replayDeliveryId(trigger.triggerId, change, replayId), change }));
      const scheduled = await this.options.outbox.schedule(trigger.triggerId, calls);
      this.durable?.wake(trigger.triggerId);
      return scheduled;
    }
    for (const change of matching) {
      const payload = { ...streamTriggerPayload(change), delivery_id: replayDeliveryId(trigger.triggerId, change, replayId), attempt: 1 };
      this.dispatcher.dispatch(trigger, groupKey(change.streamName, change.groupId, change.itemId), payload);
    }
    return matching.length;
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
    let payload: ReturnType<typeof streamTriggerPayload> | undefined;
    // Calls for one item (or for the item-less events of one group) keep their order.
    const orderKey = groupKey(message.streamName, message.groupId, message.itemId);
    for (const trigger of triggers) {
      // A change's durable calls were stored with it: the outbox delivers them. Events
      // are never stored, so they go out at most once to every trigger.
      if (message.kind === "change" && this.durable !== undefined && trigger.config.delivery === "at_least_once") {
        this.durable.wake(trigger.triggerId);
        continue;
      }
      payload ??= streamTriggerPayload(message);
      const deliveryId = message.kind === "change" ? deliveryIdOf(trigger.triggerId, message) : `${deliveryIdOf(trigger.triggerId, message)}/e${randomUUID().slice(0, 8)}`;
      this.dispatcher.dispatch(trigger, orderKey, { ...payload, delivery_id: deliveryId, attempt: 1 });
    }
  }

  /** The at-least-once triggers a change of the item fires (see EngineHooks.durableTriggers). */
  private durableTriggerIds(target: { streamName: string; groupId: string; itemId: string }): readonly string[] {
    // Most servers have none: a write then costs no trigger lookup here.
    if (this.durable === undefined || !this.hasDurableTriggers) return NONE;
    const triggers = this.triggers.matching("stream", target);
    if (triggers.length === 0) return NONE;
    const ids: string[] = [];
    for (const trigger of triggers) if (trigger.config.delivery === "at_least_once") ids.push(trigger.triggerId);
    return ids;
  }

  /** A registered `stream` trigger, or NOT_FOUND / INVALID_ARGUMENT. */
  private streamTrigger(triggerId: string): TriggerRecord {
    checkName("trigger_id", triggerId);
    const trigger = this.triggers.list().find((candidate) => candidate.triggerId === triggerId);
    if (!trigger) throw new StreamError(ErrorCode.NotFound, `no trigger has id "${triggerId}"`);
    if (trigger.type !== "stream") throw invalidArgument(`trigger "${triggerId}" is a ${trigger.type} trigger; only stream triggers have an outbox and can be replayed`);
    return trigger;
  }

  /** An at-least-once trigger needs a backend that stores its calls. */
  private checkDurable(record: TriggerRecord): TriggerRecord {
    if (record.config.delivery === "at_least_once" && this.options.outbox === undefined) {
      throw new StreamError(
        ErrorCode.FailedPrecondition,
        "this server's backend keeps no outbox, so it cannot deliver at least once; use the memory, file or redis adapter",
      );
    }
    return record;
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
    const durable = stored.triggers.filter((trigger) => trigger.type === "stream" && trigger.config.delivery === "at_least_once");
    this.hasDurableTriggers = durable.length > 0;
    this.durable?.setTriggers(durable);
    this.durable?.functionsChanged();
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

const NONE: readonly string[] = [];

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
