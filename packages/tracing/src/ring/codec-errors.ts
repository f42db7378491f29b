/** Thrown by `publish` for input that cannot be encoded; nothing is written to the ring. */
export class EventEncodingError extends Error {
  override readonly name = 'EventEncodingError';
  constructor(
    readonly eventType: string,
    readonly field: string,
    message: string,
  ) {
    super(`cannot publish ${eventType}: field '${field}' ${message}`);
  }
}
