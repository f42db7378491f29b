/**
 * The logging subscriber's factory (drain thread). Writes pino JSON lines straight to a file
 * descriptor from the drain thread, so logging never costs a producer anything beyond its
 * publish. Lines carry ids, counts, sizes and reasons — never token ids, KV bytes or salts.
 */
import { pino } from 'pino';
import type { Subscriber, SubscriberFactory } from '../drain/subscriber.js';
import type { EventTypeName } from '../events/event-types.js';
import type { LoggingOptions } from './logging-options.js';

const LIFECYCLE: readonly EventTypeName[] = [
  'MP_REQUEST_START',
  'MP_LOOKUP_PREFETCH_END',
  'MP_STORE_SUBMITTED',
  'MP_RETRIEVE_SUBMITTED',
  'MP_STORE_START',
  'MP_RETRIEVE_START',
  'MP_REQUEST_END',
  'L1_KEYS_EVICTED',
];
const FAILURES: readonly EventTypeName[] = [
  'MP_STORE_END',
  'MP_RETRIEVE_END',
  'L1_ALLOCATION_FAILED',
  'L1_READ_FAILED',
];

export const createLoggingSubscriber: SubscriberFactory<LoggingOptions | undefined> = (options) => {
  const level = options?.level ?? 'info';
  // Synchronous writes: a line is on its way to the fd when the call returns, so nothing is lost
  // when the drain thread ends (sonic-boom's async flush does not wait for queued writes). The
  // cost (one write(2) per line) is paid on the drain thread, and at the default level only
  // failures are logged.
  const destination = pino.destination({ fd: options?.fd ?? 2, sync: true });
  const log = pino({ level, base: { service: 'kvmp', thread: 'drain' } }, destination);
  const debug = log.isLevelEnabled('debug');

  const subscriber: Subscriber = {
    name: 'logging',
    // Below debug only failures are logged: do not make the drain decode what it won't print.
    types: debug ? [...LIFECYCLE, ...FAILURES] : FAILURES,
    onEvent(event) {
      const session = event.sessionId;
      switch (event.type) {
        case 'MP_REQUEST_START':
          log.debug({ session, model: event.meta.model_name }, 'request start');
          return;
        case 'MP_LOOKUP_PREFETCH_END': {
          const m = event.meta;
          log.debug(
            {
              session,
              requestedTokens: m.requested_tokens,
              hitTokens: m.hit_tokens,
              l1HitTokens: m.l1_hit_tokens,
              l2HitTokens: m.l2_hit_tokens,
              earlyExit: m.early_exit_reason || undefined,
            },
            'lookup done',
          );
          return;
        }
        case 'MP_STORE_SUBMITTED':
        case 'MP_RETRIEVE_SUBMITTED':
          log.debug({ session, op: event.opId, device: event.meta.device }, `${verb(event.type)} submitted`);
          return;
        case 'MP_STORE_START':
        case 'MP_RETRIEVE_START':
          log.debug(
            { session, op: event.opId, worker: event.workerId, device: event.meta.device },
            `${verb(event.type)} start`,
          );
          return;
        case 'MP_STORE_END':
        case 'MP_RETRIEVE_END': {
          const m = event.meta;
          const fields = {
            session,
            op: event.opId,
            worker: event.workerId,
            device: m.device,
            bytes: m.total_bytes,
            tokens: m.num_tokens,
          };
          if (m.success) log.debug(fields, `${verb(event.type)} end`);
          else log.warn({ ...fields, error: m.error }, `${verb(event.type)} failed`);
          return;
        }
        case 'MP_REQUEST_END':
          log.debug({ session }, 'request end');
          return;
        case 'L1_KEYS_EVICTED':
          log.debug({ chunks: event.meta.key_count, bytes: event.meta.total_bytes }, 'L1 eviction');
          return;
        case 'L1_ALLOCATION_FAILED':
          log.warn(
            { session, during: event.meta.during, chunks: event.meta.key_count, bytes: event.meta.requested_bytes },
            'L1 allocation failed: chunks not stored',
          );
          return;
        case 'L1_READ_FAILED':
          log.warn(
            { session, during: event.meta.during, reason: event.meta.reason, chunks: event.meta.key_count },
            'L1 read failed',
          );
          return;
      }
    },
    shutdown() {
      destination.flushSync();
    },
  };
  return subscriber;
};

const verb = (type: EventTypeName): string => (type.startsWith('MP_STORE') ? 'store' : 'retrieve');

export default createLoggingSubscriber;
