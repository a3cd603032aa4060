/**
 * Tracing through OpenTelemetry's API (`@opentelemetry/api`, an optional peer dependency): spans
 * for what a producer sends, for each input a stage applies and for each guarded call, with the
 * W3C trace context carried in the envelope headers (`traceparent`, `tracestate`) from stage to
 * stage. warden registers no SDK: without one (or without the package) every span is a no-op.
 *
 * Invariants:
 *  1. Tracing never changes what is applied or published, and never throws: a failure of the
 *     API (or its absence) is a no-op.
 *  2. A span started from headers is a child of the context they carry; the headers injected
 *     from a span carry that span, so an output's `process` span is a child of the `process`
 *     span of the input that produced it: one trace from the producer to the last stage.
 *  3. The hot path pays one branch when `@opentelemetry/api` is not installed, and one no-op span
 *     when no SDK is registered (or the span is not sampled): nothing is injected then.
 */
import { createRequire } from 'node:module';
import type * as OtelApi from '@opentelemetry/api';

type Api = typeof OtelApi;

/** A span as warden uses it. */
export interface TraceSpan {
  setAttribute(key: string, value: string | number | boolean): void;
  /** Marks the span failed with `error` (its chain as the message). */
  fail(error: unknown): void;
  end(): void;
  /** W3C trace-context headers of this span, to put in an envelope's headers. */
  headers(): Record<string, string>;
  /** Runs `fn` with this span as the active one (guarded calls and the user's code see it). */
  within<T>(fn: () => T): T;
}

/** Span kinds, as OpenTelemetry numbers them. */
export const SpanKinds = { internal: 0, server: 1, client: 2, producer: 3, consumer: 4 } as const;
export type SpanKindName = keyof typeof SpanKinds;

let api: Api | null | undefined;
/** The API's proxy tracer, made once (it follows whatever SDK is registered later). */
let tracer: OtelApi.Tracer | undefined;

/** Invariant 3: the API, loaded once; null when it is not installed. */
function otel(): Api | null {
  if (api !== undefined) return api;
  try {
    api = createRequire(import.meta.url)('@opentelemetry/api') as Api;
  } catch {
    api = null;
  }
  return api;
}

function wrap(a: Api, span: OtelApi.Span): TraceSpan {
  return {
    setAttribute: (k, v) => void span.setAttribute(k, v),
    fail(error) {
      try {
        span.setStatus({ code: a.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
        if (error instanceof Error) span.recordException(error);
      } catch {
        // invariant 1
      }
    },
    end: () => span.end(),
    headers() {
      const carrier: Record<string, string> = {};
      try {
        a.propagation.inject(a.trace.setSpan(a.context.active(), span), carrier);
      } catch {
        // invariant 1
      }
      return carrier;
    },
    within: (fn) => a.context.with(a.trace.setSpan(a.context.active(), span), fn),
  };
}

/**
 * Starts a span named `name`: a child of the trace context in `headers` when they carry one
 * (invariant 2), else of the active span. Undefined without the API, or when the span records
 * nothing (invariant 3).
 *
 * @example
 * const span = startSpan('process orders', SpanKinds.consumer, env.headers, () => ({ 'warden.stage': 'orders' }));
 * try { ... } finally { span?.end(); }
 */
export function startSpan(name: string, kind: number, headers: Record<string, string> | undefined, attributes: () => Record<string, string | number | boolean>): TraceSpan | undefined {
  const a = otel();
  if (!a) return undefined;
  try {
    if (noProviderRegistered(a)) return undefined; // invariant 3: nothing to record, so not even a no-op span
    const parent = headers && (headers.traceparent !== undefined) ? a.propagation.extract(a.context.active(), headers) : a.context.active();
    tracer ??= a.trace.getTracer('warden');
    const span = tracer.startSpan(name, { kind: kind as OtelApi.SpanKind }, parent);
    if (!span.isRecording()) return undefined; // no SDK registered (or not sampled): nothing to record or carry on
    span.setAttributes(attributes()); // built only for a span that records
    return wrap(a, span);
  } catch {
    return undefined; // invariant 1
  }
}

/**
 * Is there anything to trace into (the API installed and an SDK registered)? Callers on a hot path
 * ask first, so they build nothing for a span that would not be started.
 *
 * @example const span = tracingOn() ? startSpan('process orders', SpanKinds.consumer, headers, attrs) : undefined;
 */
export function tracingOn(): boolean {
  const a = otel();
  if (!a) return false;
  try {
    return !noProviderRegistered(a);
  } catch {
    return false; // invariant 1
  }
}

/**
 * No SDK registered: the global provider is still the API's own proxy, with nothing behind it. (A
 * provider registered through another copy of the API is not recognised here: spans are then
 * started and asked whether they record, as before.)
 */
function noProviderRegistered(a: Api): boolean {
  const provider = a.trace.getTracerProvider();
  return provider instanceof a.ProxyTracerProvider && provider.getDelegateTracer('warden') === undefined;
}

/**
 * W3C trace-context headers of the active span (a guarded call's result is appended to the log
 * in the context of the input that started the call); undefined when there is none to carry.
 *
 * @example const headers = { ...activeTraceHeaders() };
 */
export function activeTraceHeaders(): Record<string, string> | undefined {
  const a = otel();
  if (!a) return undefined;
  try {
    const active = a.trace.getSpan(a.context.active());
    if (!active || !a.trace.isSpanContextValid(active.spanContext())) return undefined; // (an ended span still names its trace)
    const carrier: Record<string, string> = {};
    a.propagation.inject(a.context.active(), carrier);
    return carrier;
  } catch {
    return undefined; // invariant 1
  }
}
