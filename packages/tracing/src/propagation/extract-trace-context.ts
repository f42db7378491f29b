import { type Context, ROOT_CONTEXT, type TextMapGetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { TraceCarrier } from '../events/event.js';
import { validCarrier } from '../producer/event-publisher.js';

const propagator = new W3CTraceContextPropagator();

const getter: TextMapGetter<TraceCarrier> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) =>
    key === 'traceparent' ? carrier.traceparent : key === 'tracestate' ? carrier.tracestate : undefined,
};

/**
 * Drain side: the remote parent context of a carrier, extracted into an *empty* context
 * (nothing ambient leaks in), or `ROOT_CONTEXT` when the carrier is missing or invalid.
 * Uses the W3C propagator directly rather than the global one, which is a no-op unless an
 * application registered it.
 */
export function extractTraceContext(carrier: TraceCarrier | undefined): Context {
  const valid = validCarrier(carrier);
  if (valid === undefined) return ROOT_CONTEXT;
  return propagator.extract(ROOT_CONTEXT, valid, getter);
}
