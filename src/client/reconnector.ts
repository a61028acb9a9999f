/**
 * One client's connection state, shared by all of its watches, so that they reconnect
 * together after one backoff instead of each on its own schedule (a herd of retries
 * against a server that is coming back). Backoff is exponential with full jitter: the
 * n-th retry in a row waits a random time in [0, min(max, initial * factor^n)).
 */
import type { ReconnectOptions } from "./options.js";

export class Reconnector {
  /** Counts connection losses: a watch remembers the one it started under. */
  generation = 0;
  private attempt = 0;
  private wait: Promise<void> | undefined;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly factor: number;

  /** @param renew called when a connection is found dead, before anyone retries on it. */
  constructor(
    options: ReconnectOptions = {},
    private readonly renew: () => void = () => undefined,
  ) {
    this.initialDelayMs = options.initialDelayMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 10_000;
    this.factor = options.factor ?? 2;
  }

  /**
   * Waits until a watch whose stream failed under `generation` may try again. The first
   * failure of a generation starts the shared wait (and renews a dead connection); the
   * others of that generation join it. A watch that failed under an older generation
   * retries with the rest, or at once when they already have.
   * @returns the generation to start the next attempt under.
   */
  async retry(generation: number, dead: boolean, signal?: AbortSignal): Promise<number> {
    if (generation === this.generation) {
      this.generation++;
      if (dead) this.renew();
      const delay = Math.random() * this.ceiling(this.attempt++);
      this.wait = new Promise<void>((resolve) => setTimeout(resolve, delay)).finally(() => (this.wait = undefined));
    }
    if (this.wait) await abortable(this.wait, signal);
    return this.generation;
  }

  /** The longest wait of the `attempt`-th retry in a row (from 0). */
  ceiling(attempt: number): number {
    return Math.min(this.maxDelayMs, this.initialDelayMs * this.factor ** attempt);
  }

  /** A stream got its first message: the connection works, the next failure starts the backoff over. */
  succeeded(): void {
    this.attempt = 0;
  }
}

function abortable(wait: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return wait;
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done);
    void wait.then(done);
  });
}
