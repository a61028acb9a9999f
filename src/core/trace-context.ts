import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";

/**
 * The W3C trace context (https://www.w3.org/TR/trace-context/) of the work being done:
 * which trace it belongs to and which span is doing it. A request that brings a
 * `traceparent` header runs inside its context, so what it causes (log lines, the
 * remote function calls of its triggers) names the same trace.
 */
export interface TraceContext {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** 16 lowercase hex digits, not all zero: the span this work is part of. */
  spanId: string;
  /** The caller's sampling decision (flag 01), passed on unchanged. */
  sampled: boolean;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * A `traceparent` header as a context, or undefined for anything the spec says to
 * ignore (a malformed header, version ff, all-zero ids): the request then starts a trace
 * of its own, or none.
 */
export function parseTraceparent(header: string | null | undefined): TraceContext | undefined {
  if (!header) return undefined;
  const match = TRACEPARENT.exec(header.trim());
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match;
  // Version 00 has exactly four fields; later versions may append more.
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

export function formatTraceparent(context: TraceContext): string {
  return `00-${context.traceId}-${context.spanId}-${context.sampled ? "01" : "00"}`;
}

/** A new span of the same trace, for work done on behalf of `parent`. */
export function childSpan(parent: TraceContext): TraceContext {
  return { traceId: parent.traceId, spanId: randomBytes(8).toString("hex"), sampled: parent.sampled };
}

const current = new AsyncLocalStorage<TraceContext>();

/** The trace context of the work running now, if it has one. */
export function currentTrace(): TraceContext | undefined {
  return current.getStore();
}

/** Runs `work` (and everything it starts) inside `context`. */
export function withTrace<T>(context: TraceContext, work: () => T): T {
  return current.run(context, work);
}
