import { invalidArgument } from "./errors.js";

/**
 * Longest `ttl_ms` a write may give: 10 years. Anything longer is almost certainly a
 * unit mistake (seconds or microseconds taken for milliseconds, or an absolute time),
 * and far beyond it the expiry time would leave the range every adapter stores exactly.
 */
export const MAX_TTL_MS = 10 * 365 * 24 * 60 * 60 * 1000;

/**
 * How often the sweeper looks for expired items, by default: 250 ms, so that an item is
 * removed (its DELETE change sent, its triggers fired) well within 1 s of its expiry on a
 * server that keeps up, while an idle server asks its store four times a second.
 */
export const DEFAULT_EXPIRY_SWEEP_MS = 250;

/** Checks a write's `ttl_ms` (undefined: no expiry): a whole number of ms from 1 to MAX_TTL_MS. */
export function checkTtl(ttlMs: number | undefined): void {
  if (ttlMs === undefined) return;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) {
    throw invalidArgument(`ttl_ms must be a whole number of milliseconds from 1 to ${MAX_TTL_MS}; leave it out for an item that never expires`);
  }
  if (ttlMs > MAX_TTL_MS) {
    throw invalidArgument(`ttl_ms is ${ttlMs}, more than 10 years (${MAX_TTL_MS} ms); was it meant in another unit?`);
  }
}
