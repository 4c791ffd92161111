// The webhooks page: subscriptions (made, rotated, deleted), a subscription's delivery log and its retry button.
// Wired with listeners and data attributes only: the page's CSP runs no inline script or handler.
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
const $ = id => document.getElementById(id);
const api = (path, opts = {}) => fetch('/v1/crm' + path, {...opts, headers: {
  'Authorization': 'Bearer ' + sessionStorage.getItem('crm_token'), 'Content-Type': 'application/json'}});
let selected = null;

$('signin').addEventListener('submit', e => {
  e.preventDefault();
  sessionStorage.setItem('crm_token', $('token').value.trim());
  refresh();
});

function showSecret(sub, what) {
  $('secret').textContent = `${what} for ${sub.url}: ${sub.secret} — shown this once; keep it where your receiver reads it.`;
  $('secret').classList.remove('hidden');
}

async function problem(r) {
  const body = await r.json().catch(() => ({}));
  $('message').textContent = (body.error && body.error.message) || `the API answered ${r.status}`;
}

$('create').addEventListener('submit', async e => {
  e.preventDefault();
  const events = [...document.querySelectorAll('input[name=event]:checked')].map(i => i.value);
  const types = $('types').value.split(',').map(t => t.trim()).filter(Boolean);
  const body = {url: $('url').value.trim(), events};
  if (types.length) body.types = types;
  const r = await api('/webhooks', {method: 'POST', body: JSON.stringify(body)});
  if (!r.ok) return problem(r);
  $('message').textContent = '';
  const sub = await r.json();
  showSecret(sub, 'Secret');
  selected = sub.id;
  refresh();
});

// One listener for the buttons the lists draw; `data-act` says what, `data-id` on which.
document.addEventListener('click', async e => {
  const el = e.target.closest('[data-act]');
  if (!el) return;
  const {act, id, sub} = el.dataset;
  if (act === 'show') { selected = id; return refresh(); }
  if (act === 'delete' && !confirm('Delete this subscription? Its pending deliveries fail.')) return;
  if (act === 'rotate' && !confirm('Make a new secret? Deliveries from now on are signed with it.')) return;
  const path = {delete: `/webhooks/${id}`, rotate: `/webhooks/${id}/rotate`,
                retry: `/webhooks/${sub}/deliveries/${id}/retry`}[act];
  const r = await api(path, {method: act === 'delete' ? 'DELETE' : 'POST'});
  if (!r.ok) return problem(r);
  $('message').textContent = '';
  if (act === 'rotate') showSecret(await r.json(), 'New secret');
  if (act === 'delete' && selected === id) selected = null;
  refresh();
});

function subscriptionRow(s) {
  return `<tr data-testid="subscription-${esc(s.id)}" class="${s.id === selected ? 'selected' : ''}">
    <td>${esc(s.url)}</td><td>${s.events.map(esc).join(', ')}</td><td>${s.types.length ? s.types.map(esc).join(', ') : 'all'}</td>
    <td>${esc(s.created_at)}</td>
    <td><button data-act="show" data-id="${esc(s.id)}" data-testid="show-${esc(s.id)}">Deliveries</button>
      <button data-act="rotate" data-id="${esc(s.id)}" data-testid="rotate-${esc(s.id)}">Rotate secret</button>
      <button data-act="delete" data-id="${esc(s.id)}" data-testid="delete-${esc(s.id)}">Delete</button></td></tr>`;
}

function deliveryRow(d) {
  const retry = d.status === 'delivered' ? '' :
    `<button data-act="retry" data-sub="${esc(selected)}" data-id="${esc(d.id)}" data-testid="retry-${esc(d.id)}">Retry</button>`;
  return `<tr data-testid="delivery-${esc(d.id)}"><td>${esc(d.event)}</td><td>${esc(d.event_id)}</td><td>${esc(d.job_id)}</td>
    <td class="status-${esc(d.status)}" data-testid="status-${esc(d.id)}">${esc(d.status)}</td>
    <td data-testid="attempts-${esc(d.id)}">${d.attempts}</td><td>${esc(d.last_status_code ?? '—')}</td>
    <td>${esc(d.next_attempt_at ?? '—')}</td><td>${retry}</td></tr>`;
}

let busy = false;
async function refresh() {
  if (!sessionStorage.getItem('crm_token') || busy) return;
  busy = true;
  try {
    const r = await api('/webhooks');
    if (!r.ok) { $('who').textContent = r.status === 401 ? 'sign in with a valid token' : ''; if (r.status !== 401) await problem(r); return; }
    $('who').textContent = 'signed in';
    const subs = (await r.json()).webhooks;
    if (selected && !subs.some(s => s.id === selected)) selected = null;
    if (!selected && subs.length) selected = subs[0].id;
    $('subscriptions').innerHTML = subs.map(subscriptionRow).join('') || '<tr><td colspan="5" class="muted">none yet</td></tr>';
    if (!selected) { $('deliveries').innerHTML = ''; $('of').textContent = ''; return; }
    const page = await (await api(`/webhooks/${selected}/deliveries?per_page=50`)).json();
    $('of').textContent = `of ${subs.find(s => s.id === selected).url} (${page.total})`;
    $('deliveries').innerHTML = page.deliveries.map(deliveryRow).join('') || '<tr><td colspan="8" class="muted">none yet</td></tr>';
  } finally { busy = false; }
}
setInterval(refresh, 2000);
refresh();
