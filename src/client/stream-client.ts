/**
 * The client: typed calls of every StreamService RPC with plain JSON values, and live
 * views of groups and items that stay equal to the server's across disconnects.
 */
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { StreamService, type BatchWriteSchema, type Item, type UpdateOpSchema } from "../../gen/iii/stream/v1/stream_pb.js";
import { TriggerService } from "../../gen/iii/stream/v1/triggers_pb.js";
import { functionInfo, triggerInfo, type FunctionInfo, type TriggerInfo } from "./registrations.js";
import { ErrorCode, StreamError, toStreamError } from "./errors.js";
import { LiveView } from "./live-view.js";
import type { StreamClientOptions, TransportName, WatchOptions } from "./options.js";
import type { Platform, PlatformTransport } from "./platform.js";
import { Reconnector } from "./reconnector.js";
import { runRpcWatch, type RpcConnection } from "./rpc-watch.js";
import { SocketHub } from "./socket-hub.js";
import { fromValue, optionalValue, toNumber, toValue, type JsonObject, type JsonValue } from "./values.js";

/** An item as stored. */
export interface StoredItem<T = JsonValue> {
  itemId: string;
  data: T;
  /** 1 when created, +1 on every write. */
  revision: number;
  /** When it was last written, in ms since the Unix epoch. */
  updatedAtMs: number;
  /** When it expires, in ms since the Unix epoch; absent when it never does (written without a TTL). */
  expiresAtMs?: number;
}

/** One operation of `update`. `path` is a list of literal keys; empty or absent means the whole value. */
export type UpdateOperation =
  | { type: "set"; path?: string[]; value: JsonValue }
  | { type: "merge"; path?: string[]; value: JsonObject }
  | { type: "increment" | "decrement"; path?: string[]; by: number }
  | { type: "append"; path?: string[]; value: JsonValue }
  | { type: "remove"; path?: string[] };

export interface Conditional extends Retryable {
  /** The write happens only if the item is at this revision (0: it must not exist); else `failed_precondition`. */
  ifRevision?: number;
}

export interface Expiring {
  /**
   * The item expires this many ms after the write (1 ms to 10 years): it is then never
   * read again, and removed with a delete change marked `expired`. Without it the item
   * never expires, whatever expiry it had before. Default none.
   */
  ttlMs?: number;
}

export interface Retryable {
  /**
   * Makes the call safe to retry (1 to 128 bytes, e.g. a UUID): the server answers a
   * second call with the same id to the same group, within its idempotency window
   * (10 minutes by default), with the first call's answer and writes nothing. Default none.
   */
  requestId?: string;
}

/** One write of `batch`: exactly one of `set`, `update`, `delete`. */
export type BatchWriteInput = { itemId: string; ifRevision?: number } & (
  | ({ set: JsonValue } & Expiring)
  | ({ update: UpdateOperation[] } & Expiring)
  | { delete: true }
);

/** What one write of a batch did, as `set`, `update` or `delete` would answer. */
export interface BatchWriteResult {
  /** Absent when there was no item. */
  oldValue?: JsonValue;
  /** Absent when the item does not exist after the write. */
  newValue?: JsonValue;
  /** For an update: the operations that were skipped. */
  errors: Array<{ opIndex: number; code: string; message: string }>;
  revision: number;
  /** The write's change; for a write that changed nothing, the offset before it. */
  offset: number;
}

export interface BatchResult {
  /** One per write, in order. */
  results: BatchWriteResult[];
  firstOffset: number;
  lastOffset: number;
}

export interface SetResult {
  /** Absent when there was no item. */
  oldValue?: JsonValue;
  newValue: JsonValue;
  revision: number;
  offset: number;
}

export interface DeleteResult {
  /** Absent when nothing was there. */
  oldValue?: JsonValue;
  offset: number;
}

export interface UpdateResult {
  oldValue?: JsonValue;
  /** Absent when the item does not exist after the call. */
  newValue?: JsonValue;
  /** Operations that were skipped, and why; the others applied. */
  errors: Array<{ opIndex: number; code: string; message: string }>;
  revision: number;
  offset: number;
}

export interface StreamInfo {
  streamName: string;
  /** The stream's first groups (at most `groupsPerStream`). */
  groups: string[];
  groupCount: number;
}

export interface PageOptions {
  /** Most entries per page. Default the server's (1,000 items or groups, 100 streams). */
  pageSize?: number;
}

export class StreamClient {
  private readonly transportName: TransportName;
  private readonly interceptors: Interceptor[];
  private current: { platform: PlatformTransport; client: Client<typeof StreamService> } | undefined;
  private readonly reconnector: Reconnector;
  private readonly rpcConnection: RpcConnection;
  private readonly views = new Set<{ close(): void }>();
  private socketHub: SocketHub | undefined;
  private closed = false;

  /** @internal Use `createStreamClient`. */
  constructor(
    private readonly options: StreamClientOptions,
    private readonly platform: Platform,
  ) {
    if (typeof options?.baseUrl !== "string" || !/^https?:\/\//.test(options.baseUrl)) {
      throw new StreamError(ErrorCode.InvalidArgument, `baseUrl must be an http:// or https:// URL, got ${JSON.stringify(options?.baseUrl)}`);
    }
    this.transportName = options.transport ?? "connect";
    if (!["connect", "grpc", "grpc-web", "websocket"].includes(this.transportName)) {
      throw new StreamError(ErrorCode.InvalidArgument, `transport must be connect, grpc, grpc-web or websocket, got ${JSON.stringify(this.transportName)}`);
    }
    const headers: Record<string, string> = { ...options.headers };
    if (options.apiKey !== undefined) headers.authorization = `Bearer ${options.apiKey}`;
    this.interceptors = Object.keys(headers).length === 0 ? [] : [(next) => (request) => {
      for (const [name, value] of Object.entries(headers)) request.header.set(name, value);
      return next(request);
    }];
    this.reconnector = new Reconnector(options.reconnect, () => this.renew());
    const heartbeatIntervalMs = options.heartbeatIntervalMs ?? (this.transportName === "websocket" ? 30_000 : 15_000);
    this.rpcConnection = { reconnector: this.reconnector, rpc: () => this.rpc(), heartbeatIntervalMs };
    if (this.transportName === "websocket") {
      const url = new URL(options.baseUrl.replace(/^http/, "ws"));
      url.pathname = url.pathname.replace(/\/*$/, "/");
      for (const [name, value] of Object.entries(options.socketQuery ?? {})) url.searchParams.set(name, value);
      this.socketHub = new SocketHub(url.toString(), headers, platform, this.reconnector, heartbeatIntervalMs);
    }
    // Fail early on a transport the platform lacks (gRPC in a browser).
    this.rpc();
  }

  async set(stream: string, group: string, item: string, data: JsonValue, options: Conditional & Expiring = {}): Promise<SetResult> {
    const response = await this.call(() =>
      this.rpc().set({ streamName: stream, groupId: group, itemId: item, data: toValue(data), ifRevision: revisionOf(options), ttlMs: ttlOf(options), requestId: options.requestId }),
    );
    return withOld(response.oldValue, { newValue: fromValue(response.newValue), revision: toNumber(response.revision), offset: toNumber(response.offset) });
  }

  /** The item, or undefined when it does not exist. */
  async get(stream: string, group: string, item: string): Promise<StoredItem | undefined> {
    const response = await this.call(() => this.rpc().get({ streamName: stream, groupId: group, itemId: item }));
    return response.item && storedItem(response.item);
  }

  async delete(stream: string, group: string, item: string, options: Conditional = {}): Promise<DeleteResult> {
    const response = await this.call(() => this.rpc().delete({ streamName: stream, groupId: group, itemId: item, ifRevision: revisionOf(options), requestId: options.requestId }));
    return withOld(response.oldValue, { offset: toNumber(response.offset) });
  }

  async update(stream: string, group: string, item: string, ops: UpdateOperation[], options: Conditional & Expiring = {}): Promise<UpdateResult> {
    const wireOps = ops.map(toUpdateOp);
    const response = await this.call(() =>
      this.rpc().update({ streamName: stream, groupId: group, itemId: item, ops: wireOps, ifRevision: revisionOf(options), ttlMs: ttlOf(options), requestId: options.requestId }),
    );
    const result: UpdateResult = {
      errors: response.errors.map(({ opIndex, code, message }) => ({ opIndex, code, message })),
      revision: toNumber(response.revision),
      offset: toNumber(response.offset),
    };
    if (response.oldValue) result.oldValue = fromValue(response.oldValue);
    if (response.newValue) result.newValue = fromValue(response.newValue);
    return result;
  }

  /** Sends a transient event to the group's watchers (and, with `itemId`, that item's). Nothing is stored. */
  async send(stream: string, group: string, type: string, data: JsonValue, options: { itemId?: string } & Retryable = {}): Promise<void> {
    await this.call(() =>
      this.rpc().send({ streamName: stream, groupId: group, type, data: toValue(data), itemId: options.itemId, requestId: options.requestId }),
    );
  }

  /**
   * Writes several items of one group at once or not at all (at most 1,000 writes): when
   * any `ifRevision` does not match, nothing is written and the call fails with
   * `failed_precondition` naming the first failing write.
   */
  async batch(stream: string, group: string, writes: BatchWriteInput[], options: Retryable = {}): Promise<BatchResult> {
    const wireWrites = writes.map(toBatchWrite);
    const response = await this.call(() => this.rpc().batch({ streamName: stream, groupId: group, writes: wireWrites, requestId: options.requestId }));
    return {
      results: response.results.map((entry) => {
        const result: BatchWriteResult = {
          errors: entry.errors.map(({ opIndex, code, message }) => ({ opIndex, code, message })),
          revision: toNumber(entry.revision),
          offset: toNumber(entry.offset),
        };
        if (entry.oldValue) result.oldValue = fromValue(entry.oldValue);
        if (entry.newValue) result.newValue = fromValue(entry.newValue);
        return result;
      }),
      firstOffset: toNumber(response.firstOffset),
      lastOffset: toNumber(response.lastOffset),
    };
  }

  /** A group's items, page by page, in insertion order. */
  async *list(stream: string, group: string, options: PageOptions = {}): AsyncGenerator<StoredItem[]> {
    let pageToken = "";
    do {
      const token = pageToken;
      const page = await this.call(() => this.rpc().list({ streamName: stream, groupId: group, pageSize: options.pageSize, pageToken: token }));
      yield page.items.map(storedItem);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
  }

  /** A stream's non-empty groups, page by page, sorted by bytes. */
  async *listGroups(stream: string, options: PageOptions = {}): AsyncGenerator<string[]> {
    let pageToken = "";
    do {
      const token = pageToken;
      const page = await this.call(() => this.rpc().listGroups({ streamName: stream, pageSize: options.pageSize, pageToken: token }));
      yield page.groups;
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
  }

  /** The streams, page by page, sorted, each with its first groups. */
  async *listAll(options: PageOptions & { groupsPerStream?: number } = {}): AsyncGenerator<StreamInfo[]> {
    let pageToken = "";
    do {
      const token = pageToken;
      const page = await this.call(() =>
        this.rpc().listAll({ pageSize: options.pageSize, pageToken: token, groupsPerStream: options.groupsPerStream }),
      );
      yield page.streams.map(({ streamName, groups, groupCount }) => ({ streamName, groups, groupCount }));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
  }

  /** The functions the server can call (TriggerService.ListFunctions; needs an API key when keys are set). */
  async listFunctions(): Promise<FunctionInfo[]> {
    const response = await this.call(() => this.triggers().listFunctions({}));
    return response.functions.map(functionInfo);
  }

  /** The triggers in force with their counters (TriggerService.ListTriggers; needs an API key when keys are set). */
  async listTriggers(): Promise<TriggerInfo[]> {
    const response = await this.call(() => this.triggers().listTriggers({}));
    return response.triggers.map(triggerInfo);
  }

  /** A live view of a group: its items, kept equal to the server's. */
  watchGroup<T = JsonValue>(stream: string, group: string, options: WatchOptions<T> = {}): LiveView<T> {
    return this.watch({ streamName: stream, groupId: group, itemId: undefined }, options);
  }

  /** A live view of one item: `items` holds it while it exists. */
  watchItem<T = JsonValue>(stream: string, group: string, item: string, options: WatchOptions<T> = {}): LiveView<T> {
    return this.watch({ streamName: stream, groupId: group, itemId: item }, options);
  }

  /** Closes every view and connection of the client. */
  close(): void {
    this.closed = true;
    for (const view of [...this.views]) view.close();
    this.socketHub?.close();
    this.current?.platform.close();
    this.current = undefined;
  }

  private watch<T>(target: { streamName: string; groupId: string; itemId: string | undefined }, options: WatchOptions<T>): LiveView<T> {
    if (this.closed) throw new StreamError(ErrorCode.InvalidArgument, "the client is closed");
    for (const [field, name] of [["stream", target.streamName], ["group", target.groupId], ["item", target.itemId]] as const) {
      if (name !== undefined && (typeof name !== "string" || name === "")) {
        throw new StreamError(ErrorCode.InvalidArgument, `${field} must be a non-empty string, got ${JSON.stringify(name)}`);
      }
    }
    const view = new LiveView<T>(target, options, () => this.reconnector.succeeded());
    this.views.add(view);
    view.onClose(() => this.views.delete(view));
    if (this.socketHub) this.socketHub.add(view as LiveView<unknown>);
    else runRpcWatch(view as LiveView<unknown>, this.rpcConnection);
    return view;
  }

  /** TriggerService on the same transport as the stream calls. */
  private triggers(): Client<typeof TriggerService> {
    this.rpc();
    return createClient(TriggerService, this.current!.platform.transport);
  }

  private rpc(): Client<typeof StreamService> {
    if (!this.current) {
      const name = this.transportName === "websocket" ? "connect" : this.transportName;
      const platform = this.platform.transport(name, this.options.baseUrl, this.interceptors);
      this.current = { platform, client: createClient(StreamService, platform.transport) };
    }
    return this.current.client;
  }

  /** A dead connection is dropped; the next call opens a new one. */
  private renew(): void {
    this.current?.platform.close();
    this.current = undefined;
  }

  private async call<R>(run: () => Promise<R>): Promise<R> {
    try {
      return await run();
    } catch (error) {
      throw toStreamError(error);
    }
  }
}

function revisionOf(options: Conditional): bigint | undefined {
  const revision = options.ifRevision;
  if (revision === undefined) return undefined;
  if (!Number.isSafeInteger(revision) || revision < 0) {
    throw new StreamError(ErrorCode.InvalidArgument, `ifRevision must be a non-negative integer, got ${JSON.stringify(revision)}`);
  }
  return BigInt(revision);
}

/** The server checks the range (and names its limit); only what cannot be a uint64 is refused here. */
function ttlOf(options: Expiring): bigint | undefined {
  const ttl = options.ttlMs;
  if (ttl === undefined) return undefined;
  if (!Number.isSafeInteger(ttl) || ttl < 0) {
    throw new StreamError(ErrorCode.InvalidArgument, `ttlMs must be a whole number of milliseconds, got ${JSON.stringify(ttl)}`);
  }
  return BigInt(ttl);
}

function toBatchWrite(write: BatchWriteInput, index: number): MessageInitShape<typeof BatchWriteSchema> {
  const ifRevision = revisionOf(write);
  if ("set" in write) return { itemId: write.itemId, ifRevision, ttlMs: ttlOf(write), write: { case: "set", value: toValue(write.set) } };
  if ("update" in write) {
    return { itemId: write.itemId, ifRevision, ttlMs: ttlOf(write), write: { case: "update", value: { ops: write.update.map(toUpdateOp) } } };
  }
  if ("delete" in write && write.delete === true) return { itemId: write.itemId, ifRevision, write: { case: "delete", value: true } };
  throw new StreamError(ErrorCode.InvalidArgument, `writes[${index}] must have one of set, update and delete: true`);
}

function withOld<R extends object>(old: Parameters<typeof optionalValue>[0], result: R): R & { oldValue?: JsonValue } {
  const oldValue = optionalValue(old);
  return oldValue === undefined ? result : { oldValue, ...result };
}

function storedItem(item: Item): StoredItem {
  const stored: StoredItem = { itemId: item.itemId, data: fromValue(item.data), revision: toNumber(item.revision), updatedAtMs: toNumber(item.updatedAtMs) };
  if (item.expiresAtMs > 0n) stored.expiresAtMs = toNumber(item.expiresAtMs);
  return stored;
}

function toUpdateOp(op: UpdateOperation, index: number): MessageInitShape<typeof UpdateOpSchema> {
  const path = op.path ?? [];
  const bad = (why: string) => new StreamError(ErrorCode.InvalidArgument, `ops[${index}]: ${why}`);
  if (!Array.isArray(path) || path.some((key) => typeof key !== "string")) throw bad("path must be an array of strings");
  switch (op.type) {
    case "set":
      return { op: { case: "set", value: { path, value: toValue(op.value) } } };
    case "append":
      return { op: { case: "append", value: { path, value: toValue(op.value) } } };
    case "merge":
      if (typeof op.value !== "object" || op.value === null || Array.isArray(op.value)) throw bad("merge takes an object value");
      return { op: { case: "merge", value: { path, value: op.value } } };
    case "increment":
    case "decrement":
      if (!Number.isSafeInteger(op.by)) throw bad(`${op.type} takes an integer by, got ${JSON.stringify(op.by)}`);
      return { op: { case: op.type, value: { path, by: BigInt(op.by) } } };
    case "remove":
      return { op: { case: "remove", value: { path } } };
    default:
      throw bad(`unknown type ${JSON.stringify((op as { type: unknown }).type)} (set, merge, increment, decrement, append or remove)`);
  }
}
