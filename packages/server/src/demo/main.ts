/**
 * `npm start`: the in-process demo. Starts the cache server (hashing pool, GPU worker thread on
 * the cpu backend, drain thread with the request tracing subscriber writing JSON lines), drives
 * it with the fake engine through a small chat-like workload, checks every retrieved token's
 * KV byte for byte, and prints what happened and one request's span tree.
 *
 * Options: --requests N (default 24), --spans FILE (default a temp file, removed unless given).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSpanFile, requestTracingSubscriber, type SpanRecord } from '@kvmp/tracing';
import { createCacheServer } from '../create-cache-server.js';
import { FakeEngine, fakePrompt } from '../engine/fake-engine.js';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};

function tree(spans: readonly SpanRecord[], sessionId: string): string[] {
  const mine = spans.filter((s) => s.attributes.session_id === sessionId);
  const root = mine.find((s) => s.name === 'request');
  if (root === undefined) return [`(no spans for ${sessionId})`];
  const ms = (s: SpanRecord) => (Number(s.endTimeUnixNano - s.startTimeUnixNano) / 1e6).toFixed(3);
  const lines = [
    `request ${sessionId}  ${ms(root)} ms  hit_tokens=${root.attributes.hit_tokens} requested_tokens=${root.attributes.requested_tokens}`,
  ];
  const kids = mine
    .filter((s) => s.parentSpanId === root.spanId)
    .sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1));
  for (const k of kids) {
    const a = k.attributes;
    const what =
      k.name === 'mp.store'
        ? `stored_count=${a.stored_count} bytes=${a.total_bytes}`
        : k.name === 'mp.retrieve'
          ? `retrieved_count=${a.retrieved_count} bytes=${a.total_bytes}`
          : `found_count=${a.found_count}`;
    lines.push(`  └ ${k.name.padEnd(20)} ${ms(k)} ms  ${what}`);
  }
  return lines;
}

async function main(): Promise<void> {
  const requests = Number(arg('requests') ?? 24);
  const given = arg('spans');
  const dir = given ? undefined : mkdtempSync(join(tmpdir(), 'kvmp-demo-'));
  const spanFile = given ?? join(dir as string, 'spans.jsonl');
  const chunk = 256;

  const server = await createCacheServer({
    chunkSize: chunk,
    l1: { capacityBytes: 64 * 1024 * 1024 },
    pool: { threads: 1 },
    tracing: { subscribers: [requestTracingSubscriber({ exporter: 'jsonl', file: spanFile })] },
  });
  const engine = new FakeEngine({ instanceId: 'demo-engine', blockSize: 16, numBlocks: 2048 });
  await engine.register(server);
  console.log(
    `kvmp demo: cache server in process (${server.backend} backend, chunk ${chunk} tokens, L1 ${server.status().l1.capacityBytes >> 20} MiB)`,
  );

  // A chat-like workload: a few system prompts, each conversation growing turn by turn.
  const systems = [fakePrompt(3 * chunk, 1), fakePrompt(2 * chunk + 100, 2), fakePrompt(4 * chunk, 3)];
  const conversations = new Map<number, Uint32Array>();
  let hit = 0;
  let total = 0;
  let corrupt = 0;
  let stored = 0;
  for (let i = 0; i < requests; i++) {
    const c = i % 6;
    const prev = conversations.get(c) ?? systems[c % systems.length];
    const turn = fakePrompt(150 + ((i * 37) % 200), 100 + i);
    const tokens = new Uint32Array(prev.length + turn.length);
    tokens.set(prev);
    tokens.set(turn, prev.length);
    conversations.set(c, tokens);
    const r = await engine.runRequest(server, { requestId: `req-${i}`, tokens });
    hit += r.hitTokens;
    total += r.promptTokens;
    corrupt += r.corruptTokens;
    stored += r.storedChunks;
    if (i < 6 || i === requests - 1) {
      console.log(
        `  req-${i}: ${r.promptTokens} tokens, ${r.hitTokens} from cache, ${r.computedTokens} computed, ${r.storedChunks} chunk${r.storedChunks === 1 ? '' : 's'} stored, KV ${r.corruptTokens === 0 ? 'verified' : `CORRUPT (${r.corruptTokens} tokens)`}`,
      );
    } else if (i === 6) console.log('  ...');
  }
  const st = server.status();
  console.log(
    `${requests} requests: ${((hit / total) * 100).toFixed(1)}% of prompt tokens served from cache, ${stored} chunks stored, ` +
      `L1 ${st.l1.objects} objects / ${(st.l1.usedBytes / 1048576).toFixed(1)} MiB, ${corrupt === 0 ? 'every retrieved token byte-exact' : `${corrupt} corrupt tokens`}`,
  );
  await server.close();
  const spans = await readSpanFile(spanFile);
  console.log(`${spans.length} spans exported to ${given ? spanFile : 'a temp JSON-lines file'}; the last request:`);
  for (const line of tree(spans, `req-${requests - 1}`)) console.log(`  ${line}`);
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (corrupt > 0) process.exitCode = 1;
}

await main();
