import test from 'ava';
import { type CopyResult, spawnGpuWorker } from '../src/index.js';
import { fillRandom, makeEngineKv, plan, randInt, rng } from './helpers/kv-fixture.js';

const spec = {
  kind: 'flash_attn',
  numLayers: 2,
  numBlocks: 16,
  blockSize: 4,
  numHeads: 2,
  headSize: 8,
  dtype: 'bf16',
} as const;

test('per-instance FIFO: many concurrent stores and retrieves on shared blocks end as if run one by one', async (t) => {
  const gpu = await spawnGpuWorker({ backend: 'cpu' });
  t.teardown(() => gpu.close());
  const r = rng(7);
  const engine = makeEngineKv(spec, r);
  // A reference copy of the engine memory that the same operations are applied to sequentially.
  const model = makeEngineKv(spec);
  engine.views.forEach((v, i) => {
    model.views[i].set(v);
  });
  await gpu.registerKvCache('a', spec, { backend: 'cpu', layers: engine.layers });
  const chunkTokens = 8;
  const chunkBytes = engine.info.bytesPerToken * chunkTokens;
  const slots = 6;
  const host = new SharedArrayBuffer(chunkBytes * slots);
  const modelHost = new Uint8Array(chunkBytes * slots);
  fillRandom(new Uint8Array(host), r);
  modelHost.set(new Uint8Array(host));
  await gpu.registerHostMemory([host]);

  const ops: Promise<CopyResult>[] = [];
  const order: number[] = [];
  for (let i = 0; i < 200; i++) {
    const ids = [randInt(r, 0, 7) * 2, randInt(r, 0, 7) * 2 + 1].flatMap((b) => [b]);
    const slot = randInt(r, 0, slots - 1);
    const p = plan('a', ids, chunkTokens, [{ segment: 0, offset: slot * chunkBytes }]);
    const store = r() < 0.5;
    // Apply to the model sequentially: token t ↔ host row, per (kv, layer).
    const { info } = engine;
    for (let t2 = 0; t2 < chunkTokens; t2++) {
      const block = ids[Math.floor(t2 / info.blockSize)];
      for (let kv = 0; kv < 2; kv++) {
        for (let l = 0; l < info.numLayers; l++) {
          const e = ((kv * info.numBlocks + block) * info.blockSize + (t2 % info.blockSize)) * info.rowBytes;
          const h = slot * chunkBytes + ((kv * info.numLayers + l) * chunkTokens + t2) * info.rowBytes;
          if (store) modelHost.set(model.views[l].subarray(e, e + info.rowBytes), h);
          else model.views[l].set(modelHost.subarray(h, h + info.rowBytes), e);
        }
      }
    }
    const op = store ? gpu.store(p) : gpu.retrieve(p);
    ops.push(
      op.then((res) => {
        order.push(res.opId);
        return res;
      }),
    );
  }
  const results = await Promise.all(ops);
  t.true(results.every((res) => res.ok));
  t.deepEqual(
    order,
    results.map((res) => res.opId),
    'completions arrive in submission order',
  );
  for (let i = 1; i < results.length; i++)
    t.true(results[i].startNs >= results[i - 1].endNs, `op ${i} started after op ${i - 1} ended`);
  t.deepEqual(new Uint8Array(host), modelHost);
  engine.views.forEach((v, i) => {
    t.deepEqual(v, model.views[i]);
  });
});

test('two instances progress independently', async (t) => {
  const gpu = await spawnGpuWorker({ backend: 'cpu' });
  t.teardown(() => gpu.close());
  const a = makeEngineKv(spec, rng(1));
  const b = makeEngineKv(spec, rng(2));
  await gpu.registerKvCache('a', spec, { backend: 'cpu', layers: a.layers });
  await gpu.registerKvCache('b', spec, { backend: 'cpu', layers: b.layers });
  const chunkBytes = a.info.bytesPerToken * 4;
  await gpu.registerHostMemory([new SharedArrayBuffer(chunkBytes * 64)]);
  const ops = Array.from({ length: 32 }, (_, i) =>
    gpu.store(plan(i % 2 === 0 ? 'a' : 'b', [i % 16], 4, [{ segment: 0, offset: i * chunkBytes }])),
  );
  const results = await Promise.all(ops);
  t.true(results.every((res) => res.ok));
  t.deepEqual([...(await gpu.info()).instances].sort(), ['a', 'b']);
});
