const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
const $ = id => document.getElementById(id);
const auth = () => ({'Authorization': 'Bearer ' + sessionStorage.getItem('crm_token')});
let preview = null, jobId = null, poll = null, asked = 0;  // asked: the latest preview request; older answers are dropped
// Cells the user fixed in the preview, {"<row>": {"<header>": "<value>"}}: sent as options.corrections to every
// preview after and to the import, which reads them in place of the file's cells.
let corrections = {};

$('signin').addEventListener('submit', e => {
  e.preventDefault();
  sessionStorage.setItem('crm_token', $('token').value.trim());
  $('who').textContent = 'signed in';
});

function options(withMapping) {
  const o = {};
  if ($('country').value.trim()) o.country = $('country').value.trim().toUpperCase();
  if ($('encoding').value.trim()) o.encoding = $('encoding').value.trim();
  if (withMapping && preview) o.mapping = chosenMapping();
  if (Object.keys(corrections).length) o.corrections = corrections;
  return o;
}

function chosenMapping() {
  const mapping = {};
  preview.headers.forEach((h, i) => { const v = $('target-' + i).value; mapping[h] = v === '' ? null : v; });
  return mapping;
}

async function answer(r) {
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { $('message').textContent = (body.error && body.error.message) || ('error ' + r.status); return null; }
  $('message').textContent = '';
  return body;
}

$('file').addEventListener('change', async () => {
  const file = $('file').files[0];
  if (!file) return;
  corrections = {};  // a new file: the fixes were for the last one
  const form = new FormData(), mine = ++asked;
  form.append('file', file);
  form.append('options', JSON.stringify(options(false)));
  const body = await answer(await fetch(`/v1/crm/${$('entity').value}/import/preview`, {method: 'POST', headers: auth(), body: form}));
  if (body && mine === asked) show(body);
});

async function reread(withMapping) {
  if (!preview) return;
  const mine = ++asked;
  const r = await fetch(`/v1/crm/${$('entity').value}/import/preview`, {method: 'POST',
    headers: {...auth(), 'Content-Type': 'application/json'},
    body: JSON.stringify({source: preview.source, options: options(withMapping)})});
  const body = await answer(r);
  if (body && mine === asked) show(body, true);
}
$('reread').addEventListener('click', () => reread(false));  // new encoding or country: matched afresh
// A column's menu changed: read again with the chosen mapping (a listener, not an inline handler: see the CSP).
$('head').addEventListener('change', e => { if (e.target.matches('select[data-header]')) reread(true); });

function show(body, keepChoices) {
  // Read again after a menu changed: the menus stay as the user left them; only rows and warnings change.
  const same = keepChoices && preview && JSON.stringify(preview.headers) === JSON.stringify(body.headers);
  preview = body;
  $('reread').disabled = false;
  $('preview').style.display = 'block';
  const f = body.file;
  $('fileinfo').textContent = `${f.name}: ${f.format}` + (f.encoding ? `, ${f.encoding}` : '') +
    (f.delimiter ? `, separated by ${JSON.stringify(f.delimiter)}` : '') + `, header on row ${f.header_row}`;
  $('warnings').innerHTML = body.warnings.map(w => `<li>${esc(w)}</li>`).join('');
  const choices = t => `<option value="">(ignore)</option>` + body.targets.map(x =>
    `<option value="${esc(x)}"${x === t ? ' selected' : ''}>${esc(x)}</option>`).join('');
  if (!same) $('head').innerHTML = `<tr><th>row</th>${body.headers.map(h => `<th title="${esc(h)}">${esc(h)}</th>`).join('')}</tr>
    <tr><th></th>${body.headers.map((h, i) => {
      const m = body.matches[h] || {}, why = [m.reason, m.source, m.note].filter(Boolean).join(' · ');
      return `<th title="${esc(why)}" class="${m.target ? '' : 'unmatched'}"><select id="target-${i}" data-testid="target-${i}"
        data-header="${esc(h)}">${choices(body.mapping[h])}</select></th>`; }).join('')}</tr>`;
  // Each problem where it is: a failed cell (the row would not import) apart from a warned one (imported without
  // that value). Either can be fixed in place: click it, type, Enter (see the listeners below).
  const failing = body.rows.filter(r => r.errors.some(e => e.problem !== 'warning')).length;
  const warned = body.rows.filter(r => r.errors.length && r.errors.every(e => e.problem === 'warning')).length;
  $('problems').textContent = (failing || warned) ? `Of these rows, ${failing} would fail and ${warned} would be ` +
    'imported with a value left out: click a marked cell to fix it.' : '';
  $('rows').innerHTML = body.rows.map(r => {
    const problem = {};
    r.errors.filter(e => e.column).forEach(e => {
      const was = problem[e.column];
      problem[e.column] = {kind: was && was.kind === 'failed' ? 'failed' : (e.problem || 'failed'),
                           message: was ? was.message + '; ' + e.message : e.message};
    });
    const rowErrors = r.errors.filter(e => !e.column).map(e => e.message).join('; ');
    const rowClass = r.errors.some(e => e.problem !== 'warning') ? 'bad' : (r.errors.length ? 'warned' : '');
    const fixedHere = corrections[String(r.row)] || {};
    return `<tr class="${rowClass}" data-row="${r.row}" title="${esc(rowErrors)}"><td>${r.row}</td>${
      body.headers.map((h, i) => {
        const p = problem[h], fixed = h in fixedHere;
        const cls = [p ? (p.kind === 'warning' ? 'warned' : 'err') : '', p || fixed ? 'fixable' : '',
                     fixed && !p ? 'fixed' : ''].filter(Boolean).join(' ');
        const data = p || fixed ? ` data-col="${i}" data-testid="cell-${r.row}-${i}" data-problem="${p ? p.kind : 'fixed'}"` : '';
        return `<td class="${cls}"${data} title="${esc(p ? p.message : r.values[i])}">${esc(r.values[i])}</td>`;
      }).join('')}</tr>`;
  }).join('');
}

// Fix a cell in place: a click on a marked cell opens an input; Enter (or leaving it) keeps the new value as a
// correction and reads the preview again with it. Listeners, not inline handlers: see the CSP.
$('rows').addEventListener('click', e => {
  const cell = e.target.closest('td[data-col]');
  if (!cell || cell.querySelector('input')) return;
  const row = cell.parentElement.dataset.row, i = Number(cell.dataset.col);
  const current = preview.rows.find(r => String(r.row) === row).values[i];
  cell.innerHTML = `<input class="fix" data-testid="fix-${esc(row)}-${i}" data-row="${esc(row)}" data-col="${i}">`;
  const input = cell.querySelector('input');
  input.value = current ?? '';
  input.focus();
  input.select();
});
$('rows').addEventListener('change', e => {
  const input = e.target.closest('input.fix');
  if (!input) return;
  const row = input.dataset.row, header = preview.headers[Number(input.dataset.col)];
  corrections[row] = {...(corrections[row] || {}), [header]: input.value};
  reread(true);
});
$('rows').addEventListener('keydown', e => {
  if (e.key === 'Enter' && e.target.matches('input.fix')) e.target.blur();  // blur commits: one 'change'
});

$('start').addEventListener('click', async () => {
  const r = await fetch(`/v1/crm/${$('entity').value}/import`, {method: 'POST',
    headers: {...auth(), 'Content-Type': 'application/json'},
    body: JSON.stringify({source: preview.source, options: options(true)})});
  const job = await answer(r);
  if (!job) return;
  jobId = job.id;
  $('job').style.display = 'block';
  $('dashLink').href = '/dashboard#' + jobId;
  clearInterval(poll);
  poll = setInterval(follow, 500);
  follow();
});

async function follow() {
  const r = await fetch('/v1/crm/jobs/' + jobId, {headers: auth()});
  if (!r.ok) return;
  const j = await r.json(), p = j.progress, c = (j.result || {}).counts;
  $('status').textContent = j.status;
  $('status').className = 'status-' + j.status;
  $('bar').style.width = (p.percent || 0) + '%';
  const warned = (j.result || {}).rows_with_warnings || 0;
  $('counts').textContent = `${p.processed} of ${p.total ?? '?'} rows` +
    (c ? `: ${c.created} created, ${c.updated} updated, ${c.skipped} skipped, ${c.failed} failed` : '') +
    (warned ? `; ${warned} imported with a value left out` : '');
  $('jobError').textContent = j.error ? `${j.error.code}: ${j.error.message}` : '';
  if (['completed', 'failed', 'cancelled'].includes(j.status)) {
    clearInterval(poll);
    if (c && (c.failed || c.skipped || warned)) {
      $('errorsLink').textContent = c.failed || c.skipped ? 'Download the failed rows and warnings (CSV)'
                                                           : 'Download the rows with warnings (CSV)';
      $('errorsLink').classList.remove('hidden');
    }
  }
}

$('errorsLink').addEventListener('click', async e => {
  e.preventDefault();
  const r = await fetch(`/v1/crm/jobs/${jobId}/errors`, {headers: auth()});
  const link = document.createElement('a');
  link.href = URL.createObjectURL(await r.blob());
  link.download = `failed-rows-${jobId}.csv`;
  document.body.appendChild(link);
  link.click();
  link.remove();
});

if (sessionStorage.getItem('crm_token')) $('who').textContent = 'signed in';
