/** The client's public types, the same from both entry points (`node.ts`, `browser.ts`). */
export { ErrorCode, StreamError } from "./errors.js";
export type { ChangeType, LiveView, ViewChange, ViewEvent, ViewItem, ViewReset, ViewStatus, ViewUpdate } from "./live-view.js";
export type { ReconnectOptions, StreamClientOptions, TransportName, WatchOptions } from "./options.js";
export type {
  BatchResult,
  BatchWriteInput,
  BatchWriteResult,
  Conditional,
  Expiring,
  DeleteResult,
  PageOptions,
  Retryable,
  SetResult,
  StoredItem,
  StreamClient,
  StreamInfo,
  UpdateOperation,
  UpdateResult,
} from "./stream-client.js";
export type { JsonObject, JsonValue } from "./values.js";
export type { FunctionInfo, TriggerInfo } from "./registrations.js";
