/**
 * The owner-thread handle of the event pipeline: creates the ring, starts and stops the drain
 * thread, and reads the pipeline's health. Runs on whichever thread owns the pipeline
 * (the server's main thread, or a gateway's).
 */
import { Worker } from 'node:worker_threads';
import type { DrainThreadData, FromDrain, ToDrain } from '../drain/drain-protocol.js';
import type { DrainLogger, PipelineSelfMetrics, SubscriberSpec } from '../drain/subscriber.js';
import { attachPublisher, type EventPublisher } from '../producer/event-publisher.js';
import { Ctrl, createRing, DEFAULT_CAPACITY, mapRing, occupancy, type RingHandle, Stat } from '../ring/ring-layout.js';

export interface EventPipelineOptions {
  /** Ring capacity in 64-byte slots (power of two). Default 65,536 (4 MiB). */
  readonly capacity?: number;
  readonly subscribers?: readonly SubscriberSpec[];
  /** Periodic hook and self-metrics interval. Default 1000 ms. */
  readonly periodicIntervalMs?: number;
  /** Records the drain handles before yielding to its event loop. Default 4096. */
  readonly drainBudget?: number;
  /**
   * Longest the drain works before yielding to its event loop, in ms, however few records
   * that is. The BatchSpanProcessor exports one batch at a time and only learns an export has
   * finished on the loop, so long passes starve the exporter. Default 2 ms.
   */
  readonly drainSliceMs?: number;
  /**
   * Upper bound of the drain thread's young generation, in MiB. The drain allocates short-lived
   * objects at a high rate (decoded events; spans, which live until their batch is exported);
   * a nursery that can grow this far lets them die young instead of being promoted and
   * collected by the slower old-generation GC (bench:tracing: drain GC time −40 %).
   * V8 grows the nursery only under pressure. Default 128.
   */
  readonly drainYoungGenerationMb?: number;
  /** A reserved record uncommitted this long is presumed abandoned. Default 5000 ms. */
  readonly abandonAfterMs?: number;
  /** How long stop() waits for records reserved before the stop to be committed. Default 2000 ms. */
  readonly stopGraceMs?: number;
  /**
   * While events keep arriving, the drain naps between passes instead of asking producers to
   * wake it (a wake costs the producer ~6 µs). The nap starts at `napMs` and doubles while
   * passes find few events, up to `maxNapMs`: every wake-up costs the drain ~50 µs of CPU on
   * these VMs, so a steady trickle is better taken in batches. It adds at most `maxNapMs` of
   * delivery latency; the first event after idle still wakes the drain at once, and producers
   * cut a nap short when the ring passes half full. Default 1 ms; 0 disables napping.
   */
  readonly napMs?: number;
  /** Longest nap, see `napMs`. Default 50 ms. */
  readonly maxNapMs?: number;
  /** Where the drain thread's log lines go. Default: stderr, warnings and errors only. */
  readonly logger?: DrainLogger;
}

/** Cheap health snapshot read straight from the shared buffer (no round trip). */
export interface PipelineStats {
  readonly drainRunning: boolean;
  readonly queueDepth: number;
  readonly delivered: number;
  readonly dropped: number;
  readonly drainLagNs: number;
  readonly subscriberErrors: number;
  readonly abandoned: number;
}

const stderrLogger: DrainLogger = {
  debug: () => {},
  warn: (message, fields) => console.warn(`[kvmp drain] ${message}`, fields ?? ''),
  error: (message, fields) => console.error(`[kvmp drain] ${message}`, fields ?? ''),
};

type State =
  | { readonly name: 'stopped' }
  | { readonly name: 'starting'; readonly done: Promise<void> }
  | { readonly name: 'running'; readonly worker: Worker }
  | { readonly name: 'stopping'; readonly done: Promise<PipelineSelfMetrics> };

export class EventPipeline {
  readonly handle: RingHandle;
  private readonly options: EventPipelineOptions;
  private readonly logger: DrainLogger;
  private state: State = { name: 'stopped' };
  private lastReport: PipelineSelfMetrics | undefined;
  private nextRequest = 1;
  private readonly pending = new Map<number, (m: PipelineSelfMetrics) => void>();
  private readonly answers = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(options: EventPipelineOptions = {}) {
    this.options = options;
    this.logger = options.logger ?? stderrLogger;
    this.handle = createRing(options.capacity ?? DEFAULT_CAPACITY);
  }

  /** This thread's publisher. Other threads: `attachPublisher(pipeline.handle)`. */
  get publisher(): EventPublisher {
    return attachPublisher(this.handle);
  }

  /** Starts the drain thread; resolves once every subscriber is loaded. Idempotent. */
  async start(): Promise<void> {
    switch (this.state.name) {
      case 'running':
        return;
      case 'starting':
        return this.state.done;
      case 'stopping':
        await this.state.done;
        return this.start();
    }
    const done = this.spawn();
    this.state = { name: 'starting', done };
    try {
      await done;
    } catch (err) {
      this.state = { name: 'stopped' };
      throw err;
    }
  }

  /**
   * Drains everything published before the call, shuts every subscriber down, flushes
   * exporters, and ends the drain thread. Idempotent; resolves with the final self-metrics.
   */
  async stop(): Promise<PipelineSelfMetrics | undefined> {
    switch (this.state.name) {
      case 'stopped':
        return this.lastReport;
      case 'stopping':
        return this.state.done;
      case 'starting':
        await this.state.done.catch(() => {});
        return this.stop();
    }
    const worker = this.state.worker;
    const done = new Promise<PipelineSelfMetrics>((resolve, reject) => {
      worker.once('error', reject);
      worker.on('message', (m: FromDrain) => {
        if (m.kind === 'stopped') resolve(m.metrics);
      });
    })
      .then(async (report) => {
        await worker.terminate();
        return report;
      })
      .finally(() => {
        this.state = { name: 'stopped' };
        for (const { reject } of this.answers.values()) reject(new Error('the event pipeline stopped'));
        this.answers.clear();
      });
    this.state = { name: 'stopping', done };
    this.post(worker, { kind: 'stop' });
    this.lastReport = await done;
    return this.lastReport;
  }

  /** Full self-metrics from the drain thread (includes per-subscriber error counts). */
  async selfMetrics(): Promise<PipelineSelfMetrics | undefined> {
    if (this.state.name !== 'running') return this.lastReport;
    const id = this.nextRequest++;
    const worker = this.state.worker;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.post(worker, { kind: 'metrics', id });
    });
  }

  /**
   * Asks the named subscriber a question on the drain thread (its `onQuery`), e.g. a metrics
   * scrape. Rejects when the pipeline is not running or no such subscriber answers.
   */
  async query(subscriber: string, request: unknown): Promise<unknown> {
    if (this.state.name !== 'running') throw new Error('the event pipeline is not running');
    const id = this.nextRequest++;
    const worker = this.state.worker;
    return new Promise((resolve, reject) => {
      this.answers.set(id, { resolve, reject });
      this.post(worker, { kind: 'query', id, subscriber, request });
    });
  }

  /**
   * Stops every thread's publishers at once (one shared word): `publish` returns without
   * writing and `isSubscribed` answers false, so no span, metric or log is produced until
   * {@link resumePublishing}. The drain thread stays up and idles. This is tracing switched off
   * in place, with the same threads and memory: `bench:server` measures tracing on against off
   * on one server this way, and an operator can shed tracing under load without a restart.
   * Requests in flight at the switch lose the events published while paused: a root opened
   * before a pause is ended by the session TTL as leaked (never left open), and a request that
   * started while paused gets its root lazily from its first child published after resuming.
   */
  pausePublishing(): void {
    Atomics.store(mapRingCached(this.handle).ctrl, Ctrl.PAUSED, 1);
  }

  resumePublishing(): void {
    Atomics.store(mapRingCached(this.handle).ctrl, Ctrl.PAUSED, 0);
  }

  get publishingPaused(): boolean {
    return Atomics.load(mapRingCached(this.handle).ctrl, Ctrl.PAUSED) !== 0;
  }

  stats(): PipelineStats {
    const { ctrl, stats } = mapRingCached(this.handle);
    return {
      drainRunning: Atomics.load(ctrl, Ctrl.DRAIN_RUNNING) === 1,
      queueDepth: occupancy(ctrl),
      delivered: stats[Stat.DELIVERED],
      dropped: Math.max(stats[Stat.DROPPED_TOTAL], Atomics.load(ctrl, Ctrl.DROPPED) >>> 0),
      drainLagNs: stats[Stat.LAG_NS],
      subscriberErrors: stats[Stat.SUBSCRIBER_ERRORS],
      abandoned: stats[Stat.ABANDONED],
    };
  }

  private spawn(): Promise<void> {
    const data: DrainThreadData = {
      ring: this.handle,
      subscribers: this.options.subscribers ?? [],
      budget: this.options.drainBudget ?? 4096,
      sliceMs: this.options.drainSliceMs ?? 2,
      periodicIntervalMs: this.options.periodicIntervalMs ?? 1000,
      abandonAfterMs: this.options.abandonAfterMs ?? 5000,
      stopGraceMs: this.options.stopGraceMs ?? 2000,
      napMs: this.options.napMs ?? 1,
      maxNapMs: Math.max(this.options.napMs ?? 1, this.options.maxNapMs ?? 50),
    };
    const worker = new Worker(new URL('../drain/drain-thread.js', import.meta.url), {
      workerData: data,
      name: 'kvmp-drain',
      resourceLimits: { maxYoungGenerationSizeMb: this.options.drainYoungGenerationMb ?? 128 },
    });
    return new Promise<void>((resolve, reject) => {
      const onExit = (code: number): void => {
        reject(new Error(`drain thread exited during start (code ${code})`));
      };
      worker.once('exit', onExit);
      worker.once('error', reject);
      worker.on('message', (m: FromDrain) => {
        switch (m.kind) {
          case 'ready':
            worker.off('exit', onExit);
            worker.off('error', reject);
            worker.on('error', (err) => this.logger.error('drain thread crashed', { error: err.message }));
            this.state = { name: 'running', worker };
            resolve();
            return;
          case 'failed':
            void worker.terminate();
            reject(new Error(`drain thread failed to start: ${m.message}`));
            return;
          case 'metrics':
            this.pending.get(m.id)?.(m.metrics);
            this.pending.delete(m.id);
            return;
          case 'log':
            this.logger[m.level](m.message, m.fields);
            return;
          case 'answer':
            this.answers.get(m.id)?.resolve(m.value);
            this.answers.delete(m.id);
            return;
          case 'answer-failed':
            this.answers.get(m.id)?.reject(new Error(m.message));
            this.answers.delete(m.id);
            return;
          case 'stopped':
            return;
        }
      });
    });
  }

  private post(worker: Worker, message: ToDrain): void {
    worker.postMessage(message);
  }
}

const views = new WeakMap<SharedArrayBuffer, ReturnType<typeof mapRing>>();
function mapRingCached(handle: RingHandle): ReturnType<typeof mapRing> {
  let v = views.get(handle.sab);
  if (v === undefined) {
    v = mapRing(handle);
    views.set(handle.sab, v);
  }
  return v;
}
