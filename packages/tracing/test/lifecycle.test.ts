import test from 'ava';
import { type DrainLogger, EventPipeline } from '../src/index.js';
import type { BurstResult } from './fixtures/producer-thread.js';
import { collector, runProducer, sleep, track } from './helpers.js';

test('a throwing subscriber is isolated and counted; others still get every event', async (t) => {
  const bad = collector({ name: 'bad', throwOnSessionPrefix: 'x' });
  const good = collector({ name: 'good' });
  const warnings: string[] = [];
  const logger: DrainLogger = { debug() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };
  const pipeline = track(t, new EventPipeline({ subscribers: [bad.spec, good.spec], logger }));
  await pipeline.start();
  for (let i = 0; i < 50; i++) pipeline.publisher.publish('MP_REQUEST_END', i % 5 === 0 ? `x-${i}` : `ok-${i}`, {});
  const metrics = await pipeline.stop();
  t.is((await good.report).count, 50);
  t.is((await bad.report).count, 40);
  t.is(metrics?.subscriberErrors.bad, 10);
  t.is(metrics?.subscriberErrors.good, 0);
  t.is(pipeline.stats().subscriberErrors, 10);
  t.true(warnings.length >= 1 && warnings.length <= 4, 'throws are logged, rate-limited');
});

test('stop() delivers everything published before it, from this and other threads', async (t) => {
  const c = collector();
  const pipeline = track(t, new EventPipeline({ subscribers: [c.spec] }));
  await pipeline.start();
  for (let i = 0; i < 20_000; i++) pipeline.publisher.publish('MP_REQUEST_END', 's', {}, { opId: i + 1 });
  const metrics = await pipeline.stop();
  t.is((await c.report).count, 20_000);
  t.is(metrics?.delivered, 20_000);
  t.is(pipeline.stats().queueDepth, 0);
});

test('start and stop are idempotent; start/stop/start keeps every event', async (t) => {
  const first = collector();
  const pipeline = track(t, new EventPipeline({ subscribers: [first.spec] }));
  await Promise.all([pipeline.start(), pipeline.start()]);
  await pipeline.start();
  pipeline.publisher.publish('MP_REQUEST_END', 'one', {});
  await Promise.all([pipeline.stop(), pipeline.stop()]);
  await pipeline.stop();
  t.is((await first.report).count, 1);
  t.false(pipeline.stats().drainRunning);

  // Published while stopped: waits in the ring for the next start.
  pipeline.publisher.publish('MP_REQUEST_END', 'two', {});
  await pipeline.start();
  t.true(pipeline.stats().drainRunning);
  pipeline.publisher.publish('MP_REQUEST_END', 'three', {});
  const metrics = await pipeline.stop();
  t.is(metrics?.delivered, 3, 'the second drain delivered the event published while stopped and the one after');
});

test('a slow subscriber does not hold the drain thread: it yields to its event loop every slice', async (t) => {
  // 300 events at 0.3 ms each, all waiting when the drain starts: one pass of the record
  // budget (4096) would take them all without a single loop turn; timers and exporters
  // would wait ~90 ms. The 2 ms slice gives the loop a turn every few events instead.
  const c = collector({ busyUsPerEvent: 300 });
  const pipeline = track(t, new EventPipeline({ subscribers: [c.spec] }));
  for (let i = 0; i < 300; i++) pipeline.publisher.publish('MP_REQUEST_END', 's', {}, { opId: i + 1 });
  await pipeline.start();
  while (pipeline.stats().delivered < 300) await sleep(5);
  await pipeline.stop();
  const report = await c.report;
  t.is(report.count, 300);
  t.true(report.loopTurnsWhileDelivering >= 10, `loop turns while delivering: ${report.loopTurnsWhileDelivering}`);
});

test('the periodic hook runs even when no events arrive', async (t) => {
  const c = collector();
  const pipeline = track(t, new EventPipeline({ subscribers: [c.spec], periodicIntervalMs: 20 }));
  await pipeline.start();
  await sleep(200);
  await pipeline.stop();
  t.true((await c.report).periodicCalls >= 3);
});

test('start() rejects clearly when a subscriber module cannot be loaded', async (t) => {
  const pipeline = track(
    t,
    new EventPipeline({
      subscribers: [{ module: new URL('./helpers.js', import.meta.url).href, export: 'nope' }],
    }),
  );
  await t.throwsAsync(pipeline.start(), { message: /has no factory export 'nope'/ });
  t.false(pipeline.stats().drainRunning);
  t.is(await pipeline.stop(), undefined);
});

test('self-metrics report depth and lag of undelivered events', async (t) => {
  const pipeline = track(t, new EventPipeline({ subscribers: [] }));
  pipeline.publisher.publish('MP_REQUEST_END', 's', {});
  pipeline.publisher.publish('MP_REQUEST_END', 's', {});
  t.is(pipeline.stats().queueDepth, 2);
  await pipeline.start();
  const metrics = await pipeline.stop();
  t.is(metrics?.queueDepth, 0);
  t.is(metrics?.drainLagNs, 0);
});

test('records no subscriber wants still count as traffic: a trickle of them does not make the drain sleep and be rung awake per event', async (t) => {
  const { Ctrl, mapRing } = await import('../src/ring/ring-layout.js');
  const c = collector({ types: ['MP_REQUEST_START'] });
  const pipeline = track(t, new EventPipeline({ subscribers: [c.spec] }));
  await pipeline.start();
  const { ctrl } = mapRing(pipeline.handle);
  const ringsBefore = Atomics.load(ctrl, Ctrl.DOORBELL);
  // ~2 unwanted events per millisecond for half a second.
  for (let i = 0; i < 500; i++) {
    pipeline.publisher.publish('MP_REQUEST_END', 's', {});
    pipeline.publisher.publish('MP_REQUEST_END', 's', {});
    await sleep(1);
  }
  const rings = Atomics.load(ctrl, Ctrl.DOORBELL) - ringsBefore;
  // Asleep between events, the drain would be rung awake for nearly every one (~500 times).
  t.true(rings < 50, `doorbell rung ${rings} times`);
  await pipeline.stop();
  t.is((await c.report).count, 0);
});

test('pausePublishing silences every thread without counting drops; resumePublishing brings events back', async (t) => {
  const c = collector();
  const pipeline = track(t, new EventPipeline({ subscribers: [c.spec] }));
  await pipeline.start();
  const publisher = pipeline.publisher;
  publisher.publish('MP_REQUEST_END', 'before', {});

  pipeline.pausePublishing();
  t.true(pipeline.publishingPaused);
  t.true(publisher.publish('MP_REQUEST_END', 'paused', {}), 'a paused event is not reported as dropped');
  t.false(publisher.isSubscribed('MP_REQUEST_END'), 'callers skip building metadata nobody will see');
  const barrier = new SharedArrayBuffer(4);
  const other = await runProducer<BurstResult>({
    mode: 'burst',
    ring: pipeline.handle,
    name: 'paused-thread',
    count: 1000,
    barrier,
    parties: 1,
  });
  t.is(other.rejected, 0);

  pipeline.resumePublishing();
  t.false(pipeline.publishingPaused);
  t.true(publisher.isSubscribed('MP_REQUEST_END'));
  publisher.publish('MP_REQUEST_END', 'after', {});
  const metrics = await pipeline.stop();
  const report = await c.report;
  t.is(report.count, 2, 'only the events published before the pause and after the resume arrive');
  t.is(metrics?.delivered, 2);
  t.is(pipeline.stats().dropped, 0);
});
