import { readFile } from 'node:fs/promises';
import { parseSpanLine, type SpanRecord } from './span-record.js';

/**
 * Reads a JSON-lines span file written by the `jsonl` exporter, in file (export) order.
 * Blank lines are skipped; a malformed line throws with its line number.
 */
export async function readSpanFile(path: string): Promise<SpanRecord[]> {
  const text = await readFile(path, 'utf8');
  const out: SpanRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    try {
      out.push(parseSpanLine(lines[i]));
    } catch (err) {
      throw new Error(`${path}:${i + 1}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return out;
}
