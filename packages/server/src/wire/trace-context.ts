import type { TraceCarrier } from '@kvmp/tracing';
import { type Context, context, createTraceState, ROOT_CONTEXT, TraceFlags, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';

let installed = false;

/**
 * The core captures the caller's active OTel context when an operation is called (that is how
 * an in-process gateway's span becomes the parent of the request's root span). A wire request
 * has no ambient context, so the server activates one built from the request's W3C carrier.
 * That needs a context manager; if the application registered one already, it is kept.
 */
export function ensureContextManager(): void {
  if (installed) return;
  installed = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}

/** A context whose active span context is the carrier's (remote) parent. */
export function contextFromCarrier(carrier: TraceCarrier): Context {
  const [, traceId, spanId, flags] = carrier.traceparent.split('-');
  const spanContext = {
    traceId,
    spanId,
    traceFlags: Number.parseInt(flags, 16) & TraceFlags.SAMPLED,
    isRemote: true,
    ...(carrier.tracestate ? { traceState: createTraceState(carrier.tracestate) } : {}),
  };
  return trace.setSpanContext(ROOT_CONTEXT, spanContext);
}

/**
 * Runs `fn` with the carrier's context active (or with an empty context when there is none,
 * so nothing ambient on the server leaks into a request's trace).
 */
export function withCarrier<T>(carrier: TraceCarrier | undefined, fn: () => T): T {
  return context.with(carrier ? contextFromCarrier(carrier) : ROOT_CONTEXT, fn);
}
