import type { WireErrorCode } from './protocol.js';

/**
 * An error the server turns into an error reply. Messages name fields and limits, never values
 * of token ids, KV bytes or cache salts.
 */
export class WireError extends Error {
  readonly code: WireErrorCode;

  constructor(code: WireErrorCode, message: string) {
    super(message);
    this.name = 'WireError';
    this.code = code;
  }
}

export function badField(message: string): WireError {
  return new WireError('BAD_FIELD', message);
}
