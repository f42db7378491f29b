/**
 * Cross-package flow: a gateway with its own OTel SDK embeds the cache server
 * (`@kvmp/server`), which copies real bytes through the real GPU worker thread
 * (`@kvmp/gpu-worker`, cpu backend) and exports spans through the real request tracing
 * subscriber (`@kvmp/tracing`, JSON lines) on the drain thread. The gateway's span must be
 * the parent of every request root, and the cache must serve byte-exact KV.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCacheServer, FakeEngine, fakePrompt } from '@kvmp/server';
import { readSpanFile, requestTracingSubscriber } from '@kvmp/tracing';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import test from 'ava';

test('a gateway span parents the cache server’s request spans; bytes round-trip through the GPU worker', async (t) => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const gatewaySpans = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(gatewaySpans)] });
  const tracer = provider.getTracer('gateway');

  const dir = mkdtempSync(join(tmpdir(), 'kvmp-gateway-'));
  const file = join(dir, 'spans.jsonl');
  const server = await createCacheServer({
    chunkSize: 64,
    l1: { capacityBytes: 8 * 1024 * 1024 },
    pool: { threads: 1 },
    tracing: { subscribers: [requestTracingSubscriber({ exporter: 'jsonl', file })] },
  });
  t.teardown(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const engine = new FakeEngine({ blockSize: 16, numBlocks: 256 });
  await engine.register(server);

  const prompt = fakePrompt(3 * 64 + 9, 5);
  const handle = (requestId: string) =>
    tracer.startActiveSpan(`POST /v1/completions ${requestId}`, async (span) => {
      try {
        return await engine.runRequest(server, { requestId, tokens: prompt });
      } finally {
        span.end();
      }
    });
  const miss = await handle('gw-1');
  const hit = await handle('gw-2');
  t.like(miss, { hitTokens: 0, storedChunks: 3, corruptTokens: 0 });
  t.like(hit, { hitTokens: 3 * 64, corruptTokens: 0 });

  await server.close();
  const spans = await readSpanFile(file);
  const gw = gatewaySpans.getFinishedSpans();
  t.is(gw.length, 2);
  for (const [i, sid] of ['gw-1', 'gw-2'].entries()) {
    const g = gw.find((s) => s.name.endsWith(sid));
    t.truthy(g);
    const root = spans.find((s) => s.name === 'request' && s.attributes.session_id === sid);
    t.truthy(root, `${sid}: root exported`);
    t.is(root?.traceId, g?.spanContext().traceId, `${sid}: same trace as the gateway`);
    t.is(root?.parentSpanId, g?.spanContext().spanId, `${sid}: the gateway span is the parent`);
    const children = spans.filter((s) => s.attributes.session_id === sid && s.name !== 'request');
    t.deepEqual(
      children.map((s) => s.name).sort(),
      i === 0 ? ['mp.lookup_prefetch', 'mp.store'] : ['mp.lookup_prefetch', 'mp.retrieve'],
    );
    t.true(children.every((c) => c.parentSpanId === root?.spanId));
  }
  t.is(trace.getActiveSpan(), undefined);
  await provider.shutdown();
});
