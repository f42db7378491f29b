import test from 'ava';
import { EventPipeline } from '../src/index.js';
import type { BurstResult } from './fixtures/producer-thread.js';
import { collector, prng, runProducer, track } from './helpers.js';

test('per-producer FIFO across 3 producer threads', async (t) => {
  const c = collector();
  const pipeline = track(t, new EventPipeline({ subscribers: [c.spec] }));
  await pipeline.start();
  const barrier = new SharedArrayBuffer(4);
  const names = ['p0', 'p1', 'p2'];
  const results = await Promise.all(
    names.map((name) =>
      runProducer<BurstResult>({ mode: 'burst', ring: pipeline.handle, name, count: 50_000, barrier, parties: 3 }),
    ),
  );
  await pipeline.stop();
  const report = await c.report;
  t.is(report.count, 150_000);
  t.is(report.fifoViolations, 0, 'each producer session saw strictly increasing op ids');
  t.is(report.checksum, results.reduce((s, r) => s + r.checksum, 0) % 2 ** 48);
});

test('causal order across 4 threads: B published after observing A is dispatched after A', async (t) => {
  const threads = 4;
  const rounds = 3000;
  for (const seed of [1, 2, 3]) {
    const c = collector({ keepEvents: true });
    const pipeline = track(t, new EventPipeline({ subscribers: [c.spec] }));
    await pipeline.start();
    const random = prng(seed);
    const leaders = new Int32Array(new SharedArrayBuffer(rounds * 4));
    for (let r = 0; r < rounds; r++) leaders[r] = Math.floor(random() * threads);
    const flags = new SharedArrayBuffer(rounds * 4);
    await Promise.all(
      Array.from({ length: threads }, (_, index) =>
        runProducer({ mode: 'causal', ring: pipeline.handle, index, threads, rounds, leaders, flags }),
      ),
    );
    await pipeline.stop();
    const events = (await c.report).events;
    t.is(events.length, rounds * threads);
    const seenA = new Uint8Array(rounds);
    let violations = 0;
    for (const e of events) {
      if (e.type === 'MP_STORE_SUBMITTED') seenA[e.opId] = 1;
      else if (seenA[e.opId] === 0) violations++;
    }
    t.is(violations, 0, `seed ${seed}: every B after its A`);
  }
});
