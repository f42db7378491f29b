import { decode } from '@msgpack/msgpack';
import test from 'ava';
import { encode, encodeMapWithBin, encodeOkReply } from '../src/wire/codec.js';

test('encodeMapWithBin produces ordinary msgpack, large or small, any header size', (t) => {
  for (const length of [0, 10, 300, 70_000, 3_000_000]) {
    const bytes = new Uint8Array(length).map((_, i) => (i * 31) & 0xff);
    const map = { ok: true, retrieved_chunks: 3, error: undefined, note: 'x' };
    const out = encodeMapWithBin(map, 'data', length, (dst) => dst.set(bytes));
    const back = decode(out) as Record<string, unknown>;
    t.deepEqual(Object.keys(back).sort(), ['data', 'note', 'ok', 'retrieved_chunks']);
    t.true(Buffer.from(back.data as Uint8Array).equals(Buffer.from(bytes)), `length ${length}`);
  }
  const big = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i]));
  const out = decode(encodeMapWithBin(big, 'data', 100_000, (d) => d.fill(7))) as Record<string, unknown>;
  t.is(Object.keys(out).length, 21);
  t.is((out.data as Uint8Array)[99_999], 7);
});

test('encodeOkReply wraps pre-encoded results', (t) => {
  t.deepEqual(decode(encodeOkReply(encode({ a: [1, 2] }))), { ok: true, result: { a: [1, 2] } });
});
