/**
 * A layout, memory or plan that cannot be used. Thrown (never enqueued) so nothing half-done
 * exists; `field` names the offending input so callers can log it without parsing the message.
 */
export class KvValidationError extends Error {
  override readonly name = 'KvValidationError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** Asserts a safe integer in [min, max]. */
export function checkInt(field: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new KvValidationError(field, `must be an integer, got ${describe(value)}`);
  }
  if (value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new KvValidationError(field, `must be ${range}, got ${value}`);
  }
  return value;
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? `array(${value.length})` : (value.constructor?.name ?? 'object');
}
