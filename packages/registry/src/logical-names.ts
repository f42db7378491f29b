/**
 * Logical names decouple lookup from span names: a subscriber asks for "the retrieve of
 * session s", not for a span called `mp.retrieve`. These are the names the request tracing
 * subscriber registers; other subscribers may register their own.
 */
export const LogicalName = {
  REQUEST: 'request',
  LOOKUP_PREFETCH: 'lookup_prefetch',
  RETRIEVE: 'retrieve',
  STORE: 'store',
} as const;

export type KnownLogicalName = (typeof LogicalName)[keyof typeof LogicalName];

/**
 * The operation-scoped name of one operation: `store#42` for operation 42, and
 * `store#42@1` for worker (tensor-parallel rank) 1 of operation 42. Spans registered with
 * `SpanRegistry.openOperation` are reachable under these names as well as the plain logical
 * name, so two concurrent operations of one type never overwrite each other and a nested
 * subscriber that knows the operation id finds exactly its parent.
 */
export function operationScopedName(logical: string, opId: number, workerId?: number): string {
  return workerId === undefined ? `${logical}#${opId}` : `${logical}#${opId}@${workerId}`;
}
