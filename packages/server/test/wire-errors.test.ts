import { encode } from '@msgpack/msgpack';
import test from 'ava';
import { KvmpClientError } from '../src/client/client-error.js';
import { DemoEngine, demoPrompt } from '../src/client/demo-engine.js';
import { RequestType } from '../src/wire/protocol.js';
import { startWire } from './wire-harness.js';
import { RawPeer } from './wire-raw.js';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    return err instanceof KvmpClientError ? err.code : `unexpected ${String(err)}`;
  }
}

test('malformed frames get error replies with codes, echoing the id and type frames', async (t) => {
  const h = await startWire(t, { wire: { maxMessageBytes: 1 << 20 } });
  const raw = new RawPeer(h.endpoint);
  t.teardown(() => raw.close());
  const id = encode(7);
  const noop = encode(RequestType.NOOP);

  const ok = await raw.call([id, noop, encode({})]);
  t.deepEqual(ok.body, { ok: true, result: 'OK' });
  t.deepEqual(ok.frames[0], Buffer.from(id));

  const cases: [string, (Uint8Array | Buffer)[], string][] = [
    ['truncated msgpack payload', [id, noop, Buffer.from([0x82, 0xa1])], 'MALFORMED'],
    ['trailing bytes', [id, noop, Buffer.from([0x80, 0x00])], 'MALFORMED'],
    ['undecodable request id', [Buffer.from([0xc1]), noop, encode({})], 'MALFORMED'],
    ['unknown type code', [id, encode(999), encode({})], 'UNKNOWN_TYPE'],
    ['type is a string', [id, encode('NOOP'), encode({})], 'UNKNOWN_TYPE'],
    ['two frames', [id, noop], 'BAD_ARITY'],
    ['four frames', [id, noop, encode({}), encode({})], 'BAD_ARITY'],
    ['one frame', [id], 'BAD_ARITY'],
    ['payload not a map', [id, noop, encode([1, 2])], 'BAD_ARITY'],
    ['__proto__ key', [id, noop, Buffer.from([0x81, 0xa9, ...Buffer.from('__proto__'), 0x01])], 'MALFORMED'],
    ['oversize message', [id, noop, Buffer.alloc((1 << 20) + 1)], 'FRAME_TOO_LARGE'],
    [
      'field of the wrong type',
      [id, encode(RequestType.QUERY_PREFETCH_STATUS), encode({ request_id: 5 })],
      'BAD_FIELD',
    ],
    ['missing field', [id, encode(RequestType.LOOKUP), encode({ request_id: 'x' })], 'BAD_FIELD'],
    [
      'ext type as tokens',
      [
        id,
        encode(RequestType.LOOKUP),
        Buffer.from([
          0x83,
          0xaa,
          ...Buffer.from('request_id'),
          0xa1,
          0x78,
          0xaa,
          ...Buffer.from('model_name'),
          0xa1,
          0x6d,
          0xa6,
          ...Buffer.from('tokens'),
          0xd4,
          0x05,
          0x00,
        ]),
      ],
      'BAD_FIELD',
    ],
    ['version mismatch', [id, encode(RequestType.HELLO), encode({ protocol_version: 99 })], 'VERSION_MISMATCH'],
  ];
  for (const [what, frames, expected] of cases) {
    const r = await raw.call(frames);
    t.false(r.body.ok, what);
    t.is(r.body.error?.code, expected, `${what}: ${r.body.error?.message}`);
    t.is(r.frames.length, 3, what);
  }
  const still = await raw.call([id, noop, encode({})]);
  t.true(still.body.ok);
});

test('semantic errors: ranges, salts, unknown instances, sessions and handles; stored bytes survive', async (t) => {
  const h = await startWire(t);
  const client = await h.client();
  const engine = new DemoEngine(client);
  await engine.register();
  const prompt = demoPrompt(3, 3, 64 * 4, 64 * 4);
  t.is((await engine.runRequest('seed', prompt)).storedChunks, 4);

  const base = { requestId: 'bad', instanceId: engine.instanceId, tokens: prompt };
  t.is(await code(client.prepareStore({ ...base, start: 10, end: 128 })), 'BAD_RANGE');
  t.is(await code(client.prepareStore({ ...base, start: 0, end: 64 * 9 })), 'BAD_RANGE');
  t.is(
    await code(
      client.request('RETRIEVE_DATA', { request_id: 'bad', instance_id: engine.instanceId, tokens: [1, 2], start: 64 }),
    ),
    'BAD_RANGE',
  );
  t.is(await code(client.prepareStore({ ...base, cacheSalt: 'a/b' })), 'INVALID_ARGUMENT');
  t.is(await code(client.prepareStore({ ...base, cacheSalt: 'x'.repeat(129) })), 'INVALID_ARGUMENT');
  t.is(
    await code(client.lookup({ requestId: 'bad', modelName: 'demo-model', tokens: prompt, cacheSalt: 'a@b' })),
    'INVALID_ARGUMENT',
  );
  t.is(await code(client.prepareStore({ ...base, instanceId: 'nobody' })), 'UNKNOWN_INSTANCE');
  t.is(await code(client.store({ ...base, instanceId: 'nobody', blockIds: [0, 1, 2, 3] })), 'UNKNOWN_INSTANCE');
  t.is(await code(client.store({ ...base, blockIds: [0] })), 'UNSUPPORTED');
  t.is(await code(client.queryPrefetchStatus('never-seen')), 'UNKNOWN_SESSION');
  t.is(await code(client.freeLookupLocks({ requestId: 'never-seen' })), 'UNKNOWN_SESSION');
  t.is(await code(client.retrieveData({ ...base, requestId: 'never-seen' })), 'UNKNOWN_SESSION');
  t.false(await client.endSession('never-seen'));
  t.is(await code(client.commitStore(123456, new Uint8Array(8))), 'UNKNOWN_HANDLE');
  const prep = await client.prepareStore({ ...base, requestId: 'p', start: 0, end: 64 });
  t.is(await code(client.commitStore(prep.handle, new Uint8Array(3))), 'BAD_FIELD');
  // A wrong length leaves the handle usable; a commit consumes it. The chunk is already
  // stored, so these zero bytes are deduplicated, never written over it.
  const committed = await client.commitStore(prep.handle, new Uint8Array(prep.chunkBytes));
  t.is(committed.dedupedChunks, 1);
  t.is(await code(client.commitStore(prep.handle, new Uint8Array(prep.chunkBytes))), 'UNKNOWN_HANDLE');
  t.is(
    await code(
      client.registerKvCache({
        instanceId: 'gpu',
        modelName: 'm',
        deviceUuid: 'GPU-00000000-0000-0000-0000-000000000000',
        layout: { kind: 'mla', numLayers: 1, numBlocks: 4, blockSize: 16, headDim: 8, dtype: 'fp16' },
        layers: [{ ipcHandle: new Uint8Array(64), offset: 0, shape: [4, 16, 8], stride: [128, 8, 1], dtype: 'fp16' }],
      }),
    ),
    'UNSUPPORTED',
  );

  // A second client is unaffected, and the stored bytes are intact.
  const other = await h.client();
  const again = new DemoEngine(other, { instanceId: 'reader' });
  await again.register();
  const r = await again.runRequest('verify', prompt);
  t.is(r.hitTokens, 64 * 4);
  t.is(r.corruptChunks, 0);
});

test('re-registering an engine-driven instance cancels its prepared stores and keeps stored bytes', async (t) => {
  const h = await startWire(t);
  const client = await h.client();
  const engine = new DemoEngine(client);
  await engine.register();
  const prompt = demoPrompt(5, 5, 64 * 3, 0);
  t.is((await engine.runRequest('one', prompt)).storedChunks, 3);
  const other = demoPrompt(6, 6, 64 * 2, 0);
  const prep = await client.prepareStore({ requestId: 'pending', instanceId: engine.instanceId, tokens: other });
  await engine.register();
  t.is(await code(client.commitStore(prep.handle, engine.computeChunks(other, 0, 2))), 'UNKNOWN_HANDLE');
  const again = await engine.runRequest('two', prompt);
  t.is(again.hitTokens, 64 * 3);
  t.is(again.corruptChunks, 0);
  t.is(h.wire.service.stats().engineDriven[0].stagingFree, h.wire.service.stats().engineDriven[0].stagingChunks);
});

test('CUDA IPC registration is validated field by field', async (t) => {
  const h = await startWire(t);
  const client = await h.client();
  const layout = {
    kind: 'mla' as const,
    numLayers: 2,
    numBlocks: 4,
    blockSize: 16,
    headDim: 8,
    dtype: 'fp16' as const,
  };
  const layer = {
    ipcHandle: new Uint8Array(64),
    offset: 0,
    shape: [4, 16, 8],
    stride: [128, 8, 1],
    dtype: 'fp16' as const,
  };
  const reg = (over: object) =>
    code(
      client.registerKvCache({
        instanceId: 'g',
        modelName: 'm',
        deviceUuid: 'GPU-12345678-1234-1234-1234-123456789abc',
        layout,
        layers: [layer, layer],
        ...over,
      }),
    );
  const bad: [object, RegExp][] = [
    [{ layers: [{ ...layer, ipcHandle: new Uint8Array(63) }, layer] }, /exactly 64 bytes/],
    [{ layers: [layer] }, /num_layers/],
    [{ layers: [{ ...layer, shape: [4, 16, 9] }, layer] }, /elements/],
    [{ layers: [{ ...layer, stride: [8, 128, 1], shape: [4, 16, 8] }, layer] }, /contiguous/],
    [{ layers: [{ ...layer, dtype: 'bf16' }, layer] }, /dtype/],
    [{ layers: [{ ...layer, offset: 3 }, layer] }, /aligned/],
    [{ deviceUuid: 'cuda:0' }, /UUID/],
  ];
  for (const [over, msg] of bad) {
    const err = await t.throwsAsync(
      client.registerKvCache({
        instanceId: 'g',
        modelName: 'm',
        deviceUuid: 'GPU-12345678-1234-1234-1234-123456789abc',
        layout,
        layers: [layer, layer],
        ...over,
      }),
    );
    t.is((err as KvmpClientError).code, 'BAD_FIELD');
    t.regex(err?.message ?? '', msg);
  }
  // Valid geometry reaches the backend check (this is a cpu server).
  t.is(await reg({}), 'UNSUPPORTED');
});
