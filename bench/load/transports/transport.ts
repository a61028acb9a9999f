/**
 * What every fan-out system looks like to a load generator: subscribers that report
 * each delivered write by its index, and a writer whose calls resolve when the server
 * acknowledged them.
 */
export interface Subscriber {
  /** Resolves once the server will deliver every later write of the group. */
  readonly joined: Promise<void>;
  close(): void;
}

export interface SubscriberEvents {
  /** A write arrived; `i` is the index the writer put in its data. */
  onChange(i: number): void;
  /** The connection ended before close() was called. */
  onLost(): void;
}

export interface Writer {
  write(groupId: string, i: number): Promise<void>;
  close(): void;
}

export interface Transport {
  /** `url` is the server's base URL (http://127.0.0.1:port). */
  subscribe(url: string, groupId: string, events: SubscriberEvents): Subscriber;
  openWriter(url: string): Promise<Writer>;
}

export const STREAM_NAME = "bench";

/** The value every write carries: a small chat-like message plus its index. */
export function writeData(i: number): { i: number; text: string; tags: string[] } {
  return { i, text: "a benchmark message", tags: ["a", "b"] };
}

/** Items a group's writes cycle through, so stores and snapshots stay small. */
export const ITEMS_PER_GROUP = 16;

/**
 * The life of one subscriber: joining, joined, then closed by us or lost. A subscriber
 * that never joined is a join failure, not a loss, so it is reported once.
 */
export abstract class SubscriberBase implements Subscriber {
  readonly joined: Promise<void>;
  private settleJoin!: { resolve: () => void; reject: (error: Error) => void };
  private state: "joining" | "joined" | "closed" = "joining";

  constructor(protected readonly events: SubscriberEvents) {
    this.joined = new Promise<void>((resolve, reject) => (this.settleJoin = { resolve, reject }));
    // A join that fails after nobody waits any more must not end the process.
    this.joined.catch(() => undefined);
  }

  close(): void {
    this.state = "closed";
    this.settleJoin.reject(new Error("closed before it joined"));
    this.disconnect();
  }

  protected abstract disconnect(): void;

  protected markJoined(): void {
    if (this.state !== "joining") return;
    this.state = "joined";
    this.settleJoin.resolve();
  }

  protected markEnded(reason: Error): void {
    if (this.state === "closed") return;
    const wasJoined = this.state === "joined";
    this.state = "closed";
    this.settleJoin.reject(reason);
    if (wasJoined) this.events.onLost();
  }
}
