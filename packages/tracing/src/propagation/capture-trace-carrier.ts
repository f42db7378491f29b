import { type Context, context, isSpanContextValid, trace } from '@opentelemetry/api';
import type { TraceCarrier } from '../events/event.js';
import { validCarrier } from '../producer/event-publisher.js';

function hex2(n: number): string {
  return (n & 0xff).toString(16).padStart(2, '0');
}

/**
 * The W3C trace context of `ctx` (default: the caller's active context) as a carrier to pass
 * as `PublishOptions.trace`, or `undefined` when there is no valid span context.
 *
 * Producer side: needs only `@opentelemetry/api`, never the SDK. The active context is
 * whatever the application's context manager holds (e.g. `AsyncLocalStorageContextManager`
 * from `@opentelemetry/context-async-hooks`, installed by `NodeTracerProvider.register()`),
 * so a gateway's HTTP span becomes the parent of the request's root span. Only
 * `traceparent` and `tracestate` are captured: baggage never travels.
 */
export function captureTraceCarrier(ctx: Context = context.active()): TraceCarrier | undefined {
  const spanContext = trace.getSpanContext(ctx);
  if (spanContext === undefined || !isSpanContextValid(spanContext)) return undefined;
  const traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-${hex2(spanContext.traceFlags)}`;
  const tracestate = spanContext.traceState?.serialize();
  return validCarrier(tracestate ? { traceparent, tracestate } : { traceparent });
}
