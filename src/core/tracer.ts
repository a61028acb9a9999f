import { childSpan, type TraceContext } from "./trace-context.js";

export type SpanKind = "server" | "client" | "internal";
export type SpanAttributes = Readonly<Record<string, string | number | boolean>>;

/** One unit of traced work, from `Tracer.start` to `end`. */
export interface Span {
  /** The span's own context, for its children and log lines; undefined when nothing is traced. */
  readonly context: TraceContext | undefined;
  /** Ends the span; with a failure, the span is marked as an error with its code and message. */
  end(failure?: { code: string; message: string }): void;
}

/**
 * Where spans go. The server starts one per unary call and one per trigger call; an
 * implementation may export them (the OpenTelemetry one does) or only hand out contexts.
 */
export interface Tracer {
  /** Whether spans are recorded: when false, work that brings no trace context needs no span. */
  readonly recording: boolean;
  /** Starts a span as a child of `parent`, or of nothing (a new trace, if this tracer records). */
  start(name: string, kind: SpanKind, parent: TraceContext | undefined, attributes?: SpanAttributes): Span;
  /** Sends what is still buffered and stops. */
  close(): Promise<void>;
}

const NO_SPAN: Span = { context: undefined, end: () => undefined };

/**
 * Records nothing, exports nothing, yet keeps a trace going: work inside an incoming
 * trace context gets a child context (same trace, a new span id), so what it calls
 * downstream (a remote function) still joins the caller's trace. Work outside any trace
 * costs nothing.
 */
export const passThroughTracer: Tracer = {
  recording: false,
  start: (_name, _kind, parent) => (parent === undefined ? NO_SPAN : { context: childSpan(parent), end: NO_SPAN.end }),
  close: () => Promise.resolve(),
};
