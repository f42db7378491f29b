/** Benchmark subscriber (drain thread): touches every field, keeps a checksum, nothing else. */
import type { SubscriberFactory } from '../src/index.js';

const factory: SubscriberFactory<unknown> = () => {
  let checksum = 0;
  return {
    name: 'null',
    types: 'all',
    onEvent(event) {
      checksum += event.opId + event.sessionId.length + event.time[1];
      if (event.type === 'L1_WRITE_RESERVED') checksum += event.meta.key_count + (event.meta.model_name?.length ?? 0);
    },
    shutdown() {
      if (checksum === -1) console.log('unreachable');
    },
  };
};
export default factory;
