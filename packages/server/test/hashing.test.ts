import test from 'ava';
import { fakePrompt } from '../src/index.js';
import { CHUNK, startHarness } from './helpers.js';

const MODEL = 'fake-model';

test('long runs hash on the pool, short ones inline, and both give the same keys', async (t) => {
  const h = await startHarness(t, { tracing: false, config: { pool: { threads: 1, offloadMinChunks: 2 } } });
  const { server, engine } = h;
  const tokens = fakePrompt(4 * CHUNK, 1200);
  const stored = await engine.runRequest(server, { requestId: 'a', tokens }); // 4 chunks: pool
  t.is(stored.storedChunks, 4);
  t.is(server.status().pool.chunksOffloaded, 4);
  // One chunk inline, then the other three on the pool, chained from the inline hash.
  await server.lookup({ requestId: 'b', modelName: MODEL, tokens, end: CHUNK });
  t.is(await server.queryPrefetchStatus('b'), 1);
  t.is(server.status().pool.chunksInline, 1);
  await server.lookup({ requestId: 'b', modelName: MODEL, tokens });
  t.is(await server.queryPrefetchStatus('b'), 4);
  t.is(server.status().pool.chunksOffloaded, 7);
  const blocks = engine.allocateBlocks(tokens.length);
  const r = await server.retrieve({ requestId: 'b', instanceId: engine.instanceId, tokens, blockIds: blocks });
  t.like(r, { ok: true, retrievedChunks: 4 });
  t.is(engine.verifyKv(tokens, blocks, 0, tokens.length), 0);
  await server.endSession('b');
  await h.finish();
});

test('freeLookupLocks releases the unconsumed locks of a range', async (t) => {
  const h = await startHarness(t, { tracing: false });
  const { server, engine } = h;
  const tokens = fakePrompt(4 * CHUNK, 1300);
  await engine.runRequest(server, { requestId: 'w', tokens });
  await server.lookup({ requestId: 'f', modelName: MODEL, tokens });
  t.is(server.status().l1.readLocked, 4);
  // The engine already had the first two chunks (its own prefix cache): it frees their locks.
  t.is(await server.freeLookupLocks({ requestId: 'f', start: 0, end: 2 * CHUNK }), 2);
  t.is(server.status().l1.readLocked, 2);
  const blocks = engine.allocateBlocks(2 * CHUNK);
  const r = await server.retrieve({
    requestId: 'f',
    instanceId: engine.instanceId,
    tokens,
    start: 2 * CHUNK,
    blockIds: blocks,
  });
  t.like(r, { ok: true, retrievedChunks: 2 });
  t.is(server.status().l1.readLocked, 0);
  t.is(await server.freeLookupLocks({ requestId: 'unknown' }), 0);
  await server.endSession('f');
  await h.finish();
});

test('re-registering an instance replaces it; stored chunks survive', async (t) => {
  const h = await startHarness(t, { tracing: false });
  const { server, engine } = h;
  const tokens = fakePrompt(2 * CHUNK, 1400);
  await engine.runRequest(server, { requestId: 'a', tokens });
  await engine.register(server);
  t.is(server.status().instances.length, 1);
  const again = await engine.runRequest(server, { requestId: 'b', tokens });
  t.like(again, { hitTokens: 2 * CHUNK, corruptTokens: 0 });
  await h.finish();
});
