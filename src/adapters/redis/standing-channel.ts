import { KeyedLock } from "../../core/keyed-lock.js";
import type { RedisConnections } from "./connections.js";

/**
 * One shard channel this process stays subscribed to, on the adapter's subscriber
 * connection, for as long as it wants it. The adapter turns ioredis's own resubscribing
 * off, so this renews the subscription when the connection comes back and then calls
 * `onRenewed`: whatever was published meanwhile is lost, and the owner must make up for it.
 */
export class StandingChannel {
  private wanted = false;
  /** SSUBSCRIBE/SUNSUBSCRIBE must reach Redis in the order they were sent. */
  private readonly ops = new KeyedLock();

  constructor(
    private readonly connections: RedisConnections,
    readonly channel: string,
    onMessage: (text: string) => void,
    onRenewed: () => void,
  ) {
    connections.subscriber.on("smessage", (from: string, text: string) => {
      if (from === channel && this.wanted) onMessage(text);
    });
    connections.onSubscriberBack(() => {
      // A failure here means the connection dropped again; its next return renews again.
      if (this.wanted) this.send("ssubscribe").then(onRenewed, () => undefined);
    });
  }

  /** Resolves once subscribed; on failure, the subscription is still renewed when the connection comes back. */
  open(): Promise<void> {
    this.wanted = true;
    return this.send("ssubscribe");
  }

  close(): Promise<void> {
    if (!this.wanted) return this.ops.idle();
    this.wanted = false;
    return this.send("sunsubscribe");
  }

  private send(command: "ssubscribe" | "sunsubscribe"): Promise<void> {
    return this.ops.run(this.channel, async () => {
      await this.connections.subscriber[command](this.channel);
    });
  }
}
