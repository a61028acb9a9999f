import type { FleetBus } from "../core/fleet-bus.js";
import { errorFields, type Log } from "../core/log.js";
import type { TriggerRecord } from "../core/registrations.js";
import type { FleetCalls } from "./fleet-calls.js";
import type { FunctionRegistry } from "./function-registry.js";
import type { FunctionInvoker } from "./types.js";

export interface FleetMembershipOptions {
  bus: FleetBus;
  /** How calls reach the other instances' worker functions; started and closed with the membership. */
  calls: FleetCalls;
  registry: FunctionRegistry;
  /** The triggers of the workers connected to this instance now. */
  workerTriggers: () => readonly TriggerRecord[];
  /** The longest a call from another instance may run here (the function timeout). */
  timeoutMs: number;
  log: Log;
}

/**
 * This instance's place in the fleet: it announces the worker functions and triggers of
 * this instance, serves calls to them from other instances (through FleetCalls), and
 * offers the worker functions of other instances to the registry, behind the same
 * `invoke` as every other function. Their triggers go to the caller of `refresh`, which
 * fires them for the writes this instance takes; the function runs on the worker's
 * instance.
 */
export class FleetMembership {
  private announcing: Promise<void> | undefined;
  private announceAgain = false;
  /** The announcement waiting for the end of this event-loop turn. */
  private scheduled: NodeJS.Immediate | undefined;

  constructor(private readonly options: FleetMembershipOptions) {}

  async start(): Promise<void> {
    const { calls, registry, timeoutMs } = this.options;
    await calls.start((functionId, payload, signal) => registry.invokeLocal(functionId, payload, timeoutMs, signal));
    this.workersChanged();
  }

  /**
   * Tells the fleet which worker functions and triggers this instance offers now; call it
   * after each change. The changes of one event-loop turn make one announcement (each
   * carries the whole set, so announcing every change of a worker that registers n
   * triggers in a burst would cost O(n²)); announcements run one at a time, the last one
   * with the latest set. A failed one is logged, and the bus's next renewal of this
   * instance's entry carries the set.
   */
  workersChanged(): void {
    if (this.announcing) {
      this.announceAgain = true;
      return;
    }
    this.scheduled ??= setImmediate(() => this.startAnnouncing());
  }

  /**
   * Offers the registry the worker functions that other instances host now, and resolves
   * with their workers' triggers (this instance fires its own workers' triggers already).
   */
  async refresh(): Promise<TriggerRecord[]> {
    const { bus, calls, registry } = this.options;
    const hosts = new Map<string, string[]>();
    const unlisted = new Set<string>();
    const triggers: TriggerRecord[] = [];
    for (const { instanceId, functionIds, unlistedFunctionIds = [], triggers: hostedTriggers } of await bus.hosted()) {
      if (instanceId === bus.instanceId) continue;
      triggers.push(...hostedTriggers);
      for (const functionId of unlistedFunctionIds) unlisted.add(functionId);
      for (const functionId of functionIds) {
        const instances = hosts.get(functionId);
        if (instances) instances.push(instanceId);
        else hosts.set(functionId, [instanceId]);
      }
    }
    const invokers = new Map<string, FunctionInvoker>();
    for (const [functionId, instances] of hosts) {
      invokers.set(functionId, { invoke: (id, payload, signal) => calls.callAnyHost(instances, id, payload, signal) });
    }
    registry.replaceFleet(invokers, unlisted);
    return triggers;
  }

  /** Lets the announcement under way finish, then leaves the fleet (see FleetCalls.close). */
  async close(): Promise<void> {
    if (this.scheduled) this.startAnnouncing();
    await this.announcing;
    await this.options.calls.close();
  }

  private startAnnouncing(): void {
    clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.announcing ??= this.announce().finally(() => (this.announcing = undefined));
  }

  private async announce(): Promise<void> {
    do {
      this.announceAgain = false;
      try {
        const { bus, registry, workerTriggers } = this.options;
        await bus.announce({ functionIds: registry.workerIds(), unlistedFunctionIds: registry.unlistedWorkerIds(), triggers: workerTriggers() });
      } catch (error) {
        this.options.log.error("cannot announce this instance's worker functions and triggers to the fleet", errorFields(error));
      }
    } while (this.announceAgain);
  }
}
