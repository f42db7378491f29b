import type { CopyResult } from '../api.js';
import type { CopyEvent } from './op-reporter.js';

/**
 * What the GPU worker thread sends back for one store or retrieve: the caller's result, and the
 * operation's START and END for the client to publish (in this order) before resolving it.
 */
export interface CopyCompletion {
  readonly result: CopyResult;
  readonly events: readonly CopyEvent[];
}
