import { randomUUID } from "node:crypto";
import { ErrorCode, StreamError } from "../../core/errors.js";
import type { FleetBus, HostedEntry, Hosting } from "../../core/fleet-bus.js";

/**
 * Several fleet buses in one process, for servers (or tests) that share a hub: what one
 * bus sends reaches another bus of the same hub. Texts are handed over on a later
 * microtask, as a network would, in the order they were sent. Entries never expire (a
 * bus in this process cannot crash without the hub), they go with `leave`.
 */
export class MemoryFleetHub {
  private readonly inboxes = new Map<string, (text: string) => void>();
  private readonly entries = new Map<string, string>();

  /**
   * `changed` is called when what the hub's instances host changed; give it what the
   * backends' RegistrationStore `onChange` listens to. Default: nobody is told.
   */
  constructor(private readonly changed: () => void = () => undefined) {}

  /** A new bus on this hub, with an instance id of its own. */
  bus(): MemoryFleetBus {
    return new MemoryFleetBus(this);
  }

  /** @internal Used by the buses of this hub. */
  listen(instanceId: string, onMessage: ((text: string) => void) | undefined): void {
    if (onMessage) this.inboxes.set(instanceId, onMessage);
    else this.inboxes.delete(instanceId);
  }

  /** @internal */
  deliver(instanceId: string, text: string): boolean {
    if (!this.inboxes.has(instanceId)) return false;
    // Looked up again on arrival: a bus closed meanwhile gets nothing, as over a network.
    queueMicrotask(() => this.inboxes.get(instanceId)?.(text));
    return true;
  }

  /** @internal Records an entry (`undefined`: none) and tells `changed` when it differs. */
  setEntry(instanceId: string, hosting: Hosting | undefined): void {
    const before = this.entries.get(instanceId);
    const empty = !hosting || (hosting.functionIds.length === 0 && hosting.triggers.length === 0);
    // In an order that does not depend on the order of registration, so that an unchanged set is no change.
    const entry = empty
      ? undefined
      : JSON.stringify({
          functionIds: [...hosting.functionIds].sort(),
          triggers: [...hosting.triggers].sort((a, b) => (a.triggerId < b.triggerId ? -1 : a.triggerId > b.triggerId ? 1 : 0)),
        });
    if (entry === undefined) this.entries.delete(instanceId);
    else this.entries.set(instanceId, entry);
    if (entry !== before) this.changed();
  }

  /** @internal */
  hosted(): HostedEntry[] {
    return [...this.entries].map(([instanceId, entry]) => ({ instanceId, ...(JSON.parse(entry) as Hosting) }));
  }
}

/** One instance's bus on a MemoryFleetHub. */
export class MemoryFleetBus implements FleetBus {
  readonly instanceId = randomUUID();
  private opened = false;
  private left = false;

  constructor(private readonly hub: MemoryFleetHub) {}

  async open(onMessage: (text: string) => void): Promise<void> {
    if (this.left) throw new StreamError(ErrorCode.Unavailable, "this fleet bus is closed");
    if (this.opened) throw new Error("this fleet bus is open already");
    this.opened = true;
    this.hub.listen(this.instanceId, onMessage);
  }

  async send(instanceId: string, text: string): Promise<boolean> {
    return this.hub.deliver(instanceId, text);
  }

  async announce(hosting: Hosting): Promise<void> {
    if (!this.left) this.hub.setEntry(this.instanceId, hosting);
  }

  async hosted(): Promise<HostedEntry[]> {
    return this.hub.hosted();
  }

  async leave(): Promise<void> {
    if (this.left) return;
    this.left = true;
    this.hub.setEntry(this.instanceId, undefined);
  }

  async close(): Promise<void> {
    await this.leave();
    this.hub.listen(this.instanceId, undefined);
  }
}
