import test from 'ava';
import { FakeEngine, fakePrompt } from '../src/index.js';
import { assertTree, BLOCK, byName, CHUNK, sessionSpans, startHarness } from './helpers.js';

const MODEL = 'fake-model';

test('TP=2: per-rank keys; a lookup without worker id needs every rank', async (t) => {
  const h = await startHarness(t, { engine: { instanceId: 'tp0', worldSize: 2, rank: 0 } });
  const { server } = h;
  const e0 = h.engine;
  const e1 = new FakeEngine({ instanceId: 'tp1', blockSize: BLOCK, numBlocks: 512, worldSize: 2, rank: 1 });
  await e1.register(server);
  const tokens = fakePrompt(3 * CHUNK, 800);
  const engines = [e0, e1];

  // Request 1: miss, each rank stores its own slice of the KV.
  await server.lookup({ requestId: 'r1', modelName: MODEL, tokens });
  t.is(await server.queryPrefetchStatus('r1'), 0);
  const blocks1 = engines.map((e) => e.allocateBlocks(tokens.length));
  const stores = await Promise.all(
    engines.map((e, i) => {
      e.computeKv(tokens, blocks1[i], 0, tokens.length);
      return server.store({ requestId: 'r1', instanceId: e.instanceId, tokens, blockIds: blocks1[i] });
    }),
  );
  t.deepEqual(
    stores.map((s) => s.storedChunks),
    [3, 3],
  );
  await server.endSession('r1');
  t.is(server.status().l1.objects, 6, 'one object per chunk per rank');

  // Request 2: full hit; each rank retrieves its own bytes.
  await server.lookup({ requestId: 'r2', modelName: MODEL, tokens });
  t.is(await server.queryPrefetchStatus('r2'), 3);
  const blocks2 = engines.map((e) => e.allocateBlocks(tokens.length));
  const rets = await Promise.all(
    engines.map((e, i) => server.retrieve({ requestId: 'r2', instanceId: e.instanceId, tokens, blockIds: blocks2[i] })),
  );
  t.true(rets.every((r) => r.ok && r.retrievedChunks === 3));
  t.is(e0.verifyKv(tokens, blocks2[0], 0, tokens.length), 0);
  t.is(e1.verifyKv(tokens, blocks2[1], 0, tokens.length), 0);
  t.not(e0.contentSeed, e1.contentSeed, 'the ranks hold different KV');
  await server.endSession('r2');

  // Only rank 0 stores a longer prompt's 4th chunk: a full-world lookup stops at 3, rank 0 alone sees 4.
  const longer = new Uint32Array(4 * CHUNK);
  longer.set(tokens);
  longer.set(fakePrompt(CHUNK, 801), 3 * CHUNK);
  const b = e0.allocateBlocks(longer.length);
  e0.computeKv(longer, b, 0, longer.length);
  await server.store({ requestId: 'r3', instanceId: 'tp0', tokens: longer, blockIds: b });
  await server.endSession('r3');
  await server.lookup({ requestId: 'r4', modelName: MODEL, tokens: longer });
  t.is(await server.queryPrefetchStatus('r4'), 3);
  await server.endSession('r4');
  await server.lookup({ requestId: 'r5', modelName: MODEL, tokens: longer, workerId: 0 });
  t.is(await server.queryPrefetchStatus('r5'), 4);
  await server.endSession('r5');

  const spans = await h.finish();
  assertTree(t, spans, 'r2', ['mp.lookup_prefetch', 'mp.retrieve', 'mp.retrieve']);
  t.deepEqual(
    byName(sessionSpans(spans, 'r2'), 'mp.retrieve')
      .map((s) => s.attributes.worker_id)
      .sort(),
    [0, 1],
  );
  assertTree(t, spans, 'r1', ['mp.lookup_prefetch', 'mp.store', 'mp.store']);
});

test('TP=2 with MLA: one rank stores, every TP rank reads the same keys (extra readers)', async (t) => {
  const mla = { kind: 'mla', headDim: 32, worldSize: 1, rank: 0, contentSeed: 42 } as const;
  const h = await startHarness(t, { engine: { ...mla, instanceId: 'mla0', workerId: 0 } });
  const { server } = h;
  const e0 = h.engine;
  const e1 = new FakeEngine({ ...mla, instanceId: 'mla1', workerId: 1, blockSize: BLOCK, numBlocks: 512 });
  await e1.register(server);
  const tokens = fakePrompt(2 * CHUNK, 900);
  // Only the first rank stores (as with MLA in the anchor).
  const b0 = e0.allocateBlocks(tokens.length);
  e0.computeKv(tokens, b0, 0, tokens.length);
  t.is((await server.store({ requestId: 's', instanceId: 'mla0', tokens, blockIds: b0 })).storedChunks, 2);
  await server.endSession('s');

  await server.lookup({ requestId: 'm', modelName: MODEL, tokens, tpSize: 2 });
  t.is(await server.queryPrefetchStatus('m'), 2);
  const r0 = await server.retrieve({
    requestId: 'm',
    instanceId: 'mla0',
    tokens,
    blockIds: e0.allocateBlocks(tokens.length),
  });
  t.true(r0.ok);
  t.is(server.status().l1.readLocked, 2, 'the second reader still holds its lock');
  const b1 = e1.allocateBlocks(tokens.length);
  const r1 = await server.retrieve({ requestId: 'm', instanceId: 'mla1', tokens, blockIds: b1 });
  t.like(r1, { ok: true, retrievedChunks: 2 });
  t.is(e1.verifyKv(tokens, b1, 0, tokens.length), 0, 'rank 1 got rank 0’s stored latent KV');
  t.is(server.status().l1.readLocked, 0);
  // A third retrieve has no reader left.
  const r2 = await server.retrieve({ requestId: 'm', instanceId: 'mla1', tokens, blockIds: b1 });
  t.false(r2.ok);
  await server.endSession('m');
  const spans = await h.finish();
  assertTree(t, spans, 'm', ['mp.lookup_prefetch', 'mp.retrieve', 'mp.retrieve', 'mp.retrieve']);
  const workers = byName(sessionSpans(spans, 'm'), 'mp.retrieve').map((s) => s.attributes.worker_id);
  t.deepEqual(workers.sort(), [0, 1, 1]);
});
