import type { Actor } from '../actors/actor-registry.js';
import type { ServerContext, SessionState } from './context.js';
import { releaseHeldLocks } from './lookup.js';

/**
 * `end_session` (and TTL expiry), inside the session's actor: gives back the lookup locks no
 * retrieve consumed, removes the session, publishes `MP_REQUEST_END`, then touches every chunk
 * the session looked up, stored or retrieved (LRU recency). Copies still in flight keep their
 * own pins and finish normally; the tracing subscriber defers closing the root span until
 * their END events arrive.
 */
export function endInSession(ctx: ServerContext, session: SessionState, actor: Actor<SessionState>): void {
  releaseHeldLocks(ctx, session, 0, Number.POSITIVE_INFINITY);
  session.job = undefined;
  ctx.sessions.retire(actor);
  ctx.publisher.publish('MP_REQUEST_END', session.requestId, {});
  ctx.l1.touch(session.keys);
}

/** Ends sessions idle longer than the TTL (none with copies in flight). */
export function expireIdleSessions(ctx: ServerContext, ttlMs: number): void {
  for (const actor of ctx.sessions.idleLongerThan(ttlMs)) {
    if (actor.state.inflight > 0) continue;
    ctx.counters.sessionsExpired++;
    void ctx.sessions.send(actor.id, (s, a) => {
      if (a !== actor) return; // replaced meanwhile: a live session
      endInSession(ctx, s, a);
    });
  }
}
