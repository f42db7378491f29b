import { type Context, type HrTime, ROOT_CONTEXT, type Span, trace } from '@opentelemetry/api';
import { assertNotMainThread, assertOwnerThread, currentThreadId } from './thread-affinity.js';

/** One open span and the context to pass as parent when starting a child under it. */
export interface RegisteredSpan {
  readonly span: Span;
  readonly context: Context;
}

/**
 * Open spans keyed by (session id, logical name).
 *
 * **Drain thread only.** The registry has no locks because every read and write happens on
 * the event pipeline's drain thread, where subscribers run one event at a time. Development
 * builds (`NODE_ENV !== 'production'`) assert that every call comes from the thread that
 * created the registry.
 *
 * **Several spans under one name.** Each (session, name) holds a stack of entries, so a
 * second `open` of `store` while the first store is still open does not overwrite it:
 * - {@link get} returns the most recently opened entry that is still registered;
 * - {@link pop} with a span removes exactly that span's entry; without one it removes the
 *   most recent.
 * Callers that need a specific operation use its operation-scoped name
 * (`operationScopedName('store', opId, workerId)`), which the request tracing subscriber
 * registers next to the plain name.
 */
export class SpanRegistry {
  /** Per session, per name: one entry, or a stack once a second span shares the name. */
  private readonly sessions = new Map<string, Map<string, Entry | Entry[]>>();
  private readonly owner = currentThreadId;

  /**
   * Registers `span` under `name`. `ctx` is the context children should use as parent;
   * by default a root context holding `span`, built on first use (most entries are never
   * asked for their context, and building one copies a map).
   */
  open(sessionId: string, name: string, span: Span, ctx?: Context): RegisteredSpan {
    this.check();
    const entry = new Entry(span, ctx);
    this.insert(sessionId, name, entry);
    return entry;
  }

  /** Registers one span under several names at once (e.g. `store` and `store#42`). */
  openAll(sessionId: string, names: readonly string[], span: Span, ctx?: Context): RegisteredSpan {
    this.check();
    const entry = new Entry(span, ctx);
    for (const name of names) this.insert(sessionId, name, entry);
    return entry;
  }

  /** The most recently opened entry under `name` still registered, if any. */
  get(sessionId: string, name: string): RegisteredSpan | undefined {
    this.check();
    const slot = this.sessions.get(sessionId)?.get(name);
    return slot === undefined || !Array.isArray(slot) ? slot : slot[slot.length - 1];
  }

  /** The context of {@link get}, ready to pass as parent to `tracer.startSpan`. */
  getContext(sessionId: string, name: string): Context | undefined {
    return this.get(sessionId, name)?.context;
  }

  /** The first registered context among `names` (e.g. `['retrieve#7', 'retrieve', 'request']`). */
  firstContext(sessionId: string, names: readonly string[]): Context | undefined {
    for (const name of names) {
      const ctx = this.getContext(sessionId, name);
      if (ctx !== undefined) return ctx;
    }
    return undefined;
  }

  /**
   * Removes and returns an entry under `name`: the one holding `span` if given, else the most
   * recent. Does not end the span (the caller owns its end time).
   */
  pop(sessionId: string, name: string, span?: Span): RegisteredSpan | undefined {
    this.check();
    const names = this.sessions.get(sessionId);
    const slot = names?.get(name);
    if (names === undefined || slot === undefined) return undefined;
    let entry: Entry | undefined;
    if (!Array.isArray(slot)) {
      if (span !== undefined && slot.span !== span) return undefined;
      entry = slot;
      names.delete(name);
    } else {
      let index = slot.length - 1;
      if (span !== undefined) {
        while (index >= 0 && slot[index].span !== span) index--;
        if (index < 0) return undefined;
      }
      entry = slot[index];
      for (let i = index; i < slot.length - 1; i++) slot[i] = slot[i + 1];
      slot.length--;
      if (slot.length === 1) names.set(name, slot[0]);
    }
    if (names.size === 0) this.sessions.delete(sessionId);
    return entry;
  }

  /** Removes `span` from each of `names` (the counterpart of {@link openAll}). */
  popAll(sessionId: string, names: readonly string[], span: Span): void {
    for (const name of names) this.pop(sessionId, name, span);
  }

  /**
   * Ends every span still registered for the session (each span once, even when it is
   * registered under several names) and forgets the session. Returns how many spans were
   * ended. `endTime` defaults to now. A span that throws on `end` is skipped.
   */
  clearSession(sessionId: string, endTime?: HrTime): number {
    this.check();
    const names = this.sessions.get(sessionId);
    if (names === undefined) return 0;
    this.sessions.delete(sessionId);
    const spans = new Set<Span>();
    for (const slot of names.values()) {
      if (Array.isArray(slot)) for (const entry of slot) spans.add(entry.span);
      else spans.add(slot.span);
    }
    let ended = 0;
    for (const span of spans) {
      try {
        span.end(endTime);
        ended++;
      } catch {
        // A broken span must not keep the others of the session open.
      }
    }
    return ended;
  }

  /** Every session with at least one registered span. */
  allSessionIds(): string[] {
    this.check();
    return [...this.sessions.keys()];
  }

  /** The names registered for a session (diagnostics and tests). */
  names(sessionId: string): string[] {
    this.check();
    return [...(this.sessions.get(sessionId)?.keys() ?? [])];
  }

  /** Number of (session, name, span) entries. */
  get size(): number {
    this.check();
    let n = 0;
    for (const names of this.sessions.values()) {
      for (const slot of names.values()) n += Array.isArray(slot) ? slot.length : 1;
    }
    return n;
  }

  private insert(sessionId: string, name: string, entry: Entry): void {
    let names = this.sessions.get(sessionId);
    if (names === undefined) {
      names = new Map();
      this.sessions.set(sessionId, names);
    }
    const slot = names.get(name);
    if (slot === undefined) names.set(name, entry);
    else if (Array.isArray(slot)) slot.push(entry);
    else names.set(name, [slot, entry]);
  }

  private check(): void {
    assertOwnerThread(this.owner, 'SpanRegistry');
  }
}

/** A registered span; its default context is built on first use. */
class Entry implements RegisteredSpan {
  private ctx: Context | undefined;
  constructor(
    readonly span: Span,
    ctx: Context | undefined,
  ) {
    this.ctx = ctx;
  }
  get context(): Context {
    this.ctx ??= trace.setSpan(ROOT_CONTEXT, this.span);
    return this.ctx;
  }
}

let singleton: SpanRegistry | undefined;

/**
 * The drain thread's registry, shared by every subscriber loaded there (module instances
 * are per thread, so each thread would get its own; development builds refuse the main
 * thread, where no subscriber runs). Tests that drive a subscriber directly should pass a
 * fresh `new SpanRegistry()` instead.
 */
export function getSpanRegistry(): SpanRegistry {
  assertNotMainThread('getSpanRegistry()');
  singleton ??= new SpanRegistry();
  return singleton;
}
