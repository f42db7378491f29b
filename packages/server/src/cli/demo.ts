import { DemoEngine, demoPrompt } from '../client/demo-engine.js';
import { KvmpClient } from '../client/kvmp-client.js';

export interface DemoOptions {
  readonly connect: string;
  readonly requests: number;
  readonly promptTokens: number;
  /** Distinct shared prefixes (multi-round chat / shared system prompts). */
  readonly prefixes: number;
  readonly concurrency: number;
  /** Keep going in rounds until SIGINT/SIGTERM. */
  readonly loop: boolean;
  /** Total requests, then exit (rounds of `requests` each); overrides `loop`. */
  readonly sessions?: number;
  /** At most this many requests started per second. */
  readonly rate?: number;
  readonly intervalMs: number;
  readonly instanceId: string;
}

/**
 * A demo engine workload over the wire: prompts that share one of a few prefixes, run as
 * lookup → query → retrieve (verified byte for byte) → store → end, `concurrency` at a time.
 * Prints one summary line per round. Exit code 1 if any retrieved chunk was corrupt.
 */
export async function runDemo(o: DemoOptions, out: (line: string) => void): Promise<number> {
  const client = await KvmpClient.connect({ endpoint: o.connect, clientName: 'kvmp-demo', heartbeatIntervalMs: 2000 });
  let stop = false;
  const onSignal = () => {
    stop = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const engine = new DemoEngine(client, { instanceId: o.instanceId });
    const info = await engine.register();
    out(
      `kvmp demo: engine ${engine.instanceId} registered (engine-driven, ${info.chunkBytes} bytes/chunk of ${info.chunkSize} tokens) at ${o.connect}`,
    );
    let corrupt = 0;
    let seq = 0;
    const total = o.sessions ?? (o.loop ? Number.POSITIVE_INFINITY : o.requests);
    let nextStart = performance.now();
    const pace = async () => {
      if (o.rate === undefined) return;
      const now = performance.now();
      const wait = nextStart - now;
      nextStart = Math.max(now, nextStart) + 1000 / o.rate;
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    };
    for (let round = 1; !stop && seq < total; round++) {
      let hit = 0;
      let prompt = 0;
      let stored = 0;
      let next = 0;
      const inRound = Math.min(o.requests, total - seq);
      const started = performance.now();
      const worker = async () => {
        while (!stop && next < inRound) {
          const i = next++;
          await pace();
          const id = `demo-${process.pid}-${++seq}`;
          const tokens = demoPrompt(i % o.prefixes, seq, o.promptTokens, Math.floor(o.promptTokens / 2));
          const r = await engine.runRequest(id, tokens);
          hit += r.hitTokens;
          prompt += r.promptTokens;
          stored += r.storedChunks;
          corrupt += r.corruptChunks;
        }
      };
      await Promise.all(Array.from({ length: o.concurrency }, worker));
      const secs = (performance.now() - started) / 1000;
      out(
        `kvmp demo round ${round}: ${next} requests in ${secs.toFixed(2)} s, hit rate ${((100 * hit) / Math.max(1, prompt)).toFixed(1)}%, ${stored} chunks stored, ${corrupt} corrupt`,
      );
      if (seq < total && o.rate === undefined) await new Promise((r) => setTimeout(r, o.intervalMs));
    }
    return corrupt === 0 ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    client.close();
  }
}
