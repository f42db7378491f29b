import type { KvmpEvent } from '../events/event.js';
import { EVENT_TYPES, MAX_EVENT_CODE } from '../events/event-types.js';
import { CODEC_BY_NAME } from '../ring/type-codec.js';
import type { DrainLogger, Subscriber } from './subscriber.js';

interface Entry {
  readonly subscriber: Subscriber;
  errors: number;
}

/**
 * Routes each event to the subscribers of its type. A subscriber that throws is isolated:
 * the others still get the event, and its error count rises.
 */
export class Dispatcher {
  private readonly entries: Entry[] = [];
  private readonly byCode: Entry[][] = Array.from({ length: MAX_EVENT_CODE + 1 }, () => []);
  private errorTotal = 0;

  constructor(private readonly log: DrainLogger) {}

  add(subscriber: Subscriber): void {
    const entry: Entry = { subscriber, errors: 0 };
    this.entries.push(entry);
    const names = subscriber.types === 'all' ? Object.keys(EVENT_TYPES) : subscriber.types;
    for (const name of names) {
      const codec = CODEC_BY_NAME[name as keyof typeof CODEC_BY_NAME];
      if (codec === undefined) throw new Error(`subscriber ${subscriber.name}: unknown event type ${name}`);
      if (!this.byCode[codec.code].includes(entry)) this.byCode[codec.code].push(entry);
    }
  }

  /** Per event code, 1 when at least one subscriber wants it. */
  wantedCodes(): Uint8Array {
    return Uint8Array.from(this.byCode, (list) => (list.length > 0 ? 1 : 0));
  }

  /** One bit per event code that has at least one subscriber (8 × 32 bits). */
  subscriptionMask(): Int32Array {
    const mask = new Int32Array(8);
    this.byCode.forEach((list, code) => {
      if (list.length > 0) mask[code >>> 5] |= 1 << (code & 31);
    });
    return mask;
  }

  readonly dispatch = (event: KvmpEvent): void => {
    const list = this.byCode[EVENT_TYPES[event.type].code];
    for (let i = 0; i < list.length; i++) {
      const entry = list[i];
      try {
        entry.subscriber.onEvent(event);
      } catch (err) {
        this.failed(entry, 'onEvent', err);
      }
    }
  };

  /** Routes a query to the subscriber named `name`. Throws when none answers queries. */
  async query(name: string, request: unknown): Promise<unknown> {
    const entry = this.entries.find((e) => e.subscriber.name === name);
    if (entry?.subscriber.onQuery === undefined) throw new Error(`no subscriber '${name}' answers queries`);
    return await entry.subscriber.onQuery(request);
  }

  periodic(nowNs: number): void {
    for (const entry of this.entries) {
      if (entry.subscriber.onPeriodic === undefined) continue;
      try {
        entry.subscriber.onPeriodic(nowNs);
      } catch (err) {
        this.failed(entry, 'onPeriodic', err);
      }
    }
  }

  async shutdown(): Promise<void> {
    for (const entry of this.entries) {
      try {
        await entry.subscriber.shutdown?.();
      } catch (err) {
        this.failed(entry, 'shutdown', err);
      }
    }
  }

  errorCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const e of this.entries) counts[e.subscriber.name] = (counts[e.subscriber.name] ?? 0) + e.errors;
    return counts;
  }

  get totalErrors(): number {
    return this.errorTotal;
  }

  private failed(entry: Entry, hook: string, err: unknown): void {
    entry.errors++;
    this.errorTotal++;
    // Rate-limit per subscriber: the first few, then every 1000th, so a broken subscriber
    // cannot flood the log.
    if (entry.errors <= 3 || entry.errors % 1000 === 0) {
      this.log.warn(`subscriber ${entry.subscriber.name} threw in ${hook}`, {
        error: err instanceof Error ? err.message : String(err),
        count: entry.errors,
      });
    }
  }
}
