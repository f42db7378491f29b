import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { SpanExporterKind, SpanExportOptions } from './exporter-options.js';
import { JsonLinesSpanExporter } from './jsonl-span-exporter.js';

const DEFAULT_CONCURRENCY = 64;

/**
 * Builds the exporter for `kind`, or `undefined` for `none`. OTLP exporters are imported
 * on demand so that a drain thread exporting protobuf never loads gRPC.
 * Without `endpoint`, the OTLP exporters read `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` themselves.
 */
export async function createSpanExporter(
  kind: SpanExporterKind,
  options: SpanExportOptions,
): Promise<SpanExporter | undefined> {
  const common = {
    ...(options.endpoint !== undefined ? { url: options.endpoint } : {}),
    ...(options.headers !== undefined ? { headers: { ...options.headers } } : {}),
    concurrencyLimit: options.concurrencyLimit ?? DEFAULT_CONCURRENCY,
  };
  switch (kind) {
    case 'none':
      return undefined;
    case 'jsonl': {
      if (options.file === undefined) throw new Error("exporter 'jsonl' needs options.file");
      return new JsonLinesSpanExporter(options.file);
    }
    case 'otlp-proto': {
      const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
      return new OTLPTraceExporter(common);
    }
    case 'otlp-http': {
      const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
      return new OTLPTraceExporter(common);
    }
    case 'otlp-grpc': {
      const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-grpc');
      const { headers: _headers, ...grpcCommon } = common;
      return new OTLPTraceExporter(grpcCommon);
    }
  }
}
