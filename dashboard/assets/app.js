// cdclake dashboard: polls the /v1 API every few seconds and draws the
// pipeline, the tables, the checks and the KPIs. Plain JavaScript, no
// build step; charts with uPlot (uPlot.iife.min.js).
'use strict';

const TOKEN_KEY = 'cdclake-token';
const POLL_MS = 5000;       // sources, tables, checks, KPI list
const SLOW_MS = 15000;      // throughput and KPI histories
const COLORS = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

const ui = {
  sources: new Map(),  // source name -> {card, chart}
  kpis: new Map(),     // KPI name -> {card, chart, sig, runs, resultAt, fetchedAt, column}
  throughput: null,
  throughputAt: 0,
  detail: null,        // {path, kind}
  timer: 0,
};

// ---- API -------------------------------------------------------------

class AuthError extends Error {}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

// api GETs a /v1 path as JSON; null when the route is absent (404).
async function api(path) {
  const headers = { Accept: 'application/json' };
  if (token()) headers.Authorization = 'Bearer ' + token();
  const resp = await fetch(path, { headers, cache: 'no-store' });
  if (resp.status === 401) throw new AuthError(token() ? 'the token was refused' : 'this server needs a token');
  if (resp.status === 404) return null;
  if (!resp.ok) {
    let msg = resp.status + ' ' + resp.statusText;
    try { msg = (await resp.json()).error.message; } catch (e) { /* not JSON */ }
    throw new Error(path + ': ' + msg);
  }
  return resp.json();
}

// allTables follows the pages of GET /v1/tables.
async function allTables() {
  let out = [], next = null;
  do {
    const page = await api('/v1/tables?limit=1000' + (next ? '&page_token=' + encodeURIComponent(next) : ''));
    if (!page) return out;
    out = out.concat(page.tables);
    next = page.next_page_token;
  } while (next);
  return out;
}

// ---- helpers -----------------------------------------------------------

// el builds an element; text is always set as text, never parsed as HTML.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c != null) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function $(id) { return document.getElementById(id); }

function ago(iso) {
  if (!iso) return '—';
  const s = (Date.now() - Date.parse(iso)) / 1000;
  return duration(s) + ' ago';
}

function duration(s) {
  if (s == null) return '—';
  s = Math.max(0, s);
  if (s < 90) return Math.round(s) + ' s';
  if (s < 5400) return Math.round(s / 60) + ' min';
  if (s < 172800) return (s / 3600).toFixed(1) + ' h';
  return (s / 86400).toFixed(1) + ' d';
}

function bytes(n) {
  if (n == null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + units[i];
}

function num(n) { return n == null ? '—' : Number(n).toLocaleString('en-US'); }

function badge(text) { return el('span', { class: 'badge ' + text }, text); }

function dataTable(columns, rows) {
  return el('div', { class: 'scroll' }, el('table', { class: 'grid' },
    el('thead', {}, el('tr', {}, columns.map(c => el('th', { title: c.type }, c.name)))),
    el('tbody', {}, rows.map(r => el('tr', {}, r.map(v => el('td', {}, v == null ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : v)))))));
}

function chartWidth(box) { return Math.max(200, box.clientWidth || 400); }

// ---- checks ------------------------------------------------------------

function renderChecks(doc) {
  const list = $('check-list');
  if (!doc) {
    list.replaceChildren(el('div', { class: 'empty' }, 'Checks are off on this server (no checks folder).'));
    $('checks-summary').textContent = '';
    return;
  }
  const open = new Set([...list.querySelectorAll('details[open]')].map(d => d.dataset.check));
  const failing = doc.checks.filter(c => c.status === 'failing').length;
  $('checks-summary').textContent = doc.checks.length ? `${failing} failing of ${doc.checks.length}` : '';
  list.replaceChildren(...doc.checks.map(c => {
    const show = c.status === 'failing' || open.has(c.name);
    return el('details', { class: 'check ' + c.status, 'data-check': c.name, 'data-status': c.status, open: show },
      el('summary', {},
        badge(c.status),
        el('span', { class: 'name' }, c.name),
        el('span', { class: 'desc', title: c.description || '' }, c.description || ''),
        el('span', {}, `${num(c.violations)} violating (threshold ${c.threshold})`),
        el('span', { class: 'muted', title: c.since || '' }, c.since ? 'since ' + ago(c.since) : ''),
        el('span', { class: 'muted' }, 'every ' + c.schedule)),
      c.last_error ? el('div', { class: 'err' }, 'last run failed: ' + c.last_error) : null,
      c.sample && c.sample.rows.length
        ? [dataTable(c.sample.columns, c.sample.rows),
           c.violations > c.sample.rows.length ? el('div', { class: 'muted' }, `first ${c.sample.rows.length} of ${num(c.violations)} rows; all are in the lake under ${c.key || 'checks/' + c.name + '/'}`) : null]
        : el('div', { class: 'empty' }, 'no violating rows'));
  }));
  if (!doc.checks.length) list.append(el('div', { class: 'empty' }, 'No checks in the checks folder.'));
}

// ---- pipeline ----------------------------------------------------------

function renderSources(doc) {
  const box = $('source-list');
  const names = new Set();
  for (const s of doc ? doc.sources : []) {
    names.add(s.name);
    let item = ui.sources.get(s.name);
    if (!item) {
      item = { card: el('div', { class: 'card source', 'data-source': s.name }), chart: null };
      item.facts = el('dl', { class: 'facts' });
      item.spark = el('div', { class: 'spark' });
      item.rate = el('div', { class: 'rate' });
      item.snap = el('div', { class: 'progress' });
      item.head = el('div', { class: 'head' });
      item.card.append(item.head, item.facts, item.rate, item.spark, item.snap);
      ui.sources.set(s.name, item);
      box.append(item.card);
    }
    item.head.replaceChildren(el('h3', { title: s.name }, s.name), badge(s.state));
    const wm = s.watermark;
    item.facts.replaceChildren(
      el('dt', {}, 'watermark'), el('dd', { title: wm.commit_time || '' }, `${wm.lsn_text} · ${wm.commit_time ? ago(wm.commit_time) : 'no commit yet'}`),
      el('dt', {}, 'lag'), el('dd', { title: 'time since the lake was complete through' }, s.lag_seconds == null ? 'not known yet' : duration(s.lag_seconds) + ' behind'),
      el('dt', {}, 'WAL held'), el('dd', { title: 'WAL the replication slot holds past its confirmed position' },
        s.slot_lag_bytes == null ? 'not known to this server' : bytes(s.slot_lag_bytes)),
      el('dt', {}, 'slot'), el('dd', {}, s.slot));
    const tables = s.snapshot ? s.snapshot.tables : [];
    item.snap.replaceChildren(...tables.flatMap(t => {
      const done = t.state === 'done';
      const total = Math.max(t.total_bytes || 0, t.bytes || 0, 1);
      return [el('span', { title: `${t.schema}.${t.table}: ${num(t.rows)} rows, ${bytes(t.bytes)} of ${bytes(t.total_bytes)}` },
        `${t.schema}.${t.table} · ${done ? 'copied' : t.state} · ${num(t.rows)} rows`),
        el('progress', { max: total, value: done ? total : t.bytes })];
    }));
  }
  for (const [name, item] of ui.sources) {
    if (!names.has(name)) { item.card.remove(); if (item.chart) item.chart.destroy(); ui.sources.delete(name); }
  }
  if (!names.size) box.replaceChildren(el('div', { class: 'empty' }, 'No sources in the catalog yet.'));
  else box.querySelectorAll('.empty').forEach(e => e.remove());
  drawThroughput();
}

function drawThroughput() {
  const t = ui.throughput;
  if (!t) return;
  const xs = t.times.map(x => Date.parse(x) / 1000);
  for (const s of t.sources) {
    const item = ui.sources.get(s.source);
    if (!item) continue;
    const n = s.rows_per_second.length;
    const last = n > 1 ? s.rows_per_second[n - 2] : 0; // the last complete step
    const total = s.rows.reduce((a, b) => a + b, 0);
    item.rate.textContent = `${last.toFixed(1)} rows/s (last ${t.step_seconds} s step) · ${num(total)} rows in the last ${duration(n * t.step_seconds)}`;
    const data = [xs, s.rows_per_second];
    if (item.chart) { item.chart.setData(data); continue; }
    item.chart = new uPlot({
      width: chartWidth(item.spark), height: 64, legend: { show: false }, cursor: { show: true, points: { show: false } },
      scales: { x: { time: true } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { label: 'rows/s', stroke: COLORS[0], fill: 'rgba(37,99,235,.12)', width: 1.5 }],
    }, data, item.spark);
  }
}

// ---- tables ------------------------------------------------------------

function compaction(t) {
  if (!t.snapshot) return { state: 'none', title: 'not compacted yet: queries merge the whole changelog' };
  const at = t.snapshot.updated_at;
  const lsn = t.last_change && t.last_change.lsn;
  if (lsn == null || (t.snapshot_lsn != null && t.snapshot_lsn >= lsn)) return { state: 'current', title: 'compacted ' + ago(at) };
  return { state: 'behind', title: 'compacted ' + ago(at) + '; changes since are merged on read' };
}

function renderTables(tables, sources) {
  const lag = new Map((sources ? sources.sources : []).map(s => [s.name, s.lag_seconds]));
  const body = $('table-list');
  body.replaceChildren(...tables.map(t => {
    const id = `${t.source}.${t.schema}.${t.name}`;
    const c = compaction(t);
    return el('tr', { 'data-table': id, class: ui.detail && ui.detail.path === t.path ? 'selected' : null },
      el('td', {}, id),
      el('td', { class: 'num' }, num(t.rows)),
      el('td', { class: 'num' }, num(t.changelog ? t.changelog.rows : null)),
      el('td', { title: t.last_change ? t.last_change.time : '' }, t.last_change ? ago(t.last_change.time) : '—'),
      el('td', {}, lag.get(t.source) == null ? '—' : 'fresh to ' + duration(lag.get(t.source))),
      el('td', { title: c.title }, badge(c.state)),
      el('td', {},
        el('button', { class: 'link', type: 'button', onclick: () => showDetail(t.path, 'schema', id) }, 'schema'),
        el('button', { class: 'link', type: 'button', onclick: () => showDetail(t.path, 'partitions', id) }, 'partitions')));
  }));
  if (!tables.length) body.append(el('tr', {}, el('td', { colspan: 7, class: 'empty' }, 'No tables in the lake yet.')));
}

async function showDetail(path, kind, id) {
  ui.detail = { path, kind, id };
  const box = $('detail');
  box.hidden = false;
  box.replaceChildren(el('div', { class: 'empty' }, 'loading…'));
  document.querySelectorAll('#table-list tr').forEach(tr => tr.classList.toggle('selected', tr.dataset.table === id));
  try {
    const doc = await api(path + '/' + kind + (kind === 'partitions' ? '?limit=1000' : ''));
    const head = el('div', { class: 'head' }, el('h3', {}, `${id} — ${kind}`),
      el('button', { class: 'link', type: 'button', onclick: hideDetail }, 'close'));
    if (kind === 'schema') {
      box.replaceChildren(head, el('div', { class: 'muted' }, `schema version ${doc.schema_id}, ${doc.history.length} version(s)`),
        dataTable([{ name: 'column' }, { name: 'PostgreSQL type' }, { name: 'lake type' }, { name: 'required' }],
          doc.columns.map(c => [c.name, c.pg_type || '—', c.lake_type, c.required ? 'yes' : 'no'])));
    } else {
      const parts = doc.partitions.slice().reverse();
      box.replaceChildren(head, el('div', { class: 'muted' }, `${parts.length} hour partition(s); complete through ${doc.complete_through || '—'}`),
        dataTable([{ name: 'hour' }, { name: 'closed' }, { name: 'rows' }, { name: 'files' }, { name: 'bytes' }],
          parts.map(p => [p.hour, p.closed ? 'closed' : 'open', num(p.rows), p.files, bytes(p.bytes)])));
    }
  } catch (e) {
    box.replaceChildren(el('div', { class: 'banner' }, e.message));
  }
}

function hideDetail() {
  ui.detail = null;
  $('detail').hidden = true;
  document.querySelectorAll('#table-list tr.selected').forEach(tr => tr.classList.remove('selected'));
}

// ---- KPIs --------------------------------------------------------------

// column types as POST /v1/query names them (PostgreSQL's names)
const NUMERIC = /^(smallint|integer|bigint|numeric|real|double precision)$/;
const TEMPORAL = /^(date|timestamp|timestamptz)$/;

function toNumber(v) { return v == null ? null : typeof v === 'number' ? v : Number(v); }

// kpiSeries turns stored results into chart data: a KPI whose first
// column is a time is drawn from its latest result (x = that column);
// any other KPI is drawn over its runs, one line per row label.
function kpiSeries(runs, column) {
  const latest = runs[runs.length - 1];
  const cols = latest.columns;
  const numeric = cols.map((c, i) => i).filter(i => NUMERIC.test(cols[i].type));
  if (!numeric.length) return null;
  const y = numeric.includes(column) ? column : numeric[0];
  if (TEMPORAL.test(cols[0].type)) {
    const rows = latest.rows.filter(r => r[0] != null).map(r => [Date.parse(r[0]) / 1000, toNumber(r[y])]).sort((a, b) => a[0] - b[0]);
    return { numeric, y, mode: 'latest', labels: [cols[y].name], data: [rows.map(r => r[0]), rows.map(r => r[1])] };
  }
  const labelCols = cols.map((c, i) => i).filter(i => !numeric.includes(i) && !TEMPORAL.test(cols[i].type));
  const label = r => labelCols.length ? labelCols.map(i => r[i] == null ? 'NULL' : String(r[i])).join(' · ') : cols[y].name;
  const labels = [];
  for (const run of runs) for (const r of run.rows) if (!labels.includes(label(r)) && labels.length < COLORS.length) labels.push(label(r));
  const xs = runs.map(run => Date.parse(run.run_at) / 1000);
  const series = labels.map(l => runs.map(run => {
    const r = run.rows.find(r => label(r) === l);
    return r ? toNumber(r[y]) : null;
  }));
  return { numeric, y, mode: 'history', labels, data: [xs, ...series] };
}

async function renderKPIs(doc) {
  const box = $('kpi-list');
  if (!doc) {
    box.replaceChildren(el('div', { class: 'empty' }, 'KPIs are off on this server (no KPI folder).'));
    return;
  }
  const names = new Set(doc.kpis.map(k => k.name));
  for (const [name, item] of ui.kpis) {
    if (!names.has(name)) { item.card.remove(); if (item.chart) item.chart.destroy(); ui.kpis.delete(name); }
  }
  box.querySelectorAll('.empty').forEach(e => e.remove());
  if (!doc.kpis.length) box.append(el('div', { class: 'empty' }, 'No KPIs in the KPI folder.'));
  await Promise.all(doc.kpis.map(async k => {
    let item = ui.kpis.get(k.name);
    if (!item) {
      item = { card: el('div', { class: 'card kpi', 'data-kpi': k.name, 'data-points': 0 }), column: -1, fetchedAt: 0 };
      item.head = el('div', { class: 'head' });
      item.info = el('div', { class: 'muted' });
      item.box = el('div', { class: 'chart' });
      item.card.append(item.head, item.info, item.box);
      ui.kpis.set(k.name, item);
      box.append(item.card);
    }
    item.kpi = k;
    const fresh = item.resultAt === k.result_at && Date.now() - item.fetchedAt < SLOW_MS;
    if (!fresh && k.result_at) {
      const hist = await api('/v1/kpis/' + encodeURIComponent(k.name) + '/history?limit=120');
      item.runs = hist ? hist.runs : [];
      item.resultAt = k.result_at;
      item.fetchedAt = Date.now();
    }
    drawKPI(item);
  }));
}

function drawKPI(item) {
  const k = item.kpi;
  const s = item.runs && item.runs.length ? kpiSeries(item.runs, item.column) : null;
  const select = s && s.numeric.length > 1
    ? el('select', { 'aria-label': 'column', onchange: e => { item.column = Number(e.target.value); item.sig = null; drawKPI(item); } },
        s.numeric.map(i => el('option', { value: i, selected: i === s.y }, item.runs[item.runs.length - 1].columns[i].name)))
    : null;
  item.head.replaceChildren(...[el('h3', { title: k.name }, k.name), select, k.last_error ? badge('error') : null].filter(Boolean));
  item.info.textContent = [k.description, k.result_at ? 'result ' + ago(k.result_at) : 'no result yet', 'every ' + k.schedule,
    s ? (s.mode === 'latest' ? 'latest result' : `${item.runs.length} stored results`) : ''].filter(Boolean).join(' · ');
  if (k.last_error) item.info.title = k.last_error;
  if (!s) {
    if (item.chart) { item.chart.destroy(); item.chart = null; }
    item.box.replaceChildren(el('div', { class: 'empty' }, k.result_at ? 'no numeric column to chart' : 'waiting for the first run'));
    item.card.dataset.points = 0;
    return;
  }
  const sig = s.mode + '|' + s.y + '|' + s.labels.join('\u0000');
  item.card.dataset.points = s.data[0].length;
  if (item.chart && item.sig === sig) { item.chart.setData(s.data); return; }
  if (item.chart) item.chart.destroy();
  item.box.replaceChildren();
  item.sig = sig;
  item.chart = new uPlot({
    width: chartWidth(item.box), height: 220,
    // one point: an hour either side (uPlot would widen a range of seconds by 1000 days)
    scales: { x: { time: true, range: (u, min, max) => u.data[0].length === 1 ? [u.data[0][0] - 3600, u.data[0][0] + 3600] : [min, max] } },
    series: [{}, ...s.labels.map((l, i) => ({ label: l, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true, points: { show: s.data[0].length < 60 } }))],
  }, s.data, item.box);
}

// ---- refresh loop, login -------------------------------------------------

function banner(msg, info) {
  const b = $('banner');
  b.hidden = !msg;
  b.className = 'banner' + (info ? ' info' : '');
  b.textContent = msg || '';
}

function showLogin(signedIn) {
  $('login').hidden = signedIn;
  $('logout').hidden = !signedIn || !token();
}

async function refresh() {
  clearTimeout(ui.timer);
  try {
    const slow = Date.now() - ui.throughputAt >= SLOW_MS;
    const [sources, tables, checks, kpis, tp] = await Promise.all([
      api('/v1/sources'), allTables(), api('/v1/checks'), api('/v1/kpis'),
      slow ? api('/v1/throughput?window=1h&step=1m') : Promise.resolve(ui.throughput)]);
    if (slow) { ui.throughput = tp; ui.throughputAt = Date.now(); }
    renderChecks(checks);
    renderSources(sources);
    renderTables(tables, sources);
    await renderKPIs(kpis);
    banner('');
    showLogin(true);
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    if (e instanceof AuthError) {
      showLogin(false);
      banner('Sign in: ' + e.message + ' (the value of CDCLAKE_TOKEN).', true);
      $('token').focus();
    } else {
      banner('Cannot refresh: ' + e.message);
    }
  }
  ui.timer = setTimeout(refresh, POLL_MS);
}

$('login').addEventListener('submit', e => {
  e.preventDefault();
  const t = $('token').value.trim();
  if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
  $('token').value = '';
  refresh();
});

$('logout').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
});

window.addEventListener('resize', () => {
  for (const item of [...ui.sources.values(), ...ui.kpis.values()]) {
    if (item.chart) item.chart.setSize({ width: chartWidth(item.spark || item.box), height: item.chart.height });
  }
});

showLogin(!!token());
refresh();
