import { LogicalName } from '@kvmp/registry';
import type { EventTypeName } from '../events/event-types.js';

/** The operations of a request that become child spans. */
export type OperationKind = 'lookup_prefetch' | 'retrieve' | 'store';

/** Span names as exported (the anchor's names). */
export const SpanName = {
  REQUEST: 'request',
  LOOKUP_PREFETCH: 'mp.lookup_prefetch',
  RETRIEVE: 'mp.retrieve',
  STORE: 'mp.store',
} as const;

export interface OperationSpec {
  readonly kind: OperationKind;
  readonly spanName: string;
  /** Registry logical name. */
  readonly logical: string;
  /** Whether the root waits for it: only GPU-ordered operations announce themselves with SUBMITTED. */
  readonly deferrable: boolean;
}

export const OPERATIONS: Readonly<Record<OperationKind, OperationSpec>> = {
  lookup_prefetch: {
    kind: 'lookup_prefetch',
    spanName: SpanName.LOOKUP_PREFETCH,
    logical: LogicalName.LOOKUP_PREFETCH,
    deferrable: false,
  },
  retrieve: {
    kind: 'retrieve',
    spanName: SpanName.RETRIEVE,
    logical: LogicalName.RETRIEVE,
    deferrable: true,
  },
  store: {
    kind: 'store',
    spanName: SpanName.STORE,
    logical: LogicalName.STORE,
    deferrable: true,
  },
};

/** Every event type the request tracing subscriber consumes (4 sentinels, 3 START, 3 END). */
export const REQUEST_TRACING_EVENT_TYPES = [
  'MP_REQUEST_START',
  'MP_REQUEST_END',
  'MP_STORE_SUBMITTED',
  'MP_RETRIEVE_SUBMITTED',
  'MP_LOOKUP_PREFETCH_START',
  'MP_LOOKUP_PREFETCH_END',
  'MP_RETRIEVE_START',
  'MP_RETRIEVE_END',
  'MP_STORE_START',
  'MP_STORE_END',
] as const satisfies readonly EventTypeName[];

export type RequestTracingEventType = (typeof REQUEST_TRACING_EVENT_TYPES)[number];
