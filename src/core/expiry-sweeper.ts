import type { DueExpiry } from "./item-store.js";
import type { Log } from "./log.js";

/** Due items read from the store per round; a full round is followed by another at once. */
const SWEEP_BATCH = 1000;
/** Removals under way at once: enough to fill a commit batch, few enough not to crowd out client writes. */
const CONCURRENT_REMOVALS = 64;

/**
 * Removes expired items: every `intervalMs` it asks the store for the items whose expiry
 * has come (ItemStore.dueExpiries) and has each removed by `expire`, which deletes it
 * through the ordinary conditional commit. When several processes share a store they all
 * sweep, and the revision check lets exactly one of them remove each item.
 *
 * Rounds never overlap; the timer does not keep the process alive.
 */
export class ExpirySweeper {
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private stopped = false;

  constructor(
    /** The store's ItemStore.dueExpiries. */
    private readonly dueExpiries: (nowMs: number, limit: number) => Promise<DueExpiry[]>,
    private readonly expire: (due: DueExpiry) => Promise<void>,
    private readonly intervalMs: number,
    private readonly log: Log,
  ) {
    this.schedule();
  }

  /** Stops sweeping; resolves once a round under way has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.round;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.round = this.sweep().finally(() => {
        this.round = undefined;
        this.schedule();
      });
    }, this.intervalMs);
    this.timer.unref();
  }

  private async sweep(): Promise<void> {
    try {
      for (;;) {
        const due = await this.dueExpiries(Date.now(), SWEEP_BATCH);
        let failed = 0;
        // Removed a slice at a time, concurrently: the file store commits what arrives in
        // one turn in one transaction (one fsync), Redis pipelines the scripts, so a burst
        // of expiries is not paid one round trip (or fsync) after another.
        for (let start = 0; start < due.length; start += CONCURRENT_REMOVALS) {
          if (this.stopped) return;
          const slice = due.slice(start, start + CONCURRENT_REMOVALS);
          await Promise.all(
            slice.map((item) =>
              // One item that cannot be removed now must not hold up the others.
              this.expire(item).catch((error: unknown) => {
                failed++;
                this.log.warn("removing an expired item failed; retrying at the next sweep", {
                  stream: item.streamName,
                  group: item.groupId,
                  item: item.itemId,
                  error: (error as Error).message,
                });
              }),
            ),
          );
        }
        // A full batch that all failed would be read again at once, and fail again.
        if (due.length < SWEEP_BATCH || failed > 0 || this.stopped) return;
      }
    } catch (error) {
      // The next round tries again: an expired item stays hidden from reads meanwhile.
      this.log.warn("removing expired items failed; retrying at the next sweep", { error: (error as Error).message });
    }
  }
}
