import type { EventPipeline } from '../pipeline/event-pipeline.js';
import type { RequestTree } from '../viewer/request-tree.js';

/** Name under which the request tracing subscriber answers `pipeline.query`. */
export const REQUEST_TRACING_SUBSCRIBER_NAME = 'request-tracing';

export interface TracesQuery {
  readonly kind: 'traces';
  /** Most recent first; default all kept. */
  readonly limit?: number;
}

/** The most recent finished request trees kept on the drain thread, newest first. */
export async function recentTraces(pipeline: EventPipeline, limit?: number): Promise<RequestTree[]> {
  const query: TracesQuery = { kind: 'traces', limit };
  return (await pipeline.query(REQUEST_TRACING_SUBSCRIBER_NAME, query)) as RequestTree[];
}
