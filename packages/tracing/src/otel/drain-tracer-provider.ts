import { type Tracer, trace } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { resolveExporterKind } from './exporter-kind.js';
import type { BatchOptions, SpanExporterKind, SpanExportOptions } from './exporter-options.js';
import { buildResource } from './resource.js';
import { buildSampler } from './sampler.js';
import { createSpanExporter } from './span-exporter-factory.js';

/** The instrumentation scope of kvmp's request spans. */
export const TRACER_NAME = '@kvmp/tracing';
export const TRACER_VERSION = '0.1.0';

/** The drain thread's tracing SDK: the tracer to create spans with, and its lifecycle. */
export interface DrainTracing {
  readonly exporter: SpanExporterKind;
  readonly provider: BasicTracerProvider;
  readonly tracer: Tracer;
  /** True when this provider became the thread's global tracer provider. */
  readonly global: boolean;
  /** Exports everything ended so far. */
  forceFlush(): Promise<void>;
  /** Flushes and releases the exporter; later spans are dropped. */
  shutdown(): Promise<void>;
}

function envInt(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : undefined;
}

/** Option, then `OTEL_BSP_*`, then kvmp's defaults (sized so forceFlush stays under the concurrency limit). */
function batchConfig(options: BatchOptions | undefined): Required<BatchOptions> {
  return {
    maxQueueSize: options?.maxQueueSize ?? envInt('OTEL_BSP_MAX_QUEUE_SIZE') ?? 16384,
    maxExportBatchSize: options?.maxExportBatchSize ?? envInt('OTEL_BSP_MAX_EXPORT_BATCH_SIZE') ?? 512,
    scheduledDelayMillis: options?.scheduledDelayMillis ?? envInt('OTEL_BSP_SCHEDULE_DELAY') ?? 1000,
    exportTimeoutMillis: options?.exportTimeoutMillis ?? envInt('OTEL_BSP_EXPORT_TIMEOUT') ?? 30000,
  };
}

/**
 * Sets up the OTel SDK on the drain thread: resource, sampler, exporter and a
 * BatchSpanProcessor. The provider is also registered as the thread's global tracer
 * provider when none is, so that other subscribers on the drain thread
 * (`trace.getTracer(...)`) export through the same pipeline and can nest their spans under
 * kvmp's through the SpanRegistry. Producer threads never load the SDK.
 */
export async function createDrainTracing(
  options: SpanExportOptions = {},
  /** Processors that see every sampled span besides the exporter (e.g. the viewer's buffer). */
  extraProcessors: readonly SpanProcessor[] = [],
): Promise<DrainTracing> {
  const kind = resolveExporterKind(options.exporter);
  const exporter = await createSpanExporter(kind, options);
  const spanProcessors: SpanProcessor[] = [
    ...(exporter === undefined ? [] : [new BatchSpanProcessor(exporter, batchConfig(options.batch))]),
    ...extraProcessors,
  ];
  const sampler = buildSampler(options.sampler);
  const provider = new BasicTracerProvider({
    resource: buildResource(options),
    spanProcessors,
    ...(sampler !== undefined ? { sampler } : {}),
  });
  const global = trace.setGlobalTracerProvider(provider);
  let shutDown = false;
  return {
    exporter: kind,
    provider,
    tracer: provider.getTracer(TRACER_NAME, TRACER_VERSION),
    global,
    forceFlush: () => provider.forceFlush(),
    shutdown: async () => {
      if (shutDown) return;
      shutDown = true;
      await provider.forceFlush();
      await provider.shutdown();
    },
  };
}
