export type {
  DrainContext,
  DrainLogger,
  PipelineSelfMetrics,
  Subscriber,
  SubscriberFactory,
  SubscriberSpec,
} from './drain/subscriber.js';
export { readThreadCpu, type ThreadCpu } from './drain/thread-cpu.js';
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
export type {
  CanonicalEventType,
  EventTypeAlias,
  EventTypeName,
  EventTypeRef,
  EventTypeSpec,
  PublishMode,
} from './events/event-types.js';
export { canonicalEventType, EVENT_TYPE_ALIASES, EVENT_TYPES } from './events/event-types.js';
export type { FieldKind, FieldMap, FieldSpec, MetaOf } from './events/field-kinds.js';
export { field, optional } from './events/field-kinds.js';
export type { LoggingOptions, LogLevel } from './logging/logging-options.js';
export { loggingSubscriber } from './logging/logging-spec.js';
export type { MetricsOptions } from './metrics/metrics-options.js';
export { METRICS_SUBSCRIBER_NAME } from './metrics/metrics-options.js';
export { metricsSubscriber, PROMETHEUS_CONTENT_TYPE, scrapeMetrics } from './metrics/metrics-spec.js';
// Request tracing: only modules that need nothing beyond @opentelemetry/api are re-exported
// here, because producer threads import this index. The SDK side (provider, exporters, the
// span tracker) is loaded on the drain thread by module URL through `requestTracingSubscriber`.
export { resolveExporterKind } from './otel/exporter-kind.js';
export type { BatchOptions, SamplerOptions, SpanExporterKind, SpanExportOptions } from './otel/exporter-options.js';
export { readSpanFile } from './otel/read-span-file.js';
export type { SpanKindName, SpanRecord, StatusCodeName } from './otel/span-record.js';
export { parseSpanLine, SPAN_RECORD_VERSION } from './otel/span-record.js';
export type { EventPipelineOptions, PipelineStats } from './pipeline/event-pipeline.js';
export { EventPipeline } from './pipeline/event-pipeline.js';
export type { EventPublisher } from './producer/event-publisher.js';
export { attachPublisher, DISABLED_PUBLISHER, validCarrier } from './producer/event-publisher.js';
export { captureTraceCarrier } from './propagation/capture-trace-carrier.js';
export type { HeaderBag } from './propagation/headers-carrier.js';
export { traceCarrierFromHeaders } from './propagation/headers-carrier.js';
export { EventEncodingError } from './ring/codec-errors.js';
export { Limits } from './ring/record-format.js';
export type { RingHandle } from './ring/ring-layout.js';
export { createRing, DEFAULT_CAPACITY, MAX_RECORD_BYTES, SLOT_BYTES } from './ring/ring-layout.js';
export type { LeakReason } from './subscribers/leak-reason.js';
export { LEAK_REASONS } from './subscribers/leak-reason.js';
export { LEAKED_SPANS_METRIC } from './subscribers/leaked-spans-metric.js';
export type { OperationKind, RequestTracingEventType } from './subscribers/request-span-names.js';
export { REQUEST_TRACING_EVENT_TYPES, SpanName } from './subscribers/request-span-names.js';
export type { RequestTracingOptions } from './subscribers/request-tracing-options.js';
export type { TracesQuery } from './subscribers/request-tracing-query.js';
export { REQUEST_TRACING_SUBSCRIBER_NAME, recentTraces } from './subscribers/request-tracing-query.js';
export { requestTracingSubscriber } from './subscribers/request-tracing-spec.js';
export type { RequestTracingStats, RequestTracingStatsMessage } from './subscribers/request-tracing-stats.js';
export { Attr as SpanAttr } from './subscribers/span-attributes.js';
export type { RequestTree, TreeInput, TreeSpan } from './viewer/request-tree.js';
export { buildRequestTrees, ROOT_SPAN_NAME } from './viewer/request-tree.js';
export type { WaterfallOptions } from './viewer/terminal-waterfall.js';
export { renderWaterfall } from './viewer/terminal-waterfall.js';
export { tracesPageHtml } from './viewer/traces-page.js';
