import test from 'ava';
import { FakeEngine, fakePrompt, type KvmpErrorCode, KvmpServerError } from '../src/index.js';
import { BLOCK, CHUNK, startHarness } from './helpers.js';

const MODEL = 'fake-model';

test('bad input: typed errors, nothing published, the server keeps serving and nothing stored is lost', async (t) => {
  const h = await startHarness(t);
  const { server, engine } = h;
  const tokens = fakePrompt(2 * CHUNK, 1);
  await engine.runRequest(server, { requestId: 'good', tokens });
  const blocks = engine.allocateBlocks(tokens.length);
  const base = { requestId: 'bad', instanceId: engine.instanceId, tokens, blockIds: blocks };
  const cases: [string, () => Promise<unknown>, KvmpErrorCode][] = [
    ['unknown instance', () => server.store({ ...base, instanceId: 'nope' }), 'UNKNOWN_INSTANCE'],
    ['negative token', () => server.store({ ...base, tokens: [1, -2, 3] }), 'INVALID_ARGUMENT'],
    ['fractional token', () => server.lookup({ requestId: 'x', modelName: MODEL, tokens: [1.5] }), 'INVALID_ARGUMENT'],
    [
      'token too large',
      () => server.lookup({ requestId: 'x', modelName: MODEL, tokens: [2 ** 32] }),
      'INVALID_ARGUMENT',
    ],
    [
      'tokens not an array',
      () => server.lookup({ requestId: 'x', modelName: MODEL, tokens: 'abc' as never }),
      'INVALID_ARGUMENT',
    ],
    ['unaligned start', () => server.retrieve({ ...base, start: 3 }), 'BAD_RANGE'],
    ['end past tokens', () => server.store({ ...base, end: tokens.length + CHUNK }), 'BAD_RANGE'],
    ['too few blocks', () => server.store({ ...base, blockIds: blocks.slice(0, 2) }), 'BAD_BLOCK_IDS'],
    ['block out of range', () => server.store({ ...base, blockIds: blocks.map(() => 1e9) }), 'BAD_BLOCK_IDS'],
    [
      'bad salt',
      () => server.lookup({ requestId: 'x', modelName: MODEL, tokens, cacheSalt: 'a/b' }),
      'INVALID_ARGUMENT',
    ],
    ['empty request id', () => server.endSession(''), 'INVALID_ARGUMENT'],
    ['model with @', () => server.lookup({ requestId: 'x', modelName: 'a@b', tokens }), 'INVALID_ARGUMENT'],
    [
      'chunk size not a block multiple',
      () => new FakeEngine({ instanceId: 'odd', blockSize: 48 }).register(server),
      'BAD_LAYOUT',
    ],
    [
      'layer memory too small',
      () =>
        server.registerKvCache({
          instanceId: 'small',
          modelName: MODEL,
          layout: engine.layout,
          memory: { backend: 'cpu', layers: engine.layers.map(() => new SharedArrayBuffer(16)) },
        }),
      'BAD_LAYOUT',
    ],
    ['skip beyond range', () => server.retrieve({ ...base, skipFirstTokens: 10 * CHUNK }), 'INVALID_ARGUMENT'],
  ];
  for (const [name, call, code] of cases) {
    const err = await t.throwsAsync(call, { instanceOf: KvmpServerError }, name);
    t.is(err?.code, code, name);
    for (const secret of ['4294967296', '1.5', '-2']) t.false(err?.message.includes(secret), `${name}: no token value`);
  }
  t.is(server.status().activeSessions, 0, 'rejected calls create no session');
  const again = await engine.runRequest(server, { requestId: 'after', tokens });
  t.like(again, { hitTokens: 2 * CHUNK, corruptTokens: 0 });
  await h.finish();
  const bad = h.events().filter((e) => e.sessionId === 'bad' || e.sessionId === 'x');
  t.deepEqual(bad, [], 'bad input publishes nothing');
  t.is(BLOCK, 16);
});

test('a closed server refuses calls with CLOSED', async (t) => {
  const h = await startHarness(t, { tracing: false });
  await h.finish();
  const err = await t.throwsAsync(h.server.lookup({ requestId: 'x', modelName: MODEL, tokens: [1] }), {
    instanceOf: KvmpServerError,
  });
  t.is(err?.code, 'CLOSED');
  t.false(h.server.ping());
});

test('ping, getChunkSize, clear, unregister', async (t) => {
  const h = await startHarness(t, { tracing: false });
  const { server, engine } = h;
  t.true(server.ping());
  t.true(server.ping(engine.instanceId));
  t.false(server.ping('unknown'));
  t.is(server.getChunkSize(), CHUNK);
  await engine.runRequest(server, { requestId: 'a', tokens: fakePrompt(2 * CHUNK, 2) });
  t.deepEqual(await server.clear(), { cleared: 2, kept: 0 });
  t.is(server.status().l1.usedBytes, 0);
  await server.unregisterKvCache(engine.instanceId);
  t.false(server.ping(engine.instanceId));
  await server.lookup({ requestId: 'n', modelName: 'fake-model', tokens: fakePrompt(2 * CHUNK, 2) });
  t.is(await server.queryPrefetchStatus('n'), 0, 'no_gpu_context');
  await server.endSession('n');
  await h.finish();
});

test('a plan the GPU worker rejects: END still published, nothing stored, nothing left locked', async (t) => {
  const h = await startHarness(t);
  const { server, engine } = h;
  const tokens = fakePrompt(2 * CHUNK, 7);
  const blocks = engine.allocateBlocks(tokens.length);
  engine.computeKv(tokens, blocks, 0, tokens.length);
  // A 64-byte handle that is not a CPU event: the cpu backend refuses the plan.
  const notAnEvent = new Uint8Array(64);
  const s = await server.store({
    requestId: 'dup',
    instanceId: engine.instanceId,
    tokens,
    blockIds: blocks,
    waitEvent: notAnEvent,
  });
  t.like(s, { ok: false, storedChunks: 0, failedChunks: 2 });
  t.truthy(s.error);
  t.like(server.status().l1, { objects: 0, usedBytes: 0, writeLocked: 0, pinned: 0 });
  await server.endSession('dup');
  const rep = await engine.runRequest(server, { requestId: 'after', tokens });
  t.like(rep, { hitTokens: 0, storedChunks: 2, corruptTokens: 0 });
  // A retrieve whose blocks overlap (every chunk into one block): refused by the worker; the
  // pins go back and the cached chunks stay intact.
  await server.lookup({ requestId: 'overlap', modelName: 'fake-model', tokens });
  t.is(await server.queryPrefetchStatus('overlap'), 2);
  const r = await server.retrieve({
    requestId: 'overlap',
    instanceId: engine.instanceId,
    tokens,
    blockIds: blocks.map(() => blocks[0]),
  });
  t.false(r.ok);
  t.like(server.status().l1, { pinned: 0, readLocked: 0, objects: 2 });
  await server.endSession('overlap');
  const check = await engine.runRequest(server, { requestId: 'check', tokens });
  t.like(check, { hitTokens: 2 * CHUNK, corruptTokens: 0 });
  const spans = await h.finish();
  t.is(spans.find((x) => x.name === 'mp.retrieve' && x.attributes.session_id === 'overlap')?.status.code, 'ERROR');
  const store = spans.find((x) => x.name === 'mp.store' && x.attributes.session_id === 'dup');
  t.is(store?.status.code, 'ERROR');
  t.truthy(spans.find((x) => x.name === 'request' && x.attributes.session_id === 'dup'));
});
