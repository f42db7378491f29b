/**
 * Name of the leaked-span counter, attributes `reason` and `span_name`. Recorded through the
 * drain thread's global MeterProvider, which is a no-op until metrics are wired.
 */
export const LEAKED_SPANS_METRIC = 'kvmp.tracing.leaked_spans';
