/**
 * Runs tasks that share a key one after another, tasks with different keys in
 * parallel. The engine serialises writers of one item with it, so that in one
 * process they queue instead of retrying compare-and-set conflicts; the Redis store
 * keeps the (un)subscribe commands of one channel in order with it.
 */
export class KeyedLock {
  /** Per busy key, a promise that settles once its last queued task has. */
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    // A free key starts its task at once: every write takes this lock, most find it free.
    const result = previous === undefined ? task() : previous.then(task);
    const tail: Promise<void> = result.then(
      () => this.release(key, tail),
      () => this.release(key, tail),
    );
    this.tails.set(key, tail);
    return result;
  }

  /**
   * As `run`, but the task may let the key's next task start before it settles, by
   * calling `release` (it is released when it settles in any case). The engine lets a
   * write's item go once the write is queued in a store that commits in queue order.
   */
  runReleasable<T>(key: string, task: (release: () => void) => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    let release!: () => void;
    const tail: Promise<void> = new Promise<void>((resolve) => (release = resolve)).then(() => this.release(key, tail));
    const result = previous === undefined ? task(release) : previous.then(() => task(release));
    result.then(release, release);
    this.tails.set(key, tail);
    return result;
  }

  /** Resolves once every task queued so far has settled (or released the key, see runReleasable). */
  idle(): Promise<void> {
    return Promise.all(this.tails.values()).then(() => undefined);
  }

  private release(key: string, tail: Promise<void>): void {
    if (this.tails.get(key) === tail) this.tails.delete(key);
  }
}
