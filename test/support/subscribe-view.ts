import { fromJson, toJson } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { JsonValue } from "../../src/index.js";
import {
  ChangeType,
  type Change,
  type Item,
  type StreamService,
  type SubscribeRequest,
  type SubscribeResponse,
} from "../../gen/iii/stream/v1/stream_pb.js";

export interface ViewItem {
  itemId: string;
  data: JsonValue;
  revision: number;
}

export function json(value: JsonValue): Value {
  return fromJson(ValueSchema, value);
}

export function plain(value: Value | undefined): JsonValue | undefined {
  return value === undefined ? undefined : (toJson(ValueSchema, value) as JsonValue);
}

export function viewItems(items: Item[]): ViewItem[] {
  return items.map((item) => ({ itemId: item.itemId, data: plain(item.data)!, revision: Number(item.revision) }));
}

/**
 * What one subscriber knows of a group (or of one item), rebuilt from the messages it
 * received. Every broken promise of Subscribe (a gap, a duplicate, a message out of
 * offset order) is written down in `problems` instead of thrown, so that a test can
 * report all of them at once.
 */
export class GroupView {
  readonly items = new Map<string, ViewItem>();
  readonly problems: string[] = [];
  readonly changes: Change[] = [];
  readonly snapshots: Array<{ offset: number; items: ViewItem[]; chunks: number }> = [];
  readonly kinds: Array<SubscribeResponse["message"]["case"]> = [];
  /** Offset of the snapshot this view started from, if it started from one. */
  snapshotOffset: number | undefined;
  /** Chunks of a snapshot whose last chunk has not come yet. */
  chunks: { offset: number; items: ViewItem[]; count: number } | undefined;

  /**
   * @param offset where the view stands before the first message: undefined for a fresh
   *   subscription (the first message must be a snapshot), the resume offset otherwise.
   * @param contiguous true for a group subscription, whose change offsets have no gap.
   */
  constructor(
    public offset: number | undefined,
    private readonly contiguous: boolean,
  ) {}

  apply(response: SubscribeResponse): void {
    const message = response.message;
    this.kinds.push(message.case);
    switch (message.case) {
      case "snapshot": {
        const offset = Number(message.value.offset);
        if (this.offset !== undefined && offset < this.offset) this.problem(`snapshot at ${offset} after ${this.offset}`);
        // A chunked snapshot: every chunk at the same offset, nothing else in between, applied at the last.
        if (this.chunks && this.chunks.offset !== offset) this.problem(`snapshot chunk at ${offset} after chunks at ${this.chunks.offset}`);
        const chunks = (this.chunks ??= { offset, items: [], count: 0 });
        chunks.items.push(...viewItems(message.value.items));
        chunks.count++;
        if (message.value.more) return;
        this.chunks = undefined;
        const items = chunks.items;
        if (new Set(items.map((item) => item.itemId)).size !== items.length) this.problem(`snapshot at ${offset} repeats an item`);
        this.snapshots.push({ offset, items, chunks: chunks.count });
        this.items.clear();
        for (const item of items) this.items.set(item.itemId, item);
        this.offset = offset;
        this.snapshotOffset ??= offset;
        return;
      }
      case "change":
        if (this.chunks) this.problem(`change ${message.value.offset} before the last snapshot chunk`);
        this.applyChange(message.value);
        return;
      case "event":
      case "heartbeat":
        if (this.offset === undefined || this.chunks) this.problem(`${message.case} before the snapshot`);
        else if (Number(message.value.offset) < this.offset) {
          this.problem(`${message.case} at ${message.value.offset} after offset ${this.offset}`);
        }
        if (message.case === "heartbeat") this.offset = Math.max(this.offset ?? 0, Number(message.value.offset));
        return;
      default:
        this.problem("empty message");
    }
  }

  list(): ViewItem[] {
    return [...this.items.values()];
  }

  private applyChange(change: Change): void {
    const offset = Number(change.offset);
    if (this.offset === undefined) this.problem(`change ${offset} before the snapshot`);
    else if (this.contiguous ? offset !== this.offset + 1 : offset <= this.offset) {
      this.problem(`change ${offset} after offset ${this.offset}`);
    }
    this.offset = offset;
    this.changes.push(change);
    if (change.type === ChangeType.DELETE) this.items.delete(change.itemId);
    else {
      // Map order is insertion order, like List: an update keeps its place.
      const item = { itemId: change.itemId, data: plain(change.data)!, revision: Number(change.revision) };
      if (change.type === ChangeType.CREATE) this.items.delete(change.itemId);
      this.items.set(change.itemId, item);
    }
  }

  private problem(text: string): void {
    if (this.problems.length < 20) this.problems.push(text);
  }
}

/** A Subscribe stream read in the background into a view, until it ends or is left. */
export class ViewReader {
  readonly done: Promise<void>;
  /** How the stream ended, when it did not end because we left it. */
  error: ConnectError | undefined;
  private readonly abort = new AbortController();

  constructor(
    client: Client<typeof StreamService>,
    request: Partial<Omit<SubscribeRequest, "$typeName">> & { streamName: string; groupId: string },
    readonly view: GroupView,
  ) {
    const stream = client.subscribe(request, { signal: this.abort.signal });
    this.done = (async () => {
      try {
        for await (const response of stream) view.apply(response);
      } catch (error) {
        const connectError = ConnectError.from(error);
        if (!(this.abort.signal.aborted && connectError.code === Code.Canceled)) this.error = connectError;
      }
    })();
  }

  async leave(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

/** Waits until `ready()` holds, checking every few milliseconds; fails after `timeoutMs`. */
export async function waitFor(ready: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** One Subscribe stream read message by message. Close it in `finally`. */
export class StreamCursor {
  private readonly abort = new AbortController();
  private readonly iterator: AsyncIterator<SubscribeResponse>;
  private started = false;

  constructor(client: Client<typeof StreamService>, request: Partial<Omit<SubscribeRequest, "$typeName">> & { streamName: string; groupId: string }) {
    this.iterator = client.subscribe(request, { signal: this.abort.signal })[Symbol.asyncIterator]();
  }

  /** The next message; rejects with the stream's ConnectError, or when none comes in time. */
  async next(timeoutMs = 5000): Promise<SubscribeResponse> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no message within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      this.started = true;
      const step = this.iterator.next();
      // Closing the stream after a timeout rejects this step; nobody waits for it then.
      step.catch(() => undefined);
      const result = await Promise.race([step, timeout]);
      if (result.done) throw new Error("the stream ended without an error");
      return result.value;
    } catch (error) {
      throw error instanceof ConnectError || (error instanceof Error && error.message.startsWith("no message")) ? error : ConnectError.from(error);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads until the stream fails and returns how, with the messages read before. */
  async failure(timeoutMs = 10_000): Promise<{ error: ConnectError; read: SubscribeResponse[] }> {
    const read: SubscribeResponse[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        read.push(await this.next(Math.max(1, deadline - Date.now())));
      } catch (error) {
        if (error instanceof ConnectError) return { error, read };
        throw error;
      }
    }
  }

  close(): void {
    // The client starts the call at once but only reports its failure to a reader:
    // without one, the cancellation below would be an unhandled rejection.
    if (!this.started) this.iterator.next().catch(() => undefined);
    this.abort.abort();
  }
}
