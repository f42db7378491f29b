/**
 * Fuzz: 100,000+ random and mutated frames from a raw DEALER, at most a window of them in
 * flight. Every one must get exactly one reply; then a second client's normal flow must find
 * the bytes stored before the fuzz intact and store and retrieve new ones.
 */
import { decode, encode } from '@msgpack/msgpack';
import test from 'ava';
import { DemoEngine, demoPrompt } from '../src/client/demo-engine.js';
import { RequestType } from '../src/wire/protocol.js';
import { startWire } from './wire-harness.js';
import { RawPeer } from './wire-raw.js';

const TOTAL = 100_000;
const WINDOW = 256;
const MAX_MESSAGE = 64 * 1024;

/** xorshift32: reproducible runs (the seed is printed on failure). */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    bytes(n: number): Buffer {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = (next() * 256) | 0;
      return b;
    },
  };
}
type Rng = ReturnType<typeof rng>;

const tokens = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 7919 + seed) % 50_000);
const instance = 'fuzz-engine';
const layout = { kind: 'flash_attn', num_layers: 1, block_size: 16, num_heads: 2, head_size: 8, dtype: 'fp16' };

/** One well-formed payload per request type (never CLEAR and nothing touching the verified engine). */
function seeds(): [number, Record<string, unknown>][] {
  const t = tokens(150, 1);
  const tb = Buffer.from(Uint32Array.from(t).buffer);
  return [
    [RequestType.HELLO, { protocol_version: 1, client: 'fuzz' }],
    [RequestType.REGISTER_ENGINE_DRIVEN, { instance_id: instance, model_name: 'fuzz-model', layout }],
    [
      RequestType.REGISTER_KV_CACHE,
      {
        instance_id: 'g',
        model_name: 'm',
        device_uuid: 'GPU-12345678-1234-1234-1234-123456789abc',
        layout: { ...layout, num_blocks: 4 },
        layers: [
          {
            ipc_handle: Buffer.alloc(64),
            offset: 0,
            shape: [2, 4, 16, 2, 8],
            stride: [1024, 256, 16, 8, 1],
            dtype: 'fp16',
          },
        ],
      },
    ],
    [RequestType.LOOKUP, { request_id: 'f1', model_name: 'fuzz-model', tokens: t, cache_salt: 's' }],
    [
      RequestType.LOOKUP,
      {
        request_id: 'f2',
        model_name: 'fuzz-model',
        tokens: tb,
        end: 128,
        tp_size: 2,
        trace: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      },
    ],
    [RequestType.QUERY_PREFETCH_STATUS, { request_id: 'f1' }],
    [RequestType.FREE_LOOKUP_LOCKS, { request_id: 'f1', start: 0, end: 64 }],
    [RequestType.END_SESSION, { request_id: 'f2' }],
    [RequestType.PREPARE_STORE, { request_id: 'f3', instance_id: instance, tokens: tb, start: 64, end: 128 }],
    [RequestType.COMMIT_STORE, { handle: 3, data: Buffer.alloc(4096) }],
    [RequestType.RETRIEVE_DATA, { request_id: 'f1', instance_id: instance, tokens: t, start: 0, end: 128 }],
    [
      RequestType.STORE,
      { request_id: 'f4', instance_id: instance, tokens: t, block_ids: [0, 1, 2, 3], wait_event: Buffer.alloc(64) },
    ],
    [
      RequestType.RETRIEVE,
      { request_id: 'f4', instance_id: instance, tokens: t, block_ids: [0, 1], skip_first_tokens: 16 },
    ],
    [RequestType.GET_CHUNK_SIZE, {}],
    [RequestType.PING, { instance_id: instance }],
    [RequestType.NOOP, {}],
  ];
}

const ODD_VALUES: unknown[] = [
  null,
  true,
  -1,
  2 ** 53,
  1.5,
  '',
  'x'.repeat(600),
  'a@b',
  [],
  {},
  Buffer.alloc(3),
  [1, 'a', null],
  { nested: { deep: [1] } },
  Number.MAX_SAFE_INTEGER,
  -0,
  'GPU-zz',
  [2 ** 32],
  Buffer.alloc(70_000),
];

function mutatePayload(r: Rng, payload: Record<string, unknown>): unknown {
  const keys = Object.keys(payload);
  const out: Record<string, unknown> = { ...payload };
  const op = r.int(4);
  if (op === 0 && keys.length > 0) delete out[keys[r.int(keys.length)]];
  else if (op === 1 && keys.length > 0) out[keys[r.int(keys.length)]] = ODD_VALUES[r.int(ODD_VALUES.length)];
  else if (op === 2) out[`k${r.int(5)}`] = ODD_VALUES[r.int(ODD_VALUES.length)];
  else if (keys.length > 0) {
    const k = keys[r.int(keys.length)];
    const v = out[k];
    if (typeof v === 'number') out[k] = v + r.int(200) - 100;
    else if (typeof v === 'string') out[k] = v.slice(0, r.int(v.length + 1)) + String.fromCharCode(r.int(128));
    else if (Array.isArray(v)) out[k] = v.slice(0, r.int(v.length + 1));
    else out[k] = ODD_VALUES[r.int(ODD_VALUES.length)];
  }
  return r.int(10) === 0 ? [out] : out;
}

function mutateBytes(r: Rng, b: Uint8Array): Buffer {
  const out = Buffer.from(b);
  const op = r.int(4);
  if (op === 0 && out.length > 0) {
    for (let i = 0, n = 1 + r.int(4); i < n; i++) out[r.int(out.length)] ^= 1 << r.int(8);
    return out;
  }
  if (op === 1) return out.subarray(0, r.int(out.length + 1));
  if (op === 2) return Buffer.concat([out, r.bytes(1 + r.int(8))]);
  const at = r.int(out.length + 1);
  return Buffer.concat([out.subarray(0, at), r.bytes(1 + r.int(4)), out.subarray(at)]);
}

/** True if the frames would be a valid CLEAR: a legitimate request, not bad input. */
function isClear(frames: readonly Uint8Array[]): boolean {
  if (frames.length !== 3) return false;
  try {
    decode(frames[0]);
    const p = decode(frames[2]);
    return (
      decode(frames[1]) === RequestType.CLEAR &&
      typeof p === 'object' &&
      p !== null &&
      !Array.isArray(p) &&
      !(p instanceof Uint8Array)
    );
  } catch {
    return false;
  }
}

function frameSet(r: Rng, id: number, corpus: [number, Record<string, unknown>][]): Uint8Array[] {
  const kind = r.int(10);
  const [type, payload] = corpus[r.int(corpus.length)];
  if (kind < 3) {
    // Random frames: 1..5 frames of 0..40 random bytes.
    return Array.from({ length: 1 + r.int(5) }, () => r.bytes(r.int(41)));
  }
  if (kind < 6) return [encode(id), encode(type), encode(mutatePayload(r, payload))];
  if (kind < 8) {
    const frames: Uint8Array<ArrayBufferLike>[] = [encode(id), encode(type), encode(payload)];
    const i = r.int(3);
    frames[i] = mutateBytes(r, frames[i]);
    return frames;
  }
  if (kind === 8) {
    // Arity: dropped or duplicated frames, a random type code.
    const frames: Uint8Array[] = [encode(id), encode(r.int(3) === 0 ? r.int(40) : type), encode(payload)];
    if (r.int(2) === 0) frames.splice(r.int(3), 1);
    else frames.push(frames[r.int(3)]);
    return frames;
  }
  // Oversize, or a bin/str/array header promising far more than follows.
  const headers = [
    Buffer.from([0xc6, 0x7f, 0xff, 0xff, 0xff]),
    Buffer.from([0xdb, 0x7f, 0xff, 0xff, 0xff]),
    Buffer.from([0xdd, 0x7f, 0xff, 0xff, 0xff]),
    Buffer.from([0xdf, 0x7f, 0xff, 0xff, 0xff]),
  ];
  return r.int(4) === 0
    ? [encode(id), encode(type), Buffer.alloc(MAX_MESSAGE + 1 + r.int(1000))]
    : [encode(id), encode(type), Buffer.concat([headers[r.int(headers.length)], r.bytes(r.int(16))])];
}

test(`fuzz: ${TOTAL} random and mutated frames, one reply each, stored bytes intact`, async (t) => {
  const h = await startWire(t, {
    wire: { maxMessageBytes: MAX_MESSAGE, stagingChunks: 4, stagingWaitMs: 0, prepareTtlMs: 500 },
  });
  const good = await h.client();
  const verified = new DemoEngine(good, {
    instanceId: 'verify-engine',
    layout: { kind: 'flash_attn', numLayers: 1, blockSize: 16, numHeads: 2, headSize: 8, dtype: 'fp16' },
  });
  await verified.register();
  const prompts = [0, 1, 2].map((i) => demoPrompt(i, i, 64 * 4, 64 * 4));
  for (const [i, p] of prompts.entries()) t.is((await verified.runRequest(`before-${i}`, p)).storedChunks, 4);

  const seed = (Date.now() ^ process.pid) >>> 0;
  t.log(`fuzz seed ${seed}`);
  const r = rng(seed);
  const corpus = seeds();
  const raw = new RawPeer(h.endpoint);
  t.teardown(() => raw.close());
  let sent = 0;
  let received = 0;
  const codes = new Map<string, number>();
  const receiver = (async () => {
    while (received < TOTAL) {
      const reply = await raw.receive();
      received++;
      const c = reply.body.ok ? 'OK' : String(reply.body.error?.code);
      codes.set(c, (codes.get(c) ?? 0) + 1);
    }
  })();
  const midFlight = (async () => {
    // Another client keeps working while the fuzz runs.
    await new Promise((res) => setTimeout(res, 200));
    return verified.runRequest('during', prompts[0]);
  })();
  while (sent < TOTAL) {
    if (sent - received >= WINDOW) {
      await new Promise((res) => setImmediate(res));
      continue;
    }
    let frames = frameSet(r, sent, corpus);
    while (isClear(frames)) frames = frameSet(r, sent, corpus);
    await raw.send(frames);
    sent++;
  }
  await receiver;
  t.is(received, sent, 'exactly one reply per message');
  t.log([...codes].map(([c, n]) => `${c}=${n}`).join(' '));
  t.true((codes.get('MALFORMED') ?? 0) > 1000);
  t.true((codes.get('BAD_FIELD') ?? 0) > 1000);
  t.true((codes.get('FRAME_TOO_LARGE') ?? 0) > 100);
  t.true((codes.get('UNKNOWN_TYPE') ?? 0) > 100);
  t.true((codes.get('BAD_ARITY') ?? 0) > 100);
  t.true((codes.get('OK') ?? 0) > 100);
  t.is(codes.get('INTERNAL') ?? 0, 0, 'no internal errors');
  t.is((await midFlight).corruptChunks, 0);

  // The normal flow, on the fuzzed server: old bytes intact, new ones round-trip.
  for (const [i, p] of prompts.entries()) {
    const after = await verified.runRequest(`after-${i}`, p);
    t.is(after.hitTokens, 64 * 4);
    t.is(after.corruptChunks, 0);
  }
  const fresh = demoPrompt(9, 9, 64 * 3, 0);
  t.is((await verified.runRequest('fresh-1', fresh)).storedChunks, 3);
  const back = await verified.runRequest('fresh-2', fresh);
  t.is(back.hitTokens, 64 * 3);
  t.is(back.corruptChunks, 0);
});
