import test from 'ava';
import { CompletionPoller, type Pollable } from '../src/worker-thread/cuda/completion-poller.js';

function op(predictedDoneMs: number, ready: () => boolean, log: string[], name: string): Pollable {
  return { predictedDoneMs, poll: ready, complete: () => log.push(name), abandon: () => log.push(`abandoned ${name}`) };
}

test('completes each stream in order, polling only heads, and stops when idle', async (t) => {
  const poller = new CompletionPoller();
  const log: string[] = [];
  let gpuAt = 0; // how many ops "the GPU" has finished on stream a
  const a = [op(Date.now(), () => gpuAt >= 1, log, 'a1'), op(Date.now(), () => gpuAt >= 2, log, 'a2')];
  poller.watch(a);
  await new Promise((r) => setImmediate(r));
  t.deepEqual(log, []);
  gpuAt = 2;
  while (a.length > 0) await new Promise((r) => setImmediate(r));
  t.deepEqual(log, ['a1', 'a2']);
  t.false(poller.busy);
  poller.stop();
});

test("a stream predicted to finish soon is not held behind another stream's far-off prediction", async (t) => {
  t.timeout(20_000);
  const poller = new CompletionPoller();
  const log: string[] = [];
  const slow = [op(Date.now() + 600_000, () => log.includes('fast'), log, 'slow')];
  poller.watch(slow);
  await new Promise((r) => setTimeout(r, 5));
  const fast = [op(Date.now(), () => true, log, 'fast')];
  poller.watch(fast);
  while (fast.length > 0) await new Promise((r) => setTimeout(r, 1));
  t.deepEqual(log, ['fast']);
  poller.stop();
});
