import { inBatches } from "./load-io.js";
import type { Subscriber, SubscriberEvents, Transport } from "./transports/transport.js";

/** Subscribers whose connection or join is in flight at once. */
const JOIN_PARALLELISM = 100;

export interface Joined {
  subscribers: Subscriber[];
  failures: number;
  ms: number;
}

/**
 * Opens `count` subscribers, each on its own connection, spread round-robin over the
 * instances, and waits for each join (bounded by `timeoutMs` per subscriber).
 */
export async function joinSubscribers(
  transport: Transport,
  urls: string[],
  count: number,
  groupOf: (index: number) => string,
  events: SubscriberEvents,
  timeoutMs: number,
  firstIndex = 0,
): Promise<Joined> {
  const started = performance.now();
  const subscribers: Subscriber[] = [];
  const results = await inBatches(count, JOIN_PARALLELISM, async (offset) => {
    const index = firstIndex + offset;
    const subscriber = transport.subscribe(urls[index % urls.length], groupOf(index), events);
    subscribers.push(subscriber);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`join took over ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([subscriber.joined, timeout]);
    } catch (error) {
      subscriber.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  });
  const failures = results.filter((r) => r.status === "rejected").length;
  return { subscribers, failures, ms: performance.now() - started };
}
