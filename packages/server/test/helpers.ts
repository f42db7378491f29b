import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type RequestTracingStatsMessage,
  readSpanFile,
  requestTracingSubscriber,
  type SpanRecord,
  type SubscriberSpec,
} from '@kvmp/tracing';
import {
  type CacheServer,
  type CacheServerConfig,
  createCacheServer,
  FakeEngine,
  type FakeEngineOptions,
  type L1Config,
} from '../src/index.js';
import type { LoggedEvent } from './fixtures/event-log-subscriber.js';

/** Small and fast: 64-token chunks of 4 blocks, 2 layers, 16 KiB per chunk. */
export const CHUNK = 64;
export const BLOCK = 16;

export interface Harness {
  readonly server: CacheServer;
  readonly engine: FakeEngine;
  readonly spanFile: string | undefined;
  /** Closes the server (drains and flushes the pipeline) and reads the exported spans. */
  finish(): Promise<SpanRecord[]>;
  /** After finish(): every event the drain thread delivered, in dispatch order. */
  events(): LoggedEvent[];
  /** After finish(): the request tracing subscriber's final counters. */
  tracingStats(): RequestTracingStatsMessage['stats'] | undefined;
}

let harnessSeq = 0;

export async function startHarness(
  t: import('ava').ExecutionContext,
  options: {
    tracing?: boolean;
    config?: Partial<CacheServerConfig>;
    engine?: FakeEngineOptions;
    capacityChunks?: number;
    l1?: Partial<L1Config>;
    /** More drain-thread subscribers (e.g. metrics). */
    subscribers?: readonly SubscriberSpec[];
  } = {},
): Promise<Harness> {
  const tracing = options.tracing ?? true;
  const dir = tracing ? mkdtempSync(join(tmpdir(), 'kvmp-server-')) : undefined;
  const spanFile = dir ? join(dir, 'spans.jsonl') : undefined;
  const eventFile = dir ? join(dir, 'events.jsonl') : undefined;
  const statsChannel = `kvmp-server-test-${process.pid}-${harnessSeq++}`;
  let finalStats: RequestTracingStatsMessage['stats'] | undefined;
  const channel = new BroadcastChannel(statsChannel);
  channel.onmessage = (m) => {
    const msg = (m as { data: RequestTracingStatsMessage }).data;
    if (msg.kind === 'shutdown') finalStats = msg.stats;
  };
  channel.unref();
  let events: LoggedEvent[] = [];
  const engine = new FakeEngine({ blockSize: BLOCK, numBlocks: 512, ...options.engine });
  const chunkBytes = 2 * engine.layout.numLayers * CHUNK * 64;
  const server = await createCacheServer({
    chunkSize: CHUNK,
    l1: {
      capacityBytes: (options.capacityChunks ?? 256) * chunkBytes,
      segmentBytes: Math.min(16, options.capacityChunks ?? 256) * chunkBytes,
      ...options.l1,
    },
    pool: { threads: 1 },
    ...(spanFile && eventFile
      ? {
          tracing: {
            subscribers: [
              requestTracingSubscriber({ exporter: 'jsonl', file: spanFile, statsChannel }),
              {
                module: new URL('./fixtures/event-log-subscriber.js', import.meta.url).href,
                export: 'createEventLogSubscriber',
                options: { file: eventFile },
              },
              ...(options.subscribers ?? []),
            ],
          },
        }
      : {}),
    ...options.config,
  });
  await engine.register(server);
  // A failed assertion throws (AVA ≥ 6): close the server anyway so the process can exit.
  t.teardown(async () => {
    await server.close();
  });
  let closed: Promise<SpanRecord[]> | undefined;
  return {
    server,
    engine,
    spanFile,
    events: () => events,
    tracingStats: () => finalStats,
    finish() {
      closed ??= (async () => {
        await server.close();
        // The stats message is posted at shutdown; give the channel a moment to deliver it.
        for (let i = 0; i < 50 && finalStats === undefined && spanFile !== undefined; i++) await sleep(10);
        channel.close();
        if (spanFile === undefined || eventFile === undefined) return [];
        try {
          events = readFileSync(eventFile, 'utf8')
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => JSON.parse(l) as LoggedEvent);
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

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Events of one session, by type, in dispatch order. */
export function eventTypes(events: readonly LoggedEvent[], sessionId: string): string[] {
  return events.filter((e) => e.sessionId === sessionId && e.type.startsWith('MP_')).map((e) => e.type);
}

/**
 * The session's spans form one tree: exactly one `request` root and the given children (by
 * name, in any order), each parented to the root. Returns the root.
 */
export function assertTree(
  t: import('ava').ExecutionContext,
  spans: readonly SpanRecord[],
  sessionId: string,
  children: readonly string[],
): SpanRecord {
  const mine = sessionSpans(spans, sessionId);
  const roots = byName(mine, 'request');
  t.is(roots.length, 1, `${sessionId}: one root`);
  const root = roots[0];
  const kids = mine.filter((s) => s !== root);
  t.deepEqual(kids.map((s) => s.name).sort(), [...children].sort(), `${sessionId}: children`);
  for (const k of kids) {
    t.is(k.parentSpanId, root.spanId, `${sessionId}: ${k.name} nests under the root`);
    t.is(k.traceId, root.traceId);
  }
  return root;
}
