import { connectRedis, RedisItemStore, type RedisItemStoreOptions } from "./redis-item-store.js";
import { RedisFleetBus } from "./redis-fleet-bus.js";
import { RedisRegistrations } from "./redis-registrations.js";

export interface RedisBackendOptions extends RedisItemStoreOptions {
  /**
   * How long an instance's record of the worker functions it hosts outlives the instance
   * (it is renewed every third of this). Default 15,000 ms: a crashed instance's worker
   * functions disappear from the fleet within about that long (calls to them fail at once
   * meanwhile), while a Redis hiccup of a few seconds does not make them flicker.
   */
  instanceTtlMs?: number;
}

export const DEFAULT_INSTANCE_TTL_MS = 15_000;

/** The three ports of a Redis backend, over one pair of connections. */
export interface RedisBackend {
  items: RedisItemStore;
  registrations: RedisRegistrations;
  fleet: RedisFleetBus;
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
  const items = new RedisItemStore(connections, keys, options.historyLimit, async () => {
    await fleet.close();
    await registrations.close();
  });
  return { items, registrations, fleet };
}
