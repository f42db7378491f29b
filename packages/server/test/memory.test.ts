import { metricsSubscriber, scrapeMetrics } from '@kvmp/tracing';
import test from 'ava';
import { fakePrompt } from '../src/index.js';
import { assertTree, byName, CHUNK, sessionSpans, sleep, startHarness } from './helpers.js';

const MODEL = 'fake-model';

test('eviction under memory pressure never evicts a locked object', async (t) => {
  const h = await startHarness(t, { capacityChunks: 8 });
  const { server, engine } = h;
  const kept = fakePrompt(4 * CHUNK, 100);
  await engine.runRequest(server, { requestId: 'warm', tokens: kept });
  await server.lookup({ requestId: 'holder', modelName: MODEL, tokens: kept });
  t.is(await server.queryPrefetchStatus('holder'), 4);
  // Pressure: 12 more chunks through an 8-chunk L1 with 4 of them locked.
  for (let i = 0; i < 3; i++) {
    const rep = await engine.runRequest(server, { requestId: `p${i}`, tokens: fakePrompt(4 * CHUNK, 200 + i) });
    t.is(rep.corruptTokens, 0);
  }
  const st = server.status().l1;
  t.true(st.evictedKeys > 0, 'something was evicted');
  t.true(st.usedBytes <= st.capacityBytes);
  // The locked prefix survived and comes back byte-exact.
  const blocks = engine.allocateBlocks(kept.length);
  const r = await server.retrieve({
    requestId: 'holder',
    instanceId: engine.instanceId,
    tokens: kept,
    blockIds: blocks,
  });
  t.like(r, { ok: true, retrievedChunks: 4 });
  t.is(engine.verifyKv(kept, blocks, 0, kept.length), 0);
  await server.endSession('holder');
  await h.finish();
});

test('lock TTL expiry frees memory; a retrieve after expiry fails cleanly', async (t) => {
  const h = await startHarness(t, { capacityChunks: 4, l1: { readTtlMs: 100 } });
  const { server, engine } = h;
  const a = fakePrompt(4 * CHUNK, 300);
  await engine.runRequest(server, { requestId: 'w', tokens: a });
  await server.lookup({ requestId: 'stale', modelName: MODEL, tokens: a });
  t.is(await server.queryPrefetchStatus('stale'), 4);
  // While locked, a new store cannot take the memory.
  const b = fakePrompt(4 * CHUNK, 301);
  const blocked = await engine.runRequest(server, { requestId: 'b1', tokens: b });
  t.is(blocked.storedChunks, 0);
  t.is(blocked.failedChunks, 4);
  await sleep(150);
  // The locks expired: the same store now evicts them.
  const ok = await engine.runRequest(server, { requestId: 'b2', tokens: b });
  t.is(ok.storedChunks, 4);
  t.true(server.status().l1.readLocksExpired + server.status().l1.evictedKeys > 0);
  const blocks = engine.allocateBlocks(a.length);
  const r = await server.retrieve({ requestId: 'stale', instanceId: engine.instanceId, tokens: a, blockIds: blocks });
  t.false(r.ok);
  t.regex(r.error ?? '', /not locked/);
  await server.endSession('stale');
  const spans = await h.finish();
  assertTree(t, spans, 'stale', ['mp.lookup_prefetch', 'mp.retrieve']);
  const rs = byName(sessionSpans(spans, 'stale'), 'mp.retrieve')[0];
  t.is(rs.status.code, 'ERROR');
  t.true(h.events().some((e) => e.sessionId === 'stale' && e.type === 'L1_READ_FAILED'));
});

test('dedup: a second store of the same chunks copies nothing', async (t) => {
  const h = await startHarness(t);
  const { server, engine } = h;
  const tokens = fakePrompt(3 * CHUNK, 400);
  const blocks = engine.allocateBlocks(tokens.length);
  engine.computeKv(tokens, blocks, 0, tokens.length);
  const first = await server.store({ requestId: 'd1', instanceId: engine.instanceId, tokens, blockIds: blocks });
  t.like(first, { storedChunks: 3, dedupedChunks: 0 });
  const objects = server.status().l1.objects;
  // A second engine buffer with garbage: dedup must not overwrite the stored bytes.
  engine.zeroBlocks(blocks);
  const second = await server.store({ requestId: 'd2', instanceId: engine.instanceId, tokens, blockIds: blocks });
  t.like(second, { ok: true, storedChunks: 0, dedupedChunks: 3, bytes: 0 });
  t.is(server.status().l1.objects, objects);
  await server.endSession('d1');
  await server.endSession('d2');
  const check = await engine.runRequest(server, { requestId: 'check', tokens });
  t.like(check, { hitTokens: 3 * CHUNK, corruptTokens: 0 });
  const spans = await h.finish();
  assertTree(t, spans, 'd2', ['mp.store']);
  const s = byName(sessionSpans(spans, 'd2'), 'mp.store')[0];
  t.like(s.attributes, { stored_count: 0, success: true });
});

test('cache_salt isolates tenants', async (t) => {
  const h = await startHarness(t);
  const { server, engine } = h;
  const tokens = fakePrompt(2 * CHUNK, 500);
  const a = await engine.runRequest(server, { requestId: 'a', tokens, cacheSalt: 'tenant-a' });
  t.is(a.storedChunks, 2);
  for (const [sid, salt] of [
    ['b', 'tenant-b'],
    ['none', undefined],
  ] as const) {
    await server.lookup({ requestId: sid, modelName: MODEL, tokens, ...(salt ? { cacheSalt: salt } : {}) });
    t.is(await server.queryPrefetchStatus(sid), 0, `${salt ?? 'no salt'} sees nothing of tenant-a`);
    await server.endSession(sid);
  }
  const again = await engine.runRequest(server, { requestId: 'a2', tokens, cacheSalt: 'tenant-a' });
  t.like(again, { hitTokens: 2 * CHUNK, corruptTokens: 0 });
  // A retrieve under another salt finds no lock, even if the session looked up tenant-a.
  await server.lookup({ requestId: 'x', modelName: MODEL, tokens, cacheSalt: 'tenant-a' });
  const blocks = engine.allocateBlocks(tokens.length);
  const r = await server.retrieve({
    requestId: 'x',
    instanceId: engine.instanceId,
    tokens,
    blockIds: blocks,
    cacheSalt: 'tenant-b',
  });
  t.false(r.ok);
  await server.endSession('x');
  await h.finish();
});

test('OOM: the store says how many chunks it stored; event and metric record it', async (t) => {
  const h = await startHarness(t, { capacityChunks: 4, subscribers: [metricsSubscriber()] });
  const { server, engine } = h;
  const held = fakePrompt(3 * CHUNK, 600);
  await engine.runRequest(server, { requestId: 'w', tokens: held });
  await server.lookup({ requestId: 'lock', modelName: MODEL, tokens: held });
  const tokens = fakePrompt(3 * CHUNK, 601);
  const blocks = engine.allocateBlocks(tokens.length);
  engine.computeKv(tokens, blocks, 0, tokens.length);
  const s = await server.store({ requestId: 'oom', instanceId: engine.instanceId, tokens, blockIds: blocks });
  t.like(s, { ok: true, requestedChunks: 3, storedChunks: 1, failedChunks: 2 });
  t.regex(s.error ?? '', /out of L1 memory: 2 of 3/);
  t.like(server.status().l1, { allocationFailures: 1, allocationFailedKeys: 2 });
  // The drain thread's metrics subscriber counts it too (Prometheus text).
  let text = '';
  for (let i = 0; i < 100 && !/kvmp_l1_allocation_failures_total\{[^}]*\} 2\b/.test(text); i++) {
    text = await scrapeMetrics(server.pipeline!);
    await sleep(10);
  }
  t.regex(text, /kvmp_l1_allocation_failures_total\{[^}]*during="l1_store"[^}]*\} 2\b/);
  await server.endSession('oom');
  await server.endSession('lock');
  const spans = await h.finish();
  const failed = h.events().filter((e) => e.type === 'L1_ALLOCATION_FAILED');
  t.is(failed.length, 1);
  t.like(failed[0], { sessionId: 'oom', meta: { during: 'l1_store', key_count: 2 } });
  assertTree(t, spans, 'oom', ['mp.store']);
});

test('session TTL: an abandoned session is ended and its locks released', async (t) => {
  const h = await startHarness(t, { config: { sessionTtlMs: 100, sweepIntervalMs: 20 } });
  const { server, engine } = h;
  const tokens = fakePrompt(2 * CHUNK, 700);
  await engine.runRequest(server, { requestId: 'w', tokens });
  await server.lookup({ requestId: 'gone', modelName: MODEL, tokens });
  t.is(server.status().l1.readLocked, 2);
  t.is(server.status().activeSessions, 1);
  await sleep(300);
  t.is(server.status().activeSessions, 0);
  t.is(server.status().l1.readLocked, 0);
  t.is(server.status().counters.sessionsExpired, 1);
  const spans = await h.finish();
  assertTree(t, spans, 'gone', ['mp.lookup_prefetch']);
  t.true(h.events().some((e) => e.sessionId === 'gone' && e.type === 'MP_REQUEST_END'));
});

test('end_session refreshes the LRU recency of the session’s chunks', async (t) => {
  const h = await startHarness(t, { tracing: false, capacityChunks: 16 });
  const { server, engine } = h;
  // Session A stores first (its chunks are the least recently used) and ends last.
  const a = fakePrompt(3 * CHUNK, 1500);
  const blocks = engine.allocateBlocks(a.length);
  engine.computeKv(a, blocks, 0, a.length);
  await server.store({ requestId: 'A', instanceId: engine.instanceId, tokens: a, blockIds: blocks });
  const b = fakePrompt(3 * CHUNK, 1501);
  await engine.runRequest(server, { requestId: 'B', tokens: b });
  await engine.runRequest(server, { requestId: 'C', tokens: fakePrompt(3 * CHUNK, 1502) });
  await server.endSession('A'); // LRU order now B, C, A
  // 9 used + 4 > 12.8 (watermark): evict down to 9.6 − 4 → B's 3 chunks and one of C's go.
  await engine.runRequest(server, { requestId: 'D', tokens: fakePrompt(4 * CHUNK, 1503) });
  t.is(server.status().l1.evictedKeys, 4);
  for (const [sid, tokens, expected] of [
    ['a?', a, 3],
    ['b?', b, 0],
  ] as const) {
    await server.lookup({ requestId: sid, modelName: MODEL, tokens });
    t.is(await server.queryPrefetchStatus(sid), expected, sid);
    await server.endSession(sid);
  }
  await h.finish();
});
