import os from "node:os";

/** Never above this, however much memory is free: the figures that matter are far below it. */
const GUARD_CAP_BYTES = 8 * 2 ** 30;

/**
 * The RSS at which the memory loads kill the server under test: half of the memory free
 * now, at most 8 GiB. An old server can grow without bound in these loads, and the
 * machine is shared; a tripped guard is reported with the results.
 */
export function memoryGuardBytes(): number {
  return Math.min(GUARD_CAP_BYTES, Math.floor(os.freemem() / 2));
}
