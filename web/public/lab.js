// The protocol lab page: starts a comparison as a stream of server-sent
// events (/lab/events), draws each protocol's requests per second and p50/p99
// as its progress lines arrive (uPlot, served from /assets/vendor/uplot),
// fills the results table, and shows one GetUser per protocol as annotated
// bytes (/lab/wire). No framework; every text goes in through textContent.
'use strict';

(function lab() {
  const root = document.getElementById('lab');
  if (!root) return;
  const csrf = root.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  const form = $('lab-form');
  const statusLine = $('lab-status');
  const errorBox = $('lab-error');
  const COLORS = ['#1f5fbf', '#b3261e', '#1d7a3a', '#8a4fbf', '#c77800', '#00838f'];
  const TITLES = {};
  for (const box of form.querySelectorAll('input[name=protocols]')) {
    TITLES[box.value] = box.dataset.title;
  }
  const title = (p) => TITLES[p] || p;
  const number = (v, digits) => (v === null || v === undefined || Number.isNaN(v) ? '–'
    : Number(v).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'class') node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function showError(box, text) {
    box.textContent = text;
    box.hidden = !text;
  }

  // ---- charts: one series per protocol (throughput), two (p50, p99) for latency.
  let series = {}; // protocol -> { xs, rps, p50, p99 }
  let order = [];
  let charts = [];

  function chartWidth() {
    return Math.max(280, Math.min(root.clientWidth - 40, 900));
  }

  function aligned(keys) {
    // uPlot wants one x array: join the protocols' own x values.
    const tables = order.map((p) => [series[p].xs, ...keys.map((k) => series[p][k])]);
    if (tables.length === 0) return [[]];
    return window.uPlot.join(tables);
  }

  function redraw() {
    if (!window.uPlot) return;
    for (const c of charts) c.destroy();
    charts = [];
    if (order.length === 0) return;
    const axes = (unit) => [{ label: 'seconds into the protocol\'s run' }, { label: unit, size: 70 }];
    const common = { width: chartWidth(), height: 240, legend: { live: false }, cursor: { show: false } };
    charts.push(new window.uPlot({
      ...common,
      scales: { x: { time: false } },
      axes: axes('requests/s'),
      series: [{}, ...order.map((p, i) => ({ label: title(p), stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true }))],
    }, aligned(['rps']), $('lab-throughput')));
    const latency = [{}];
    order.forEach((p, i) => {
      latency.push({ label: `${title(p)} p50`, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true });
      latency.push({ label: `${title(p)} p99`, stroke: COLORS[i % COLORS.length], width: 1, dash: [6, 4], spanGaps: true });
    });
    charts.push(new window.uPlot({
      ...common,
      scales: { x: { time: false } },
      axes: axes('ms'),
      series: latency,
    }, aligned(['p50', 'p99']), $('lab-latency')));
  }

  function resetCharts(protocols) {
    series = {};
    order = [];
    for (const p of protocols) series[p] = { xs: [], rps: [], p50: [], p99: [] };
    order = protocols.slice();
    redraw();
  }

  let redrawPending = false;
  function scheduleRedraw() {
    if (redrawPending) return;
    redrawPending = true;
    requestAnimationFrame(() => {
      redrawPending = false;
      redraw();
    });
  }

  // ---- results table
  const tbody = $('lab-results').querySelector('tbody');
  function addRow(row) {
    const tr = el('tr', { 'data-protocol': row.protocol });
    tr.append(el('th', { scope: 'row' }, title(row.protocol)));
    if (row.error) {
      tr.append(el('td', { colspan: '6', class: 'error-cell' }, `did not run: ${row.error}`));
    } else {
      tr.append(el('td', {}, number(row.requests_per_s, 0)), el('td', {}, number(row.p50_ms, 3)),
        el('td', {}, number(row.p99_ms, 3)), el('td', {}, number(row.bytes_per_call, 0)),
        el('td', {}, number(row.server_cpu_us_per_call, 1)), el('td', {}, number(row.errors, 0)));
    }
    tbody.append(tr);
  }

  // ---- the comparison
  let source = null;
  const runButton = $('lab-run');
  function finish(text) {
    if (source) source.close();
    source = null;
    runButton.disabled = false;
    root.dataset.state = 'idle';
    statusLine.textContent = text;
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    showError(errorBox, '');
    const data = new FormData(form);
    const protocols = data.getAll('protocols');
    if (protocols.length === 0) return showError(errorBox, 'Check at least one protocol.');
    const query = new URLSearchParams({ protocols: protocols.join(','), op: data.get('op'),
      seconds: data.get('seconds'), connections: data.get('connections'), csrf });
    tbody.textContent = '';
    resetCharts([]);
    runButton.disabled = true;
    root.dataset.state = 'running';
    statusLine.textContent = 'Starting…';
    source = new EventSource(`/lab/events?${query}`);
    source.addEventListener('start', (e) => {
      const run = JSON.parse(e.data);
      resetCharts(run.protocols);
      statusLine.textContent = `Running: ${run.protocols.map(title).join(', ')}, ${run.op}, ${run.seconds} s each, ${run.connections} connections (${run.who}).`;
    });
    source.addEventListener('protocol', (e) => {
      const { protocol } = JSON.parse(e.data);
      statusLine.textContent = `Running ${title(protocol)}…`;
    });
    source.addEventListener('progress', (e) => {
      const p = JSON.parse(e.data);
      const s = series[p.protocol];
      if (!s || p.phase === 'finishing') return;
      s.xs.push(Number(p.elapsed_s.toFixed(2)));
      s.rps.push(p.requests_per_s);
      s.p50.push(p.p50_ms);
      s.p99.push(p.p99_ms);
      statusLine.textContent = `Running ${title(p.protocol)}: ${p.phase}, ${p.elapsed_s.toFixed(1)} of ${p.total_s.toFixed(1)} s, ${number(p.requests_per_s, 0)} requests/s.`;
      scheduleRedraw();
    });
    source.addEventListener('result', (e) => addRow(JSON.parse(e.data)));
    source.addEventListener('done', (e) => {
      const { results } = JSON.parse(e.data);
      finish(`Done: ${results.length} protocol${results.length === 1 ? '' : 's'} compared.`);
    });
    source.addEventListener('error', (e) => {
      // An 'error' event of the server (refused), or the stream broke off.
      if (e.data) {
        const problem = JSON.parse(e.data);
        showError(errorBox, problem.detail);
        return finish('No comparison is running.');
      }
      return finish('The stream broke off (the console restarted or the network failed).');
    });
    return undefined;
  });

  // ---- the wire view
  const wireForm = $('wire-form');
  const wireOut = $('wire-out');
  const wireError = $('wire-error');
  const wireSizes = $('wire-sizes');

  function hexOf(doc, part) {
    return doc.hex.slice(part.offset * 2, (part.offset + part.length) * 2).replace(/(..)(?!$)/g, '$1 ');
  }

  function direction(name, doc) {
    const box = el('div', { class: 'wire-direction' });
    box.append(el('h4', {}, `${name}: ${number(doc.bytes, 0)} bytes`));
    const table = el('table', { class: 'wire' });
    table.append(el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Offset'), el('th', { scope: 'col' }, 'Bytes (hex)'),
      el('th', { scope: 'col' }, 'What'), el('th', { scope: 'col' }, 'Decoded'))));
    const body = el('tbody');
    let section = null;
    for (const part of doc.parts) {
      if (part.section !== section) {
        section = part.section;
        body.append(el('tr', { class: 'wire-section' }, el('th', { colspan: '4', scope: 'rowgroup' }, section)));
      }
      body.append(el('tr', {}, el('td', { class: 'offset' }, String(part.offset)), el('td', { class: 'hex' }, hexOf(doc, part)),
        el('td', {}, part.label), el('td', { class: 'value' }, part.value)));
    }
    table.append(body);
    box.append(table);
    return box;
  }

  wireForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(wireError, '');
    wireOut.textContent = '';
    wireSizes.textContent = '';
    const protocols = new FormData(form).getAll('protocols');
    if (protocols.length === 0) return showError(wireError, 'Check at least one protocol above.');
    const id = new FormData(wireForm).get('id');
    const button = $('wire-run');
    button.disabled = true;
    const sizes = el('table', { class: 'wire-sizes' });
    sizes.append(el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Protocol'), el('th', { scope: 'col' }, 'Request bytes'),
      el('th', { scope: 'col' }, 'Response bytes'), el('th', { scope: 'col' }, 'Outcome'))));
    const sizeRows = el('tbody');
    sizes.append(sizeRows);
    wireSizes.append(sizes);
    try {
      for (const protocol of protocols) {
        const res = await fetch(`/lab/wire?${new URLSearchParams({ protocol, id })}`, { credentials: 'same-origin' });
        const doc = await res.json();
        const section = el('section', { class: 'wire-protocol', 'data-protocol': protocol });
        section.append(el('h3', {}, title(protocol)));
        if (!res.ok) {
          section.append(el('p', { class: 'error' }, doc.detail || `HTTP ${res.status}`));
          sizeRows.append(el('tr', {}, el('th', { scope: 'row' }, title(protocol)), el('td', { colspan: '3' }, doc.detail || `HTTP ${res.status}`)));
        } else {
          sizeRows.append(el('tr', { 'data-protocol': protocol }, el('th', { scope: 'row' }, title(protocol)),
            el('td', {}, number(doc.request.bytes, 0)), el('td', {}, number(doc.response.bytes, 0)), el('td', {}, doc.outcome.code)));
          section.append(direction('Request', doc.request), direction('Response', doc.response));
        }
        wireOut.append(section);
      }
    } catch (err) {
      showError(wireError, `The capture failed: ${err.message}`);
    } finally {
      button.disabled = false;
    }
    return undefined;
  });

  // Who runs what: refreshed while the page is idle.
  setInterval(async () => {
    if (source) return;
    try {
      const res = await fetch('/lab/status', { credentials: 'same-origin' });
      if (!res.ok) return;
      const info = await res.json();
      const r = info.running;
      if (r) {
        statusLine.dataset.other = '1';
        statusLine.textContent = `Running now: ${r.who}, ${r.protocols.map(title).join(', ')}, ${r.op}, ${r.seconds} s each${r.running ? ` (now ${title(r.running)})` : ''}.`;
      } else if (statusLine.dataset.other === '1') {
        delete statusLine.dataset.other;
        statusLine.textContent = 'No comparison is running.';
      }
    } catch {
      // the next tick tries again
    }
  }, 3000);
  window.addEventListener('resize', scheduleRedraw);
  root.dataset.state = 'idle';
}());
