import test from 'ava';
import { type HostChunkRef, spawnGpuWorker } from '../src/index.js';
import { fillRandom, forEachRow, makeEngineKv, plan, randInt, randomSpec, rng, shuffle } from './helpers/kv-fixture.js';

test('store then retrieve round-trips bytes exactly for random flash-attn and MLA layouts, with skip-first-N', async (t) => {
  const gpu = await spawnGpuWorker({ backend: 'cpu' });
  t.teardown(() => gpu.close());
  const r = rng(20261128);
  const kinds = new Set<string>();
  const dtypes = new Set<string>();
  for (let round = 0; round < 24; round++) {
    const spec = randomSpec(r);
    kinds.add(spec.kind);
    dtypes.add(spec.dtype);
    const engine = makeEngineKv(spec, r);
    const { info } = engine;
    const id = `inst-${round}`;
    t.deepEqual(
      (await gpu.registerKvCache(id, spec, { backend: 'cpu', layers: engine.layers })).layerShape,
      info.layerShape,
    );

    const chunkTokens = info.blockSize * randInt(r, 1, 3);
    const blocksPerChunk = chunkTokens / info.blockSize;
    const numChunks = randInt(r, 1, Math.floor(info.numBlocks / blocksPerChunk));
    // Shuffled ids with some consecutive runs, as an engine's allocator produces.
    const ids = shuffle(
      r,
      Array.from({ length: info.numBlocks }, (_, i) => i),
    ).slice(0, numChunks * blocksPerChunk);
    if (round % 3 === 0) ids.sort((a, b) => a - b);
    const chunkBytes = info.bytesPerToken * chunkTokens;
    const host = new SharedArrayBuffer(chunkBytes * (numChunks + 2));
    const hostView = new Uint8Array(host);
    const segment = await gpu.registerHostMemory([host]);
    const slots = shuffle(
      r,
      Array.from({ length: numChunks + 2 }, (_, i) => i),
    ).slice(0, numChunks);
    const chunks: HostChunkRef[] = slots.map((s) => ({ segment, offset: s * chunkBytes }));

    const stored = await gpu.store(plan(id, ids, chunkTokens, chunks, { dtype: spec.dtype }));
    t.true(stored.ok, stored.error);
    t.is(stored.bytes, numChunks * chunkBytes);
    t.is(stored.tokens, numChunks * chunkTokens);
    let mismatches = 0;
    forEachRow(engine, ids, chunks, chunkTokens, (layer, e, h) => {
      for (let i = 0; i < info.rowBytes; i++) if (engine.views[layer][e + i] !== hostView[h + i]) mismatches++;
    });
    t.is(mismatches, 0, `store ${spec.kind} ${spec.dtype} round ${round}`);

    // Retrieve into different blocks after scrambling them; the skipped prefix must stay as it was.
    const original = engine.views.map((v) => v.slice());
    for (const v of engine.views) fillRandom(v, r);
    const scrambled = engine.views.map((v) => v.slice());
    const target = shuffle(
      r,
      Array.from({ length: info.numBlocks }, (_, i) => i),
    ).slice(0, ids.length);
    const skip = round % 2 === 0 ? 0 : randInt(r, 0, numChunks * chunkTokens);
    const got = await gpu.retrieve(plan(id, target, chunkTokens, chunks, { skipFirstTokens: skip }));
    t.true(got.ok, got.error);
    t.is(got.tokens, numChunks * chunkTokens - skip);
    t.is(got.bytes, (numChunks * chunkTokens - skip) * info.bytesPerToken);
    let wrong = 0;
    let touchedSkipped = 0;
    const written = new Set<string>();
    forEachRow(engine, target, chunks, chunkTokens, (layer, e, _h, token) => {
      for (let i = 0; i < info.rowBytes; i++) written.add(`${layer}:${e + i}`);
      const srcRowMatches = (i: number): boolean => engine.views[layer][e + i] === scrambled[layer][e + i];
      for (let i = 0; i < info.rowBytes; i++) {
        if (token < skip) {
          if (!srcRowMatches(i)) touchedSkipped++;
        }
      }
    });
    // Compare non-skipped rows against the bytes originally stored (via the host copy).
    forEachRow(engine, target, chunks, chunkTokens, (layer, e, h, token) => {
      if (token < skip) return;
      for (let i = 0; i < info.rowBytes; i++) if (engine.views[layer][e + i] !== hostView[h + i]) wrong++;
    });
    // Bytes outside the target blocks are untouched.
    let collateral = 0;
    engine.views.forEach((v, layer) => {
      for (let i = 0; i < v.length; i++)
        if (!written.has(`${layer}:${i}`) && v[i] !== scrambled[layer][i]) collateral++;
    });
    t.is(wrong, 0, `retrieve ${spec.kind} round ${round}`);
    t.is(touchedSkipped, 0, 'skipped tokens untouched');
    t.is(collateral, 0, 'no bytes outside the plan written');
    t.truthy(original);
    await gpu.unregisterKvCache(id);
  }
  t.deepEqual([...kinds].sort(), ['flash_attn', 'mla']);
  t.true(dtypes.size >= 3);
});
