import type { RingHandle } from '../ring/ring-layout.js';
import type { PipelineSelfMetrics, SubscriberSpec } from './subscriber.js';

/** workerData of the drain thread. */
export interface DrainThreadData {
  readonly ring: RingHandle;
  readonly subscribers: readonly SubscriberSpec[];
  readonly budget: number;
  readonly sliceMs: number;
  readonly periodicIntervalMs: number;
  readonly abandonAfterMs: number;
  readonly stopGraceMs: number;
  readonly napMs: number;
  readonly maxNapMs: number;
}

/** Messages from the owner thread to the drain thread. */
export type ToDrain =
  | { readonly kind: 'stop' }
  | { readonly kind: 'metrics'; readonly id: number }
  | { readonly kind: 'query'; readonly id: number; readonly subscriber: string; readonly request: unknown };

/** Messages from the drain thread to the owner thread. */
export type FromDrain =
  | { readonly kind: 'ready' }
  | { readonly kind: 'failed'; readonly message: string }
  | { readonly kind: 'metrics'; readonly id: number; readonly metrics: PipelineSelfMetrics }
  | { readonly kind: 'stopped'; readonly metrics: PipelineSelfMetrics }
  | { readonly kind: 'answer'; readonly id: number; readonly value: unknown }
  | { readonly kind: 'answer-failed'; readonly id: number; readonly message: string }
  | {
      readonly kind: 'log';
      readonly level: 'debug' | 'warn' | 'error';
      readonly message: string;
      readonly fields?: Readonly<Record<string, unknown>>;
    };
