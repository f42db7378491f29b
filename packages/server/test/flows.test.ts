import { createCpuEvent, signalCpuEvent } from '@kvmp/gpu-worker';
import { context, TraceFlags, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import test from 'ava';
import { fakePrompt } from '../src/index.js';
import { assertTree, BLOCK, byName, CHUNK, eventTypes, sessionSpans, startHarness } from './helpers.js';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

const MODEL = 'fake-model';

test('cache hit: lookup → retrieve → store → end, bytes and one span tree', async (t) => {
  const h = await startHarness(t);
  const { server, engine } = h;
  // Warm: a 2-chunk prefix.
  const prefix = fakePrompt(2 * CHUNK, 11);
  const warm = await engine.runRequest(server, { requestId: 'warm', tokens: prefix });
  t.is(warm.storedChunks, 2);

  // The request: the prefix plus 2 new chunks and a partial one.
  const tokens = new Uint32Array(4 * CHUNK + 5);
  tokens.set(prefix);
  tokens.set(fakePrompt(2 * CHUNK + 5, 12), 2 * CHUNK);
  await server.lookup({ requestId: 'hit', modelName: MODEL, tokens });
  t.is(await server.queryPrefetchStatus('hit'), 2);
  t.is(await server.queryPrefetchStatus('hit'), 2, 'later calls answer the same');
  const blocks = engine.allocateBlocks(tokens.length);
  engine.zeroBlocks(blocks);
  const r = await server.retrieve({
    requestId: 'hit',
    instanceId: engine.instanceId,
    tokens,
    end: 2 * CHUNK,
    blockIds: blocks.slice(0, (2 * CHUNK) / BLOCK),
  });
  t.true(r.ok);
  t.is(r.retrievedChunks, 2);
  t.is(r.tokens, 2 * CHUNK);
  t.is(engine.verifyKv(tokens, blocks, 0, 2 * CHUNK), 0, 'retrieved KV is byte-exact');
  engine.computeKv(tokens, blocks, 2 * CHUNK, tokens.length);
  const s = await server.store({
    requestId: 'hit',
    instanceId: engine.instanceId,
    tokens,
    start: 2 * CHUNK,
    blockIds: blocks.slice((2 * CHUNK) / BLOCK),
  });
  t.like(s, { ok: true, requestedChunks: 2, storedChunks: 2, dedupedChunks: 0, failedChunks: 0 });
  await server.endSession('hit');
  t.is(server.status().activeSessions, 0);

  // A third request sees all 4 chunks and gets the stored bytes back.
  const again = await engine.runRequest(server, { requestId: 'again', tokens });
  t.is(again.hitTokens, 4 * CHUNK);
  t.is(again.corruptTokens, 0);

  const spans = await h.finish();
  const root = assertTree(t, spans, 'hit', ['mp.lookup_prefetch', 'mp.retrieve', 'mp.store']);
  t.like(root.attributes, { hit_tokens: 2 * CHUNK, requested_tokens: 4 * CHUNK, hit_rate: 0.5 });
  const lp = byName(sessionSpans(spans, 'hit'), 'mp.lookup_prefetch')[0];
  t.like(lp.attributes, {
    found_count: 2,
    hit_tokens: 2 * CHUNK,
    l1_hit_keys: 2,
    l2_hit_tokens: 0,
    early_exit_reason: '',
  });
  const ev = h.events();
  t.deepEqual(eventTypes(ev, 'hit'), [
    'MP_REQUEST_START',
    'MP_LOOKUP_PREFETCH_START',
    'MP_LOOKUP_PREFETCH_END',
    'MP_RETRIEVE_SUBMITTED',
    'MP_RETRIEVE_START',
    'MP_RETRIEVE_END',
    'MP_STORE_SUBMITTED',
    'MP_STORE_START',
    'MP_STORE_END',
    'MP_REQUEST_END',
  ]);
  // SUBMITTED and the worker's START/END share the op id; workerId is the kv rank.
  const retrieveOps = ev.filter((e) => e.sessionId === 'hit' && e.type.startsWith('MP_RETRIEVE'));
  t.is(new Set(retrieveOps.map((e) => e.opId)).size, 1);
  t.true(retrieveOps.every((e) => e.workerId === 0 && e.opId > 0));
  const storeOps = ev.filter((e) => e.sessionId === 'hit' && e.type.startsWith('MP_STORE'));
  t.is(new Set(storeOps.map((e) => e.opId)).size, 1);
  t.not(storeOps[0].opId, retrieveOps[0].opId);
  // L1 events at their sites.
  const l1 = ev.filter((e) => e.sessionId === 'hit' && e.type.startsWith('L1_')).map((e) => e.type);
  t.deepEqual(l1, ['L1_READ_RESERVED', 'L1_READ_FINISHED', 'L1_WRITE_RESERVED', 'L1_WRITE_FINISHED']);
});

test('miss: lookup → store → end', async (t) => {
  const h = await startHarness(t);
  const tokens = fakePrompt(3 * CHUNK + 7, 21);
  const rep = await h.engine.runRequest(h.server, { requestId: 'miss', tokens });
  t.like(rep, { hitTokens: 0, storedChunks: 3, corruptTokens: 0 });
  const spans = await h.finish();
  const root = assertTree(t, spans, 'miss', ['mp.lookup_prefetch', 'mp.store']);
  t.like(root.attributes, { hit_tokens: 0, requested_tokens: 3 * CHUNK, hit_rate: 0 });
  t.deepEqual(eventTypes(h.events(), 'miss'), [
    'MP_REQUEST_START',
    'MP_LOOKUP_PREFETCH_START',
    'MP_LOOKUP_PREFETCH_END',
    'MP_STORE_SUBMITTED',
    'MP_STORE_START',
    'MP_STORE_END',
    'MP_REQUEST_END',
  ]);
});

test('lookup only: the locks go back at end_session', async (t) => {
  const h = await startHarness(t);
  const tokens = fakePrompt(2 * CHUNK, 31);
  await h.engine.runRequest(h.server, { requestId: 'w', tokens });
  await h.server.lookup({ requestId: 'lo', modelName: MODEL, tokens });
  t.is(h.server.status().l1.readLocked, 2);
  t.is(await h.server.queryPrefetchStatus('lo'), 2);
  await h.server.endSession('lo');
  t.is(h.server.status().l1.readLocked, 0);
  const spans = await h.finish();
  assertTree(t, spans, 'lo', ['mp.lookup_prefetch']);
  t.deepEqual(eventTypes(h.events(), 'lo'), [
    'MP_REQUEST_START',
    'MP_LOOKUP_PREFETCH_START',
    'MP_LOOKUP_PREFETCH_END',
    'MP_REQUEST_END',
  ]);
});

test('store only: the root opens lazily at the store', async (t) => {
  const h = await startHarness(t);
  const tokens = fakePrompt(2 * CHUNK, 41);
  const blocks = h.engine.allocateBlocks(tokens.length);
  h.engine.computeKv(tokens, blocks, 0, tokens.length);
  const s = await h.server.store({ requestId: 'so', instanceId: h.engine.instanceId, tokens, blockIds: blocks });
  t.is(s.storedChunks, 2);
  await h.server.endSession('so');
  const check = await h.engine.runRequest(h.server, { requestId: 'check', tokens });
  t.like(check, { hitTokens: 2 * CHUNK, corruptTokens: 0 });
  const spans = await h.finish();
  assertTree(t, spans, 'so', ['mp.store']);
  t.deepEqual(eventTypes(h.events(), 'so'), ['MP_STORE_SUBMITTED', 'MP_STORE_START', 'MP_STORE_END', 'MP_REQUEST_END']);
});

test('end_session while a store is still copying: the root waits for the store', async (t) => {
  const h = await startHarness(t);
  const tokens = fakePrompt(2 * CHUNK, 51);
  const blocks = h.engine.allocateBlocks(tokens.length);
  h.engine.computeKv(tokens, blocks, 0, tokens.length);
  const forwardDone = createCpuEvent();
  const sub = await h.server.submitStore({
    requestId: 'es',
    instanceId: h.engine.instanceId,
    tokens,
    blockIds: blocks,
    waitEvent: forwardDone,
  });
  await h.server.endSession('es');
  t.is(h.server.status().activeSessions, 0);
  t.is(h.server.status().inflightCopies, 1, 'the copy is still waiting on the engine');
  t.is(h.server.status().l1.writeLocked, 2, 'not readable before the copy completes');
  signalCpuEvent(forwardDone);
  const res = await sub.done;
  t.like(res, { ok: true, storedChunks: 2 });
  t.is(h.server.status().l1.writeLocked, 0);
  const check = await h.engine.runRequest(h.server, { requestId: 'check', tokens });
  t.like(check, { hitTokens: 2 * CHUNK, corruptTokens: 0 });
  const spans = await h.finish();
  const root = assertTree(t, spans, 'es', ['mp.store']);
  const store = byName(sessionSpans(spans, 'es'), 'mp.store')[0];
  t.true(store.endTimeUnixNano >= root.endTimeUnixNano, 'the store ended after REQUEST_END');
  // START is stamped when the worker's stream reaches the copy, i.e. after the engine event.
  t.deepEqual(eventTypes(h.events(), 'es'), ['MP_STORE_SUBMITTED', 'MP_REQUEST_END', 'MP_STORE_START', 'MP_STORE_END']);
});

test('end_session while a retrieve is still copying', async (t) => {
  const h = await startHarness(t);
  const tokens = fakePrompt(3 * CHUNK, 61);
  await h.engine.runRequest(h.server, { requestId: 'w', tokens });
  await h.server.lookup({ requestId: 'er', modelName: MODEL, tokens });
  t.is(await h.server.queryPrefetchStatus('er'), 3);
  const blocks = h.engine.allocateBlocks(tokens.length);
  const go = createCpuEvent();
  const sub = await h.server.submitRetrieve({
    requestId: 'er',
    instanceId: h.engine.instanceId,
    tokens,
    blockIds: blocks,
    waitEvent: go,
  });
  await h.server.endSession('er');
  t.is(h.server.status().l1.pinned, 3, 'the copy keeps its chunks pinned after the session ended');
  // Memory pressure cannot take pinned chunks: clear() keeps them.
  t.is((await h.server.clear()).kept, 3);
  signalCpuEvent(go);
  const res = await sub.done;
  t.like(res, { ok: true, retrievedChunks: 3 });
  t.is(h.engine.verifyKv(tokens, blocks, 0, tokens.length), 0);
  t.is(h.server.status().l1.pinned, 0);
  const spans = await h.finish();
  assertTree(t, spans, 'er', ['mp.lookup_prefetch', 'mp.retrieve']);
  t.deepEqual(eventTypes(h.events(), 'er'), [
    'MP_REQUEST_START',
    'MP_LOOKUP_PREFETCH_START',
    'MP_LOOKUP_PREFETCH_END',
    'MP_RETRIEVE_SUBMITTED',
    'MP_REQUEST_END',
    'MP_RETRIEVE_START',
    'MP_RETRIEVE_END',
  ]);
});

test('two stores in one session (chunked prefill): the prefix is hashed once', async (t) => {
  const h = await startHarness(t);
  const tokens = fakePrompt(4 * CHUNK, 71);
  const blocks = h.engine.allocateBlocks(tokens.length);
  h.engine.computeKv(tokens, blocks, 0, tokens.length);
  await h.server.lookup({ requestId: 'two', modelName: MODEL, tokens });
  t.is(await h.server.queryPrefetchStatus('two'), 0);
  const hashedBefore = h.server.status().pool.chunksInline;
  const a = await h.server.store({
    requestId: 'two',
    instanceId: h.engine.instanceId,
    tokens: tokens.subarray(0, 2 * CHUNK + 3),
    blockIds: blocks.slice(0, (2 * CHUNK) / BLOCK),
  });
  const b = await h.server.store({
    requestId: 'two',
    instanceId: h.engine.instanceId,
    tokens,
    start: 2 * CHUNK,
    blockIds: blocks.slice((2 * CHUNK) / BLOCK),
  });
  t.is(h.server.status().pool.chunksInline, hashedBefore, 'the lookup already hashed every chunk');
  t.is(a.storedChunks + b.storedChunks, 4);
  t.not(a.opId, b.opId);
  await h.server.endSession('two');
  const check = await h.engine.runRequest(h.server, { requestId: 'check', tokens });
  t.like(check, { hitTokens: 4 * CHUNK, corruptTokens: 0 });
  const spans = await h.finish();
  assertTree(t, spans, 'two', ['mp.lookup_prefetch', 'mp.store', 'mp.store']);
});

test('the caller’s active span parents the request root', async (t) => {
  const h = await startHarness(t);
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const spanId = '00f067aa0ba902b7';
  const parent = trace.setSpanContext(context.active(), {
    traceId,
    spanId,
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  });
  const tokens = fakePrompt(2 * CHUNK, 81);
  await context.with(parent, () => h.engine.runRequest(h.server, { requestId: 'otel', tokens }));
  // Store-only: the trace travels on STORE_SUBMITTED.
  const blocks = h.engine.allocateBlocks(2 * CHUNK);
  const other = fakePrompt(2 * CHUNK, 82);
  await context.with(parent, () =>
    h.server.store({ requestId: 'otel-store', instanceId: h.engine.instanceId, tokens: other, blockIds: blocks }),
  );
  await h.server.endSession('otel-store');
  const spans = await h.finish();
  for (const sid of ['otel', 'otel-store']) {
    const root = byName(sessionSpans(spans, sid), 'request')[0];
    t.is(root.traceId, traceId, sid);
    t.is(root.parentSpanId, spanId, sid);
  }
  const ev = h.events().filter((e) => e.sessionId === 'otel');
  t.truthy(ev.find((e) => e.type === 'MP_REQUEST_START')?.traceparent);
  t.truthy(ev.find((e) => e.type === 'MP_STORE_SUBMITTED')?.traceparent);
});

test('close() ends sessions still open: locks go back, no span leaks', async (t) => {
  const h = await startHarness(t);
  const tokens = fakePrompt(2 * CHUNK, 91);
  await h.engine.runRequest(h.server, { requestId: 'w', tokens });
  await h.server.lookup({ requestId: 'open', modelName: MODEL, tokens });
  await h.server.queryPrefetchStatus('open');
  const spans = await h.finish();
  assertTree(t, spans, 'open', ['mp.lookup_prefetch']);
  t.like(h.tracingStats(), { leakedSpans: 0, openSpans: 0 });
  t.true(h.events().some((e) => e.sessionId === 'open' && e.type === 'MP_REQUEST_END'));
});

test('retrieve skip-first-N-tokens leaves the engine’s first N tokens untouched', async (t) => {
  const h = await startHarness(t, { tracing: false });
  const { server, engine } = h;
  const tokens = fakePrompt(3 * CHUNK, 95);
  await engine.runRequest(server, { requestId: 'w', tokens });
  await server.lookup({ requestId: 'skip', modelName: MODEL, tokens });
  t.is(await server.queryPrefetchStatus('skip'), 3);
  const blocks = engine.allocateBlocks(tokens.length);
  engine.zeroBlocks(blocks);
  const skip = CHUNK + 2 * BLOCK; // the engine's prefix cache already holds these
  const r = await server.retrieve({
    requestId: 'skip',
    instanceId: engine.instanceId,
    tokens,
    blockIds: blocks,
    skipFirstTokens: skip,
  });
  t.like(r, { ok: true, retrievedChunks: 3, tokens: tokens.length - skip });
  t.is(engine.verifyKv(tokens, blocks, skip, tokens.length), 0, 'everything after the skip is byte-exact');
  t.is(engine.verifyKv(tokens, blocks, 0, skip), skip, 'the skipped tokens were not written');
  await server.endSession('skip');
  await h.finish();
});
