import type { CacheServer } from '../create-cache-server.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from './protocol.js';
import { WireService, type WireServiceOptions } from './service.js';
import { type WireLogger, ZmqWireServer } from './zmq-server.js';

export interface WireServerOptions extends Partial<WireServiceOptions> {
  /** `tcp://127.0.0.1:5555`, `tcp://127.0.0.1:0` (any free port) or `ipc:///path`. */
  readonly endpoint: string;
  readonly maxInflight?: number;
  readonly logger?: WireLogger;
}

/** Binds the ZMQ protocol server in front of a cache server. `close()` it before the core. */
export async function startWireServer(core: CacheServer, options: WireServerOptions): Promise<ZmqWireServer> {
  const service = new WireService(core, {
    ...options,
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
  });
  const server = new ZmqWireServer(service, {
    endpoint: options.endpoint,
    ...(options.maxInflight === undefined ? {} : { maxInflight: options.maxInflight }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  try {
    await server.start();
  } catch (err) {
    service.close();
    throw err;
  }
  return server;
}
