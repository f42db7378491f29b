import test from 'ava';
import { createBLAKE3 } from 'hash-wasm';
import { CHAIN_START_LABEL, ChunkHasher, HASH_BYTES, HashChainCache, toHex } from '../src/index.js';

test('chain start is BLAKE3 of the documented label (pinned)', async (t) => {
  const h = await ChunkHasher.create();
  t.is(CHAIN_START_LABEL, 'kvmp.chunk-hash.chain-start.v1');
  t.is(toHex(h.chainStart), 'fb9c98954e2248941b08327769efaa35989a9da9b96e84fe7b2ea3fd456f757f');
});

test('hash_i = BLAKE3(hash_{i-1} || tokens as big-endian u32)', async (t) => {
  const h = await ChunkHasher.create();
  const tokens = Uint32Array.from({ length: 8 }, (_, i) => 0x01020304 * (i + 1));
  const out = h.hashChunks(h.chainStart, tokens, 0, 4, 2);
  // Independent computation.
  const b3 = await createBLAKE3();
  let prev = h.chainStart;
  for (let c = 0; c < 2; c++) {
    const buf = Buffer.alloc(HASH_BYTES + 16);
    buf.set(prev, 0);
    for (let i = 0; i < 4; i++) buf.writeUInt32BE(tokens[c * 4 + i], HASH_BYTES + 4 * i);
    b3.init();
    b3.update(buf);
    const d = b3.digest('binary');
    t.deepEqual(out.subarray(c * HASH_BYTES, (c + 1) * HASH_BYTES), d);
    prev = d;
  }
});

test('a chunk hash encodes its prefix', async (t) => {
  const h = await ChunkHasher.create();
  const a = Uint32Array.from([1, 2, 3, 4, 5, 6]);
  const b = Uint32Array.from([9, 2, 3, 4, 5, 6]);
  const ha = h.hashChunks(h.chainStart, a, 0, 3, 2);
  const hb = h.hashChunks(h.chainStart, b, 0, 3, 2);
  t.notDeepEqual(ha.subarray(32), hb.subarray(32), 'same second chunk, different prefix');
});

test('session hash cache: reuses the prefix, truncates where tokens changed', async (t) => {
  const h = await ChunkHasher.create();
  const cache = new HashChainCache(2);
  const tokens = Uint32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  cache.append(0, h.hashChunks(h.chainStart, tokens, 0, 2, 4), tokens);
  t.is(cache.validPrefix(tokens, 4), 4);
  const changed = Uint32Array.from([1, 2, 3, 4, 0, 6, 7, 8]);
  t.is(cache.validPrefix(changed, 4), 2);
  t.is(cache.size, 2);
  cache.append(2, h.hashChunks(cache.prevOf(2, h.chainStart), changed, 4, 2, 2), changed);
  const fresh = h.hashChunks(h.chainStart, changed, 0, 2, 4);
  t.deepEqual(
    cache.hex(0, 4),
    [0, 1, 2, 3].map((i) => toHex(fresh, i * 32, 32)),
  );
});
