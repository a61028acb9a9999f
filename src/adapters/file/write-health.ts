/**
 * How often a file store that lost the ability to write checks whether it has it back.
 * Two seconds: a load balancer polling `/healthz` sees the recovery within one of its
 * own intervals, and a probe (one small file and one page of the database, each
 * fsynced) every two seconds costs nothing worth counting, and only while unhealthy.
 */
export const FILE_STORE_PROBE_INTERVAL_MS = 2000;

/**
 * SQLite result codes that say the storage itself failed (disk full, I/O error, a file
 * or filesystem that became read-only or unreadable), as opposed to one request's
 * own fault (a value too big, a constraint). Extended codes share the primary prefix.
 */
const STORAGE_CODES = ["SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_PERM", "SQLITE_NOLFS"];

/** Whether `error` says the store's storage failed, rather than the request. */
export function isStorageFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && STORAGE_CODES.some((prefix) => code === prefix || code.startsWith(`${prefix}_`));
}

/**
 * Whether the store can write, as its last writes say. A write that failed for a
 * storage reason makes it unhealthy; from then on a probe runs every
 * FILE_STORE_PROBE_INTERVAL_MS, and the first write or probe that succeeds makes it
 * healthy again. Without the probe, a store that no client writes to would stay
 * unhealthy for good once the disk has space again; without the failure, a full disk
 * would go unseen until every write had failed.
 */
export class WriteHealth {
  private failure: string | undefined;
  private probeTimer: NodeJS.Timeout | undefined;

  /**
   * `probe` throws when the store still cannot write. `warn` tells the operator of
   * each change of state (once, not once per failed write).
   */
  constructor(
    private readonly probe: () => void,
    private readonly warn: (message: string) => void,
  ) {}

  get healthy(): boolean {
    return this.failure === undefined;
  }

  /** A write (or a read) failed; only storage failures change the state. */
  failed(error: unknown, message: string): void {
    if (!isStorageFailure(error) || this.failure !== undefined) return;
    this.failure = message;
    this.warn(`${message}; health checks report unavailable until a write succeeds (probed every ${FILE_STORE_PROBE_INTERVAL_MS} ms)`);
    this.probeTimer = setInterval(() => this.runProbe(), FILE_STORE_PROBE_INTERVAL_MS);
    // The probe never keeps a process alive that has nothing else to do.
    this.probeTimer.unref();
  }

  /** Something was written and committed: the store can write. */
  succeeded(): void {
    if (this.failure === undefined) return;
    this.failure = undefined;
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    this.warn("the store can write again; health checks report ok");
  }

  stop(): void {
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
  }

  private runProbe(): void {
    try {
      this.probe();
    } catch {
      // Still failing: the warning already given stands.
      return;
    }
    this.succeeded();
  }
}
