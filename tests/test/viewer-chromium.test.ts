/**
 * The built-in viewer in a real browser: headless Debian Chromium (driven by playwright-core)
 * loads `/traces` of a running `kvmp serve` during a demo workload, and the waterfall of a
 * known request is checked — bars present, in time order, the root spanning its children. A
 * screenshot is saved as a test artifact (tests/artifacts/viewer.png).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/server/bin/kvmp.js');
const ARTIFACTS = join(ROOT, 'tests/artifacts');
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

function serve(t: ExecutionContext): { child: ChildProcess; out: () => string } {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'serve',
      '--port=0',
      '--http-port=0',
      '--l1-size-gb=0.25',
      '--hash-threads=1',
      '--log-level=warn',
      '--demo-sessions=24',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, out: () => out };
}

(CHROMIUM ? test : test.skip)('/traces in headless Chromium draws the waterfall of a known request', async (t) => {
  t.timeout(120_000);
  const server = serve(t);
  const deadline = Date.now() + 60_000;
  while (!server.out().includes('demo      finished') && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  const httpUrl = /http\s+(http:\/\/[^/\s]+)/.exec(server.out())?.[1];
  t.truthy(httpUrl, server.out());
  const { traces } = (await (await fetch(`${httpUrl}/api/traces`)).json()) as {
    traces: { traceId: string; sessionId: string; hitRate?: number; spans: { name: string }[] }[];
  };
  // A request that hit: its tree has a retrieve (lookup → retrieve → store or lookup → retrieve).
  const known = traces.find((x) => x.spans.some((s) => s.name === 'mp.retrieve'));
  t.truthy(known, 'the demo produced a cache hit');
  if (known === undefined) return;

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  await page.goto(`${httpUrl}/traces?trace=${known.traceId}&refresh=0`);
  await page.waitForSelector(`#waterfall[data-trace-id="${known.traceId}"] .row`);

  const rows = await page.$$eval('#waterfall .row', (els) =>
    els.map((el) => {
      const bar = el.querySelector('.bar') as HTMLElement;
      const track = el.querySelector('.track') as HTMLElement;
      const b = bar.getBoundingClientRect();
      const tr = track.getBoundingClientRect();
      return {
        name: (el as HTMLElement).dataset.spanName ?? '',
        depth: Number((el as HTMLElement).dataset.depth),
        startMs: Number((el as HTMLElement).dataset.startMs),
        left: b.left - tr.left,
        right: b.right - tr.left,
        trackWidth: tr.width,
        visible: b.width > 0 && b.height > 0,
      };
    }),
  );
  t.deepEqual(
    rows.map((r) => r.name),
    known.spans.map((s) => s.name),
    'one row per span, in waterfall order',
  );
  t.is(rows[0].name, 'request');
  t.true(
    rows.every((r) => r.visible),
    'every bar is drawn',
  );
  const root = rows[0];
  t.true(root.left <= 1 && root.right >= root.trackWidth - 1, 'the root spans the whole track');
  const children = rows.slice(1);
  for (const c of children) {
    t.is(c.depth, 1);
    t.true(c.left >= root.left - 1 && c.right <= root.right + 1, `${c.name} lies within the root`);
  }
  for (let i = 1; i < children.length; i++) {
    t.true(children[i].startMs >= children[i - 1].startMs, 'children in start order');
    t.true(children[i].left >= children[i - 1].left - 1, 'bars placed left to right in time');
  }
  const listed = await page.$$eval('tr.req', (els) => els.map((el) => (el as HTMLElement).dataset.sessionId));
  t.true(listed.includes(known.sessionId), 'the request list shows the session');
  t.is(await page.$eval('tr.req.selected', (el) => (el as HTMLElement).dataset.traceId), known.traceId);

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'viewer.png'), fullPage: true });
  t.true(existsSync(join(ARTIFACTS, 'viewer.png')));
  server.child.kill('SIGTERM');
});
