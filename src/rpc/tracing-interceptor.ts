import { Code, ConnectError, type Interceptor, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { parseTraceparent, withTrace, type TraceContext } from "../core/trace-context.js";
import type { Tracer } from "../core/tracer.js";

/**
 * Runs each unary call in a span of the trace its `traceparent` header names (W3C
 * trace context), or of a new trace when the tracer records. Inside it, log records
 * carry the trace and span ids, and the trigger calls a write causes become its
 * children. A call without the header costs one header lookup when nothing records,
 * and no promise of its own: the interceptor is not async for the calls it passes on.
 */
export function tracingInterceptor(tracer: Tracer): Interceptor {
  return (next) => (req) => {
    if (req.stream) return next(req);
    const parent = parseTraceparent(req.header.get("traceparent"));
    if (parent === undefined && !tracer.recording) return next(req);
    return traced(tracer, parent, next as (req: UnaryRequest) => Promise<UnaryResponse>, req);
  };
}

async function traced(tracer: Tracer, parent: TraceContext | undefined, next: (req: UnaryRequest) => Promise<UnaryResponse>, req: UnaryRequest): Promise<UnaryResponse> {
  const span = tracer.start(`${req.service.typeName}/${req.method.name}`, "server", parent, {
    "rpc.system": "connect_rpc",
    "rpc.service": req.service.typeName,
    "rpc.method": req.method.name,
  });
  if (span.context === undefined) return next(req);
  try {
    const res = await withTrace(span.context, () => next(req));
    span.end();
    return res;
  } catch (error) {
    const failure = ConnectError.from(error);
    span.end({ code: Code[failure.code], message: failure.rawMessage });
    throw error;
  }
}
