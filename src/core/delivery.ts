import type { GroupMessage, StoredItem } from "../adapters/adapter.js";

export interface SnapshotMessage {
  kind: "snapshot";
  items: StoredItem[];
  offset: number;
}

export interface HeartbeatMessage {
  kind: "heartbeat";
  offset: number;
}

export type SubscriptionMessage = GroupMessage | SnapshotMessage | HeartbeatMessage;

/**
 * One message on its way to subscribers. A change is wrapped once and the same
 * Delivery is queued for every subscriber, so each wire format encodes it once
 * (`encoded`) however many subscribers receive it.
 */
export class Delivery {
  private readonly cache = new Map<string, unknown>();

  constructor(readonly message: SubscriptionMessage) {}

  /**
   * The message in a transport's wire format, computed on first use and then shared.
   * `encode` also gets this Delivery, so that one format can be built from another
   * cached one without a closure per call.
   */
  encoded<T>(format: string, encode: (message: SubscriptionMessage, delivery: Delivery) => T): T {
    let value = this.cache.get(format) as T | undefined;
    if (value === undefined) {
      value = encode(this.message, this);
      this.cache.set(format, value);
    }
    return value;
  }

  /** The offset a client has caught up to once it has seen this message. */
  get offset(): number {
    return this.message.offset;
  }
}
