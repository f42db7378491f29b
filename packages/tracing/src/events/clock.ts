import { performance } from 'node:perf_hooks';
import type { EpochTime } from './event.js';

// performance.timeOrigin + performance.now() is wall-clock anchored and monotonic afterwards,
// but adding them in one float loses precision (~0.25 µs at today's epoch). Split the origin
// into whole seconds and a nanosecond remainder once, so every stamp stays exact to the
// nanosecond resolution of performance.now() without allocating a BigInt per event.
const originMs = performance.timeOrigin;
const originSec = Math.floor(originMs / 1e3);
const originRemNs = Math.round((originMs - originSec * 1e3) * 1e6);

/**
 * Writes the current time into `out` as [seconds, nanoseconds] since the epoch.
 * Allocation-free: the publish hot path calls this for every event.
 */
export function nowInto(out: number[]): void {
  const ns = originRemNs + Math.round(performance.now() * 1e6);
  const carry = Math.floor(ns / 1e9);
  out[0] = originSec + carry;
  out[1] = ns - carry * 1e9;
}

/** The current time as a fresh {@link EpochTime}. */
export function now(): EpochTime {
  const t: EpochTime = [0, 0];
  nowInto(t);
  return t;
}

/** Current time in nanoseconds since the epoch as a float (for lag and rate arithmetic). */
export function nowNsFloat(): number {
  return originSec * 1e9 + originRemNs + performance.now() * 1e6;
}
