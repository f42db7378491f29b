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
  /**
   * Lines are encoded straight into this reused buffer, then written with one call: joining
   * them into one string first allocated a batch-sized string (~350 KB per 512 spans) that V8
   * then copied again to encode it for the write.
   */
  private buffer = Buffer.allocUnsafeSlow(256 * 1024);

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
      let used = 0;
      for (const span of spans) {
        const line = spanToJsonLine(span);
        // UTF-8 needs at most 3 bytes per UTF-16 unit, so this bound never truncates a line.
        const worst = line.length * 3 + 1;
        if (used + worst > this.buffer.length) {
          this.writeOut(this.fd, used);
          used = 0;
          if (worst > this.buffer.length) this.buffer = Buffer.allocUnsafeSlow(worst);
        }
        used += this.buffer.write(line, used, 'utf8');
        this.buffer[used++] = 0x0a;
      }
      this.writeOut(this.fd, used);
      resultCallback({ code: ExportResultCode.SUCCESS });
    } catch (err) {
      resultCallback({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }

  private writeOut(fd: number, length: number): void {
    let done = 0;
    while (done < length) done += writeSync(fd, this.buffer, done, length - done);
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
