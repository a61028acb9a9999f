import type { TriggerRecord } from "./registrations.js";

/** What the workers connected to one instance offer the fleet. */
export interface Hosting {
  functionIds: readonly string[];
  /**
   * Those of `functionIds` that belong to restricted connections (browser pages, keyless
   * workers when keys are set): callable by their own triggers from any instance, but
   * listed by none. Absent in entries of earlier versions: nothing hidden.
   */
  unlistedFunctionIds?: readonly string[];
  triggers: readonly TriggerRecord[];
}

/** What the workers connected to one live instance of the fleet offer. */
export interface HostedEntry extends Hosting {
  instanceId: string;
}

/**
 * How the instances sharing a backend reach each other: a worker is connected to one
 * instance, while a write that triggers its function may be taken by any. The bus only
 * moves text from one instance to another and keeps the list of what each live instance
 * hosts; what the text means (calls, cancels, replies) is the business of its user
 * (functions/fleet-calls.ts), so that every bus speaks the same protocol. Offered by
 * backends that several processes share (Redis); without one, a worker function can only
 * be called on the instance its worker is connected to.
 *
 * What a bus guarantees:
 * - Delivery is at most once, and a text is never resent: `send` resolving `true` means the
 *   text was handed to the instance, not that it was acted on; a text can still be lost
 *   after that (a connection dropped), and the sender must time out on its own.
 * - `send` resolving `false` means no instance of that id received it (gone, or never
 *   there), so the text certainly had no effect and the sender may try another instance.
 * - Texts from one sender to one receiver arrive in the order they were sent.
 * - `hosted()` lists the entries of the instances that announced something and renew it;
 *   an instance that stops renewing (a crashed process) drops out within the bus's own
 *   expiry. A change of what the fleet hosts is announced through the `onChange` of the
 *   same backend's RegistrationStore.
 */
export interface FleetBus {
  /** Names this instance among those sharing the bus; unique per process start. */
  readonly instanceId: string;
  /**
   * Starts receiving the texts sent to this instance, and keeps its entry alive while it
   * stays open. Resolves once texts are received. A bus is opened once.
   */
  open(onMessage: (text: string) => void): Promise<void>;
  /**
   * Sends text to one instance; resolves with whether it was delivered (see above).
   * Rejects (UNAVAILABLE) when the bus cannot tell, e.g. its broker is unreachable.
   */
  send(instanceId: string, text: string): Promise<boolean>;
  /** Records the complete set of worker functions and triggers this instance hosts now. Ignored after `leave`. */
  announce(hosting: Hosting): Promise<void>;
  /** What every live instance hosts, this one included. */
  hosted(): Promise<HostedEntry[]>;
  /**
   * Withdraws this instance's entry at once and stops renewing it, so that the others stop
   * sending it calls; texts still arrive and can be sent until `close`, so the calls it is
   * serving can be answered. Never rejects: an entry that could not be withdrawn expires.
   */
  leave(): Promise<void>;
  /** Leaves (when not done yet) and stops receiving. Never rejects. */
  close(): Promise<void>;
}
