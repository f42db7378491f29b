import { buildRequestTrees, type RequestTree, readSpanFile, renderWaterfall } from '@kvmp/tracing';

export interface TraceFlags {
  readonly url: string;
  readonly file?: string;
  readonly limit: number;
  readonly session?: string;
  readonly width: number;
  readonly color: boolean;
}

/**
 * `kvmp trace`: the built-in viewer's waterfalls in a terminal, read from a running server's
 * `/api/traces` or from a JSON-lines span file (`kvmp serve --trace-file`).
 */
export async function runTrace(flags: TraceFlags, out: (line: string) => void): Promise<number> {
  let trees: RequestTree[];
  try {
    if (flags.file !== undefined) {
      trees = buildRequestTrees(await readSpanFile(flags.file));
    } else {
      const res = await fetch(
        new URL(`/api/traces?limit=${flags.session === undefined ? flags.limit : 10_000}`, flags.url),
      );
      if (!res.ok) throw new Error(`${res.status} ${(await res.text()).trim()}`);
      trees = ((await res.json()) as { traces: RequestTree[] }).traces;
    }
  } catch (err) {
    out(
      `kvmp trace: cannot read traces from ${flags.file ?? flags.url}: ${err instanceof Error ? err.message : String(err)}`,
    );
    return 1;
  }
  if (flags.session !== undefined) trees = trees.filter((t) => t.sessionId === flags.session);
  trees = trees.slice(0, flags.limit);
  if (trees.length === 0) {
    out('no finished requests yet');
    return 0;
  }
  for (const tree of [...trees].reverse()) {
    out(renderWaterfall(tree, { width: flags.width, color: flags.color && process.stdout.isTTY === true }));
    out('');
  }
  return 0;
}
