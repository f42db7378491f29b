import test from 'ava';
import { chunkRuns } from '../src/worker-thread/cpu/block-runs.js';

const runs = (ids: number[], blockSize: number, skip = 0): number[][] => {
  const flat = Array.from(chunkRuns(Int32Array.from(ids), 0, ids.length, blockSize, skip));
  const out: number[][] = [];
  for (let i = 0; i < flat.length; i += 3) out.push(flat.slice(i, i + 3));
  return out;
};

test('consecutive block ids merge into one contiguous run', (t) => {
  // [chunkToken, blockToken, tokens]
  t.deepEqual(runs([4, 5, 6, 9, 2, 3], 16), [
    [0, 64, 48],
    [48, 144, 16],
    [64, 32, 32],
  ]);
  t.deepEqual(runs([7, 6, 5], 4), [
    [0, 28, 4],
    [4, 24, 4],
    [8, 20, 4],
  ]);
});

test('skip drops whole blocks and starts mid-block', (t) => {
  t.deepEqual(runs([4, 5, 9], 16, 16), [
    [16, 80, 16],
    [32, 144, 16],
  ]);
  t.deepEqual(runs([4, 5, 9], 16, 20), [
    [20, 84, 12],
    [32, 144, 16],
  ]);
  t.deepEqual(runs([4, 5, 9], 16, 48), []);
  t.deepEqual(runs([4, 5], 1, 1), [[1, 5, 1]]);
});
