import type { AttributeValue } from '@opentelemetry/api';
import type { SpanRecord } from '../otel/span-record.js';

/** The fields of a finished span the tree needs (a `SpanRecord` has them all). */
export type TreeInput = Pick<
  SpanRecord,
  'traceId' | 'spanId' | 'parentSpanId' | 'name' | 'startTimeUnixNano' | 'endTimeUnixNano' | 'attributes' | 'status'
>;

/** One span of a request tree, with times relative to the tree's root (JSON-friendly). */
export interface TreeSpan {
  readonly name: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  /** Milliseconds from the root's start. */
  readonly startMs: number;
  readonly durationMs: number;
  readonly status: 'UNSET' | 'OK' | 'ERROR';
  readonly statusMessage?: string;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  /** Depth below the root (root = 0). */
  readonly depth: number;
}

/** A finished request: its root span `request` and every span below it, in waterfall order. */
export interface RequestTree {
  readonly traceId: string;
  readonly sessionId: string;
  /** Root start, nanoseconds since the epoch, as a decimal string (exact). */
  readonly startUnixNano: string;
  readonly durationMs: number;
  readonly hitRate?: number;
  readonly requestedTokens?: number;
  readonly hitTokens?: number;
  /** The root's close waited for in-flight copies (`kvmp.deferred_close`). */
  readonly deferred: boolean;
  /** Spans with ERROR status (leaked spans included). */
  readonly errors: number;
  readonly spans: readonly TreeSpan[];
}

export const ROOT_SPAN_NAME = 'request';

const num = (v: AttributeValue | undefined): number | undefined => (typeof v === 'number' ? v : undefined);

/**
 * Groups finished spans into request trees: every span named `request` roots one tree, and
 * spans whose parent chain reaches it belong to it. Spans of unfinished trees (root not yet
 * seen) are left out. Trees come back newest first.
 */
export function buildRequestTrees(spans: readonly TreeInput[]): RequestTree[] {
  const children = new Map<string, TreeInput[]>();
  for (const s of spans) {
    if (s.parentSpanId === undefined) continue;
    const key = `${s.traceId}/${s.parentSpanId}`;
    const list = children.get(key);
    if (list === undefined) children.set(key, [s]);
    else list.push(s);
  }
  const trees: RequestTree[] = [];
  for (const root of spans) {
    if (root.name !== ROOT_SPAN_NAME) continue;
    const t0 = root.startTimeUnixNano;
    const out: TreeSpan[] = [];
    const visit = (span: TreeInput, depth: number): void => {
      out.push({
        name: span.name,
        spanId: span.spanId,
        parentSpanId: depth === 0 ? undefined : span.parentSpanId,
        startMs: Number(span.startTimeUnixNano - t0) / 1e6,
        durationMs: Number(span.endTimeUnixNano - span.startTimeUnixNano) / 1e6,
        status: span.status.code,
        statusMessage: span.status.message,
        attributes: span.attributes as Record<string, AttributeValue>,
        depth,
      });
      const kids = [...(children.get(`${span.traceId}/${span.spanId}`) ?? [])].sort((a, b) =>
        a.startTimeUnixNano < b.startTimeUnixNano ? -1 : a.startTimeUnixNano > b.startTimeUnixNano ? 1 : 0,
      );
      for (const kid of kids) visit(kid, depth + 1);
    };
    visit(root, 0);
    const attrs = root.attributes as Record<string, AttributeValue>;
    trees.push({
      traceId: root.traceId,
      sessionId: String(attrs.session_id ?? ''),
      startUnixNano: t0.toString(),
      durationMs: out[0].durationMs,
      hitRate: num(attrs.hit_rate),
      requestedTokens: num(attrs.requested_tokens),
      hitTokens: num(attrs.hit_tokens),
      deferred: attrs['kvmp.deferred_close'] === true,
      errors: out.filter((s) => s.status === 'ERROR').length,
      spans: out,
    });
  }
  return trees.sort((a, b) => (BigInt(b.startUnixNano) > BigInt(a.startUnixNano) ? 1 : -1));
}
