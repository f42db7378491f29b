import { isMainThread, threadId } from 'node:worker_threads';

/**
 * Development-build guard for single-thread data structures. OTel spans and contexts are
 * plain objects that cannot cross threads, so the real risk is not sharing but *which*
 * thread uses the registry: every subscriber must reach the drain thread's instance. The
 * guard turns a misuse (e.g. a producer thread calling {@link getSpanRegistry}) into an
 * immediate error instead of a silently separate, never-closed set of spans.
 *
 * Disabled when `NODE_ENV === 'production'`: the checks cost a property read per call.
 */
export const THREAD_CHECKS = process.env.NODE_ENV !== 'production';

export class ThreadAffinityError extends Error {
  override readonly name = 'ThreadAffinityError';
}

/** Throws when called on a thread other than `ownerThreadId` (development builds only). */
export function assertOwnerThread(ownerThreadId: number, what: string): void {
  if (THREAD_CHECKS && threadId !== ownerThreadId) {
    throw new ThreadAffinityError(`${what} belongs to thread ${ownerThreadId} but was used on thread ${threadId}`);
  }
}

/**
 * The drain thread is always a worker thread (the `EventPipeline` spawns it), so the main
 * thread is never the right place for the process-level registry.
 */
export function assertNotMainThread(what: string): void {
  if (THREAD_CHECKS && isMainThread) {
    throw new ThreadAffinityError(`${what} is only available on the drain thread, not the main thread`);
  }
}

export { threadId as currentThreadId };
