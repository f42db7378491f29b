/**
 * The built-in trace viewer page served at `/traces`: self-contained HTML (no external
 * scripts, styles or fonts) that reads `/api/traces` and draws each request as a waterfall,
 * child bars placed in time relative to the root. Elements carry `data-*` attributes so tests
 * (and curious users) can read the drawing back.
 */
export function tracesPageHtml(options: { readonly apiPath?: string; readonly refreshMs?: number } = {}): string {
  const api = JSON.stringify(options.apiPath ?? '/api/traces');
  const refresh = options.refreshMs ?? 2000;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>kvmp — request traces</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root { --bar: #3b82f6; --root: #1e3a8a; --err: #dc2626; --muted: #6b7280; }
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #111827; }
  header { padding: 10px 16px; background: #111827; color: #f9fafb; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 16px; margin: 0; }
  header span { color: #9ca3af; }
  main { display: grid; grid-template-columns: minmax(420px, 40%) 1fr; height: calc(100vh - 42px); }
  #list { overflow: auto; border-right: 1px solid #e5e7eb; }
  table { border-collapse: collapse; width: 100%; }
  th, td { padding: 4px 8px; text-align: left; white-space: nowrap; border-bottom: 1px solid #f3f4f6; }
  th { position: sticky; top: 0; background: #f9fafb; font-weight: 600; }
  tr.req { cursor: pointer; }
  tr.req:hover { background: #eff6ff; }
  tr.req.selected { background: #dbeafe; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .err { color: var(--err); font-weight: 600; }
  #detail { padding: 12px 16px; overflow: auto; }
  #detail h2 { font-size: 15px; margin: 0 0 4px; }
  #detail .meta { color: var(--muted); margin-bottom: 12px; }
  .row { display: grid; grid-template-columns: 220px 1fr 90px; align-items: center; gap: 8px; height: 24px; }
  .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .track { position: relative; height: 14px; background: #f3f4f6; border-radius: 2px; }
  .bar { position: absolute; top: 0; height: 14px; min-width: 2px; background: var(--bar); border-radius: 2px; }
  .bar.root { background: var(--root); }
  .bar.error { background: var(--err); }
  .dur { text-align: right; font-variant-numeric: tabular-nums; color: var(--muted); }
  .attrs { margin-top: 12px; font: 12px ui-monospace, monospace; color: #374151; white-space: pre-wrap; }
  .empty { padding: 24px; color: var(--muted); }
</style>
</head>
<body>
<header><h1>kvmp request traces</h1><span id="summary">loading…</span></header>
<main>
  <section id="list"><div class="empty">No finished requests yet.</div></section>
  <section id="detail"><div class="empty">Select a request.</div></section>
</main>
<script>
(() => {
  const API = ${api};
  const REFRESH_MS = Number(new URLSearchParams(location.search).get('refresh') ?? ${refresh});
  let trees = [];
  let selected = new URLSearchParams(location.search).get('trace');
  const ms = (x) => x >= 100 ? x.toFixed(0) + ' ms' : x >= 1 ? x.toFixed(2) + ' ms' : (x * 1000).toFixed(0) + ' µs';
  const el = (tag, props = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'dataset') Object.assign(e.dataset, v); else if (k === 'style') Object.assign(e.style, v); else e[k] = v;
    }
    for (const kid of kids) e.append(kid);
    return e;
  };
  function renderList() {
    const list = document.getElementById('list');
    document.getElementById('summary').textContent = trees.length + ' recent requests';
    if (trees.length === 0) { list.replaceChildren(el('div', { className: 'empty', textContent: 'No finished requests yet.' })); return; }
    const head = el('tr', {}, ...['session', 'duration', 'hit rate', 'deferred', 'errors'].map((h) => el('th', { textContent: h })));
    const rows = trees.map((t) => {
      const row = el('tr', { className: 'req' + (t.traceId === selected ? ' selected' : ''), dataset: { traceId: t.traceId, sessionId: t.sessionId } },
        el('td', { textContent: t.sessionId }),
        el('td', { className: 'num', textContent: ms(t.durationMs) }),
        el('td', { className: 'num', textContent: t.hitRate === undefined ? '—' : (t.hitRate * 100).toFixed(0) + '%' }),
        el('td', { textContent: t.deferred ? 'yes' : '' }),
        el('td', { className: t.errors > 0 ? 'num err' : 'num', textContent: String(t.errors) }));
      row.addEventListener('click', () => { selected = t.traceId; renderList(); renderDetail(); });
      return row;
    });
    list.replaceChildren(el('table', {}, el('thead', {}, head), el('tbody', {}, ...rows)));
  }
  function renderDetail() {
    const detail = document.getElementById('detail');
    const t = trees.find((x) => x.traceId === selected);
    if (!t) { detail.replaceChildren(el('div', { className: 'empty', textContent: 'Select a request.' })); return; }
    const total = Math.max(t.durationMs, ...t.spans.map((s) => s.startMs + s.durationMs), 1e-6);
    const rows = t.spans.map((s) => {
      const left = (s.startMs / total) * 100, width = (s.durationMs / total) * 100;
      const cls = 'bar' + (s.depth === 0 ? ' root' : '') + (s.status === 'ERROR' ? ' error' : '');
      return el('div', { className: 'row', dataset: { spanName: s.name, depth: String(s.depth), startMs: String(s.startMs), durationMs: String(s.durationMs), status: s.status } },
        el('div', { className: 'name', textContent: '\\u00a0\\u00a0'.repeat(s.depth) + s.name, title: JSON.stringify(s.attributes, null, 1) }),
        el('div', { className: 'track' }, el('div', { className: cls, style: { left: left + '%', width: width + '%' } })),
        el('div', { className: 'dur', textContent: ms(s.durationMs) }));
    });
    const root = t.spans[0];
    detail.replaceChildren(
      el('h2', { textContent: 'request ' + t.sessionId }),
      el('div', { className: 'meta', textContent: 'trace ' + t.traceId + ' · ' + ms(t.durationMs) + (t.deferred ? ' · root close deferred for in-flight copies' : '') }),
      el('div', { id: 'waterfall', dataset: { traceId: t.traceId } }, ...rows),
      el('div', { className: 'attrs', textContent: JSON.stringify(root.attributes, null, 2) }));
  }
  async function load() {
    try {
      const res = await fetch(API);
      const body = await res.json();
      trees = body.traces;
      if (!selected && trees.length > 0) selected = trees[0].traceId;
      renderList(); renderDetail();
    } catch (err) {
      document.getElementById('summary').textContent = 'cannot load ' + API + ': ' + err;
    }
  }
  load();
  if (REFRESH_MS > 0) setInterval(load, REFRESH_MS);
})();
</script>
</body>
</html>
`;
}
