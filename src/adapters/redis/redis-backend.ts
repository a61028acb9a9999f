import { connectRedis, RedisItemStore, type RedisItemStoreOptions } from "./redis-item-store.js";
import { RedisFleetBus } from "./redis-fleet-bus.js";
import { RedisRegistrations } from "./redis-registrations.js";
import { RedisOutbox } from "./redis-outbox.js";
import type { Redis } from "ioredis";

export interface RedisBackendOptions extends RedisItemStoreOptions {
  /**
   * How long an instance's record of the worker functions it hosts outlives the instance
   * (it is renewed every third of this). Default 15,000 ms: a crashed instance's worker
   * functions disappear from the fleet within about that long (calls to them fail at once
   * meanwhile), while a Redis hiccup of a few seconds does not make them flicker.
   */
  instanceTtlMs?: number;
  /** How long an instance delivers an at-least-once trigger's calls without renewing its lease (see RedisOutboxOptions.leaseMs). Default 10,000 ms. */
  outboxLeaseMs?: number;
}

export const DEFAULT_INSTANCE_TTL_MS = 15_000;

/** The three ports of a Redis backend, over one pair of connections. */
export interface RedisBackend {
  items: RedisItemStore;
  registrations: RedisRegistrations;
  fleet: RedisFleetBus;
  /** Absent on Redis Cluster (see RedisOutbox). */
  outbox?: RedisOutbox;
}

/**
 * Connects to Redis once and supplies items, registrations and the fleet bus from those
 * connections, so that several server processes share all three. The item store owns the
 * connections: closing it (the engine does, on stop) closes the fleet bus, then the
 * registrations, then the group channels and connections, in that order, since each of
 * the first still sends on the connections while it closes.
 */
export async function connectRedisBackend(options: RedisBackendOptions = {}): Promise<RedisBackend> {
  const { connections, keys } = await connectRedis(options);
  const registrations = new RedisRegistrations(connections, keys);
  const fleet = new RedisFleetBus(connections, keys, options.instanceTtlMs ?? DEFAULT_INSTANCE_TTL_MS);
  const outbox = connections.isCluster
    ? undefined
    : new RedisOutbox(connections.commands as Redis, keys, { leaseMs: options.outboxLeaseMs, maxPending: options.maxOutbox });
  const items = new RedisItemStore(
    connections,
    keys,
    options.historyLimit,
    async () => {
      await outbox?.close();
      await fleet.close();
      await registrations.close();
    },
    options.maxOutbox,
  );
  return { items, registrations, fleet, ...(outbox ? { outbox } : {}) };
}
