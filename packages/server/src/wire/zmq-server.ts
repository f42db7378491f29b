import { Router } from 'zeromq';
import { KvmpServerError } from '../errors.js';
import { createDecoder, decodeFrame, encode, encodeOkReply, PreEncoded } from './codec.js';
import { asPayload } from './fields.js';
import { requestTypeName, type WireErrorCode, type WireReply } from './protocol.js';
import type { WireService } from './service.js';
import { ensureContextManager } from './trace-context.js';
import { WireError } from './wire-error.js';

/** What the transport reports to its owner (the CLI logs these; never payloads). */
export interface WireLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ZmqServerOptions {
  /** `tcp://host:port` (port 0 or `*`: any free port) or `ipc:///path`. */
  readonly endpoint: string;
  /** Requests handled concurrently before the server stops reading the socket (default 4096). */
  readonly maxInflight?: number;
  readonly logger?: WireLogger;
}

const EMPTY = new Uint8Array(0);

/**
 * The ZeroMQ ROUTER front of a {@link WireService}. One receive loop; every request is
 * dispatched without waiting for the previous one (per-session order is kept by the core's
 * session actors, which receive calls in arrival order), and replies go out through one send
 * queue because a zeromq socket allows one send in flight. Bad input of any kind gets an error
 * reply on the same connection; nothing a client sends can stop the loop.
 */
export class ZmqWireServer {
  readonly service: WireService;
  private readonly router: Router;
  private readonly options: ZmqServerOptions;
  private readonly decoder;
  private readonly queue: (Uint8Array | Buffer)[][] = [];
  private pumping: Promise<void> | undefined;
  private inflight = 0;
  private readonly idle: (() => void)[] = [];
  private readonly slot: (() => void)[] = [];
  private loop: Promise<void> | undefined;
  private stopping = false;
  private stoppedAt = 0;
  private boundEndpoint = '';

  constructor(service: WireService, options: ZmqServerOptions) {
    this.service = service;
    this.options = options;
    this.decoder = createDecoder({ maxBytes: service.maxMessageBytes });
    // libzmq drops (and the peer reconnects) a message above this hard cap before it is
    // buffered; below it, the per-message limit is answered with FRAME_TOO_LARGE.
    const hardCap = Math.max(4 * service.maxMessageBytes, service.maxMessageBytes + 64 * 1024 * 1024);
    this.router = new Router({
      linger: 1000,
      maxMessageSize: hardCap,
      sendHighWaterMark: 10_000,
      receiveHighWaterMark: 10_000,
    });
    // Lets the loop notice a stop while idle without closing the socket under in-flight replies.
    this.router.receiveTimeout = 200;
    ensureContextManager();
  }

  /** The endpoint actually bound (the real port when 0 / `*` was asked for). */
  get endpoint(): string {
    return this.boundEndpoint;
  }

  async start(): Promise<string> {
    const endpoint = this.options.endpoint.replace(/^(tcp:\/\/[^:]+):0$/, '$1:*');
    await this.router.bind(endpoint);
    this.boundEndpoint = this.router.lastEndpoint ?? endpoint;
    this.loop = this.receiveLoop();
    return this.boundEndpoint;
  }

  private async receiveLoop(): Promise<void> {
    const maxInflight = this.options.maxInflight ?? 4096;
    while (!this.router.closed) {
      let msg: Buffer[];
      try {
        msg = await this.router.receive();
      } catch (err) {
        if ((err as { code?: string }).code === 'EAGAIN') {
          // Stopping: once nothing is in flight and the socket stayed quiet for one receive
          // timeout, every request that reached us has been answered.
          if (this.stopping && this.inflight === 0) return;
          continue;
        }
        if (this.router.closed) return;
        this.options.logger?.warn({ err: String(err) }, 'zmq receive failed');
        continue;
      }
      const [identity, ...frames] = msg;
      if (identity === undefined) continue;
      if (this.stopping) {
        this.reply(identity, frames, { ok: false, error: { code: 'CLOSED', message: 'the server is shutting down' } });
        // A client that keeps sending cannot hold the shutdown open for more than a few seconds.
        if (this.inflight === 0 && Date.now() - this.stoppedAt > 5000) return;
        continue;
      }
      this.inflight++;
      void this.process(identity, frames).finally(() => {
        this.inflight--;
        this.slot.shift()?.();
        if (this.inflight === 0) for (const f of this.idle.splice(0)) f();
      });
      if (this.inflight >= maxInflight) await new Promise<void>((r) => this.slot.push(r));
    }
  }

  private async process(identity: Buffer, frames: Buffer[]): Promise<void> {
    let reply: WireReply | PreEncoded;
    try {
      const result = await this.dispatch(frames);
      reply = result instanceof PreEncoded ? new PreEncoded(encodeOkReply(result.bytes)) : { ok: true, result };
    } catch (err) {
      reply = this.errorReply(err);
    }
    this.reply(identity, frames, reply);
  }

  private dispatch(frames: Buffer[]): unknown {
    let size = 0;
    for (const f of frames) size += f.length;
    if (size > this.service.maxMessageBytes) {
      throw new WireError(
        'FRAME_TOO_LARGE',
        `message of ${size} bytes exceeds the limit of ${this.service.maxMessageBytes} bytes`,
      );
    }
    if (frames.length < 2) throw new WireError('BAD_ARITY', 'expected 3 frames: [request id][request type][payload]');
    decodeFrame(this.decoder, frames[0], 'request id');
    const code = decodeFrame(this.decoder, frames[1], 'request type');
    const type = requestTypeName(code);
    if (type === undefined) throw new WireError('UNKNOWN_TYPE', 'unknown request type code');
    if (frames.length !== 3) {
      throw new WireError('BAD_ARITY', `${type}: expected 3 frames, got ${frames.length}`);
    }
    const payload = asPayload(decodeFrame(this.decoder, frames[2], 'payload'));
    return this.service.handle(type, payload);
  }

  private errorReply(err: unknown): WireReply {
    let code: WireErrorCode;
    let message: string;
    if (err instanceof WireError || err instanceof KvmpServerError) {
      code = err.code;
      message = err.message;
    } else {
      code = 'INTERNAL';
      message = 'internal server error';
      // The error text may quote request data; log its kind and stack location only.
      this.options.logger?.warn(
        {
          err: err instanceof Error ? err.name : typeof err,
          stack: err instanceof Error ? err.stack?.split('\n')[1]?.trim() : undefined,
        },
        'request failed with an internal error',
      );
    }
    this.service.countError(code);
    return { ok: false, error: { code, message } };
  }

  private reply(identity: Buffer, frames: readonly Buffer[], reply: WireReply | PreEncoded): void {
    let body: Uint8Array;
    try {
      body = reply instanceof PreEncoded ? reply.bytes : encode(reply);
    } catch {
      body = encode({ ok: false, error: { code: 'INTERNAL', message: 'reply could not be encoded' } });
    }
    this.queue.push([identity, frames[0] ?? EMPTY, frames[1] ?? EMPTY, body]);
    this.pumping ??= this.pump();
  }

  private async pump(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.router.closed) {
        const msg = this.queue.shift();
        if (msg === undefined) break;
        try {
          await this.router.send(msg);
        } catch (err) {
          // A peer that went away: ROUTER drops its messages; nothing else to do.
          this.options.logger?.debug({ err: String(err) }, 'zmq reply not sent');
        }
      }
    } finally {
      this.pumping = undefined;
    }
  }

  get inflightRequests(): number {
    return this.inflight;
  }

  /**
   * Graceful stop: further requests are answered CLOSED, the requests in flight finish and
   * their replies are flushed, then the socket closes. The endpoint stays bound until then,
   * because unbinding a ROUTER also drops the connections the pending replies must go to.
   */
  async close(): Promise<void> {
    if (this.router.closed) return;
    this.stopping = true;
    this.stoppedAt = Date.now();
    if (this.inflight > 0) await new Promise<void>((r) => this.idle.push(r));
    await this.loop;
    while (this.pumping) await this.pumping;
    this.router.close();
    this.service.close();
  }
}
