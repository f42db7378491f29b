import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { spanToJsonLine } from './span-record.js';

/**
 * Appends finished spans to a file, one JSON object per line (format: `SpanRecord`).
 *
 * Writes are synchronous, one `write` per batch: the exporter runs on the drain thread,
 * which has nothing better to do while the batch is written, and a synchronous write means
 * every span handed to `export` is in the file by the time `forceFlush` resolves, which
 * is what readers (tests, `kvmp trace`) rely on after `pipeline.stop()`.
 */
export class JsonLinesSpanExporter implements SpanExporter {
  private fd: number | undefined;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a');
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.fd === undefined) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('exporter is shut down') });
      return;
    }
    try {
      let text = '';
      for (const span of spans) text += `${spanToJsonLine(span)}\n`;
      if (text.length > 0) writeSync(this.fd, text);
      resultCallback({ code: ExportResultCode.SUCCESS });
    } catch (err) {
      resultCallback({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
