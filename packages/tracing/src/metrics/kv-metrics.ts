import type { Attributes, Counter, Histogram, Meter } from '@opentelemetry/api';
import type { KvmpEvent } from '../events/event.js';
import type { EventTypeName } from '../events/event-types.js';
import type { MetricsOptions } from './metrics-options.js';
import { TransferTimer } from './transfer-timer.js';

/** The event types the metrics subscriber consumes. */
export const METRICS_EVENT_TYPES: readonly EventTypeName[] = [
  'MP_LOOKUP_PREFETCH_END',
  'MP_STORE_SUBMITTED',
  'MP_STORE_START',
  'MP_STORE_END',
  'MP_RETRIEVE_SUBMITTED',
  'MP_RETRIEVE_START',
  'MP_RETRIEVE_END',
  'L1_READ_FINISHED',
  'L1_WRITE_FINISHED',
  'L1_KEYS_EVICTED',
  'L1_ALLOCATION_FAILED',
  'L1_READ_FAILED',
  'L1_USAGE',
];

const DEFAULT_THROUGHPUT_BUCKETS = [0.5, 1, 2, 4, 6, 8, 10, 12, 16, 20, 25, 32, 50];
const DEFAULT_DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/**
 * kvmp's cache metrics, derived from events on the drain thread. Hit-rate numerators and
 * denominators come from the same event (MP_LOOKUP_PREFETCH_END), so early exits add 0 to both
 * and abandoned lookups add to neither. Names and labels are listed in docs/METRICS.md.
 */
export class KvMetrics {
  private readonly lookups: Counter;
  private readonly lookupEarlyExits: Counter;
  private readonly requestedTokens: Counter;
  private readonly hitTokens: Counter;
  private readonly l1HitTokens: Counter;
  private readonly l2HitTokens: Counter;
  private readonly submitted: Counter;
  private readonly finished: Counter;
  private readonly copiedChunks: Counter;
  private readonly copiedBytes: Counter;
  private readonly throughput: Histogram;
  private readonly duration: Histogram;
  private readonly l1ReadChunks: Counter;
  private readonly l1WriteChunks: Counter;
  private readonly l1EvictedChunks: Counter;
  private readonly l1EvictedBytes: Counter;
  private readonly l1AllocationFailures: Counter;
  private readonly l1ReadFailures: Counter;
  private readonly timer = new TransferTimer();
  /** submitted − finished per (direction, device), for the in-flight gauge. */
  private readonly inFlight = new Map<string, { direction: string; device: string; n: number }>();
  private l1 = { usedBytes: 0, capacityBytes: 0, objects: 0, seen: false };

  constructor(meter: Meter, options: MetricsOptions) {
    this.lookups = meter.createCounter('kvmp.lookup.requests', {
      description: 'Lookups answered (MP_LOOKUP_PREFETCH_END), early exits included',
    });
    this.lookupEarlyExits = meter.createCounter('kvmp.lookup.early_exits', {
      description: 'Lookups that exited early, by reason',
    });
    this.requestedTokens = meter.createCounter('kvmp.lookup.requested_tokens', {
      description: 'Tokens asked for by lookups (full chunks only); hit-rate denominator',
    });
    this.hitTokens = meter.createCounter('kvmp.lookup.hit_tokens', {
      description: 'Tokens of the contiguous cached prefix found by lookups; hit-rate numerator',
    });
    this.l1HitTokens = meter.createCounter('kvmp.lookup.l1_hit_tokens', { description: 'Hit tokens served by L1' });
    this.l2HitTokens = meter.createCounter('kvmp.lookup.l2_hit_tokens', { description: 'Hit tokens served by L2' });
    this.submitted = meter.createCounter('kvmp.transfer.submitted', {
      description: 'Store/retrieve operations submitted (CPU sentinel); in flight = submitted − finished',
    });
    this.finished = meter.createCounter('kvmp.transfer.finished', {
      description: 'Store/retrieve operations finished (GPU-ordered END), by outcome',
    });
    this.copiedChunks = meter.createCounter('kvmp.transfer.chunks', {
      description: 'Chunks copied: stored (L0→L1) or retrieved (L1→L0)',
    });
    this.copiedBytes = meter.createCounter('kvmp.transfer.bytes', {
      description: 'Bytes copied between engine memory (L0) and L1',
    });
    this.throughput = meter.createHistogram('kvmp.transfer.throughput_gb_per_second', {
      description: 'L0↔L1 copy throughput in GB/s, from GPU-ordered START/END timestamps',
      advice: { explicitBucketBoundaries: [...(options.throughputBucketsGBps ?? DEFAULT_THROUGHPUT_BUCKETS)] },
    });
    this.duration = meter.createHistogram('kvmp.transfer.duration_seconds', {
      description: 'L0↔L1 copy duration in seconds on the stream clock',
      advice: { explicitBucketBoundaries: [...(options.durationBucketsS ?? DEFAULT_DURATION_BUCKETS)] },
    });
    this.l1ReadChunks = meter.createCounter('kvmp.l1.read_chunks', {
      description: 'L1 objects read (read locks released)',
    });
    this.l1WriteChunks = meter.createCounter('kvmp.l1.write_chunks', {
      description: 'L1 objects written (became ready)',
    });
    this.l1EvictedChunks = meter.createCounter('kvmp.l1.evicted_chunks', { description: 'L1 objects evicted' });
    this.l1EvictedBytes = meter.createCounter('kvmp.l1.evicted_bytes', { description: 'Bytes freed by L1 eviction' });
    this.l1AllocationFailures = meter.createCounter('kvmp.l1.allocation_failures', {
      description: 'Chunks that could not be stored: no L1 memory even after eviction',
    });
    this.l1ReadFailures = meter.createCounter('kvmp.l1.read_failures', {
      description: 'Chunks that could not be read after a lookup promised them',
    });

    // Anomaly counters exist from the start at 0, so "none happened" reads as 0, not as no data.
    for (const c of [
      this.lookupEarlyExits,
      this.l1EvictedChunks,
      this.l1EvictedBytes,
      this.l1AllocationFailures,
      this.l1ReadFailures,
    ]) {
      c.add(0);
    }

    meter
      .createObservableGauge('kvmp.transfer.in_flight', {
        description: 'Store/retrieve operations submitted and not yet finished',
      })
      .addCallback((result) => {
        for (const { direction, device, n } of this.inFlight.values()) result.observe(n, { direction, device });
      });
    meter.createObservableGauge('kvmp.l1.usage_bytes', { description: 'Bytes of L1 in use' }).addCallback((r) => {
      if (this.l1.seen) r.observe(this.l1.usedBytes);
    });
    meter.createObservableGauge('kvmp.l1.capacity_bytes', { description: 'L1 capacity in bytes' }).addCallback((r) => {
      if (this.l1.seen) r.observe(this.l1.capacityBytes);
    });
    meter
      .createObservableGauge('kvmp.l1.usage_ratio', { description: 'L1 bytes in use ÷ capacity' })
      .addCallback((r) => {
        if (this.l1.seen) r.observe(this.l1.capacityBytes > 0 ? this.l1.usedBytes / this.l1.capacityBytes : 0);
      });
    meter.createObservableGauge('kvmp.l1.objects', { description: 'Objects (chunks) in L1' }).addCallback((r) => {
      if (this.l1.seen) r.observe(this.l1.objects);
    });
  }

  onEvent(event: KvmpEvent): void {
    switch (event.type) {
      case 'MP_LOOKUP_PREFETCH_END': {
        const m = event.meta;
        const attrs: Attributes = { model_name: m.model_name ?? '' };
        this.lookups.add(1, attrs);
        if (m.early_exit_reason !== '') this.lookupEarlyExits.add(1, { ...attrs, reason: m.early_exit_reason });
        this.requestedTokens.add(m.requested_tokens, attrs);
        this.hitTokens.add(m.hit_tokens, attrs);
        this.l1HitTokens.add(m.l1_hit_tokens, attrs);
        this.l2HitTokens.add(m.l2_hit_tokens, attrs);
        return;
      }
      case 'MP_STORE_SUBMITTED':
      case 'MP_RETRIEVE_SUBMITTED': {
        const direction = event.type === 'MP_STORE_SUBMITTED' ? 'store' : 'retrieve';
        this.submitted.add(1, { direction, device: event.meta.device });
        this.track(direction, event.meta.device, +1);
        return;
      }
      case 'MP_STORE_START':
      case 'MP_RETRIEVE_START':
        this.timer.start(event);
        return;
      case 'MP_STORE_END':
      case 'MP_RETRIEVE_END': {
        const m = event.meta;
        const store = event.type === 'MP_STORE_END';
        const direction = store ? 'store' : 'retrieve';
        const outcome = m.success ? 'ok' : 'error';
        this.finished.add(1, { direction, device: m.device, outcome });
        this.track(direction, m.device, -1);
        const attrs: Attributes = { direction, device: m.device, model_name: m.model_name };
        const chunks = store ? (event.meta as { stored_count: number }).stored_count : event.meta.retrieved_count;
        this.copiedChunks.add(chunks, attrs);
        this.copiedBytes.add(m.total_bytes, attrs);
        const seconds = this.timer.end(event.sessionId, event.opId, event.workerId, event.time);
        if (seconds !== undefined && m.success && m.total_bytes > 0) {
          this.duration.record(seconds, { direction, device: m.device });
          if (seconds > 0) this.throughput.record(m.total_bytes / seconds / 1e9, { direction, device: m.device });
        }
        return;
      }
      case 'L1_READ_FINISHED':
        this.l1ReadChunks.add(event.meta.key_count);
        return;
      case 'L1_WRITE_FINISHED':
        this.l1WriteChunks.add(event.meta.key_count, { model_name: event.meta.model_name ?? '' });
        return;
      case 'L1_KEYS_EVICTED':
        this.l1EvictedChunks.add(event.meta.key_count);
        this.l1EvictedBytes.add(event.meta.total_bytes);
        return;
      case 'L1_ALLOCATION_FAILED':
        this.l1AllocationFailures.add(event.meta.key_count, { during: event.meta.during });
        return;
      case 'L1_READ_FAILED':
        this.l1ReadFailures.add(event.meta.key_count, { during: event.meta.during, reason: event.meta.reason });
        return;
      case 'L1_USAGE':
        this.l1 = {
          usedBytes: event.meta.used_bytes,
          capacityBytes: event.meta.capacity_bytes,
          objects: event.meta.object_count,
          seen: true,
        };
        return;
    }
  }

  sweep(nowNs: number): void {
    this.timer.sweep(nowNs);
  }

  private track(direction: string, device: string, delta: number): void {
    const key = `${direction}\u0000${device}`;
    const entry = this.inFlight.get(key);
    if (entry === undefined) this.inFlight.set(key, { direction, device, n: Math.max(0, delta) });
    else entry.n = Math.max(0, entry.n + delta);
  }
}
