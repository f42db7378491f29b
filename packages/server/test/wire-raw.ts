import { decode, encode } from '@msgpack/msgpack';
import { Dealer } from 'zeromq';

export interface RawReply {
  readonly frames: Buffer[];
  readonly body: { ok: boolean; result?: unknown; error?: { code: string; message: string } };
}

/** A bare DEALER for sending hand-made (and broken) frames. */
export class RawPeer {
  readonly sock = new Dealer({ linger: 0 });

  constructor(endpoint: string) {
    this.sock.connect(endpoint);
  }

  async send(frames: readonly (Uint8Array | Buffer)[]): Promise<void> {
    await this.sock.send([...frames]);
  }

  async receive(): Promise<RawReply> {
    const frames = await this.sock.receive();
    return { frames, body: decode(frames[frames.length - 1]) as RawReply['body'] };
  }

  async call(frames: readonly (Uint8Array | Buffer)[]): Promise<RawReply> {
    await this.send(frames);
    return this.receive();
  }

  /** A well-formed request. */
  request(id: number, type: number, payload: unknown): Uint8Array[] {
    return [encode(id), encode(type), encode(payload)];
  }

  close(): void {
    this.sock.close();
  }
}
