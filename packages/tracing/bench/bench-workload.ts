/** The "typical MP event" every side of the events benchmark publishes. */
export const SESSION_ID = '3f2b8c1e-5d4a-4e6b-9a7c-0123456789ab'; // 36 characters, like a request uuid
export const MODEL_NAME = 'meta-llama/Llama-3.1-8B';
export const typicalMeta = (i: number) => ({ key_count: i & 0xff, total_bytes: i * 4096, model_name: MODEL_NAME });

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}
