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
  private readonly sessions = new Map<string, Map<string, RegisteredSpan[]>>();
  private readonly owner = currentThreadId;

  /**
   * Registers `span` under `name`. `ctx` is the context children should use as parent;
   * defaults to a root context holding `span`.
   */
  open(sessionId: string, name: string, span: Span, ctx?: Context): RegisteredSpan {
    this.check();
    const entry: RegisteredSpan = { span, context: ctx ?? trace.setSpan(ROOT_CONTEXT, span) };
    let names = this.sessions.get(sessionId);
    if (names === undefined) {
      names = new Map();
      this.sessions.set(sessionId, names);
    }
    const stack = names.get(name);
    if (stack === undefined) names.set(name, [entry]);
    else stack.push(entry);
    return entry;
  }

  /** The most recently opened entry under `name` still registered, if any. */
  get(sessionId: string, name: string): RegisteredSpan | undefined {
    this.check();
    const stack = this.sessions.get(sessionId)?.get(name);
    return stack === undefined ? undefined : stack[stack.length - 1];
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
    const stack = names?.get(name);
    if (names === undefined || stack === undefined) return undefined;
    let index = stack.length - 1;
    if (span !== undefined) {
      while (index >= 0 && stack[index].span !== span) index--;
      if (index < 0) return undefined;
    }
    const [entry] = stack.splice(index, 1);
    if (stack.length === 0) {
      names.delete(name);
      if (names.size === 0) this.sessions.delete(sessionId);
    }
    return entry;
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
    for (const stack of names.values()) for (const entry of stack) spans.add(entry.span);
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
    for (const names of this.sessions.values()) for (const stack of names.values()) n += stack.length;
    return n;
  }

  private check(): void {
    assertOwnerThread(this.owner, 'SpanRegistry');
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
