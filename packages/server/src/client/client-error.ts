import type { WireErrorCode } from '../wire/protocol.js';

export type ClientErrorCode =
  | WireErrorCode
  /** No reply within the call's timeout (the request may still run on the server). */
  | 'TIMEOUT'
  /** The connection was replaced after missed heartbeats; the request's fate is unknown. */
  | 'CONNECTION_LOST'
  /** `close()` was called. */
  | 'CLIENT_CLOSED'
  /** The server's reply could not be decoded. */
  | 'BAD_REPLY';

/** A failed call: the server's error code and message, or a client-side condition. */
export class KvmpClientError extends Error {
  readonly code: ClientErrorCode;

  constructor(code: ClientErrorCode, message: string) {
    super(message);
    this.name = 'KvmpClientError';
    this.code = code;
  }
}
