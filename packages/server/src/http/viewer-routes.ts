import { recentTraces, tracesPageHtml } from '@kvmp/tracing';
import type { CacheServer } from '../create-cache-server.js';
import type { HttpAnswer } from './http-server.js';

/**
 * The built-in trace viewer: `/traces` (a self-contained page) and `/api/traces` (the recent
 * request trees kept on the drain thread, newest first; `?limit=N`).
 */
export function viewerRoutes(core: CacheServer): Record<string, (url: URL) => Promise<HttpAnswer> | HttpAnswer> {
  return {
    '/traces': () => ({ status: 200, contentType: 'text/html; charset=utf-8', body: tracesPageHtml() }),
    '/api/traces': async (url) => {
      const pipeline = core.pipeline;
      if (pipeline === undefined) {
        return { status: 503, contentType: 'application/json', body: '{"error":"tracing is off"}\n' };
      }
      const raw = url.searchParams.get('limit');
      const limit = raw === null ? undefined : Math.max(1, Math.min(10_000, Number.parseInt(raw, 10) || 1));
      const traces = await recentTraces(pipeline, limit);
      return { status: 200, contentType: 'application/json', body: `${JSON.stringify({ traces })}\n` };
    },
  };
}
