import type { JsonValue } from "../core/json.js";
import { ErrorCode, StreamError } from "../core/errors.js";
import type { FunctionInvoker, FunctionRegistry } from "./function-registry.js";
import type { TriggerRecord } from "../core/registrations.js";

/** What the workers connected to one instance offer the fleet. */
export interface Hosting {
  functionIds: readonly string[];
  triggers: readonly TriggerRecord[];
}

/** What the workers connected to one live instance of the fleet offer. */
export interface HostedEntry extends Hosting {
  instanceId: string;
}

/** Runs a call that another instance sent to one of this instance's worker functions. */
export type FleetCallHandler = (functionId: string, payload: JsonValue, signal: AbortSignal) => Promise<JsonValue | undefined>;

/**
 * How the instances sharing a registration store call each other's worker functions: a
 * worker is connected to one instance, while a write that triggers its function may be
 * taken by any. Offered by stores that several instances share (Redis); without it, a
 * worker function can only be called on the instance its worker is connected to.
 * Changes of what the fleet hosts are announced through the store's `onChange`.
 */
export interface FunctionFleet {
  /** Names this instance among those sharing the store; unique per process start. */
  readonly instanceId: string;
  /** Starts serving calls from other instances with `handler`, and keeps this instance's entry alive. */
  start(handler: FleetCallHandler): Promise<void>;
  /** Records the complete set of worker functions and triggers this instance hosts now. */
  announce(hosting: Hosting): Promise<void>;
  /** What every live instance hosts, this one included. */
  hosted(): Promise<HostedEntry[]>;
  /**
   * Calls a worker function on another instance; `signal` cancels the call there too.
   * Rejects with CallNotDelivered when the call never reached that instance (it is gone or
   * cannot be reached), so that it did not run and another host may be tried.
   */
  call(instanceId: string, functionId: string, payload: JsonValue, signal: AbortSignal): Promise<JsonValue | undefined>;
  /** Withdraws this instance's entry, answers the calls it is serving, and fails its own pending calls. */
  close(): Promise<void>;
}

/** A call that did not reach the instance it was sent to, so it did not run. */
export class CallNotDelivered extends StreamError {
  constructor(message: string) {
    super(ErrorCode.Unavailable, message);
  }
}

export interface FleetFunctionsOptions {
  fleet: FunctionFleet;
  registry: FunctionRegistry;
  /** The triggers of the workers connected to this instance now. */
  workerTriggers: () => readonly TriggerRecord[];
  /** The longest a call from another instance may run here (the function timeout). */
  timeoutMs: number;
  log: (line: string) => void;
}

/**
 * Connects a FunctionRegistry to the fleet: announces the worker functions and triggers
 * of this instance, serves calls to them from other instances, and offers the worker
 * functions of other instances to the registry, behind the same `invoke` as every other
 * function. Their triggers go to the caller of `refresh`, which fires them for the
 * writes this instance takes; the function runs on the worker's instance.
 */
export class FleetFunctions {
  private announcing: Promise<void> | undefined;
  private announceAgain = false;

  constructor(private readonly options: FleetFunctionsOptions) {}

  async start(): Promise<void> {
    const { fleet, registry, timeoutMs } = this.options;
    await fleet.start((functionId, payload, signal) => registry.invokeHere(functionId, payload, timeoutMs, signal));
    this.workersChanged();
  }

  /**
   * Tells the fleet which worker functions and triggers this instance offers now; call it
   * after each change. Announcements run one at a time, the last one with the latest set;
   * a failed one is logged, and the fleet's next renewal of this instance's entry carries
   * the set.
   */
  workersChanged(): void {
    if (this.announcing) {
      this.announceAgain = true;
      return;
    }
    this.announcing = this.announce().finally(() => (this.announcing = undefined));
  }

  /**
   * Offers the registry the worker functions that other instances host now, and resolves
   * with their workers' triggers (this instance fires its own workers' triggers already).
   */
  async refresh(): Promise<TriggerRecord[]> {
    const { fleet, registry } = this.options;
    const hosts = new Map<string, string[]>();
    const triggers: TriggerRecord[] = [];
    for (const { instanceId, functionIds, triggers: hostedTriggers } of await fleet.hosted()) {
      if (instanceId === fleet.instanceId) continue;
      triggers.push(...hostedTriggers);
      for (const functionId of functionIds) {
        const instances = hosts.get(functionId);
        if (instances) instances.push(instanceId);
        else hosts.set(functionId, [instanceId]);
      }
    }
    const invokers = new Map<string, FunctionInvoker>();
    for (const [functionId, instances] of hosts) {
      invokers.set(functionId, { invoke: (id, payload, signal) => this.callAnyHost(instances, id, payload, signal) });
    }
    registry.replaceElsewhere(invokers);
    return triggers;
  }

  async close(): Promise<void> {
    await this.announcing;
    await this.options.fleet.close();
  }

  private async announce(): Promise<void> {
    do {
      this.announceAgain = false;
      try {
        const { fleet, registry, workerTriggers } = this.options;
        await fleet.announce({ functionIds: registry.workerIds(), triggers: workerTriggers() });
      } catch (error) {
        this.options.log(`cannot announce this instance's worker functions and triggers to the fleet: ${(error as Error).message}`);
      }
    } while (this.announceAgain);
  }

  /**
   * Tries the hosts, starting at a random one so that calls spread over them, until one
   * takes the call. Only an undelivered call moves on: one that was delivered may have
   * run, and must not run twice.
   */
  private async callAnyHost(
    instances: readonly string[],
    functionId: string,
    payload: JsonValue,
    signal: AbortSignal,
  ): Promise<JsonValue | undefined> {
    const first = Math.floor(Math.random() * instances.length);
    let undelivered: CallNotDelivered | undefined;
    for (let i = 0; i < instances.length; i++) {
      try {
        return await this.options.fleet.call(instances[(first + i) % instances.length], functionId, payload, signal);
      } catch (error) {
        if (!(error instanceof CallNotDelivered)) throw error;
        undelivered = error;
      }
    }
    throw undelivered;
  }
}
