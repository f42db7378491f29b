import { type Context, type HrTime, ROOT_CONTEXT, type Span, trace } from '@opentelemetry/api';
import { operationScopedName } from './logical-names.js';
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
 *
 * **Operations.** {@link openOperation} registers a span under its logical name tagged with
 * an operation id and worker, which makes it reachable under its operation-scoped names too
 * (`operationScopedName('store', 42)` = `store#42`, `store#42@1` for worker 1): a nested
 * subscriber that knows the operation finds exactly its parent even when several operations
 * of one type are open. Scoped names are resolved on lookup, so registering an operation
 * builds no strings.
 */
export class SpanRegistry {
  private readonly sessions = new Map<string, SessionSlots>();
  private readonly owner = currentThreadId;

  /**
   * Registers `span` under `name`. `ctx` is the context children should use as parent;
   * by default a root context holding `span`, built on first use (most entries are never
   * asked for their context, and building one copies a map).
   */
  open(sessionId: string, name: string, span: Span, ctx?: Context): RegisteredSpan {
    this.check();
    const entry = new Entry(span, ctx, undefined, undefined);
    this.slots(sessionId).add(name, entry);
    return entry;
  }

  /**
   * Registers the span of one operation under its logical name, reachable also as
   * `logical#opId` and `logical#opId@workerId` (see {@link operationScopedName}).
   */
  openOperation(
    sessionId: string,
    logical: string,
    opId: number,
    workerId: number | undefined,
    span: Span,
    ctx?: Context,
  ): RegisteredSpan {
    this.check();
    const entry = new Entry(span, ctx, opId, workerId);
    this.slots(sessionId).add(logical, entry);
    return entry;
  }

  /** Registers one span under several names at once. */
  openAll(sessionId: string, names: readonly string[], span: Span, ctx?: Context): RegisteredSpan {
    this.check();
    const entry = new Entry(span, ctx, undefined, undefined);
    const slots = this.slots(sessionId);
    for (const name of names) slots.add(name, entry);
    return entry;
  }

  /**
   * The most recently opened entry under `name` still registered, if any. An
   * operation-scoped name (`store#42`, `store#42@1`) that was not registered literally
   * resolves to the most recent matching operation under its logical name.
   */
  get(sessionId: string, name: string): RegisteredSpan | undefined {
    this.check();
    const slots = this.sessions.get(sessionId);
    if (slots === undefined) return undefined;
    const stack = slots.stack(name);
    if (stack !== undefined) return stack[stack.length - 1];
    const scoped = parseScoped(name);
    if (scoped === undefined) return undefined;
    const ops = slots.stack(scoped.logical);
    if (ops === undefined) return undefined;
    for (let i = ops.length - 1; i >= 0; i--) if (ops[i].matches(scoped.opId, scoped.workerId)) return ops[i];
    return undefined;
  }

  /** The context of {@link get}, ready to pass as parent to `tracer.startSpan`. */
  getContext(sessionId: string, name: string): Context | undefined {
    return this.get(sessionId, name)?.context;
  }

  /** The first registered context among `names` (e.g. `['retrieve#7@0', 'retrieve', 'request']`). */
  firstContext(sessionId: string, names: readonly string[]): Context | undefined {
    for (const name of names) {
      const ctx = this.getContext(sessionId, name);
      if (ctx !== undefined) return ctx;
    }
    return undefined;
  }

  /**
   * Removes and returns an entry under `name`: the one holding `span` if given, else the most
   * recent. Does not end the span (the caller owns its end time). An operation registered
   * with {@link openOperation} is removed by popping its logical name.
   */
  pop(sessionId: string, name: string, span?: Span): RegisteredSpan | undefined {
    this.check();
    const slots = this.sessions.get(sessionId);
    if (slots === undefined) return undefined;
    const entry = slots.remove(name, span);
    if (slots.empty) this.sessions.delete(sessionId);
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
    const slots = this.sessions.get(sessionId);
    if (slots === undefined) return 0;
    this.sessions.delete(sessionId);
    const spans = new Set<Span>();
    for (const stack of slots.stacks) for (const entry of stack) spans.add(entry.span);
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

  /** The names registered for a session, operation-scoped names included (diagnostics and tests). */
  names(sessionId: string): string[] {
    this.check();
    const slots = this.sessions.get(sessionId);
    if (slots === undefined) return [];
    const out = new Set<string>();
    slots.names.forEach((name, i) => {
      out.add(name);
      for (const e of slots.stacks[i]) {
        if (e.opId === undefined) continue;
        out.add(operationScopedName(name, e.opId));
        if (e.workerId !== undefined) out.add(operationScopedName(name, e.opId, e.workerId));
      }
    });
    return [...out];
  }

  /** Number of registrations (an operation counts once). */
  get size(): number {
    this.check();
    let n = 0;
    for (const slots of this.sessions.values()) for (const stack of slots.stacks) n += stack.length;
    return n;
  }

  private slots(sessionId: string): SessionSlots {
    let slots = this.sessions.get(sessionId);
    if (slots === undefined) {
      slots = new SessionSlots();
      this.sessions.set(sessionId, slots);
    }
    return slots;
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
    readonly opId: number | undefined,
    readonly workerId: number | undefined,
  ) {
    this.ctx = ctx;
  }
  get context(): Context {
    this.ctx ??= trace.setSpan(ROOT_CONTEXT, this.span);
    return this.ctx;
  }
  /** Matches `logical#opId` (any worker) or `logical#opId@workerId`. */
  matches(opId: number, workerId: number | undefined): boolean {
    return this.opId === opId && (workerId === undefined || this.workerId === workerId);
  }
}

/**
 * One session's names. A session holds a handful of names at a time, so parallel arrays with
 * a linear scan are cheaper than a Map per session.
 */
class SessionSlots {
  readonly names: string[] = [];
  readonly stacks: Entry[][] = [];

  get empty(): boolean {
    return this.names.length === 0;
  }

  stack(name: string): Entry[] | undefined {
    const i = this.names.indexOf(name);
    return i < 0 ? undefined : this.stacks[i];
  }

  add(name: string, entry: Entry): void {
    const i = this.names.indexOf(name);
    if (i >= 0) this.stacks[i].push(entry);
    else {
      this.names.push(name);
      this.stacks.push([entry]);
    }
  }

  remove(name: string, span: Span | undefined): Entry | undefined {
    const i = this.names.indexOf(name);
    if (i < 0) return undefined;
    const stack = this.stacks[i];
    let index = stack.length - 1;
    if (span !== undefined) {
      while (index >= 0 && stack[index].span !== span) index--;
      if (index < 0) return undefined;
    }
    const entry = stack[index];
    for (let k = index; k < stack.length - 1; k++) stack[k] = stack[k + 1];
    stack.pop();
    if (stack.length === 0) {
      const last = this.names.length - 1;
      // Swap-remove with pop(): setting `length` is a slow path in V8.
      this.names[i] = this.names[last];
      this.stacks[i] = this.stacks[last];
      this.names.pop();
      this.stacks.pop();
    }
    return entry;
  }
}

/** `logical#opId` or `logical#opId@workerId`, as built by `operationScopedName`. */
function parseScoped(name: string): { logical: string; opId: number; workerId: number | undefined } | undefined {
  const hash = name.lastIndexOf('#');
  if (hash <= 0) return undefined;
  const at = name.indexOf('@', hash);
  const opId = Number(name.slice(hash + 1, at < 0 ? undefined : at));
  const workerId = at < 0 ? undefined : Number(name.slice(at + 1));
  if (!Number.isInteger(opId) || (workerId !== undefined && !Number.isInteger(workerId))) return undefined;
  return { logical: name.slice(0, hash), opId, workerId };
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
