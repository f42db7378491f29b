import test from 'ava';
import { type CopyFailure, type KvLayoutSpec, type RetrievePlan, spawnGpuWorker } from '../src/index.js';
import { collectingPipeline } from './helpers/events.js';
import { fillRandom, makeEngineKv, plan, rng } from './helpers/kv-fixture.js';

const spec: KvLayoutSpec = {
  kind: 'flash_attn',
  numLayers: 2,
  numBlocks: 16,
  blockSize: 4,
  numHeads: 2,
  headSize: 8,
  dtype: 'bf16',
};

test('invalid plans resolve ok:false with a clear message, copy nothing, and still publish START and END', async (t) => {
  const events = await collectingPipeline();
  const gpu = await spawnGpuWorker({ backend: 'cpu', ring: events.pipeline.handle });
  t.teardown(() => gpu.close());
  const engine = makeEngineKv(spec, rng(3));
  await gpu.registerKvCache('a', spec, { backend: 'cpu', layers: engine.layers });
  const chunkBytes = engine.info.bytesPerToken * 8;
  const host = new SharedArrayBuffer(chunkBytes * 2);
  fillRandom(new Uint8Array(host), rng(4));
  const hostBefore = new Uint8Array(host).slice();
  const engineBefore = engine.views.map((v) => v.slice());
  await gpu.registerHostMemory([host]);
  const at = (offset: number) => [{ segment: 0, offset }];

  const cases: [string, 'store' | 'retrieve', RetrievePlan, RegExp, CopyFailure][] = [
    [
      'block id out of range',
      'store',
      plan('a', [1, 16], 8, at(0)),
      /blockIds\[1\]: block id 16 out of range \[0, 16\)/,
      'invalid_plan',
    ],
    [
      'negative block id',
      'retrieve',
      plan('a', [-1, 2], 8, at(0)),
      /blockIds\[0\]: block id -1 out of range/,
      'invalid_plan',
    ],
    [
      'chunk not a multiple of block size',
      'store',
      plan('a', [1, 2], 6, at(0)),
      /chunkTokens: 6 is not a multiple of the layout's blockSize 4/,
      'invalid_plan',
    ],
    [
      'too few block ids',
      'store',
      plan('a', [1], 8, at(0)),
      /blockIds: 1 block ids for 1 chunks of 8 tokens \(blockSize 4\); expected 2/,
      'invalid_plan',
    ],
    ['too many chunks', 'retrieve', plan('a', [1, 2], 8, [...at(0), ...at(chunkBytes)]), /expected 4/, 'invalid_plan'],
    [
      'host ref past the end',
      'store',
      plan('a', [1, 2], 8, at(chunkBytes + 1)),
      new RegExp(
        `chunks\\[0\\]: bytes \\[${chunkBytes + 1}, ${2 * chunkBytes + 1}\\) run past the end of segment 0 \\(${2 * chunkBytes} bytes\\)`,
      ),
      'invalid_plan',
    ],
    [
      'unknown segment',
      'store',
      plan('a', [1, 2], 8, [{ segment: 3, offset: 0 }]),
      /chunks\[0\]\.segment: segment 3 is not registered \(1 host segments\)/,
      'invalid_plan',
    ],
    [
      'dtype mismatch',
      'store',
      plan('a', [1, 2], 8, at(0), { dtype: 'fp16' }),
      /dtype: plan expects "fp16" but instance KV is bf16/,
      'invalid_plan',
    ],
    [
      'skip past the end',
      'retrieve',
      plan('a', [1, 2], 8, at(0), { skipFirstTokens: 9 }),
      /skipFirstTokens: must be in \[0, 8\], got 9/,
      'invalid_plan',
    ],
    [
      'block written twice',
      'retrieve',
      plan('a', [2, 2], 8, at(0)),
      /blockIds\[1\]: block id 2 is written twice \(also blockIds\[0\]\)/,
      'invalid_plan',
    ],
    [
      'overlapping host chunks',
      'store',
      plan('a', [1, 2, 3, 4], 8, [...at(0), ...at(10)]),
      /chunks\[1\]: host bytes overlap chunks\[0\]/,
      'invalid_plan',
    ],
    [
      'non-cpu wait event',
      'store',
      plan('a', [1, 2], 8, at(0), { waitEvent: new Uint8Array(64) }),
      /waitEvent: the cpu backend waits on CPU events/,
      'invalid_plan',
    ],
    [
      'bad op id',
      'store',
      plan('a', [1, 2], 8, at(0), { opId: -5 }),
      /opId: must be in \[0, 4294967295\], got -5/,
      'invalid_plan',
    ],
    [
      'unknown instance',
      'store',
      plan('nope', [1, 2], 8, at(0)),
      /instance nope is not registered/,
      'unknown_instance',
    ],
  ];
  for (const [name, dir, p, message, failure] of cases) {
    const res = dir === 'store' ? await gpu.store(p) : await gpu.retrieve(p);
    t.false(res.ok, name);
    t.is(res.failure, failure, name);
    t.is(res.bytes, 0, name);
    t.regex(res.error ?? '', message, name);
  }
  t.deepEqual(new Uint8Array(host), hostBefore, 'host memory untouched');
  engine.views.forEach((v, i) => {
    t.deepEqual(v, engineBefore[i], 'engine memory untouched');
  });

  await gpu.close();
  const seen = await events.stop();
  for (const [name, dir, p, message] of cases) {
    // Matched by session id: the bad-op-id case is published with opId 0.
    const mine = seen.filter((e) => e.sessionId === p.sessionId);
    const prefix = dir === 'store' ? 'MP_STORE' : 'MP_RETRIEVE';
    t.deepEqual(
      mine.map((e) => e.type),
      [`${prefix}_START`, `${prefix}_END`],
      name,
    );
    const end = mine[1];
    if (end.type !== 'MP_STORE_END' && end.type !== 'MP_RETRIEVE_END') return t.fail();
    t.false(end.meta.success, name);
    t.regex(end.meta.error ?? '', message, name);
    t.is(end.sessionId, p.sessionId);
  }
});

test('registerKvCache rejects bad layouts and memory with the field and values', async (t) => {
  const gpu = await spawnGpuWorker({ backend: 'cpu' });
  t.teardown(() => gpu.close());
  const ok = makeEngineKv(spec);
  const reg = (layout: unknown, layers: SharedArrayBuffer[] = ok.layers) =>
    gpu.registerKvCache('x', layout as KvLayoutSpec, { backend: 'cpu', layers });
  await t.throwsAsync(reg({ ...spec, numBlocks: 0 }), {
    message: /layout\.numBlocks: must be in \[1, 2147483647\], got 0/,
  });
  await t.throwsAsync(reg({ ...spec, dtype: 'fp64' }), { message: /layout\.dtype: unknown dtype "fp64"/ });
  await t.throwsAsync(reg({ ...spec, headSize: 1.5 }), { message: /layout\.headSize: must be an integer, got 1\.5/ });
  await t.throwsAsync(reg({ ...spec, kind: 'paged' }), {
    message: /layout\.kind: must be 'flash_attn' or 'mla', got "paged"/,
  });
  await t.throwsAsync(reg({ kind: 'mla', numLayers: 2, numBlocks: 16, blockSize: 4, dtype: 'bf16' }), {
    message: /layout\.headDim: must be an integer, got undefined/,
  });
  await t.throwsAsync(reg(spec, [ok.layers[0]]), { message: /memory\.layers: expected 2 layer buffers, got 1/ });
  await t.throwsAsync(reg(spec, [ok.layers[0], new SharedArrayBuffer(100)]), {
    message: /memory\.layers\[1\]: is 100 bytes; layer shape \[2, 16, 4, 2, 8\] of bf16 needs 4096/,
  });
  await t.throwsAsync(gpu.registerKvCache('x', spec, { backend: 'cuda', layers: [] }), {
    message: /memory\.backend: the cpu backend needs cpu memory, got cuda/,
  });
  t.deepEqual((await gpu.info()).instances, []);
});
