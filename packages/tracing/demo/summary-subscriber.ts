/** Demo subscriber (drain thread): counts what it receives and prints a summary at shutdown. */
import type { EventTypeName, SubscriberFactory } from '../src/index.js';

const factory: SubscriberFactory<unknown> = (_options, context) => {
  const byType = new Map<EventTypeName, number>();
  const sessions = new Set<string>();
  const producers = new Set<number>();
  let traced = 0;
  return {
    name: 'demo-summary',
    types: 'all',
    onEvent(event) {
      byType.set(event.type, (byType.get(event.type) ?? 0) + 1);
      sessions.add(event.sessionId);
      producers.add(event.producerId);
      if (event.trace !== undefined) traced++;
    },
    shutdown() {
      const health = context.selfMetrics();
      const lines = [...byType].map(([type, n]) => `  ${type.padEnd(26)} ${n}`);
      console.log(
        [
          'delivered on the drain thread:',
          ...lines,
          `  sessions: ${sessions.size}, producer threads: ${producers.size}, with trace context: ${traced}`,
          `  pipeline: delivered ${health.delivered}, dropped ${health.dropped}, queue depth ${health.queueDepth}`,
        ].join('\n'),
      );
    },
  };
};
export default factory;
