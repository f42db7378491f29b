/**
 * The cuda backend end to end against a stand-in libcuda (see test/native/fake_libcuda.cpp): the
 * koffi binding, IPC handle handling, kernel argument packing, the kernel source's index math,
 * completion polling and events, compared byte for byte with the cpu backend on the same plans.
 */
import test from 'ava';
import { type GpuWorker, type HostChunkRef, type KvLayoutSpec, spawnGpuWorker } from '../src/index.js';
import { collectingPipeline } from './helpers/events.js';
import { buildFakeCuda, type FakeCuda, hasCompiler } from './helpers/fake-cuda.js';
import { makeEngineKv, plan, rng, shuffle } from './helpers/kv-fixture.js';

const maybe = hasCompiler() ? test.serial : test.skip;
let fake: FakeCuda;

test.before(() => {
  if (!hasCompiler()) return;
  fake = buildFakeCuda();
  process.env.KVMP_LIBCUDA = fake.path; // read by the worker thread's lazy driver load
});

const specs: KvLayoutSpec[] = [
  { kind: 'flash_attn', numLayers: 3, numBlocks: 12, blockSize: 4, numHeads: 2, headSize: 8, dtype: 'bf16' }, // 16-byte units
  { kind: 'mla', numLayers: 2, numBlocks: 10, blockSize: 2, headDim: 6, dtype: 'fp16' }, // 4-byte units
  { kind: 'flash_attn', numLayers: 2, numBlocks: 8, blockSize: 2, numHeads: 1, headSize: 3, dtype: 'int8' }, // 1-byte units
  { kind: 'mla', numLayers: 170, numBlocks: 8, blockSize: 2, headDim: 4, dtype: 'fp32' }, // two launches per chunk (> 160 layers)
];

async function runBoth(
  spec: KvLayoutSpec,
  seed: number,
  ops: (gpu: GpuWorker, id: string, chunks: HostChunkRef[], ids: number[][]) => Promise<unknown>,
): Promise<{ cudaHost: Uint8Array; cpuHost: Uint8Array; cudaKv: Uint8Array[]; cpuKv: Uint8Array[] }> {
  const r = rng(seed);
  const engine = makeEngineKv(spec, r);
  const { info } = engine;
  const chunkTokens = info.blockSize * 2;
  const chunkBytes = info.bytesPerToken * chunkTokens;
  const chunks = [2, 0].map((s) => ({ segment: 0, offset: s * chunkBytes }));
  const perm = shuffle(
    r,
    Array.from({ length: info.numBlocks }, (_, i) => i),
  );
  const ids = [perm.slice(0, 4), perm.slice(4, 8)];

  // cuda: one allocation holding every layer (layers share one IPC handle, at offsets).
  const base = fake.alloc(info.layerBytes * info.numLayers);
  engine.views.forEach((v, l) => {
    fake.write(base + BigInt(l * info.layerBytes), v);
  });
  const cuda = await spawnGpuWorker({ backend: 'cuda' });
  const cudaHost = new SharedArrayBuffer(chunkBytes * 3);
  await cuda.registerHostMemory([cudaHost]);
  const handle = fake.memHandle(base);
  await cuda.registerKvCache('e', spec, {
    backend: 'cuda',
    layers: engine.views.map((_, l) => ({ ipcHandle: handle, offset: l * info.layerBytes })),
  });
  await ops(cuda, 'e', chunks, ids);
  const cudaKv = engine.views.map((_, l) => fake.read(base + BigInt(l * info.layerBytes), info.layerBytes));
  await cuda.close();

  const cpu = await spawnGpuWorker({ backend: 'cpu' });
  const cpuHost = new SharedArrayBuffer(chunkBytes * 3);
  await cpu.registerHostMemory([cpuHost]);
  await cpu.registerKvCache('e', spec, { backend: 'cpu', layers: engine.layers });
  await ops(cpu, 'e', chunks, ids);
  await cpu.close();
  return { cudaHost: new Uint8Array(cudaHost), cpuHost: new Uint8Array(cpuHost), cudaKv, cpuKv: engine.views };
}

maybe(
  'cuda backend on the stand-in driver matches the cpu backend byte for byte (store, retrieve, skip)',
  async (t) => {
    const launchesBefore = fake.launches();
    for (const [i, spec] of specs.entries()) {
      const out = await runBoth(spec, 100 + i, async (gpu, id, chunks, ids) => {
        const s = await gpu.store(plan(id, ids[0], spec.blockSize * 2, chunks));
        t.true(s.ok, s.error);
        const r = await gpu.retrieve(
          plan(id, ids[1], spec.blockSize * 2, chunks, { skipFirstTokens: spec.blockSize + 1 }),
        );
        t.true(r.ok, r.error);
        t.is(r.tokens, 4 * spec.blockSize - spec.blockSize - 1);
      });
      t.deepEqual(out.cudaHost, out.cpuHost, `host chunks, ${spec.kind} ${spec.dtype}`);
      out.cudaKv.forEach((layer, l) => {
        t.deepEqual(layer, out.cpuKv[l], `engine layer ${l}, ${spec.kind} ${spec.dtype}`);
      });
    }
    t.true(fake.launches() > launchesBefore, 'kernels were launched');
    t.is(fake.pinnedSegments(), 0, 'close unpinned every host segment');
  },
);

maybe('cuda backend: waits on the engine IPC event, returns a done event, publishes GPU-timed START/END', async (t) => {
  const events = await collectingPipeline();
  const spec = specs[0];
  const engine = makeEngineKv(spec, rng(9));
  const { info } = engine;
  const ptrs = engine.views.map((v) => {
    const p = fake.alloc(info.layerBytes);
    fake.write(p, v);
    return p;
  });
  const gpu = await spawnGpuWorker({ backend: 'cuda', ring: events.pipeline.handle });
  t.regex((await gpu.info()).device, /kvmp fake GPU \(sm_90, driver API 13\.0\)/);
  const host = new SharedArrayBuffer(info.bytesPerToken * 8);
  await gpu.registerHostMemory([host]);
  await gpu.registerKvCache('e', spec, {
    backend: 'cuda',
    deviceUuid: 'GPU-A0A1A2A3-A4A5-A6A7-A8A9-AAABACADAEAF', // case and dashes do not matter
    layers: ptrs.map((p) => ({ ipcHandle: fake.memHandle(p), offset: 0 })),
  });
  const openedBefore = fake.openedEvents();
  const p = plan('e', [3, 7], 8, [{ segment: 0, offset: 0 }], { waitEvent: fake.eventHandle() });
  const res = await gpu.store(p);
  t.true(res.ok, res.error);
  t.is(fake.openedEvents(), openedBefore + 1, 'the engine event was opened (and waited on)');
  t.is(new TextDecoder().decode(res.doneEvent?.subarray(0, 7)), 'kvmpevt');
  t.true(res.startNs <= res.endNs);
  const bad = await gpu.store(
    plan('e', [3, 7], 8, [{ segment: 0, offset: 0 }], { waitEvent: new Uint8Array(new SharedArrayBuffer(64)) }),
  );
  t.regex(bad.error ?? '', /waitEvent: the cuda backend waits on CUDA IPC event handles/);
  await t.throwsAsync(
    gpu.registerKvCache('other', spec, {
      backend: 'cuda',
      deviceUuid: 'GPU-00000000-0000-0000-0000-000000000000',
      layers: ptrs.map((q) => ({ ipcHandle: fake.memHandle(q), offset: 0 })),
    }),
    {
      message:
        /memory\.deviceUuid: KV cache is on GPU-00000000-0000-0000-0000-000000000000 but this GPU worker drives GPU-a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf/,
    },
  );
  await t.throwsAsync(
    gpu.registerKvCache('short', spec, {
      backend: 'cuda',
      layers: ptrs.map((q) => ({ ipcHandle: fake.memHandle(q), offset: 16 })),
    }),
    {
      message: new RegExp(
        `memory\\.layers\\[0\\]: offset 16 \\+ ${info.layerBytes} layer bytes .* run past the exported allocation of ${info.layerBytes} bytes`,
      ),
    },
  );
  const tooBig = await gpu.store(
    plan(
      'e',
      Array.from({ length: 513 }, () => 0),
      513 * spec.blockSize,
      [{ segment: 0, offset: 0 }],
    ),
  );
  t.regex(tooBig.error ?? '', /over this backend's limit of 512/);
  await gpu.close();
  const seen = (await events.stop()).filter((e) => e.opId === p.opId);
  t.deepEqual(
    seen.map((e) => e.type),
    ['MP_STORE_START', 'MP_STORE_END'],
  );
  t.is(seen[0].time[0] * 1e9 + seen[0].time[1], res.startNs);
  const end = seen[1];
  if (end.type !== 'MP_STORE_END') return t.fail();
  t.like(end.meta, {
    device: 'cuda:0',
    success: true,
    stored_count: 1,
    num_tokens: 8,
    total_bytes: 8 * info.bytesPerToken,
  });
});
