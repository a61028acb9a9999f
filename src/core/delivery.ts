import type { GroupMessage, StoredItem } from "./model.js";
import { itemBytes, jsonLength, MESSAGE_OVERHEAD_BYTES } from "./encoded-size.js";

/**
 * The state of a group (or item) at `offset`, or one chunk of it: a large group's
 * snapshot comes as several, all with the same offset, every one but the last with
 * `more` (see snapshot-session.ts).
 */
export interface SnapshotMessage {
  kind: "snapshot";
  streamName: string;
  groupId: string;
  items: StoredItem[];
  offset: number;
  more: boolean;
}

export interface HeartbeatMessage {
  kind: "heartbeat";
  offset: number;
}

export type SubscriptionMessage = GroupMessage | SnapshotMessage | HeartbeatMessage;

/**
 * A wire format a transport encodes deliveries into: a name (for debugging) and the
 * encoder. Made once per format at module load with `Delivery.format`; the object is
 * the cache key, so two transports cannot collide on a name, and `encoded` knows the
 * type of what it returns.
 */
export class DeliveryFormat<T> {
  /** Use `Delivery.format`. */
  constructor(
    readonly name: string,
    /** Gets the Delivery too, so that one format can be built from another cached one. */
    readonly encode: (message: SubscriptionMessage, delivery: Delivery) => T,
  ) {}
}

/**
 * One message on its way to subscribers. A change is wrapped once and the same
 * Delivery is queued for every subscriber, so each wire format encodes it once
 * (`encoded`) however many subscribers receive it.
 */
export class Delivery {
  /** A wire format whose encodings `encoded` caches; make one per format, at module load. */
  static format<T>(name: string, encode: (message: SubscriptionMessage, delivery: Delivery) => T): DeliveryFormat<T> {
    return new DeliveryFormat(name, encode);
  }

  /*
   * The first two formats asked for are kept in fields, further ones in a Map made on
   * demand: a stream socket asks for one format, Subscribe for two (the response and
   * its frame), so a message costs no Map on either transport.
   */
  private firstFormat: DeliveryFormat<unknown> | undefined;
  private firstValue: unknown;
  private secondFormat: DeliveryFormat<unknown> | undefined;
  private secondValue: unknown;
  private others: Map<DeliveryFormat<unknown>, unknown> | undefined;
  private bytes: number | undefined;

  /** A snapshot (or chunk) whose items' estimated size is known already, so that `size` need not measure them again. */
  static snapshot(message: SnapshotMessage, itemsBytes: number): Delivery {
    const delivery = new Delivery(message);
    delivery.bytes = MESSAGE_OVERHEAD_BYTES + itemsBytes;
    return delivery;
  }

  constructor(
    readonly message: SubscriptionMessage,
    /** When it was wrapped: once per message, not once per subscriber that queues it. */
    readonly createdAt = Date.now(),
  ) {}

  /**
   * An estimate of the message's encoded size (see encoded-size.ts), made on first use
   * and shared like the encodings: what it counts for in each subscriber's byte-bounded
   * queue. Not the encoding itself, which differs per wire format and may never be
   * needed (a subscriber ended before it reads it).
   */
  get size(): number {
    return (this.bytes ??= messageBytes(this.message));
  }

  /** The message in `format`, encoded on first use and then shared by every subscriber. */
  encoded<T>(format: DeliveryFormat<T>): T {
    if (format === this.firstFormat) return this.firstValue as T;
    if (format === this.secondFormat) return this.secondValue as T;
    let value = this.others?.get(format) as T | undefined;
    if (value !== undefined) return value;
    value = format.encode(this.message, this);
    if (value === undefined) return value;
    if (this.firstFormat === undefined) {
      this.firstFormat = format;
      this.firstValue = value;
    } else if (this.secondFormat === undefined) {
      this.secondFormat = format;
      this.secondValue = value;
    } else {
      (this.others ??= new Map()).set(format, value);
    }
    return value;
  }

  /** The offset a client has caught up to once it has seen this message. */
  get offset(): number {
    return this.message.offset;
  }

  /** A snapshot chunk that more chunks follow: a client that saw it has not caught up to its offset yet. */
  get partial(): boolean {
    return this.message.kind === "snapshot" && this.message.more;
  }
}

/** The estimate of encoded-size.ts for a message queued for subscribers: the unit of their byte-bounded queues. */
function messageBytes(message: SubscriptionMessage): number {
  switch (message.kind) {
    case "snapshot": {
      let bytes = MESSAGE_OVERHEAD_BYTES;
      for (const item of message.items) bytes += itemBytes(item);
      return bytes;
    }
    case "change":
      return jsonLength(message.data) + message.itemId.length + MESSAGE_OVERHEAD_BYTES;
    case "event":
      return jsonLength(message.data) + message.type.length + (message.itemId?.length ?? 0) + MESSAGE_OVERHEAD_BYTES;
    case "heartbeat":
      return MESSAGE_OVERHEAD_BYTES;
  }
}
