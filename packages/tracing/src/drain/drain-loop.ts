import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { nowNsFloat } from '../events/clock.js';
import { Ctrl, Stat } from '../ring/ring-layout.js';
import type { Dispatcher } from './dispatcher.js';
import type { RingConsumer } from './ring-consumer.js';
import type { DrainLogger, PipelineSelfMetrics } from './subscriber.js';
import { readThreadCpu } from './thread-cpu.js';

export interface DrainLoopOptions {
  /** Records handled before yielding to the event loop (timers, exporters' I/O). */
  readonly budget: number;
  /**
   * Wall time one pass may take before yielding, whatever the record count: subscribers'
   * cost per event ranges from tens of ns to microseconds, and exporters need the loop often.
   */
  readonly sliceMs: number;
  readonly periodicIntervalMs: number;
  /** How long `stop()` waits for records reserved before the stop but not yet committed. */
  readonly stopGraceMs: number;
  /**
   * After draining a burst, nap (without asking to be woken) before the next pass, up to
   * {@link NAPS_BEFORE_SLEEP} times in a row with nothing found, then sleep until a producer
   * rings. The nap starts at `napMs` and adapts up to `maxNapMs`. 0 disables.
   */
  readonly napMs: number;
  readonly maxNapMs: number;
}

/**
 * Empty naps before a real sleep. While events keep coming, the drain wakes on its own every
 * `napMs` and producers never pay for a wake-up (a futex wake costs the producer ~6 µs here,
 * against ~0.2 µs for a publish); once idle, the next event wakes it at once.
 */
const NAPS_BEFORE_SLEEP = 2;

/**
 * Nap adaptation, in ring slots consumed between the end of one nap and the start of the next:
 * fewer than this many and the next nap doubles (the drain woke for too little); more than
 * {@link NAP_SHRINK_ABOVE} and it halves. A wake costs ~50 µs of drain CPU here, so at a
 * trickle of a few thousand events a second, 1 ms naps spent more on waking than on events.
 */
const NAP_GROW_BELOW = 256;
const NAP_SHRINK_ABOVE = 2048;
/** At most this many passes (each ≤ drainBudget records, ≤ drainSliceMs) before a query is answered. */
const CATCH_UP_PASSES = 32;

/**
 * The drain thread's main loop: consume, dispatch, yield; sleep on the doorbell when empty.
 *
 * It yields between batches because OTel's BatchSpanProcessor only exports from the event
 * loop: a drain that never yields fills the span queue and drops spans.
 */
export class DrainLoop {
  private stopping = false;
  private running: Promise<void> | undefined;
  private nextPeriodicMs = 0;
  private droppedTotal = 0;
  private dropsSinceWarn = 0;
  private lastDropWarnMs = 0;
  private delivered = 0;
  private idleNaps = 0;
  private pendingPasses = 0;
  private napNowMs: number;
  /**
   * The consumer's position (a ticket) when the last nap ended: what a nap let accumulate is
   * measured from here. Tickets, not deliveries: records no subscriber wants are consumed
   * without being delivered, and they are traffic all the same.
   */
  private positionAtWake = 0;

  constructor(
    private readonly consumer: RingConsumer,
    private readonly dispatcher: Dispatcher,
    private readonly log: DrainLogger,
    private readonly options: DrainLoopOptions,
  ) {
    this.napNowMs = options.napMs;
  }

  start(): void {
    const { ctrl, stats } = this.consumer.ring;
    // Counters live in the ring, so a restarted drain continues them.
    this.droppedTotal = stats[Stat.DROPPED_TOTAL];
    this.delivered = stats[Stat.DELIVERED];
    Atomics.store(ctrl, Ctrl.DRAIN_RUNNING, 1);
    this.nextPeriodicMs = Date.now() + this.options.periodicIntervalMs;
    this.running = this.run();
  }

  /** Stops the loop, then delivers every record published before this call. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.running;
    const { ctrl } = this.consumer.ring;
    const head = Atomics.load(ctrl, Ctrl.HEAD);
    const deadline = Date.now() + this.options.stopGraceMs;
    // Drain up to the head seen at stop; records reserved before it may still be committing.
    while (((head - this.consumer.position) | 0) > 0) {
      const outcome = this.pass();
      if (outcome === 'empty') break;
      // Exporters still need loop turns while a backlog drains at shutdown.
      if (outcome === 'budget') await yieldToLoop();
      if (outcome === 'pending') {
        if (Date.now() > deadline) {
          this.log.warn('drain stop: records still uncommitted after grace period', {
            missing: (head - this.consumer.position) | 0,
          });
          break;
        }
        await yieldToLoop();
      }
    }
    this.sample();
    Atomics.store(ctrl, Ctrl.DRAIN_RUNNING, 0);
  }

  /**
   * Delivers what is committed now, before a query is answered: a scrape or a viewer request
   * then sees every event published before it was asked, however long the drain was napping.
   * Bounded, so producers that outrun the drain cannot hold a query forever.
   */
  catchUp(): void {
    if (this.stopping) return;
    for (let i = 0; i < CATCH_UP_PASSES; i++) {
      const outcome = this.pass();
      if (outcome !== 'budget') return;
    }
  }

  selfMetrics(): PipelineSelfMetrics {
    const stats = this.consumer.ring.stats;
    const cpu = readThreadCpu();
    return {
      drainCpuNs: cpu?.cpuNs,
      drainRunQueueWaitNs: cpu?.runQueueWaitNs,
      queueDepth: this.consumer.depth(),
      drainLagNs: this.consumer.lagNs(nowNsFloat()),
      delivered: this.delivered,
      dropped: this.droppedTotal,
      abandoned: stats[Stat.ABANDONED],
      subscriberErrors: this.dispatcher.errorCounts(),
    };
  }

  private readonly count = (event: Parameters<Dispatcher['dispatch']>[0]): void => {
    this.delivered++;
    this.dispatcher.dispatch(event);
  };

  private pass(): ReturnType<RingConsumer['poll']> {
    const outcome = this.consumer.poll(this.options.budget, this.count, performance.now() + this.options.sliceMs);
    this.consumer.ring.stats[Stat.DELIVERED] = this.delivered;
    return outcome;
  }

  private async run(): Promise<void> {
    const { ctrl } = this.consumer.ring;
    while (!this.stopping) {
      const before = this.consumer.position;
      const outcome = this.pass();
      const nowMs = Date.now();
      if (nowMs >= this.nextPeriodicMs) this.periodic(nowMs);
      if (outcome === 'budget') {
        this.pendingPasses = 0;
        await yieldToLoop();
        continue;
      }
      if (outcome === 'pending') {
        // A producer is between reserve and commit (normally nanoseconds; longer if it was
        // preempted or died). Retry at once a few times, then back off to 1 ms naps.
        const bell = Atomics.load(ctrl, Ctrl.DOORBELL);
        if (++this.pendingPasses < 16) await yieldToLoop();
        else {
          const nap = Atomics.waitAsync(ctrl, Ctrl.DOORBELL, bell, 1);
          if (nap.async) await nap.value;
        }
        continue;
      }
      this.pendingPasses = 0;
      if (this.consumer.position !== before) this.idleNaps = 0;
      const bell = Atomics.load(ctrl, Ctrl.DOORBELL);
      if (this.options.napMs > 0 && this.idleNaps < NAPS_BEFORE_SLEEP) {
        // Nap without announcing sleep: producers keep publishing without ringing (unless
        // the ring passes half full while NAPPING is set).
        this.idleNaps++;
        this.adaptNap((this.consumer.position - this.positionAtWake) | 0);
        Atomics.store(ctrl, Ctrl.NAPPING, 1);
        const nap = Atomics.waitAsync(ctrl, Ctrl.DOORBELL, bell, this.napNowMs);
        if (nap.async) await nap.value;
        Atomics.store(ctrl, Ctrl.NAPPING, 0);
        this.positionAtWake = this.consumer.position;
        continue;
      }
      this.napNowMs = this.options.napMs;
      // Sleep protocol: read the doorbell, announce sleep, re-check the head. A producer that
      // reserved after our check sees SLEEPING=1 after its commit and rings (seq-cst order).
      Atomics.store(ctrl, Ctrl.SLEEPING, 1);
      if (Atomics.load(ctrl, Ctrl.HEAD) !== this.consumer.position || this.stopping) {
        Atomics.store(ctrl, Ctrl.SLEEPING, 0);
        continue;
      }
      const timeout = Math.max(1, this.nextPeriodicMs - Date.now());
      const wait = Atomics.waitAsync(ctrl, Ctrl.DOORBELL, bell, timeout);
      if (wait.async) await wait.value;
      Atomics.store(ctrl, Ctrl.SLEEPING, 0);
    }
  }

  /** `found`: ring slots consumed since the last nap ended (what that nap let accumulate). */
  private adaptNap(found: number): void {
    if (found < NAP_GROW_BELOW) this.napNowMs = Math.min(this.napNowMs * 2, this.options.maxNapMs);
    else if (found > NAP_SHRINK_ABOVE) this.napNowMs = Math.max(this.napNowMs / 2, this.options.napMs);
  }

  private periodic(nowMs: number): void {
    this.nextPeriodicMs = nowMs + this.options.periodicIntervalMs;
    this.sample();
    this.dispatcher.periodic(nowNsFloat());
  }

  /** Refreshes the shared stats and warns about drops at most once a second. */
  private sample(): void {
    const stats = this.consumer.ring.stats;
    const dropped = this.consumer.takeDropped();
    this.droppedTotal += dropped;
    this.dropsSinceWarn += dropped;
    stats[Stat.DROPPED_TOTAL] = this.droppedTotal;
    stats[Stat.SUBSCRIBER_ERRORS] = this.dispatcher.totalErrors;
    stats[Stat.LAG_NS] = this.consumer.lagNs(nowNsFloat());
    stats[Stat.LAST_PASS_NS] = nowNsFloat();
    const nowMs = Date.now();
    if (this.dropsSinceWarn > 0 && nowMs - this.lastDropWarnMs >= 1000) {
      this.log.warn('event ring full: events dropped', {
        dropped: this.dropsSinceWarn,
        droppedTotal: this.droppedTotal,
      });
      this.dropsSinceWarn = 0;
      this.lastDropWarnMs = nowMs;
    }
  }

  private wake(): void {
    const { ctrl } = this.consumer.ring;
    Atomics.add(ctrl, Ctrl.DOORBELL, 1);
    Atomics.notify(ctrl, Ctrl.DOORBELL);
  }
}
