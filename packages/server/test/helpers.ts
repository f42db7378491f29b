import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSpanFile, requestTracingSubscriber, type SpanRecord } from '@kvmp/tracing';
import {
  type CacheServer,
  type CacheServerConfig,
  createCacheServer,
  FakeEngine,
  type FakeEngineOptions,
} from '../src/index.js';

/** Small and fast: 64-token chunks of 4 blocks, 2 layers, 16 KiB per chunk. */
export const CHUNK = 64;
export const BLOCK = 16;

export interface Harness {
  readonly server: CacheServer;
  readonly engine: FakeEngine;
  readonly spanFile: string | undefined;
  /** Closes the server (drains and flushes the pipeline) and reads the exported spans. */
  finish(): Promise<SpanRecord[]>;
}

export async function startHarness(
  options: {
    tracing?: boolean;
    config?: Partial<CacheServerConfig>;
    engine?: FakeEngineOptions;
    capacityChunks?: number;
  } = {},
): Promise<Harness> {
  const tracing = options.tracing ?? true;
  const dir = tracing ? mkdtempSync(join(tmpdir(), 'kvmp-server-')) : undefined;
  const spanFile = dir ? join(dir, 'spans.jsonl') : undefined;
  const engine = new FakeEngine({ blockSize: BLOCK, numBlocks: 512, ...options.engine });
  const chunkBytes = 2 * engine.layout.numLayers * CHUNK * 64;
  const server = await createCacheServer({
    chunkSize: CHUNK,
    l1: { capacityBytes: (options.capacityChunks ?? 256) * chunkBytes, segmentBytes: 16 * chunkBytes },
    pool: { threads: 1 },
    ...(spanFile
      ? { tracing: { subscribers: [requestTracingSubscriber({ exporter: 'jsonl', file: spanFile })] } }
      : {}),
    ...options.config,
  });
  await engine.register(server);
  let closed: Promise<SpanRecord[]> | undefined;
  return {
    server,
    engine,
    spanFile,
    finish() {
      closed ??= (async () => {
        await server.close();
        if (spanFile === undefined) return [];
        try {
          return await readSpanFile(spanFile);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
          throw err;
        } finally {
          if (dir) rmSync(dir, { recursive: true, force: true });
        }
      })();
      return closed;
    },
  };
}

/** Spans of one session, by name. */
export function sessionSpans(spans: readonly SpanRecord[], sessionId: string): SpanRecord[] {
  return spans.filter((s) => s.attributes.session_id === sessionId);
}

export function byName(spans: readonly SpanRecord[], name: string): SpanRecord[] {
  return spans.filter((s) => s.name === name);
}
