/**
 * A connection carrying several subscriptions of one group that reads everything the
 * server sends as fast as it arrives but decodes only what it must: each subscription
 * until it joined, and afterwards only the one it samples, if any. Thousands of
 * subscriptions then cost the load generator little more than reading their bytes,
 * so that when a saturated server is measured, the clients are not what held it back.
 */
export interface CountingConnection {
  /** Resolves once every subscription on the connection joined or ended before joining. */
  readonly settled: Promise<void>;
  /** Subscriptions that joined. */
  readonly joinedCount: number;
  /** Subscriptions that ended after they joined, other than by close(). */
  readonly lost: number;
  /** Bytes read, every subscription together. */
  readonly bytes: number;
  close(): void;
}

/** Receives the changes of a sampled subscription. */
export interface SampleSink {
  /**
   * Sampled subscription `sample` received write `i`, which the writer sent at
   * `sentAtEpochMs` (its `performance.timeOrigin + performance.now()`).
   */
  onChange(sample: number, i: number, sentAtEpochMs: number): void;
}

/** Which of a connection's subscriptions is sampled (its position on the connection), and its number among all samples. */
export interface SampleSlot {
  position: number;
  sample: number;
}

/** The writer's clock as the sampled subscriptions compare against it: both processes run on this machine. */
export const epochNow = (): number => performance.timeOrigin + performance.now();
