import type { GroupMessage, StoredItem } from "./model.js";

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
  /**
   * The first format asked for is kept in fields: most messages go out in one format,
   * and a Map per message would cost more than the lookups it saves.
   */
  private firstFormat: string | undefined;
  private firstValue: unknown;
  private others: Map<string, unknown> | undefined;

  constructor(
    readonly message: SubscriptionMessage,
    /** When it was wrapped: once per message, not once per subscriber that queues it. */
    readonly createdAt = Date.now(),
  ) {}

  /**
   * The message in a transport's wire format, computed on first use and then shared.
   * `encode` also gets this Delivery, so that one format can be built from another
   * cached one without a closure per call.
   */
  encoded<T>(format: string, encode: (message: SubscriptionMessage, delivery: Delivery) => T): T {
    if (format === this.firstFormat) return this.firstValue as T;
    let value = this.others?.get(format) as T | undefined;
    if (value !== undefined) return value;
    value = encode(this.message, this);
    if (value === undefined) return value;
    if (this.firstFormat === undefined) {
      this.firstFormat = format;
      this.firstValue = value;
    } else {
      (this.others ??= new Map()).set(format, value);
    }
    return value;
  }

  /** The offset a client has caught up to once it has seen this message. */
  get offset(): number {
    return this.message.offset;
  }
}
