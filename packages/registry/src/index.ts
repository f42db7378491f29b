export type { KnownLogicalName } from './logical-names.js';
export { LogicalName, operationScopedName } from './logical-names.js';
export type { RegisteredSpan } from './span-registry.js';
export { getSpanRegistry, SpanRegistry } from './span-registry.js';
export { THREAD_CHECKS, ThreadAffinityError } from './thread-affinity.js';
