import { ROOT_CONTEXT, SpanKind as OtelSpanKind, SpanStatusCode, trace, TraceFlags } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { SpanKind, Tracer } from "../core/tracer.js";

const KINDS: Record<SpanKind, OtelSpanKind> = { server: OtelSpanKind.SERVER, client: OtelSpanKind.CLIENT, internal: OtelSpanKind.INTERNAL };

/**
 * The Tracer port over the OpenTelemetry SDK: spans are batched and exported over
 * OTLP/HTTP to where the standard variables say (OTEL_EXPORTER_OTLP_ENDPOINT, or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
 * name the service, "iii-stream" by default). A span whose parent was not sampled is
 * not recorded (the SDK's default, parent-based sampler).
 */
export function otelTracer(version: string): Tracer {
  const resource = resourceFromAttributes({ "service.name": "iii-stream", "service.version": version }).merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
  const tracer = provider.getTracer("iii-stream", version);
  return {
    recording: true,
    start(name, kind, parent, attributes) {
      const parentContext =
        parent === undefined
          ? ROOT_CONTEXT
          : trace.setSpanContext(ROOT_CONTEXT, {
              traceId: parent.traceId,
              spanId: parent.spanId,
              traceFlags: parent.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
              isRemote: true,
            });
      const span = tracer.startSpan(name, { kind: KINDS[kind], attributes }, parentContext);
      const own = span.spanContext();
      return {
        context: { traceId: own.traceId, spanId: own.spanId, sampled: (own.traceFlags & TraceFlags.SAMPLED) !== 0 },
        end(failure) {
          if (failure) {
            span.setAttribute("rpc.status", failure.code);
            span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
          }
          span.end();
        },
      };
    },
    close: () => provider.shutdown(),
  };
}
