/**
 * Why a span was ended by kvmp rather than by its END event. Every such span gets ERROR
 * status, `kvmp.leaked = true` and `kvmp.leak_reason`, and is counted.
 */
export type LeakReason =
  /** A child whose END never came (e.g. the anchor's retrieve-underflow path). */
  | 'end_missing'
  /** A root whose REQUEST_END came, but some SUBMITTED operation never sent its END. */
  | 'in_flight_end_missing'
  /** A root whose REQUEST_END never came. */
  | 'request_end_missing'
  /** A child replaced by a second START with the same operation id and worker. */
  | 'superseded'
  /** Still open when the pipeline stopped. */
  | 'shutdown';

export const LEAK_REASONS: readonly LeakReason[] = [
  'end_missing',
  'in_flight_end_missing',
  'request_end_missing',
  'superseded',
  'shutdown',
];
