/**
 * Structured-clonable export configuration. It crosses from the owner thread to the drain
 * thread inside a `SubscriberSpec`, so it holds only plain data (no functions, no classes).
 */

/** Where finished spans go. */
export type SpanExporterKind =
  /** OTLP over HTTP with protobuf bodies (the default; the cheapest OTLP encoding). */
  | 'otlp-proto'
  /** OTLP over HTTP with JSON bodies. */
  | 'otlp-http'
  /** OTLP over gRPC. */
  | 'otlp-grpc'
  /** One JSON object per span per line in a local file (see `docs/design/request-span.md`). */
  | 'jsonl'
  /** Nothing is exported (spans are still created and sampled; useful to measure overhead). */
  | 'none';

/** A sampler by name, as in `OTEL_TRACES_SAMPLER`, with its `OTEL_TRACES_SAMPLER_ARG`. */
export interface SamplerOptions {
  readonly type:
    | 'always_on'
    | 'always_off'
    | 'traceidratio'
    | 'parentbased_always_on'
    | 'parentbased_always_off'
    | 'parentbased_traceidratio';
  /** Sampling probability for the `*traceidratio` samplers, 0..1. Default 1. */
  readonly ratio?: number;
}

/** Batch span processor settings; unset fields fall back to `OTEL_BSP_*`, then to kvmp's defaults. */
export interface BatchOptions {
  /** Default 16384 (the SDK's 2048 drops spans under bursty drains). */
  readonly maxQueueSize?: number;
  /** Default 512. */
  readonly maxExportBatchSize?: number;
  /** Default 1000 ms. */
  readonly scheduledDelayMillis?: number;
  /** Default 30000 ms. */
  readonly exportTimeoutMillis?: number;
}

export interface SpanExportOptions {
  /**
   * Default: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL`
   * (`http/protobuf` → otlp-proto, `http/json` → otlp-http, `grpc` → otlp-grpc), else `otlp-proto`.
   */
  readonly exporter?: SpanExporterKind;
  /**
   * OTLP: the full traces URL (`http://127.0.0.1:4318/v1/traces`; gRPC: `http://host:4317`).
   * Default: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`,
   * else the OTLP default (localhost:4318 / :4317). Read by the OTel exporters themselves.
   */
  readonly endpoint?: string;
  /** Extra OTLP request headers (also read from `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** `jsonl` only: the file to append to (created if missing). */
  readonly file?: string;
  /** Default `kvmp`; `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` override the default. */
  readonly serviceName?: string;
  /** `service.instance.id`; default a random UUID per process. */
  readonly serviceInstanceId?: string;
  /** Extra resource attributes (process identity only, never per-request data). */
  readonly resourceAttributes?: Readonly<Record<string, string | number | boolean>>;
  /** Default: `OTEL_TRACES_SAMPLER[_ARG]`, else parent-based always-on. */
  readonly sampler?: SamplerOptions;
  readonly batch?: BatchOptions;
  /** In-flight OTLP requests allowed; default 64 (must cover maxQueueSize / batch size). */
  readonly concurrencyLimit?: number;
}
