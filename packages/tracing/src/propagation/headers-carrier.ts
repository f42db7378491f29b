import type { TraceCarrier } from '../events/event.js';
import { validCarrier } from '../producer/event-publisher.js';

/** Incoming header bags as Node's `IncomingHttpHeaders`, gRPC metadata maps or plain objects hold them. */
export type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

function single(value: string | readonly string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  // W3C: several traceparent headers make the context invalid; several tracestate headers
  // are one comma-separated list.
  return value.length === 1 ? value[0] : undefined;
}

/**
 * An explicit carrier from request headers (header names are matched case-insensitively).
 * Only `traceparent` and `tracestate` are read; anything invalid is dropped, never thrown.
 */
export function traceCarrierFromHeaders(headers: HeaderBag): TraceCarrier | undefined {
  let traceparent: string | undefined;
  let tracestate: string | undefined;
  for (const key of Object.keys(headers)) {
    const lower = key.toLowerCase();
    if (lower === 'traceparent') traceparent = single(headers[key]);
    else if (lower === 'tracestate') {
      const v = headers[key];
      tracestate = typeof v === 'string' ? v : v?.join(',');
    }
  }
  if (traceparent === undefined) return undefined;
  return validCarrier(tracestate !== undefined ? { traceparent, tracestate } : { traceparent });
}
