import type { FleetBus } from "../core/fleet-bus.js";
import type { ItemStore } from "../core/item-store.js";
import type { Log } from "../core/log.js";
import type { RegistrationStore } from "../core/registrations.js";
import type { TriggerOutbox } from "../core/outbox.js";
import { openFileBackend } from "./file/file-backend.js";
import { memoryBackend } from "./memory/memory-backend.js";
import { connectRedisBackend } from "./redis/redis-backend.js";

/**
 * The small ports a server keeps its state in, set separately, so that each can be
 * offered or left out on its own: items (always), registrations of remote functions and
 * triggers (without: kept in the server's memory, neither surviving a restart nor shared),
 * and a fleet bus between the instances sharing the backend (without: worker functions
 * are called only where their worker is connected).
 *
 * Closing: the server closes the fleet bus first (when its functions stop), then the
 * engine closes `items`, and the item store closes whatever else of the backend shares
 * its connections or file (registrations, then the connections themselves).
 */
export interface Backend {
  items: ItemStore;
  registrations?: RegistrationStore;
  fleet?: FleetBus;
  /**
   * The pending calls of `at_least_once` triggers, which `items.commit` records (without:
   * such triggers are refused).
   */
  outbox?: TriggerOutbox;
}

/** What the command line and config file chose, reduced to one description. */
export type AdapterChoice =
  | { name: "memory"; historyLimit?: number; maxOutbox?: number }
  | { name: "file"; dataDir: string; syncIntervalMs?: number; historyLimit?: number; maxOutbox?: number }
  | { name: "redis"; url: string; keyPrefix?: string; historyLimit?: number; maxOutbox?: number; outboxLeaseMs?: number };

/** `log` gets what the store recovers from by itself (see ItemStoreOptions.log). */
export async function createBackend(choice: AdapterChoice, log?: Log): Promise<Backend> {
  if (choice.name === "redis") {
    return connectRedisBackend({
      url: choice.url,
      keyPrefix: choice.keyPrefix,
      historyLimit: choice.historyLimit,
      maxOutbox: choice.maxOutbox,
      outboxLeaseMs: choice.outboxLeaseMs,
    });
  }
  if (choice.name === "file") {
    return openFileBackend({ dataDir: choice.dataDir, syncIntervalMs: choice.syncIntervalMs, historyLimit: choice.historyLimit, maxOutbox: choice.maxOutbox, log });
  }
  return memoryBackend({ historyLimit: choice.historyLimit, maxOutbox: choice.maxOutbox });
}
