/*
 * The public API of iii-stream: what a program embedding the server imports, as
 * `import { createStreamServer } from "iii-stream"`. Only the symbols exported here
 * are a contract; every other module under src/ is internal and may change shape in
 * any release, whatever it happens to export.
 */

// The server and its options.
export { createStreamServer, StreamServer, type Readiness, type ServerStats } from "./server/stream-server.js";
export type { MetricsOptions, StreamServerOptions } from "./server/options.js";
export type { TlsOptions } from "./server/tls-context.js";
export type { FunctionsOptions, TriggerInfo } from "./functions/functions-runtime.js";
export type { WebSocketOptions } from "./ws/websocket-bridge.js";
export type { QueueLimits } from "./core/subscription.js";
export type { EngineHooks, JoinInfo } from "./core/hooks.js";

// Logs and traces: where the server reports, and the trace context it carries.
export { LOG_LEVELS, RecordingLog, silentLog, type Log, type LogFields, type LogLevel, type LogRecord } from "./core/log.js";
export { pinoLog, type LogFormat, type PinoLogOptions } from "./server/pino-log.js";
export { passThroughTracer, type Span, type SpanAttributes, type SpanKind, type Tracer } from "./core/tracer.js";
export type { TraceContext } from "./core/trace-context.js";

// Errors: every failure a caller sees carries one of these codes.
export { ErrorCode, StreamError } from "./core/errors.js";

// Values and what the engine reports about them.
export type { JsonObject, JsonValue } from "./core/json.js";
export type { ChangeType, GroupEvent, GroupMessage, GroupSnapshot, ItemChange, ItemPage, ItemPageRequest, NamePageRequest, StoredItem } from "./core/model.js";

// Functions and triggers.
export type { FunctionHandler, FunctionInfo, FunctionKind } from "./functions/types.js";
export type { FunctionRecord, TriggerConfig, TriggerDelivery, TriggerRecord, TriggerType } from "./core/registrations.js";
export type { TriggerInput } from "./functions/trigger-registry.js";

// Backends: where a server keeps its items, registrations and fleet bus, and the ports
// a new backend implements.
export type { Backend } from "./adapters/backend.js";
export { memoryBackend } from "./adapters/memory/memory-backend.js";
export { openFileBackend } from "./adapters/file/file-backend.js";
export { connectRedisBackend, type RedisBackend, type RedisBackendOptions } from "./adapters/redis/redis-backend.js";
export { MemoryItemStore } from "./adapters/memory/memory-item-store.js";
export { FileStore, type FileStoreOptions } from "./adapters/file/file-store.js";
export { RedisItemStore, type RedisItemStoreOptions } from "./adapters/redis/redis-item-store.js";
export type {
  BatchCommitResult,
  BatchWrite,
  CommitResult,
  ItemStore,
  ItemStoreOptions,
  ItemWrite,
  RequestRecord,
  StoredRequest,
  WriteBatch,
} from "./core/item-store.js";
export type { RegistrationStore } from "./core/registrations.js";
export type { OutboxCounts, PendingCall, ScheduledCall, TriggerOutbox } from "./core/outbox.js";
export type { FleetBus } from "./core/fleet-bus.js";
