export type {
  DrainContext,
  DrainLogger,
  PipelineSelfMetrics,
  Subscriber,
  SubscriberFactory,
  SubscriberSpec,
} from './drain/subscriber.js';
export { now, nowNsFloat } from './events/clock.js';
export type {
  EpochTime,
  EventMeta,
  KvmpEvent,
  KvmpEventOf,
  PublishOptions,
  TraceCarrier,
} from './events/event.js';
export { epochTimeToMs, epochTimeToNs } from './events/event.js';
export type { EventTypeAlias, EventTypeName, EventTypeSpec, PublishMode } from './events/event-types.js';
export { canonicalEventType, EVENT_TYPE_ALIASES, EVENT_TYPES } from './events/event-types.js';
export type { FieldKind, FieldMap, FieldSpec, MetaOf } from './events/field-kinds.js';
export { field, optional } from './events/field-kinds.js';
export type { EventPipelineOptions, PipelineStats } from './pipeline/event-pipeline.js';
export { EventPipeline } from './pipeline/event-pipeline.js';
export type { EventPublisher } from './producer/event-publisher.js';
export { attachPublisher, DISABLED_PUBLISHER, validCarrier } from './producer/event-publisher.js';
export { EventEncodingError } from './ring/codec-errors.js';
export { Limits } from './ring/record-format.js';
export type { RingHandle } from './ring/ring-layout.js';
export { createRing, DEFAULT_CAPACITY, MAX_RECORD_BYTES, SLOT_BYTES } from './ring/ring-layout.js';
