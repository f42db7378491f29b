import { LogicalName, type SpanRegistry } from '@kvmp/registry';
import {
  type Context,
  type HrTime,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { nowNsFloat } from '../events/clock.js';
import type { KvmpEvent, TraceCarrier } from '../events/event.js';
import { extractTraceContext } from '../propagation/extract-trace-context.js';
import { ClosedRoots } from './closed-roots.js';
import { LEAK_REASONS, type LeakReason } from './leak-reason.js';
import { OPERATIONS, type OperationSpec, SpanName } from './request-span-names.js';
import type { RequestTracingStats } from './request-tracing-stats.js';
import { Attr, setLookupRootAttributes, setMetaAttributes, statusMessage } from './span-attributes.js';

export interface RequestSpanTrackerOptions {
  readonly tracer: Tracer;
  /** The drain thread's registry (`getSpanRegistry()`), or a fresh one in tests. */
  readonly registry: SpanRegistry;
  /** A session idle this long with anything open is swept. Default 10 minutes. */
  readonly ttlMs?: number;
  /** Closed sessions remembered for late children, at most. Default 65,536. */
  readonly maxClosedSessions?: number;
  /** Monotonic-enough clock in ns for idleness (not for span times). Default: the pipeline clock. */
  readonly clock?: () => number;
  /** Called for every leaked span (metrics hook). */
  readonly onLeak?: (reason: LeakReason, spanName: string) => void;
  /** Debug diagnostics (unmatched ENDs, duplicate STARTs). */
  readonly debug?: (message: string, fields: Readonly<Record<string, unknown>>) => void;
}

/** An open child span. */
interface Child {
  readonly op: OperationSpec;
  readonly span: Span;
  readonly start: HrTime;
  readonly opId: number;
  readonly workerId: number | undefined;
}

/**
 * Per-session state. `open`: the root is open or not yet started (lazy). `closed`: the root
 * has ended; the session lingers only while late or unfinished children are open.
 */
interface Session {
  readonly id: string;
  phase: 'open' | 'closed';
  root: Span | undefined;
  rootStart: HrTime | undefined;
  /** Parent context for children: the root's, kept after the root closes. */
  rootContext: Context | undefined;
  /** W3C context captured by the first CPU event that carried one. */
  carrier: TraceCarrier | undefined;
  inFlightStore: number;
  inFlightRetrieve: number;
  /** The REQUEST_END time while the close is deferred. */
  requestEnd: HrTime | undefined;
  /**
   * Open children in start order. A session has a handful at a time, so a scan beats any
   * keyed structure, and start order gives FIFO matching for operations without an id.
   */
  readonly children: Child[];
  /** Latest event time seen: the end time of spans the sweep has to end. */
  lastEventTime: HrTime;
  /** Drain clock at the last event: idleness for the TTL sweep. */
  touchedNs: number;
}

function cmp(a: HrTime, b: HrTime): number {
  return a[0] - b[0] || a[1] - b[1];
}

function notBefore(time: HrTime, floor: HrTime | undefined): HrTime {
  return floor !== undefined && cmp(time, floor) < 0 ? floor : time;
}

const ZERO_LEAKS = (): Record<LeakReason, number> =>
  Object.fromEntries(LEAK_REASONS.map((r) => [r, 0])) as Record<LeakReason, number>;

/**
 * The request span state machine: one root span `request` per session with its operations
 * nested under it, closed at the request's logical end even when GPU work finishes later.
 * Pure and synchronous: events in, span starts/ends and registry changes out. It runs on
 * the drain thread (see `request-tracing-subscriber.ts`) and directly in unit tests.
 *
 * Rules (the full protocol with timelines is in `docs/design/request-span.md`):
 * - Root opens at REQUEST_START, or lazily at the first child START (store-only sessions).
 * - SUBMITTED increments the session's in-flight count of its kind; the matching END
 *   decrements it. REQUEST_END closes the root at once when nothing is in flight, else it
 *   is recorded and the last in-flight END closes the root, stamped with the REQUEST_END time.
 * - A child that starts after its root closed nests under that closed root (attribute
 *   `kvmp.late`) instead of opening a second root; closed roots are remembered for the TTL.
 * - Anything open on a session idle for the TTL, and anything open at shutdown, is ended
 *   with ERROR status and `kvmp.leaked = true`.
 */
export class RequestSpanTracker {
  private readonly tracer: Tracer;
  private readonly registry: SpanRegistry;
  private readonly ttlNs: number;
  private readonly clock: () => number;
  private readonly onLeak: RequestSpanTrackerOptions['onLeak'];
  private readonly debug: RequestSpanTrackerOptions['debug'];
  private readonly sessions = new Map<string, Session>();
  /** Closed roots, for late children. */
  private readonly tombstones: ClosedRoots;
  private openSpans = 0;
  private rootsStarted = 0;
  private rootsEnded = 0;
  private childrenStarted = 0;
  private childrenEnded = 0;
  private failedChildren = 0;
  private lateChildren = 0;
  private unmatchedEnds = 0;
  private leakedSpans = 0;
  private readonly leakedByReason = ZERO_LEAKS();

  constructor(options: RequestSpanTrackerOptions) {
    this.tracer = options.tracer;
    this.registry = options.registry;
    this.ttlNs = (options.ttlMs ?? 600_000) * 1e6;
    this.tombstones = new ClosedRoots(options.maxClosedSessions ?? 65_536);
    this.clock = options.clock ?? nowNsFloat;
    this.onLeak = options.onLeak;
    this.debug = options.debug;
  }

  onEvent(event: KvmpEvent): void {
    switch (event.type) {
      case 'MP_REQUEST_START':
        this.requestStart(event.sessionId, event.time, event.trace, event.meta.model_name);
        return;
      case 'MP_STORE_SUBMITTED':
        this.submitted(event.sessionId, event.time, event.trace, 'store');
        return;
      case 'MP_RETRIEVE_SUBMITTED':
        this.submitted(event.sessionId, event.time, event.trace, 'retrieve');
        return;
      case 'MP_REQUEST_END':
        this.requestEnd(event.sessionId, event.time, event.trace);
        return;
      case 'MP_LOOKUP_PREFETCH_START':
        this.childStart(OPERATIONS.lookup_prefetch, event);
        return;
      case 'MP_RETRIEVE_START':
        this.childStart(OPERATIONS.retrieve, event);
        return;
      case 'MP_STORE_START':
        this.childStart(OPERATIONS.store, event);
        return;
      case 'MP_LOOKUP_PREFETCH_END':
        this.childEnd(OPERATIONS.lookup_prefetch, event);
        return;
      case 'MP_RETRIEVE_END':
        this.childEnd(OPERATIONS.retrieve, event, event.meta.success, event.meta.error);
        return;
      case 'MP_STORE_END':
        this.childEnd(OPERATIONS.store, event, event.meta.success, event.meta.error);
        return;
      default:
        return;
    }
  }

  /** Ends everything open on sessions idle for the TTL; forgets closed roots older than the TTL. */
  sweep(nowNs: number = this.clock()): void {
    for (const session of [...this.sessions.values()]) {
      if (nowNs - session.touchedNs >= this.ttlNs) this.leakSession(session, undefined);
    }
    this.tombstones.forgetOlderThan(nowNs - this.ttlNs);
  }

  /** Ends everything still open, as leaked with reason `shutdown`. */
  shutdown(): void {
    for (const session of [...this.sessions.values()]) this.leakSession(session, 'shutdown');
    this.tombstones.clear();
  }

  stats(): RequestTracingStats {
    return {
      openSessions: this.sessions.size,
      openSpans: this.openSpans,
      rootsStarted: this.rootsStarted,
      rootsEnded: this.rootsEnded,
      childrenStarted: this.childrenStarted,
      childrenEnded: this.childrenEnded,
      failedChildren: this.failedChildren,
      lateChildren: this.lateChildren,
      unmatchedEnds: this.unmatchedEnds,
      leakedSpans: this.leakedSpans,
      leakedByReason: { ...this.leakedByReason },
      closedSessions: this.tombstones.size,
    };
  }

  // --- transitions -----------------------------------------------------------------------

  private requestStart(id: string, time: HrTime, carrier: TraceCarrier | undefined, model: string | undefined): void {
    let session = this.sessions.get(id);
    if (session !== undefined && session.phase === 'open' && session.root !== undefined) {
      this.debug?.('duplicate MP_REQUEST_START ignored', { session_id: id });
      this.touch(session, time);
      return;
    }
    // A closed session (late children still open) or a remembered one that sees a new
    // REQUEST_START is a new request reusing the id: it gets a new root. A remembered root
    // stays remembered until this one closes and replaces it: while the session is live,
    // every lookup finds the session first.
    if (session === undefined) session = this.newSession(id, time);
    else {
      session.phase = 'open';
      session.rootContext = undefined;
      session.requestEnd = undefined;
    }
    if (carrier !== undefined) session.carrier = carrier;
    this.touch(session, time);
    this.openRoot(session, time, model);
  }

  private submitted(id: string, time: HrTime, carrier: TraceCarrier | undefined, kind: 'store' | 'retrieve'): void {
    let session = this.sessions.get(id);
    if (session === undefined) {
      if (this.tombstones.has(id)) {
        // Work submitted after the root closed cannot defer it any more; its START/END
        // become a late child.
        return;
      }
      session = this.newSession(id, time);
    }
    this.touch(session, time);
    if (session.phase === 'closed') return;
    session.carrier ??= carrier;
    if (kind === 'store') session.inFlightStore++;
    else session.inFlightRetrieve++;
  }

  private requestEnd(id: string, time: HrTime, carrier: TraceCarrier | undefined): void {
    const session = this.sessions.get(id);
    if (session === undefined || session.phase === 'closed') return;
    this.touch(session, time);
    session.carrier ??= carrier;
    // CPU-synchronous operations end before REQUEST_END on the same thread: one still open
    // now never gets its END, so it is ended (as leaked) now rather than after the TTL.
    for (let i = session.children.length - 1; i >= 0; i--) {
      const child = session.children[i];
      if (!child.op.deferrable) this.leakChild(session, child, 'end_missing', time);
    }
    if (session.inFlightStore + session.inFlightRetrieve === 0) {
      session.root?.setAttribute(Attr.DEFERRED_CLOSE, false);
      this.closeRoot(session, time);
    } else session.requestEnd = time;
    this.settle(session);
  }

  private childStart(
    op: OperationSpec,
    event: Extract<KvmpEvent, { type: 'MP_LOOKUP_PREFETCH_START' | 'MP_RETRIEVE_START' | 'MP_STORE_START' }>,
  ): void {
    const { sessionId: id, time, opId, workerId } = event;
    const session = this.sessionForChild(id, time);
    this.touch(session, time);
    const late = session.phase === 'closed';
    if (!late) {
      session.carrier ??= event.trace;
      if (session.root === undefined) this.openRoot(session, time, event.meta.model_name);
    }
    const parent = session.rootContext ?? extractTraceContext(session.carrier);

    // A lookup is CPU-synchronous, one at a time per session and worker: a new one replaces
    // an unfinished one (the server drops a replaced lookup without an END). GPU operations
    // may overlap, so only the same operation id supersedes.
    const previous = op.deferrable
      ? opId !== 0
        ? this.findChild(session, op, opId, workerId)
        : undefined
      : this.findChild(session, op, undefined, workerId);
    if (previous !== undefined) this.leakChild(session, previous, 'superseded');

    const span = this.tracer.startSpan(op.spanName, { startTime: time }, parent);
    // Attributes are set on the span directly (not passed to startSpan, which copies them
    // twice), and only when it records: an unsampled request costs no attribute work.
    if (span.isRecording()) {
      span.setAttribute(Attr.SESSION_ID, id);
      if (workerId !== undefined) span.setAttribute(Attr.WORKER_ID, workerId);
      if (opId !== 0) span.setAttribute(Attr.OP_ID, opId);
      setMetaAttributes(span, event.type, event.meta);
      if (late) span.setAttribute(Attr.LATE, true);
    }
    // Registered under its logical name, reachable as `store#<op>[@<worker>]` when it has an
    // op id; its registry context is built lazily (most are never used as a parent).
    if (opId === 0) this.registry.open(id, op.logical, span);
    else this.registry.openOperation(id, op.logical, opId, workerId, span);
    session.children.push({ op, span, start: time, opId, workerId });
    this.openSpans++;
    this.childrenStarted++;
    if (late) this.lateChildren++;
  }

  private childEnd(
    op: OperationSpec,
    event: Extract<KvmpEvent, { type: 'MP_LOOKUP_PREFETCH_END' | 'MP_RETRIEVE_END' | 'MP_STORE_END' }>,
    success?: boolean,
    error?: string,
  ): void {
    const { sessionId: id, time, opId, workerId } = event;
    const session = this.sessions.get(id);
    if (session === undefined) {
      this.unmatchedEnds++;
      this.debug?.('END without a session ignored', { session_id: id, type: event.type });
      return;
    }
    this.touch(session, time);
    const child = this.findChild(session, op, opId, workerId);
    if (child !== undefined) {
      if (child.span.isRecording()) setMetaAttributes(child.span, event.type, event.meta);
      if (success === false) {
        child.span.setStatus({ code: SpanStatusCode.ERROR, message: statusMessage(error, `${op.kind} failed`) });
        this.failedChildren++;
      }
      this.endChild(session, child, notBefore(time, child.start));
      this.childrenEnded++;
    } else {
      this.unmatchedEnds++;
      this.debug?.('END without a matching START', { session_id: id, type: event.type, op_id: opId });
    }
    if (event.type === 'MP_LOOKUP_PREFETCH_END' && session.root?.isRecording()) {
      setLookupRootAttributes(session.root, event.meta);
    }
    // The END finishes the work whether or not its START was seen.
    if (session.phase === 'open' && op.deferrable) {
      if (op.kind === 'store' && session.inFlightStore > 0) session.inFlightStore--;
      if (op.kind === 'retrieve' && session.inFlightRetrieve > 0) session.inFlightRetrieve--;
      if (session.requestEnd !== undefined && session.inFlightStore + session.inFlightRetrieve === 0) {
        session.root?.setAttributes({
          [Attr.DEFERRED_CLOSE]: true,
          [Attr.CLOSE_DELAY_MS]: Math.max(0, hrTimeMs(event.time) - hrTimeMs(session.requestEnd)),
        });
        this.closeRoot(session, session.requestEnd);
      }
    }
    this.settle(session);
  }

  // --- effects ---------------------------------------------------------------------------

  private newSession(id: string, time: HrTime): Session {
    const session: Session = {
      id,
      phase: 'open',
      root: undefined,
      rootStart: undefined,
      rootContext: undefined,
      carrier: undefined,
      inFlightStore: 0,
      inFlightRetrieve: 0,
      requestEnd: undefined,
      children: [],
      lastEventTime: time,
      touchedNs: 0,
    };
    this.sessions.set(id, session);
    return session;
  }

  /** The live session, else a closed one revived for a late child, else a new (lazy-root) one. */
  private sessionForChild(id: string, time: HrTime): Session {
    const live = this.sessions.get(id);
    if (live !== undefined) return live;
    const closedRoot = this.tombstones.get(id);
    const session = this.newSession(id, time);
    if (closedRoot !== undefined) {
      this.tombstones.delete(id);
      session.phase = 'closed';
      session.rootContext = trace.setSpanContext(ROOT_CONTEXT, closedRoot);
    }
    return session;
  }

  private touch(session: Session, time: HrTime): void {
    session.touchedNs = this.clock();
    if (cmp(time, session.lastEventTime) > 0) session.lastEventTime = time;
  }

  private openRoot(session: Session, time: HrTime, model: string | undefined): void {
    const parent = extractTraceContext(session.carrier);
    const root = this.tracer.startSpan(SpanName.REQUEST, { startTime: time }, parent);
    if (root.isRecording()) {
      root.setAttribute(Attr.SESSION_ID, session.id);
      if (model !== undefined && model !== '') root.setAttribute(Attr.MODEL_NAME, model);
    }
    session.root = root;
    session.rootStart = time;
    session.rootContext = trace.setSpan(parent, root);
    this.registry.open(session.id, LogicalName.REQUEST, root, session.rootContext);
    this.openSpans++;
    this.rootsStarted++;
  }

  /**
   * Ends the root at its logical end (never before its own start: a lazy root opened by a
   * GPU START that ran after REQUEST_END would otherwise end before it began).
   */
  private closeRoot(session: Session, end: HrTime): void {
    const root = session.root;
    if (root !== undefined) {
      this.registry.pop(session.id, LogicalName.REQUEST, root);
      root.end(notBefore(end, session.rootStart));
      this.openSpans--;
      this.rootsEnded++;
    }
    session.phase = 'closed';
    session.root = undefined;
    session.requestEnd = undefined;
    session.inFlightStore = 0;
    session.inFlightRetrieve = 0;
  }

  /** A closed session with no open child is forgotten, leaving a tombstone for late children. */
  private settle(session: Session): void {
    if (session.phase !== 'closed' || session.children.length > 0) return;
    this.sessions.delete(session.id);
    if (session.rootContext === undefined) return;
    const root = trace.getSpanContext(session.rootContext);
    if (root !== undefined) this.tombstones.add(session.id, root, this.clock());
  }

  private endChild(session: Session, child: Child, end: HrTime): void {
    const children = session.children;
    const index = children.indexOf(child);
    for (let i = index; i < children.length - 1; i++) children[i] = children[i + 1];
    children.pop();
    this.registry.pop(session.id, child.op.logical, child.span);
    child.span.end(end);
    this.openSpans--;
  }

  private leakChild(session: Session, child: Child, reason: LeakReason, end: HrTime = session.lastEventTime): void {
    this.markLeaked(child.span, reason, child.op.spanName);
    this.endChild(session, child, notBefore(end, child.start));
  }

  /** Ends everything the session holds as leaked, then forgets it (keeping a tombstone). */
  private leakSession(session: Session, forced: LeakReason | undefined): void {
    for (const child of [...session.children]) this.leakChild(session, child, forced ?? 'end_missing');
    if (session.phase === 'open' && session.root !== undefined) {
      const reason = forced ?? (session.requestEnd !== undefined ? 'in_flight_end_missing' : 'request_end_missing');
      this.markLeaked(session.root, reason, SpanName.REQUEST);
      this.closeRoot(session, session.requestEnd ?? session.lastEventTime);
    } else {
      this.closeRoot(session, session.lastEventTime);
    }
    this.settle(session);
  }

  private markLeaked(span: Span, reason: LeakReason, spanName: string): void {
    span.setAttributes({ [Attr.LEAKED]: true, [Attr.LEAK_REASON]: reason });
    span.setStatus({ code: SpanStatusCode.ERROR, message: `leaked: ${reason}` });
    this.leakedSpans++;
    this.leakedByReason[reason]++;
    this.onLeak?.(reason, spanName);
  }

  // --- matching --------------------------------------------------------------------------

  /**
   * Operations with an id are matched exactly by (kind, op id, worker). Producers that give
   * no op id (0) are matched first-in first-out per (kind, worker), which is exact when a
   * worker's operations of one kind run in order on one stream.
   */
  private findChild(
    session: Session,
    op: OperationSpec,
    /** `undefined`: any operation id. */
    opId: number | undefined,
    workerId: number | undefined,
  ): Child | undefined {
    const children = session.children;
    for (let i = 0; i < children.length; i++) {
      const c = children[i];
      if (c.op === op && (opId === undefined || c.opId === opId) && c.workerId === workerId) return c;
    }
    return undefined;
  }
}

const hrTimeMs = (t: HrTime): number => t[0] * 1e3 + t[1] / 1e6;
