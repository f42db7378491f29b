import test from 'ava';
import { DemoEngine, demoPrompt } from '../src/client/demo-engine.js';
import { startWire } from './wire-harness.js';

test('engine-driven flow over the socket: miss, store, hit, bytes verified', async (t) => {
  const h = await startWire(t);
  const client = await h.client();
  t.is(client.server.protocolVersion, 1);
  t.is(client.server.chunkSize, 64);
  const engine = new DemoEngine(client);
  const info = await engine.register();
  t.true(info.chunkBytes > 0);
  const prompt = demoPrompt(1, 1, 64 * 5 + 7, 64 * 3);
  const first = await engine.runRequest('r1', prompt);
  t.is(first.hitTokens, 0);
  t.is(first.storedChunks, 5);
  const second = await engine.runRequest('r2', prompt);
  t.is(second.hitTokens, 64 * 5);
  t.is(second.corruptChunks, 0);
  const direct = await client.storeData(
    { requestId: 'd', instanceId: engine.instanceId, tokens: demoPrompt(7, 7, 64, 0) },
    engine.computeChunks(demoPrompt(7, 7, 64, 0), 0, 1),
  );
  t.is(direct.storedChunks, 1);
  t.is(direct.doneEvent, undefined, 'no GPU event in engine-driven mode');
  const other = await engine.runRequest('r3', demoPrompt(1, 2, 64 * 5, 64 * 3));
  t.is(other.hitTokens, 64 * 3);
  t.is(other.corruptChunks, 0);
  t.is(other.storedChunks, 2);
});

test('close(): requests in flight are finished and answered, later ones get CLOSED, then the socket closes', async (t) => {
  const h = await startWire(t, { wire: { stagingChunks: 1, stagingWaitMs: 300 } });
  const client = await h.client();
  const engine = new DemoEngine(client);
  await engine.register();
  const tokens = demoPrompt(4, 4, 64 * 2, 0);
  const held = await client.prepareStore({ requestId: 'a', instanceId: engine.instanceId, tokens, end: 64 });
  // Waits server-side for the one staging slot: in flight when the server stops.
  const inflight = client
    .prepareStore({ requestId: 'b', instanceId: engine.instanceId, tokens, start: 64, end: 128 })
    .then(
      () => 'ok',
      (err: { code?: string }) => err.code,
    );
  await new Promise((r) => setTimeout(r, 50));
  let closed = false;
  const closing = h.wire.close().then(() => {
    closed = true;
  });
  const late = await client.commitStore(held.handle, new Uint8Array(held.chunkBytes)).then(
    () => 'ok',
    (err: { code?: string }) => err.code,
  );
  t.is(late, 'CLOSED');
  t.false(closed, 'still draining while a request is in flight');
  t.is(await inflight, 'BUSY', 'the in-flight request was finished and answered');
  await closing;
  t.true(closed);
});

test('ranges larger than one message are split by the client and come back byte for byte', async (t) => {
  // 2 layers x 2 planes x 64 tokens x 64 B = 16 KiB per chunk; a 40 KiB limit fits 2 chunks.
  const h = await startWire(t, { wire: { maxMessageBytes: 40 * 1024 } });
  const client = await h.client();
  const engine = new DemoEngine(client, {
    layout: { kind: 'flash_attn', numLayers: 2, blockSize: 16, numHeads: 2, headSize: 16, dtype: 'fp16' },
  });
  const info = await engine.register();
  t.is(info.maxChunksPerMessage, 2);
  const prompt = demoPrompt(8, 8, 64 * 7 + 3, 0);
  t.is((await engine.runRequest('big-1', prompt)).storedChunks, 7);
  const again = await engine.runRequest('big-2', prompt);
  t.is(again.hitTokens, 64 * 7);
  t.is(again.corruptChunks, 0);
  t.true((h.wire.service.stats().requests.COMMIT_STORE ?? 0) >= 4, 'several messages per store');
});

test('several clients at once: cache_salt isolates tenants, every byte verified', async (t) => {
  const h = await startWire(t);
  const engines = await Promise.all(
    [0, 1, 2].map(async (i) => {
      const e = new DemoEngine(await h.client(), { instanceId: `engine-${i}` });
      await e.register();
      return e;
    }),
  );
  const prompt = demoPrompt(11, 11, 64 * 4, 64 * 4);
  t.is((await engines[0].runRequest('a-1', prompt, { cacheSalt: 'tenant-a' })).storedChunks, 4);
  // Another tenant with the same prompt shares nothing.
  t.is((await engines[1].runRequest('b-1', prompt, { cacheSalt: 'tenant-b' })).hitTokens, 0);
  const reports = await Promise.all(
    engines.flatMap((e, i) =>
      Array.from({ length: 8 }, (_, j) =>
        e.runRequest(`c-${i}-${j}`, demoPrompt(11, 100 * i + j, 64 * 6, 64 * 4), {
          cacheSalt: i === 1 ? 'tenant-b' : 'tenant-a',
        }),
      ),
    ),
  );
  t.true(reports.every((r) => r.corruptChunks === 0));
  t.is(reports.filter((r) => r.hitTokens >= 64 * 4).length, 24, 'every request hits its own tenant prefix');
});
