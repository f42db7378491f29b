import test from 'ava';
import {
  type CopyResult,
  cpuEventSignalled,
  createCpuEvent,
  type KvLayoutSpec,
  signalCpuEvent,
  spawnGpuWorker,
} from '../src/index.js';
import { OpReporter } from '../src/shared/op-reporter.js';
import { CpuBackend } from '../src/worker-thread/cpu/cpu-backend.js';
import { collectingPipeline } from './helpers/events.js';
import { fillRandom, makeEngineKv, plan, rng } from './helpers/kv-fixture.js';

const spec: KvLayoutSpec = { kind: 'mla', numLayers: 3, numBlocks: 8, blockSize: 4, headDim: 16, dtype: 'fp16' };
const ticks = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setTimeout(resolve, 1));
};

test('START/END carry stream times, identity, bytes and success', async (t) => {
  const events = await collectingPipeline();
  const gpu = await spawnGpuWorker({ backend: 'cpu', ring: events.pipeline.handle });
  const engine = makeEngineKv(spec, rng(5));
  await gpu.registerKvCache('a', spec, { backend: 'cpu', layers: engine.layers });
  const chunkBytes = engine.info.bytesPerToken * 8;
  await gpu.registerHostMemory([new SharedArrayBuffer(chunkBytes * 2)]);
  const p = plan('a', [3, 4, 0, 1], 8, [
    { segment: 0, offset: chunkBytes },
    { segment: 0, offset: 0 },
  ]);
  const stored = await gpu.store({ ...p, workerId: 3 });
  const r = plan('a', [5, 6, 7, 2], 8, p.chunks, { skipFirstTokens: 4 });
  const got = await gpu.retrieve(r);
  await gpu.close();
  const seen = await events.stop();
  t.deepEqual(
    seen.map((e) => [e.type, e.opId]),
    [
      ['MP_STORE_START', p.opId],
      ['MP_STORE_END', p.opId],
      ['MP_RETRIEVE_START', r.opId],
      ['MP_RETRIEVE_END', r.opId],
    ],
  );
  const [start, end, rstart, rend] = seen;
  const ns = (e: (typeof seen)[number]): number => e.time[0] * 1e9 + e.time[1];
  t.is(ns(start), stored.startNs);
  t.is(ns(end), stored.endNs);
  t.true(stored.startNs <= stored.endNs && stored.endNs <= ns(rstart));
  t.is(start.workerId, 3);
  t.is(start.sessionId, p.sessionId);
  if (end.type !== 'MP_STORE_END' || rend.type !== 'MP_RETRIEVE_END') return t.fail();
  t.like(end.meta, { device: 'cpu', engine_id: 'engine-0', model_name: 'test-model', stored_count: 2, success: true });
  t.is(end.meta.total_bytes, 2 * chunkBytes);
  t.is(end.meta.num_tokens, 16);
  t.is(end.meta.error, undefined);
  t.like(rend.meta, { retrieved_count: 2, num_tokens: 12, total_bytes: 12 * engine.info.bytesPerToken, success: true });
  t.is(got.tokens, 12);
});

test('store waits for the engine event; later ops on the instance wait behind it; done event is signalled', async (t) => {
  const gpu = await spawnGpuWorker({ backend: 'cpu' });
  t.teardown(() => gpu.close());
  const engine = makeEngineKv(spec, rng(6));
  await gpu.registerKvCache('a', spec, { backend: 'cpu', layers: engine.layers });
  const chunkBytes = engine.info.bytesPerToken * 4;
  const host = new SharedArrayBuffer(chunkBytes * 2);
  await gpu.registerHostMemory([host]);
  const forwardDone = createCpuEvent();
  const settled: string[] = [];
  const first = gpu.store(plan('a', [2], 4, [{ segment: 0, offset: 0 }], { waitEvent: forwardDone }));
  const second = gpu.store(plan('a', [3], 4, [{ segment: 0, offset: chunkBytes }]));
  void first.then(() => settled.push('first'));
  void second.then(() => settled.push('second'));
  await ticks(20);
  t.deepEqual(settled, [], 'nothing ran before the engine signalled');
  // The "forward pass" writes block 2 now; the store must see these bytes, not the old ones.
  fillRandom(engine.views[1], rng(99));
  signalCpuEvent(forwardDone);
  const [a, b] = await Promise.all([first, second]);
  t.deepEqual(settled, ['first', 'second']);
  t.true(a.ok && b.ok);
  // The stored bytes being the post-signal ones (below) is what proves the copy waited.
  const row = engine.info.rowBytes;
  const blockStart = 2 * 4 * row;
  t.deepEqual(new Uint8Array(host, 1 * 4 * row, 4 * row), engine.views[1].subarray(blockStart, blockStart + 4 * row));
  t.true(a.doneEvent !== undefined && cpuEventSignalled(a.doneEvent));
});

test('unregister and close cancel queued work: ok:false, END published with the reason', async (t) => {
  const events = await collectingPipeline();
  const gpu = await spawnGpuWorker({ backend: 'cpu', ring: events.pipeline.handle });
  const engine = makeEngineKv(spec, rng(8));
  await gpu.registerKvCache('a', spec, { backend: 'cpu', layers: engine.layers });
  await gpu.registerKvCache('b', spec, { backend: 'cpu', layers: engine.layers });
  const chunkBytes = engine.info.bytesPerToken * 4;
  await gpu.registerHostMemory([new SharedArrayBuffer(chunkBytes * 4)]);
  const never = createCpuEvent();
  const waiting = gpu.store(plan('a', [1], 4, [{ segment: 0, offset: 0 }], { waitEvent: never }));
  const queued = gpu.retrieve(plan('a', [2], 4, [{ segment: 0, offset: chunkBytes }]));
  await ticks(5);
  await gpu.unregisterKvCache('a');
  const [w, q] = await Promise.all([waiting, queued]);
  t.like(w, { ok: false, failure: 'cancelled', error: 'instance a unregistered', bytes: 0 });
  t.like(q, { ok: false, failure: 'cancelled', error: 'instance a unregistered' });
  const afterUnregister = await gpu.store(plan('a', [1], 4, [{ segment: 0, offset: 0 }]));
  t.is(afterUnregister.failure, 'unknown_instance');

  const onB = gpu.store(plan('b', [1], 4, [{ segment: 0, offset: 2 * chunkBytes }], { waitEvent: never }));
  await ticks(5);
  await gpu.close();
  t.like(await onB, { ok: false, failure: 'cancelled', error: 'gpu worker closed' });
  const late = await gpu.store(plan('b', [1], 4, [{ segment: 0, offset: 0 }]));
  t.like(late, { ok: false, failure: 'worker_gone', error: 'gpu worker closed' });
  await t.throwsAsync(gpu.registerHostMemory([]), { message: /closed/ });
  await gpu.close(); // idempotent

  const seen = await events.stop();
  const ends = seen.filter((e) => e.type === 'MP_STORE_END' || e.type === 'MP_RETRIEVE_END');
  t.is(ends.length, 5, 'one END per operation, whoever reported it');
  for (const e of ends) {
    if (e.type !== 'MP_STORE_END' && e.type !== 'MP_RETRIEVE_END') continue;
    t.false(e.meta.success);
    t.truthy(e.meta.error);
  }
  t.is(seen.filter((e) => e.type.endsWith('_START')).length, 5);
});

test('CpuBackend.close releases host segments and streams', async (t) => {
  const backend = new CpuBackend();
  const engine = makeEngineKv(spec);
  backend.addHostSegments([new SharedArrayBuffer(1024)]);
  backend.registerInstance('a', engine.info, { backend: 'cpu', layers: engine.layers });
  await backend.close();
  t.deepEqual(backend.hostSegmentBytes(), []);
  const result = await new Promise<CopyResult>((resolve) => {
    const reporter = new OpReporter(
      undefined,
      'store',
      { opId: 1, sessionId: 's', workerId: undefined, instanceId: 'a', modelName: '', engineId: '' },
      'cpu',
      resolve,
      () => {},
    );
    backend.submit('a', undefined as never, reporter);
  });
  t.is(result.failure, 'unknown_instance');
});

test('if the worker thread dies, pending operations resolve worker_gone and the client publishes their END', async (t) => {
  const events = await collectingPipeline();
  const gpu = await spawnGpuWorker({ backend: 'cpu', ring: events.pipeline.handle });
  const engine = makeEngineKv(spec, rng(10));
  await gpu.registerKvCache('a', spec, { backend: 'cpu', layers: engine.layers });
  await gpu.registerHostMemory([new SharedArrayBuffer(engine.info.bytesPerToken * 4)]);
  const p = plan('a', [1], 4, [{ segment: 0, offset: 0 }], { waitEvent: createCpuEvent() });
  const pending = gpu.store(p);
  await ticks(5);
  // Simulate a crash of the GPU worker thread (the client's private Worker, reached for the test).
  await (gpu as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
  const res = await pending;
  t.like(res, { ok: false, failure: 'worker_gone' });
  t.regex(res.error ?? '', /gpu worker thread exited/);
  const after = await gpu.retrieve(plan('a', [1], 4, [{ segment: 0, offset: 0 }]));
  t.is(after.failure, 'worker_gone');
  await gpu.close();
  const seen = (await events.stop()).filter((e) => e.sessionId === p.sessionId);
  t.deepEqual(
    seen.map((e) => e.type),
    ['MP_STORE_START', 'MP_STORE_END'],
  );
});

test('unregister stops a long copy at a chunk boundary: cancelled, not half-reported as success', async (t) => {
  const big: KvLayoutSpec = {
    kind: 'flash_attn',
    numLayers: 8,
    numBlocks: 256,
    blockSize: 16,
    numHeads: 4,
    headSize: 128,
    dtype: 'bf16',
  };
  const gpu = await spawnGpuWorker({ backend: 'cpu' });
  t.teardown(() => gpu.close());
  const engine = makeEngineKv(big);
  await gpu.registerKvCache('a', big, { backend: 'cpu', layers: engine.layers });
  const chunkBytes = engine.info.bytesPerToken * 16;
  await gpu.registerHostMemory([new SharedArrayBuffer(chunkBytes * 256)]);
  // 256 one-block chunks (64 MiB): one chunk per macrotask, so the unregister lands mid-copy.
  const ids = Array.from({ length: 256 }, (_, i) => i);
  const p = plan(
    'a',
    ids,
    16,
    ids.map((i) => ({ segment: 0, offset: i * chunkBytes })),
  );
  const running = gpu.store(p);
  await gpu.unregisterKvCache('a');
  const res = await running;
  t.like(res, { ok: false, failure: 'cancelled', error: 'instance a unregistered', bytes: 0 });
  t.true(res.endNs > res.startNs, 'stopped mid-copy (a cancel before the start has start = end)');
});
