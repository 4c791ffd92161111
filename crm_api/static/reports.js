// The Reports page: the three reports for a date range, drawn as plain SVG. Every value reaches the page through
// textContent or an attribute set in the DOM (no HTML built from data), and every handler is attached here: the
// page's CSP runs only this file.
const $ = id => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const token = () => sessionStorage.getItem('crm_token');
const api = (path, opts = {}) => fetch('/v1/crm' + path, {...opts, headers: {'Authorization': 'Bearer ' + token()}});
const money = v => Number(v || 0).toLocaleString(undefined, {minimumFractionDigits: 2, maximumFractionDigits: 2});
const sleep = ms => new Promise(r => setTimeout(r, ms));

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function query(kind) {
  const q = new URLSearchParams();
  if ($('from').value) q.set('from', $('from').value);
  if ($('to').value) q.set('to', $('to').value);
  if (kind === 'new_contacts') q.set('interval', $('interval').value);
  return q;
}

async function fetchReport(kind, refresh) {
  const q = query(kind);
  if (refresh) q.set('refresh', '1');
  let r = await api(`/reports/${kind}?${q}`);
  let body = await r.json();
  if (!r.ok) throw new Error((body.error && body.error.message) || r.statusText);
  if (r.status === 200) return body;
  while (!['completed', 'failed', 'cancelled'].includes(body.status)) {  // 202: the job computing it
    await sleep(400);
    body = await (await api('/jobs/' + body.id)).json();
  }
  if (body.status !== 'completed') throw new Error(`the ${kind} report ${body.status}`);
  return body.result;
}

function barChart(svg, items, {height = 200, cls = 'rbar'} = {}) {
  // items: [{label, value}] as vertical bars, with the largest value and a few labels along the bottom.
  svg.replaceChildren();
  const width = Number(svg.getAttribute('width')), top = 14, bottom = 30, left = 36;
  const max = Math.max(1, ...items.map(i => i.value));
  const step = (width - left) / Math.max(1, items.length), h = height - top - bottom;
  svg.append(el('line', {x1: left, y1: top + h, x2: width, y2: top + h, class: 'axis'}));
  svg.append(el('text', {x: 0, y: top + 4}, String(max)));
  const every = Math.ceil(items.length / 8);
  items.forEach((item, i) => {
    const bh = h * item.value / max;
    const bar = el('rect', {x: left + i * step + 1, y: top + h - bh, width: Math.max(1, step - 2), height: bh,
                            class: cls, 'data-testid': 'bar', 'data-value': item.value});
    bar.append(el('title', {}, `${item.label}: ${item.value}`));
    svg.append(bar);
    if (i % every === 0) svg.append(el('text', {x: left + i * step, y: height - 10}, item.label));
  });
}

function hbars(svg, items, valueText) {
  // items: [{label, value}] as horizontal bars, one line each (a funnel; failures by action).
  svg.replaceChildren();
  const width = Number(svg.getAttribute('width')), line = 24, labelWidth = 190;
  svg.setAttribute('height', Math.max(24, items.length * line + 6));
  const max = Math.max(1e-9, ...items.map(i => i.value));
  items.forEach((item, i) => {
    const w = Math.max(item.value > 0 ? 2 : 0, (width - labelWidth - 120) * item.value / max);
    const y = i * line + 4;
    svg.append(el('text', {x: 0, y: y + 14}, item.label));
    svg.append(el('rect', {x: labelWidth, y, width: w, height: line - 8, class: item.cls || 'rbar',
                           'data-testid': 'hbar', 'data-value': item.value}));
    svg.append(el('text', {x: labelWidth + w + 6, y: y + 14}, valueText(item)));
  });
}

function drawContacts(answer) {
  const d = answer.data;
  barChart($('contacts-chart'), d.series.map(p => ({label: p.period, value: p.total})));
  $('contacts-total').textContent = `${d.total} new contacts (${d.timezone}), ` +
    Object.entries(d.by_source).map(([s, n]) => `${s} ${n}`).join(', ');
}

function drawPipeline(answer) {
  const d = answer.data, root = $('funnels');
  root.replaceChildren();
  $('pipeline-note').textContent = `values in ${d.base_currency}, exchange rates as of ${d.rates_as_of}`;
  for (const p of d.pipelines) {
    const box = document.createElement('div');
    box.className = 'funnel';
    const title = document.createElement('h3');
    const rate = p.win_rate === null ? '–' : `${(p.win_rate * 100).toFixed(1)} %`;
    title.textContent = `${p.name}: won ${p.won_count} (${money(p.won_value)}), lost ${p.lost_count}, win rate ${rate}`;
    const svg = el('svg', {width: 640, height: 40, 'data-testid': 'funnel'});
    box.append(title, svg);
    root.append(box);
    hbars(svg, p.stages.map(s => ({label: s.name, value: s.open_value, count: s.open_count})),
          i => `${i.count} open · ${money(i.value)}`);
  }
  const rows = d.leaderboard.map(o => {
    const tr = document.createElement('tr');
    for (const v of [o.owner ?? '(no owner)', o.won_count, money(o.won_value), o.lost_count, o.open_count,
                     money(o.open_value), o.win_rate === null ? '–' : `${(o.win_rate * 100).toFixed(1)} %`,
                     o.avg_days_to_win ?? '–']) {
      const td = document.createElement('td');
      td.textContent = v;
      tr.append(td);
    }
    return tr;
  });
  $('leaderboard').replaceChildren(...rows);
}

function drawAutomations(answer) {
  const d = answer.data, failed = {};
  for (const a of d.automations) {
    for (const [type, n] of Object.entries(a.actions)) failed[type] = (failed[type] || 0) + n.failed;
  }
  const items = Object.entries(failed).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([label, value]) => ({label, value, cls: 'rbar failed'}));
  hbars($('failures-chart'), items, i => `${i.value} failed`);
  const t = d.totals;
  $('runs-total').textContent = `${t.runs} runs: ${t.succeeded} succeeded, ${t.failed} failed, ${t.skipped} skipped, ` +
    `${t.waiting} waiting`;
}

const DRAW = {new_contacts: drawContacts, pipeline: drawPipeline, automations: drawAutomations};

async function load() {
  $('status').textContent = 'computing…';
  try {
    const answers = await Promise.all(Object.keys(DRAW).map(k => fetchReport(k, $('refresh').checked)));
    answers.forEach(a => DRAW[a.kind](a));
    const p = answers[0].params;
    if (!$('from').value) $('from').value = p.from;
    if (!$('to').value) $('to').value = p.to;
    $('status').textContent = `${p.from} to ${p.to}, computed ${answers.map(a => a.computed_at).sort()[0]}`;
  } catch (e) {
    $('status').textContent = 'could not load: ' + e.message;
  }
}

async function downloadCsv(kind) {
  const q = query(kind);
  q.set('format', 'csv');
  let r = await api(`/reports/${kind}?${q}`);
  if (r.status === 202) {  // not stored (or stale): computed first, then downloaded
    await fetchReport(kind, false);
    r = await api(`/reports/${kind}?${q}`);
  }
  const link = document.createElement('a');
  link.href = URL.createObjectURL(await r.blob());
  link.download = `${kind}-${$('from').value || 'last-30-days'}.csv`;
  document.body.append(link);
  link.click();
  link.remove();
}

$('signin').addEventListener('submit', e => {
  e.preventDefault();
  sessionStorage.setItem('crm_token', $('token').value.trim());
  load();
});
$('range').addEventListener('submit', e => { e.preventDefault(); load(); });
document.addEventListener('click', e => {
  const button = e.target.closest('[data-csv]');
  if (button) downloadCsv(button.dataset.csv);
});
if (token()) load();
