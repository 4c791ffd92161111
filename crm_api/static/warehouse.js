// The operator view's warehouse feed: the latest runs and a "Run now" button. Loaded after dashboard.js, whose
// `api`, `esc`, `$`, `operator` and `show` it uses; listeners only (the page's CSP runs no inline script).
const warehouseWindow = r => r.to ? `${esc(r.from || 'the beginning')} → ${esc(r.to)}` : '<span class="muted">not written</span>';

async function refreshWarehouse() {
  if (!operator || !token()) return;
  const r = await api('/warehouse/runs');
  if (!r.ok) return;
  const runs = (await r.json()).runs.slice(0, 10);
  $('warehouse-runs').innerHTML = runs.map(run => `<tr data-warehouse-run="${esc(run.id)}">
    <td><a href="#${esc(run.id)}" data-show="${esc(run.id)}">${esc(run.id)}</a></td>
    <td class="status-${esc(run.status)}">${esc(run.status)}</td><td class="small">${warehouseWindow(run)}</td>
    <td>${run.rows ?? ''}</td><td>${run.deleted ?? ''}</td>
    <td class="${run.collections && Object.values(run.collections).some(c => c.unexpected) ? 'warn' : ''}">${
      run.collections ? Object.values(run.collections).reduce((n, c) => n + c.unexpected, 0) : ''}</td></tr>`).join('')
    || '<tr><td class="muted">no run yet</td></tr>';
}

$('warehouse-run').addEventListener('click', async () => {
  const r = await api('/warehouse/runs', {method: 'POST'});
  const body = await r.json();
  $('warehouse-started').textContent = r.ok ? `run ${body.id} ${body.status}` : (body.error || {}).message || r.status;
  await refreshWarehouse();
});

setInterval(refreshWarehouse, 2000);
refreshWarehouse();
