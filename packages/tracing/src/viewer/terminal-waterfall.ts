import type { RequestTree } from './request-tree.js';

export interface WaterfallOptions {
  /** Columns for the bar area. Default 60. */
  readonly width?: number;
  /** ANSI colours (errors red, root bold). Default false. */
  readonly color?: boolean;
}

const fmtMs = (ms: number): string =>
  ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`;

/**
 * Renders one request tree as a text waterfall: one line per span, indented by depth, with a
 * bar placed in time relative to the root.
 *
 * ```
 * request  s-17  2.41 ms  hit 75%  deferred
 *   request            |██████████████████████████████| 2.41 ms
 *     mp.lookup_prefetch |█                             | 38 µs
 * ```
 */
export function renderWaterfall(tree: RequestTree, options: WaterfallOptions = {}): string {
  const width = options.width ?? 60;
  const color = options.color ?? false;
  const total = Math.max(tree.durationMs, ...tree.spans.map((s) => s.startMs + s.durationMs), 1e-6);
  const label = (s: { name: string; depth: number }): string => `${'  '.repeat(s.depth)}${s.name}`;
  const labelWidth = Math.max(...tree.spans.map((s) => label(s).length));
  const head = [
    `request ${tree.sessionId}`,
    fmtMs(tree.durationMs),
    tree.hitRate === undefined ? undefined : `hit ${(tree.hitRate * 100).toFixed(0)}%`,
    tree.deferred ? 'deferred close' : undefined,
    tree.errors > 0 ? `${tree.errors} error${tree.errors > 1 ? 's' : ''}` : undefined,
    `trace ${tree.traceId}`,
  ]
    .filter((x) => x !== undefined)
    .join('  ');
  const lines = [color ? `\x1b[1m${head}\x1b[0m` : head];
  for (const s of tree.spans) {
    const from = Math.min(width - 1, Math.floor((s.startMs / total) * width));
    const len = Math.max(1, Math.round((s.durationMs / total) * width));
    const bar =
      ' '.repeat(from) + '█'.repeat(Math.min(len, width - from)) + ' '.repeat(Math.max(0, width - from - len));
    let line = `  ${label(s).padEnd(labelWidth)} |${bar}| ${fmtMs(s.durationMs)}`;
    if (s.status === 'ERROR') line += `  ERROR${s.statusMessage ? `: ${s.statusMessage}` : ''}`;
    if (color && s.status === 'ERROR') line = `\x1b[31m${line}\x1b[0m`;
    lines.push(line);
  }
  return lines.join('\n');
}
