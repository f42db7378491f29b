import type { EpochTime } from '@kvmp/tracing';
import type { CopyFailure } from '../api.js';

/** How an operation ended, with the stream times of its start and end. */
export interface OpOutcome {
  readonly ok: boolean;
  readonly failure?: CopyFailure;
  readonly error?: string;
  /** When the stream reached the start / end of the copy. */
  readonly start: EpochTime;
  readonly end: EpochTime;
  readonly doneEvent?: Uint8Array;
}
