/**
 * The listeners of a registration store's `onChange`, which every store keeps the same
 * way. Each `add` wraps the listener, so that one listener added twice is called twice
 * and its two removers each remove one; calls run over a copy, so a listener may remove
 * itself (or add another) while being called.
 */
export class ChangeListeners {
  private readonly listeners = new Set<() => void>();

  /** Adds a listener; the returned function removes it and says whether it was still there. */
  add(listener: () => void): () => boolean {
    const call = () => listener();
    this.listeners.add(call);
    return () => this.listeners.delete(call);
  }

  get size(): number {
    return this.listeners.size;
  }

  /** Calls every listener. */
  notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  clear(): void {
    this.listeners.clear();
  }
}
