import type { Meter } from '@opentelemetry/api';
import type { PipelineSelfMetrics } from '../drain/subscriber.js';

/**
 * The event pipeline's own health as metrics: queue depth, drain lag, delivered and dropped
 * events, subscriber exceptions, and the drain thread's CPU time (is it near one full core?). Read from the drain loop once per collection.
 */
export function registerPipelineMetrics(meter: Meter, read: () => PipelineSelfMetrics): void {
  const depth = meter.createObservableGauge('kvmp.events.queue_depth', {
    description: 'Ring slots reserved and not yet consumed by the drain thread',
  });
  const lag = meter.createObservableGauge('kvmp.events.drain_lag_seconds', {
    description: 'Age of the oldest undelivered event, in seconds',
  });
  const delivered = meter.createObservableCounter('kvmp.events.delivered', {
    description: 'Events delivered to subscribers',
  });
  const dropped = meter.createObservableCounter('kvmp.events.dropped', {
    description: 'Events dropped because the ring was full',
  });
  const abandoned = meter.createObservableCounter('kvmp.events.abandoned', {
    description: 'Records skipped because their producer died mid-publish',
  });
  const exceptions = meter.createObservableCounter('kvmp.events.subscriber_exceptions', {
    description: 'Exceptions thrown by drain-thread subscribers',
  });
  const cpu = meter.createObservableCounter('kvmp.events.drain_cpu_seconds', {
    description: 'CPU time used by the drain thread (Linux only)',
  });
  const runQueueWait = meter.createObservableCounter('kvmp.events.drain_run_queue_wait_seconds', {
    description: 'Time the drain thread was runnable but waiting for a CPU (Linux only)',
  });
  meter.addBatchObservableCallback(
    (result) => {
      const s = read();
      result.observe(depth, s.queueDepth);
      result.observe(lag, s.drainLagNs / 1e9);
      result.observe(delivered, s.delivered);
      result.observe(dropped, s.dropped);
      result.observe(abandoned, s.abandoned);
      for (const [subscriber, n] of Object.entries(s.subscriberErrors)) result.observe(exceptions, n, { subscriber });
      if (s.drainCpuNs !== undefined) result.observe(cpu, s.drainCpuNs / 1e9);
      if (s.drainRunQueueWaitNs !== undefined) result.observe(runQueueWait, s.drainRunQueueWaitNs / 1e9);
    },
    [depth, lag, delivered, dropped, abandoned, exceptions, cpu, runQueueWait],
  );
}
