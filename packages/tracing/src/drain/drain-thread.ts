/**
 * Entry point of the drain thread (a worker_thread). Runs on the drain thread only.
 * Loads the declared subscribers, then consumes the ring until told to stop.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Ctrl, mapRing } from '../ring/ring-layout.js';
import { Dispatcher } from './dispatcher.js';
import { DrainLoop } from './drain-loop.js';
import type { DrainThreadData, FromDrain, ToDrain } from './drain-protocol.js';
import { RingConsumer } from './ring-consumer.js';
import type { DrainContext, DrainLogger, Subscriber, SubscriberFactory, SubscriberSpec } from './subscriber.js';

if (isMainThread || parentPort === null) throw new Error('drain-thread.js must run in a worker thread');
const port = parentPort;
const data = workerData as DrainThreadData;
const send = (message: FromDrain): void => port.postMessage(message);

// Logs go to the owner thread, which decides where they are written.
const log: DrainLogger = {
  debug: (message, fields) => send({ kind: 'log', level: 'debug', message, fields }),
  warn: (message, fields) => send({ kind: 'log', level: 'warn', message, fields }),
  error: (message, fields) => send({ kind: 'log', level: 'error', message, fields }),
};

async function loadSubscriber(spec: SubscriberSpec, context: DrainContext): Promise<Subscriber> {
  const mod = (await import(spec.module)) as Record<string, unknown>;
  const factory = mod[spec.export ?? 'default'];
  if (typeof factory !== 'function') {
    throw new Error(`subscriber module ${spec.module} has no factory export '${spec.export ?? 'default'}'`);
  }
  return await (factory as SubscriberFactory<unknown>)(spec.options, context);
}

async function main(): Promise<void> {
  const consumer = new RingConsumer(data.ring, data.abandonAfterMs);
  const dispatcher = new Dispatcher(log);
  const flushes: (() => Promise<void>)[] = [];
  let loop: DrainLoop | undefined;
  const context: DrainContext = {
    ring: data.ring,
    log,
    selfMetrics: () => {
      if (loop === undefined) throw new Error('self metrics are available once the drain loop runs');
      return loop.selfMetrics();
    },
    onFlush: (flush) => flushes.push(flush),
  };
  const ordered = [...data.subscribers].sort((a, b) => (a.loadOrder ?? 0) - (b.loadOrder ?? 0));
  for (const spec of ordered) dispatcher.add(await loadSubscriber(spec, context));

  const { ctrl } = mapRing(data.ring);
  const mask = dispatcher.subscriptionMask();
  consumer.setWanted(dispatcher.wantedCodes());
  for (let i = 0; i < mask.length; i++) Atomics.store(ctrl, Ctrl.SUBSCRIBED + i, mask[i]);

  const running = new DrainLoop(consumer, dispatcher, log, data);
  loop = running;
  running.start();

  port.on('message', (message: ToDrain) => {
    if (message.kind === 'metrics' || message.kind === 'query') running.catchUp();
    if (message.kind === 'metrics') {
      send({ kind: 'metrics', id: message.id, metrics: running.selfMetrics() });
      return;
    }
    if (message.kind === 'query') {
      dispatcher.query(message.subscriber, message.request).then(
        (value) => send({ kind: 'answer', id: message.id, value }),
        (err: unknown) =>
          send({ kind: 'answer-failed', id: message.id, message: err instanceof Error ? err.message : String(err) }),
      );
      return;
    }
    void (async () => {
      await running.stop();
      await dispatcher.shutdown();
      for (const flush of flushes) {
        try {
          await flush();
        } catch (err) {
          log.warn('exporter flush failed', { error: err instanceof Error ? err.message : String(err) });
        }
      }
      for (let i = 0; i < mask.length; i++) Atomics.store(ctrl, Ctrl.SUBSCRIBED + i, 0);
      send({ kind: 'stopped', metrics: running.selfMetrics() });
      port.close();
    })();
  });
  send({ kind: 'ready' });
}

main().catch((err: unknown) => {
  send({ kind: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  port.close();
});
