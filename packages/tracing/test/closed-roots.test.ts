import type { SpanContext } from '@opentelemetry/api';
import test from 'ava';
import { ClosedRoots } from '../src/subscribers/closed-roots.js';

const ctx = (n: number): SpanContext => ({
  traceId: n.toString(16).padStart(32, '0'),
  spanId: n.toString(16).padStart(16, '0'),
  traceFlags: 1,
});

test('closed roots: bounded, oldest forgotten first', (t) => {
  const roots = new ClosedRoots(3);
  for (let i = 1; i <= 5; i++) roots.add(`s${i}`, ctx(i), i);
  t.is(roots.size, 3);
  t.false(roots.has('s1'));
  t.false(roots.has('s2'));
  t.deepEqual(roots.get('s5'), ctx(5));
});

test('closed roots: a re-closed session keeps its newest root; its stale slot does not evict it', (t) => {
  const roots = new ClosedRoots(3);
  roots.add('a', ctx(1), 1);
  roots.add('b', ctx(2), 2);
  roots.delete('a'); // revived for a late child…
  roots.add('a', ctx(3), 3); // …and closed again
  roots.add('c', ctx(4), 4); // full: the stale first slot of 'a' goes, not the live 'a'
  t.deepEqual(roots.get('a'), ctx(3));
  t.true(roots.has('b'));
  t.true(roots.has('c'));
  roots.add('d', ctx(5), 5); // now 'b' is the oldest live one
  t.false(roots.has('b'));
  t.deepEqual(
    ['a', 'c', 'd'].map((s) => roots.has(s)),
    [true, true, true],
  );
});

test('closed roots: forgetOlderThan forgets by close time, oldest first', (t) => {
  const roots = new ClosedRoots(10);
  for (let i = 1; i <= 6; i++) roots.add(`s${i}`, ctx(i), i * 10);
  roots.forgetOlderThan(35);
  t.deepEqual(
    [1, 2, 3, 4, 5, 6].map((i) => roots.has(`s${i}`)),
    [false, false, false, true, true, true],
  );
  roots.clear();
  t.is(roots.size, 0);
  roots.add('x', ctx(9), 1);
  t.true(roots.has('x'));
});
