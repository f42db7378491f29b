import { readFileSync } from 'node:fs';

/** CPU time of the calling thread, from Linux's per-thread scheduler statistics. */
export interface ThreadCpu {
  /** Time spent running on a CPU. */
  readonly cpuNs: number;
  /** Time spent runnable but waiting for a CPU: how much the machine's other threads held it back. */
  readonly runQueueWaitNs: number;
}

let supported = true;

/**
 * Reads `/proc/thread-self/schedstat` (nanosecond resolution, unlike the clock-tick counts in
 * `stat`). `undefined` where the file does not exist (not Linux, or scheduler statistics off);
 * after one failure it is not tried again. A file read costs ~10 µs: call it per scrape or per
 * benchmark run, not per event.
 */
export function readThreadCpu(): ThreadCpu | undefined {
  if (!supported) return undefined;
  try {
    const [run, wait] = readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ');
    const cpuNs = Number(run);
    const runQueueWaitNs = Number(wait);
    if (Number.isFinite(cpuNs) && Number.isFinite(runQueueWaitNs)) return { cpuNs, runQueueWaitNs };
  } catch {
    // fall through
  }
  supported = false;
  return undefined;
}
