import { captureTraceCarrier, type TraceCarrier } from '@kvmp/tracing';

/**
 * The W3C trace context of the caller's active OTel span (AsyncLocalStorage), captured
 * synchronously on the calling thread, before the call enters a session's mailbox, so the
 * request's root span is parented to the caller's span. `undefined` when no span is active.
 */
export function captureCaller(): TraceCarrier | undefined {
  return captureTraceCarrier();
}
