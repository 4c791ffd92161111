const token = () => sessionStorage.getItem('crm_token');
const api = (path, opts = {}) => fetch('/v1/crm' + path, {...opts, headers: {
  'Authorization': 'Bearer ' + token(), 'Content-Type': 'application/json'}});
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
// The fill's width is set through the DOM (paintBars), not a style attribute: the page's CSP allows no inline style.
const bar = p => `<span class="bar"><span data-percent="${Number((p && p.percent) || 0)}"></span></span> ${((p && p.percent) || 0).toFixed(1)}%`;
const paintBars = root => root.querySelectorAll('[data-percent]').forEach(s => { s.style.width = s.dataset.percent + '%'; });
const $ = id => document.getElementById(id);
let selected = null, operator = false, cursors = [null], found = null;

function claims(t) {  // what the token says about itself (the API checks it; this only picks the view)
  try { return JSON.parse(atob(t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))); } catch (e) { return {}; }
}
function signIn(t) {
  sessionStorage.setItem('crm_token', t);
  operator = claims(t).role === 'service';
  document.body.classList.toggle('operator', operator);
  $('mode').textContent = operator ? 'operator view: every account' : '';
  cursors = [null];
}
$('signin').addEventListener('submit', e => { e.preventDefault(); signIn($('token').value.trim()); refresh(); });
for (const id of ['status', 'type', 'account', 'per_page']) $(id).addEventListener('change', () => refresh());
$('older').addEventListener('click', () => { if (cursors.next) { cursors.push(cursors.next); refresh(); } });
$('newer').addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); refresh(); } });
$('search').addEventListener('submit', e => { e.preventDefault(); found = $('find').value.trim() || null; refresh(); });
$('clear-find').addEventListener('click', () => { $('find').value = ''; found = null; refresh(); });

function jobRow(j) {
  const failed = j.status === 'failed';
  const p = j.progress || {};  // a malformed record is listed, never the end of the list
  return `<tr data-job="${esc(j.id)}">
    <td class="operator-only">${failed ? `<input type="checkbox" data-testid="pick-${esc(j.id)}" value="${esc(j.id)}">` : ''}</td>
    <td><a href="#${esc(j.id)}" data-show="${esc(j.id)}">${esc(j.id)}</a></td>
    <td class="operator-only"><a href="#" data-account="${esc(j.account_id)}">${esc(j.account_id)}</a></td>
    <td>${esc(j.type)}</td><td class="status-${esc(j.status)}">${esc(j.status)}</td>
    <td data-testid="progress-${esc(j.id)}">${bar(p)} ${esc(p.processed ?? '?')}/${esc(p.total ?? '?')}</td>
    <td>${esc(j.created_at)}</td></tr>`;
}
function filterAccount(id) { $('account').value = id; refresh(); }

// One listener for the links and buttons the lists draw: their data attributes say what to do (no inline
// handlers: the page's CSP runs only its own script files, and a value in a JS string in an attribute is not safe).
document.addEventListener('click', e => {
  const el = e.target.closest('[data-show], [data-account], [data-act]');
  if (!el) return;
  if (el.dataset.show !== undefined) show(el.dataset.show);  // the link's own #id navigation goes ahead
  else if (el.dataset.account !== undefined) { e.preventDefault(); filterAccount(el.dataset.account); }
  else act(el.dataset.act);
});

async function refreshJobs() {
  if (found) {
    const r = await api('/jobs/' + encodeURIComponent(found));
    if (r.status === 401) { $('who').textContent = 'sign in with a valid token'; return false; }
    $('jobs').innerHTML = r.ok ? jobRow(await r.json()) : '<tr><td colspan="7" class="muted">no such job</td></tr>';
    paintBars($('jobs'));
    $('page-info').textContent = 'search result';
    return true;
  }
  const q = new URLSearchParams({per_page: $('per_page').value});
  const status = $('status').value, type = $('type').value.trim(), account = $('account').value.trim();
  if (status) q.set('status', status);
  if (type) q.set('type', type);
  if (operator && account) q.set('account_id', account);
  if (q.toString() !== cursors.filters) { cursors = [null]; cursors.filters = q.toString(); }  // new filters: first page
  const after = cursors[cursors.length - 1];
  if (after) q.set('after', after);
  const r = await api('/jobs?' + q);
  if (r.status === 401) { $('who').textContent = 'sign in with a valid token'; return false; }
  const page = await r.json();
  if (!r.ok) { $('who').textContent = page.error.message; return false; }
  if (page.total !== null) $('who').textContent = `${page.total} jobs`;
  cursors.next = page.next_after;
  $('page-info').textContent = `page ${cursors.length}` + (page.next_after ? '' : ' (last)');
  const picked = new Set([...document.querySelectorAll('#jobs input:checked')].map(i => i.value));
  $('jobs').innerHTML = page.jobs.map(jobRow).join('') || '<tr><td colspan="7" class="muted">no jobs</td></tr>';
  paintBars($('jobs'));
  picked.forEach(id => { const box = document.querySelector(`[data-testid="pick-${id}"]`); if (box) box.checked = true; });
  return true;
}

async function show(id) { selected = id; await refreshJob(); }

async function refreshJob() {
  const box = $('job');
  if (!selected) { box.style.display = 'none'; return; }
  const r = await api('/jobs/' + selected);
  if (!r.ok) { box.style.display = 'none'; return; }
  const j = await r.json(), p = j.progress, res = j.result || {};
  let errors = '';
  if (j.type.endsWith('.import') && !operator) {
    const csv = await (await api(`/jobs/${j.id}/errors`)).text();
    const lines = csv.replace(/^\ufeff/, '').trim().split('\n').slice(1, 51);
    errors = lines.length ? `<h3>Failed rows</h3><table data-testid="errors">${lines.map(l => `<tr><td>${esc(l)}</td></tr>`).join('')}</table>` : '';
  }
  box.style.display = 'block';
  box.innerHTML = `<h3>${esc(j.type)} <span class="status-${esc(j.status)}" data-testid="job-status">${esc(j.status)}</span></h3>
    <div class="muted">account ${esc(j.account_id)}</div>
    <div>${bar(p)} processed ${p.processed} of ${p.total ?? '?'}, succeeded ${p.succeeded}, failed ${p.failed}; attempts ${j.attempts}</div>
    ${j.error ? `<p class="status-failed">${esc(j.error.code)}: ${esc(j.error.message)}</p>` : ''}
    ${res.download_url ? `<p><a data-testid="download" href="${esc(res.download_url)}">download (${esc(res.rows)} rows)</a></p>` : ''}
    <pre>${esc(JSON.stringify(res.counts || res, null, 1)).slice(0, 1500)}</pre>
    <button data-testid="cancel" data-act="cancel">Cancel</button>
    <button data-testid="retry" data-act="retry">Retry</button>
    ${operator ? '' : '<button data-testid="undo" data-act="undo">Undo</button>'} <span id="acted" class="muted" data-testid="acted"></span>${errors}`;
  paintBars(box);
}

const QUESTIONS = {cancel: 'Cancel this job? A running job stops at its next checkpoint.',
                   undo: 'Undo this job? What it deleted is restored, what it created is removed.'};

async function act(what) {
  if (QUESTIONS[what] && !confirm(QUESTIONS[what])) return;
  const r = await api(`/jobs/${selected}/${what}`, {method: 'POST'});
  const body = await r.json();
  $('acted').textContent = r.ok ? `${what}: ${body.status}` : `${what}: ${body.error.message}`;
  refresh();
}

$('retry-selected').addEventListener('click', async () => {
  const ids = [...document.querySelectorAll('#jobs input:checked')].map(i => i.value);
  if (!ids.length || !confirm(`Retry ${ids.length} failed job(s)?`)) return;
  let ok = 0;
  const problems = [];
  for (const id of ids) {
    const r = await api(`/jobs/${id}/retry`, {method: 'POST'});
    if (r.ok) ok++; else problems.push(`${id}: ${(await r.json()).error.message}`);
  }
  $('bulk-result').textContent = `retried ${ok} of ${ids.length}` + (problems.length ? '; ' + problems.join('; ') : '');
  refresh();
});

const age = s => s < 90 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
const jobLine = j => `<tr><td><a href="#${esc(j.id)}" data-show="${esc(j.id)}">${esc(j.id)}</a></td><td>${esc(j.type)}</td><td>${esc(j.account_id)}</td></tr>`;

async function refreshSide() {
  const depths = (await (await api('/queues')).json()).queues;
  $('queues').innerHTML = Object.entries(depths).map(([q, d]) => operator
    ? `<tr><td>${esc(q)}</td><td>${d.waiting}</td><td>${d.delayed}</td><td class="${d.dead_letter ? 'warn' : ''}">${d.dead_letter}</td></tr>`
    : `<tr><td>${esc(q)}</td><td>${d.waiting} waiting</td></tr>`).join('');
  if (operator) {
    const o = await (await api('/operator')).json();
    $('workers').innerHTML = o.workers.map(w => `<tr><td title="${esc(w.id)}">${esc(w.host)}</td><td>${age(w.seconds_since_heartbeat)}</td><td>${w.messages_held}</td></tr>`).join('')
      || '<tr><td class="warn">no live worker</td></tr>';
    $('stale-rule').textContent = `(running, no heartbeat for ${o.stale_seconds} s)`;
    $('lost-rule').textContent = `(queued more than ${o.lost_seconds} s after their last enqueue)`;
    $('stale').innerHTML = o.stale_jobs.map(jobLine).join('') || '<tr><td class="muted">none</td></tr>';
    $('lost').innerHTML = o.lost_jobs.map(jobLine).join('') || '<tr><td class="muted">none</td></tr>';
    $('accounts').innerHTML = o.accounts.map(a => `<tr><td><a href="#" data-account="${esc(a.account_id)}">${esc(a.name || a.account_id)}</a></td>
      <td>${a.jobs} jobs</td><td class="status-failed">${a.by_status.failed || 0} failed</td></tr>`).join('') || '<tr><td class="muted">none</td></tr>';
    return;
  }
  const runs = (await (await api('/automations/runs')).json()).runs;
  $('runs').innerHTML = runs.map(r => `<tr><td>${esc(r.status)}</td><td>${esc(r.automation_id)}</td><td>${esc(r.started_at)}</td></tr>`).join('')
    || '<tr><td class="muted">none yet</td></tr>';
  const per = (await (await api('/jobs/throughput')).json()).per_minute, max = Math.max(1, ...per.map(m => m.finished));
  $('chart').innerHTML = per.map((m, i) =>
    `<rect x="${i * 6}" y="${85 - 80 * m.finished / max}" width="5" height="${80 * m.finished / max}" fill="#3b7ddd"><title>${esc(m.minute)}: ${m.finished}</title></rect>`).join('');
}

let busy = false, again = false;
async function refresh() {  // one refresh at a time; a click during one is answered right after it, not dropped
  if (!token()) return;
  if (busy) { again = true; return; }
  busy = true;
  try { if (await refreshJobs()) { await refreshJob(); await refreshSide(); } } finally {
    busy = false;
    if (again) { again = false; refresh(); }
  }
}
if (token()) signIn(token());
if (location.hash.length > 1) selected = location.hash.slice(1);
setInterval(refresh, 1000);
refresh();
