import test from 'ava';
import { type DrainLogger, EventPipeline } from '../src/index.js';
import { Ctrl, mapRing } from '../src/ring/ring-layout.js';
import type { BurstResult } from './fixtures/producer-thread.js';
import { collector, runProducer, track } from './helpers.js';

test('no loss below capacity: 1M events from 2 threads, count and checksum', async (t) => {
  const c = collector();
  const pipeline = track(t, new EventPipeline({ subscribers: [c.spec] }));
  await pipeline.start();
  const barrier = new SharedArrayBuffer(4);
  const results = await Promise.all(
    ['a', 'b'].map((name) =>
      runProducer<BurstResult>({ mode: 'burst', ring: pipeline.handle, name, count: 500_000, barrier, parties: 2 }),
    ),
  );
  const metrics = await pipeline.stop();
  const report = await c.report;
  t.is(report.count, 1_000_000);
  t.is(report.checksum, (results[0].checksum + results[1].checksum) % 2 ** 48);
  t.is(report.fifoViolations, 0);
  // Producers that found the ring full retried; every refusal was counted as a drop.
  t.is(metrics?.dropped, results[0].rejected + results[1].rejected);
});

test('tail drop when full: new events dropped and counted, warning at most once a second', async (t) => {
  const c = collector();
  const warnings: Record<string, unknown>[] = [];
  const logger: DrainLogger = { debug() {}, warn: (_m, f) => warnings.push(f ?? {}), error() {} };
  const pipeline = track(t, new EventPipeline({ capacity: 256, subscribers: [c.spec], logger }));
  let accepted = 0;
  let dropped = 0;
  for (let i = 0; i < 1000; i++) {
    if (pipeline.publisher.publish('MP_REQUEST_END', `s-${i}`, {}, { opId: i + 1 })) accepted++;
    else dropped++;
  }
  t.is(accepted, 256, 'one slot per small event');
  t.is(dropped, 744);
  t.is(pipeline.stats().dropped, 744);
  await pipeline.start();
  const metrics = await pipeline.stop();
  const report = await c.report;
  t.is(report.count, 256, 'the first 256 (oldest) were kept');
  t.is(report.checksum, (256 * 257) / 2);
  t.is(metrics?.dropped, 744);
  t.is(warnings.length, 1);
  t.is(warnings[0].dropped, 744);
});

test('tickets wrap through int32 sign flip and u32 overflow without loss', async (t) => {
  for (const start of [2_147_483_000, -2_000]) {
    const c = collector({ keepEvents: false });
    const pipeline = track(t, new EventPipeline({ capacity: 256, subscribers: [c.spec] }));
    const { ctrl } = mapRing(pipeline.handle);
    Atomics.store(ctrl, Ctrl.HEAD, start);
    Atomics.store(ctrl, Ctrl.TAIL, start);
    await pipeline.start();
    let sum = 0;
    for (let i = 1; i <= 20_000; i++) {
      const meta = { during: 'x', reason: 'r'.repeat(i % 300), key_count: i };
      while (!pipeline.publisher.publish('L1_READ_FAILED', 'w', meta, { opId: i })) {
        await new Promise((r) => setImmediate(r));
      }
      sum += i;
    }
    await pipeline.stop();
    const report = await c.report;
    t.is(report.count, 20_000, `start ${start}`);
    t.is(report.checksum, sum);
    t.is(report.fifoViolations, 0);
  }
});

test('a record abandoned mid-publish (producer died) is skipped after the timeout', async (t) => {
  const c = collector({ keepEvents: true });
  const pipeline = track(t, new EventPipeline({ subscribers: [c.spec], abandonAfterMs: 50 }));
  const { ctrl } = mapRing(pipeline.handle);
  pipeline.publisher.publish('MP_REQUEST_END', 'before', {});
  Atomics.add(ctrl, Ctrl.HEAD, 2); // a reservation of 2 slots that is never committed
  pipeline.publisher.publish('MP_REQUEST_END', 'after', {});
  await pipeline.start();
  await new Promise((r) => setTimeout(r, 300));
  const metrics = await pipeline.stop();
  t.deepEqual(
    (await c.report).events.map((e) => e.sessionId),
    ['before', 'after'],
  );
  t.is(metrics?.abandoned, 1);
});

test('two producers hammering a small ring: refusals are transient, never a stuck "full"', async (t) => {
  const c = collector();
  const pipeline = track(t, new EventPipeline({ capacity: 256, subscribers: [c.spec] }));
  await pipeline.start();
  const barrier = new SharedArrayBuffer(4);
  const producers = Promise.all(
    ['x', 'y'].map((name) =>
      runProducer<BurstResult>({ mode: 'burst', ring: pipeline.handle, name, count: 20_000, barrier, parties: 2 }),
    ),
  );
  // A publisher that keeps seeing "full" after the drain freed space would retry forever.
  const stuck = new Promise<'stuck'>((r) => setTimeout(() => r('stuck'), 60_000).unref());
  const results = await Promise.race([producers, stuck]);
  if (results === 'stuck') {
    t.fail(`producers still retrying after 60 s: ${JSON.stringify(pipeline.stats())}`);
    return;
  }
  const metrics = await pipeline.stop();
  const report = await c.report;
  t.is(report.count, 40_000);
  t.is(report.fifoViolations, 0);
  t.is(metrics?.dropped, results[0].rejected + results[1].rejected);
});

test('a napping drain is woken when the ring passes half full, so a long nap does not drop a burst', async (t) => {
  const c = collector();
  // Naps of a full second: without the producers' nudge the second burst would overflow.
  const pipeline = track(t, new EventPipeline({ subscribers: [c.spec], capacity: 1024, napMs: 1000, maxNapMs: 1000 }));
  await pipeline.start();
  await new Promise((r) => setTimeout(r, 50)); // the drain finds the ring empty and naps
  let refused = 0;
  for (let burst = 0; burst < 2; burst++) {
    for (let i = 0; i < 700; i++) if (!pipeline.publisher.publish('MP_REQUEST_END', 's', {})) refused++;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.is(refused, 0);
  t.is(pipeline.stats().delivered, 1400);
  await pipeline.stop();
  t.is((await c.report).count, 1400);
});
