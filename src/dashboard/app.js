// The OS Walk dashboard: one page over the same /v1 API as the CLI, logged in with a session
// cookie (the token is sent once, to POST /v1/session, and kept nowhere in the page), kept live
// by the server-sent events of GET /v1/events. Plain JavaScript, no framework and no build step:
// the whole page is three small files. Every value that comes from the cluster (a job's name, a
// label, a log line) goes into the page as text (append/textContent), never as HTML.

const $ = (id) => document.getElementById(id);

/** An element with attributes, listeners (on*) and children; strings become text nodes. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === false || v === null) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

class LoggedOut extends Error {}

/** The /v1 calls on their way: log out waits for them, so none reaches the server after the session ends. */
const inflight = new Set();

/** A /v1 call; a 401 shows the login form. Errors carry the API's own message. */
function api(method, path, body) {
  const call = request(method, path, body);
  inflight.add(call);
  const done = () => inflight.delete(call);
  call.then(done, done);
  return call;
}

async function request(method, path, body) {
  const res = await fetch(path, {
    method, credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401 && path !== '/v1/session') {
    loggedOut();
    throw new LoggedOut();
  }
  const text = await res.text();
  let data;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) throw Object.assign(new Error(data?.message ?? `${method} ${path}: HTTP ${res.status}`), { status: res.status, body: data });
  return data;
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
function bytes(n) {
  if (!Number.isFinite(n)) return '–';
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}
const cpus = (n) => (Number.isFinite(n) ? (Math.round(n * 100) / 100).toString() : '–');
const when = (t) => (t ? new Date(t).toLocaleString() : '–');

/** Terminal escapes and other control characters shown as their Unicode pictures (␛[31m), not acted on. */
const visible = (s) => s.replace(/[\x00-\x08\x0b-\x1f]/g, (c) => String.fromCharCode(0x2400 + c.charCodeAt(0))).replace(/\x7f/g, '\u2421');

// ---- the session ------------------------------------------------------------------------------

let events;
let cluster;
let leave = () => {};

function loggedOut() {
  events?.close();
  events = undefined;
  leave();
  for (const id of ['nav', 'who', 'logout', 'live', 'view']) $(id).hidden = true;
  $('login').hidden = false;
  $('token').focus();
}

async function loggedIn(me) {
  $('login').hidden = true;
  $('who').textContent = `${me.name} (${me.role})`;
  for (const id of ['nav', 'who', 'logout', 'live', 'view']) $(id).hidden = false;
  connect();
  route();
}

$('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('token');
  $('login-error').textContent = '';
  try {
    const me = await api('POST', '/v1/session', { token: input.value });
    input.value = '';
    await loggedIn(me);
  } catch (err) {
    $('login-error').textContent = err.status === 401 ? 'That token is unknown, revoked or expired.' : err.message;
  }
});

$('logout').addEventListener('click', async () => {
  // Quiet first: no live update may ask the server anything with a session being ended (it
  // would be refused, and the browser logs every refusal as an error).
  events?.close();
  events = undefined;
  leave();
  current = undefined;
  await Promise.allSettled([...inflight]);
  await api('DELETE', '/v1/session').catch(() => undefined);
  loggedOut();
});

/** The live stream; the browser reconnects by itself, and a 401 (session over) shows the login. */
function connect() {
  events?.close();
  const live = $('live');
  live.textContent = 'connecting…';
  events = new EventSource('/v1/events');
  events.addEventListener('open', () => { live.textContent = 'live'; live.classList.remove('down'); });
  events.addEventListener('cluster', (e) => {
    cluster = JSON.parse(e.data);
    live.textContent = `live · ${new Date(cluster.at).toLocaleTimeString()}`;
    current?.update?.();
  });
  events.addEventListener('error', async () => {
    live.textContent = 'reconnecting…';
    live.classList.add('down');
    // EventSource gives up on an answer that is not a stream (401): ask why, then try again.
    if (events?.readyState === EventSource.CLOSED) {
      try {
        if (!(await api('GET', '/v1/session')).loggedIn) return loggedOut();
        setTimeout(() => { if (events?.readyState === EventSource.CLOSED) connect(); }, 1000);
      } catch {
        // The control plane is away (restarting): try again, as EventSource would.
        if (events) setTimeout(connect, 1000);
      }
    }
  });
}

// ---- pages ------------------------------------------------------------------------------------

let current;

function route() {
  leave();
  leave = () => {};
  const [page, id] = location.hash.replace(/^#\/?/, '').split('/');
  const name = ['overview', 'nodes', 'jobs', 'services', 'files', 'apply'].includes(page) ? page : 'overview';
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const view = $('view');
  view.replaceChildren();
  // A path in the unified tree is everything after #/files (its names encoded one by one).
  const filesPath = name === 'files' ? `/${location.hash.replace(/^#\/?files\/?/, '').split('/').filter(Boolean).map(decodeURIComponent).join('/')}` : '';
  current = name === 'jobs' && id ? jobPage(view, decodeURIComponent(id))
    : name === 'files' ? filesPage(view, filesPath)
    : { overview: overviewPage, nodes: nodesPage, jobs: jobsPage, services: servicesPage, apply: applyPage }[name](view);
  current.update?.();
}
window.addEventListener('hashchange', () => { if (!$('view').hidden) route(); });

function card(title, ...body) {
  return h('div', { class: 'card' }, h('h2', {}, title), ...body);
}
function bar(used, total) {
  const pct = total > 0 ? Math.min(100, Math.round((used / total) * 100)) : 0;
  const fill = h('span');
  // Through the CSSOM: the Content-Security-Policy allows no inline style attribute.
  fill.style.width = `${pct}%`;
  return h('div', { class: 'bar', role: 'img', 'aria-label': `${pct} % used` }, fill);
}

function overviewPage(view) {
  const cards = h('div', { class: 'cards' });
  view.append(h('h1', {}, 'Overview'), cards);
  return {
    update() {
      if (!cluster) return;
      const nodes = cluster.nodes;
      const by = (s) => nodes.filter((n) => n.status === s).length;
      const up = nodes.filter((n) => n.status !== 'down');
      const total = up.reduce((a, n) => a + (n.cpus ?? 0), 0);
      const used = up.reduce((a, n) => a + (n.usedCpus ?? 0), 0);
      const mem = up.reduce((a, n) => a + (n.memoryBytes ?? 0), 0);
      const memUsed = up.reduce((a, n) => a + (n.memoryUsedBytes ?? 0), 0);
      const jobs = cluster.jobs ?? {};
      const s = cluster.storage;
      cards.replaceChildren(
        card('Nodes', h('div', { class: 'big', id: 'nodes-ready' }, `${by('ready')} ready`), h('div', {}, `${by('down')} down · ${by('draining')} draining`)),
        card('CPUs', h('div', { class: 'big' }, `${cpus(used)} / ${cpus(total)} used`), bar(used, total), h('div', { class: 'muted' }, `${cpus(total - used)} free`)),
        card('Memory', h('div', { class: 'big' }, `${bytes(memUsed)} / ${bytes(mem)}`), bar(memUsed, mem), h('div', { class: 'muted' }, `${bytes(mem - memUsed)} free`)),
        card('Jobs', h('div', { class: 'big', id: 'jobs-running' }, `${jobs.running ?? 0} running`),
          h('div', {}, ['pending', 'succeeded', 'failed', 'cancelled', 'retrying'].filter((k) => jobs[k]).map((k) => `${jobs[k]} ${k}`).join(' · ') || 'none other')),
        card('Files', s
          ? h('div', {}, h('div', { class: 'big' }, `${s.chunkLists} contents`), `${bytes(s.bytes)} · ${s.underFiles} short of copies · ${s.lostFiles} lost`)
          : h('div', { class: 'muted' }, 'no replication pass yet')),
        card('Store and cache', h('div', {}, nodes.map((n) => h('div', {}, `${n.name}: ${bytes(n.storeBytes ?? NaN)} store, ${bytes(n.cacheBytes ?? NaN)} cache${n.translateBacklog ? `, ${n.translateBacklog} to translate` : ''}`)))),
        card('Leader', h('div', {}, cluster.leader ?? 'none (no control plane schedules now)')),
      );
    },
  };
}

const SVG = 'http://www.w3.org/2000/svg';

/** A small line chart of values over the last hour, 0 to `max` high, labelled for screen readers. */
function sparkline(label, points, max, unit) {
  const w = 80;
  const hgt = 24;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  const last = points.at(-1);
  svg.setAttribute('aria-label', `${label}, last hour: ${points.length ? `now ${unit(last.v)}, at most ${unit(Math.max(...points.map((p) => p.v)))}` : 'no samples yet'}`);
  const title = document.createElementNS(SVG, 'title');
  title.textContent = svg.getAttribute('aria-label');
  svg.append(title);
  if (points.length) {
    const t0 = Date.now() - 3600_000;
    const top = Math.max(max, ...points.map((p) => p.v)) || 1;
    const xy = points.map((p) => [Math.max(0, ((p.t - t0) / 3600_000) * w), hgt - 1 - (p.v / top) * (hgt - 2)]);
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' '));
    // The newest sample as a dot: the only mark while there is one sample.
    const dot = document.createElementNS(SVG, 'circle');
    dot.setAttribute('cx', xy.at(-1)[0].toFixed(1));
    dot.setAttribute('cy', xy.at(-1)[1].toFixed(1));
    dot.setAttribute('r', '1.8');
    svg.append(line, dot);
  }
  return h('span', { class: 'spark-box' }, h('span', { class: 'spark-label' }, label), svg);
}

function nodesPage(view) {
  const body = h('tbody');
  view.append(h('h1', {}, 'Nodes'), h('p', { id: 'node-error', class: 'error', role: 'alert' }), h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, ['Name', 'Status', '', 'Runtime', 'CPUs used', 'Load', 'Memory', 'Jobs', 'Last hour', 'Store', 'Labels', 'Export directory'].map((t) => h('th', { scope: 'col' }, t)))),
    body)));
  const rows = new Map();
  let fresh = false;
  let chartsAt = 0;
  const charts = async () => {
    chartsAt = Date.now();
    let history;
    try {
      ({ nodes: history } = await api('GET', '/v1/nodes/history'));
    } catch {
      return;
    }
    for (const n of cluster?.nodes ?? []) {
      const r = rows.get(n.name);
      const samples = history[n.name] ?? [];
      if (!r) continue;
      r.charts.replaceChildren(
        sparkline('CPU', samples.map((x) => ({ t: x.t, v: x.usedCpus })), n.cpus, (v) => `${cpus(v)} CPUs`),
        sparkline('load', samples.map((x) => ({ t: x.t, v: x.load1 })), n.cpus, cpus),
        sparkline('memory', samples.map((x) => ({ t: x.t, v: x.memoryUsedBytes })), n.memoryBytes, bytes),
      );
    }
  };
  const act = async (node, what) => {
    $('node-error').textContent = '';
    try {
      await api('POST', `/v1/nodes/${encodeURIComponent(node)}/${what}`);
    } catch (err) {
      if (!(err instanceof LoggedOut)) $('node-error').textContent = `${what} ${node}: ${err.message}`;
    }
  };
  return {
    update() {
      if (!cluster) return;
      const seen = new Set();
      for (const n of cluster.nodes) {
        seen.add(n.name);
        let r = rows.get(n.name);
        if (!r) {
          // A row keeps its buttons across updates: focus stays where the keyboard put it.
          const drain = h('button', { type: 'button', onclick: () => act(n.name, 'drain') }, 'Drain');
          const uncordon = h('button', { type: 'button', onclick: () => act(n.name, 'uncordon') }, 'Uncordon');
          r = { tr: h('tr', { 'data-node': n.name }), cells: Array.from({ length: 10 }, () => h('td')), charts: h('td', { class: 'charts' }), drain, uncordon };
          // The buttons by the status they change; the long cells last, where a narrow screen scrolls.
          r.tr.append(r.cells[0], r.cells[1], h('td', {}, h('div', { class: 'actions' }, drain, uncordon)), ...r.cells.slice(2, 7), r.charts, ...r.cells.slice(7));
          fresh = true;
          rows.set(n.name, r);
          body.append(r.tr);
        }
        const text = [n.name, n.status, n.runtime, `${cpus(n.usedCpus ?? 0)} / ${cpus(n.cpus)}`, cpus(n.load1), `${bytes(n.memoryUsedBytes)} / ${bytes(n.memoryBytes)}`,
          String(n.runningJobs ?? 0), n.storeBytes === undefined ? '' : `${bytes(n.storeBytes)} (${n.storeChunks ?? 0} chunks)${n.storeFreeBytes === undefined ? '' : `, ${bytes(n.storeFreeBytes)} free`}`,
          Object.entries(n.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', '), n.exportDir];
        text.forEach((t, i) => { if (r.cells[i].textContent !== t) r.cells[i].textContent = t; });
        r.cells[1].className = `state-${n.status}`;
        r.drain.disabled = n.status !== 'ready';
        r.uncordon.disabled = n.status !== 'draining';
      }
      for (const [name, r] of rows) if (!seen.has(name)) { r.tr.remove(); rows.delete(name); }
      // The charts move a sample a minute: read again each minute, and for a node new here.
      if (fresh || Date.now() - chartsAt >= 60_000) void charts();
      fresh = false;
    },
  };
}

const JOB_STATES = ['pending', 'running', 'succeeded', 'failed', 'cancelled'];

/** A page of 50 jobs at a time, filtered by state and name on the server; Older and Newer walk the pages. */
function jobsPage(view) {
  const state = h('select', { id: 'job-state', 'aria-label': 'state' }, h('option', { value: '' }, 'every state'), JOB_STATES.map((s) => h('option', { value: s }, s)));
  const name = h('input', { id: 'job-name', type: 'search', placeholder: 'name contains', 'aria-label': 'name contains' });
  const newer = h('button', { type: 'button', id: 'jobs-newer' }, '← Newer');
  const older = h('button', { type: 'button', id: 'jobs-older' }, 'Older →');
  const body = h('tbody');
  const note = h('p', { class: 'muted', id: 'jobs-note' });
  view.append(h('h1', {}, 'Jobs'), h('div', { class: 'filters' }, state, name, newer, older), h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, ['Name', 'State', 'Node', 'Attempt', 'Exit', 'Created', 'Why it waits'].map((t) => h('th', { scope: 'col' }, t)))), body)), note);
  // The cursors of the pages walked so far: the last is the page shown ('' the newest).
  let pages = [''];
  let next;
  let asked = 0;
  const update = async () => {
    const n = ++asked;
    const q = new URLSearchParams({ limit: '50' });
    if (state.value) q.set('state', state.value);
    if (name.value.trim()) q.set('name', name.value.trim());
    if (pages.at(-1)) q.set('after', pages.at(-1));
    let page;
    try {
      page = await api('GET', `/v1/jobs?${q}`);
    } catch {
      return;
    }
    if (n !== asked) return;
    next = page.next;
    body.replaceChildren(...page.items.map((j) => h('tr', { 'data-job': j.id },
      h('td', {}, h('a', { href: `#/jobs/${encodeURIComponent(j.id)}` }, j.name)),
      h('td', { class: `state-${j.state}` }, j.state), h('td', {}, j.node ?? j.lastNode ?? ''), h('td', {}, String(j.attempt)),
      h('td', {}, j.exitCode === undefined || j.exitCode === null ? '' : String(j.exitCode)), h('td', {}, when(j.createdAt)), h('td', {}, j.waitReason ?? ''))));
    newer.disabled = pages.length === 1;
    older.disabled = !next;
    note.textContent = `Page ${pages.length}: ${page.items.length} job(s)${next ? ', older ones on the next page' : ''}.`;
  };
  const restart = () => { pages = ['']; update(); };
  state.addEventListener('change', restart);
  name.addEventListener('input', restart);
  older.addEventListener('click', () => { if (next) { pages.push(next); update(); } });
  newer.addEventListener('click', () => { if (pages.length > 1) { pages.pop(); update(); } });
  return { update };
}

function jobPage(view, id) {
  const fields = h('dl', { class: 'fields' });
  const cancel = h('button', { type: 'button', id: 'cancel' }, 'Cancel');
  const error = h('p', { class: 'error', role: 'alert' });
  const title = h('h1', {}, `Job ${id}`);
  const log = h('pre', { id: 'log', 'aria-label': 'output', tabindex: '0' });
  const spec = h('pre', { id: 'spec' });
  view.append(h('p', {}, h('a', { href: '#/jobs' }, '← Jobs')), title, h('div', { class: 'actions' }, cancel), error, fields,
    h('h2', {}, 'Output'), log, h('h2', {}, 'Spec'), spec);
  cancel.addEventListener('click', async () => {
    error.textContent = '';
    try {
      await api('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`);
      update();
    } catch (err) {
      if (!(err instanceof LoggedOut)) error.textContent = err.message;
    }
  });
  const abort = new AbortController();
  leave = () => abort.abort();
  let lastId = '0';
  let ended = false;
  const decoder = new TextDecoder();
  const show = (line) => {
    lastId = line.id;
    if (line.t === 'end') {
      ended = true;
      let end;
      try { end = JSON.parse(line.text); } catch { end = undefined; }
      log.append(h('span', { class: 'sys' }, end ? `— ${end.state}${end.exitCode !== null ? `, exit code ${end.exitCode}` : ''}${end.signal ? `, ${end.signal}` : ''}${end.message ? `: ${end.message}` : ''}\n` : `— ended\n`));
      return;
    }
    const text = line.text ?? (line.b64 ? decoder.decode(Uint8Array.from(atob(line.b64), (c) => c.charCodeAt(0))) : '');
    log.append(h('span', { class: line.t === 'err' ? 'err' : line.t === 'sys' ? 'sys' : undefined }, visible(text)));
  };
  // Followed live; a break (a control plane restarting) follows again from the last line seen.
  (async () => {
    while (!abort.signal.aborted && !ended) {
      try {
        const res = await fetch(`/v1/jobs/${encodeURIComponent(id)}/logs?follow=1&after=${encodeURIComponent(lastId)}`, { signal: abort.signal, credentials: 'same-origin' });
        if (res.status === 401) return loggedOut();
        if (!res.ok) { error.textContent = (await res.json().catch(() => ({}))).message ?? `HTTP ${res.status}`; return; }
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n')) >= 0) {
            const raw = buf.slice(0, i);
            buf = buf.slice(i + 1);
            if (raw) show(JSON.parse(raw));
          }
        }
      } catch {
        if (abort.signal.aborted) return;
      }
      if (!ended) await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  const update = async () => {
    let j;
    try {
      j = await api('GET', `/v1/jobs/${encodeURIComponent(id)}`);
    } catch (err) {
      if (!(err instanceof LoggedOut)) error.textContent = err.message;
      return;
    }
    title.textContent = `Job ${j.name}`;
    const rows = [['ID', j.id], ['State', j.state], ['Why it waits', j.waitReason || ''], ['Node', j.node ?? j.lastNode ?? ''], ['Attempt', String(j.attempt)],
      ['Exit code', j.exitCode === undefined || j.exitCode === null ? '' : String(j.exitCode)], ['Message', j.message ?? ''],
      ['Created', when(j.createdAt)], ['Started', when(j.startedAt)], ['Finished', when(j.finishedAt)]];
    fields.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', { 'data-field': k }, v)]));
    const s = JSON.stringify(j.spec, null, 2);
    if (spec.textContent !== s) spec.textContent = s;
    cancel.disabled = ['succeeded', 'failed', 'cancelled'].includes(j.state);
  };
  return { update };
}

/** As `oswalk get services` counts them: replicas running of those wanted, and how often the replicas now in place were started again. */
function servicesPage(view) {
  const body = h('tbody');
  const note = h('p', { class: 'muted' });
  view.append(h('h1', {}, 'Services'), h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, ['Name', 'Ready', 'Phase', 'Restarts', 'Runtime', 'Labels'].map((t) => h('th', { scope: 'col' }, t)))), body)), note);
  let asked = 0;
  const update = async () => {
    const n = ++asked;
    let rows;
    try {
      const { items } = await api('GET', '/v1/objects/Service');
      rows = await Promise.all(items.map(async (svc) => {
        const [st, jobs] = await Promise.all([
          api('GET', `/v1/owners/Service/${encodeURIComponent(svc.metadata.name)}`).catch(() => undefined),
          api('GET', `/v1/jobs?${new URLSearchParams({ owner: `Service/${svc.metadata.name}`, limit: '1000' })}`),
        ]);
        const live = jobs.items.filter((j) => !['succeeded', 'failed', 'cancelled'].includes(j.state));
        return { svc, phase: st?.phase ?? 'Pending', ready: live.filter((j) => j.state === 'running').length, restarts: live.reduce((a, j) => a + Math.max(0, j.attempt - 1), 0) };
      }));
    } catch {
      return;
    }
    if (n !== asked) return;
    body.replaceChildren(...rows.map(({ svc, phase, ready, restarts }) => h('tr', { 'data-service': svc.metadata.name },
      h('td', {}, svc.metadata.name),
      h('td', { class: ready === svc.spec.replicas ? 'state-running' : 'state-pending' }, `${ready}/${svc.spec.replicas}`),
      h('td', {}, phase), h('td', {}, String(restarts)), h('td', {}, svc.spec.runtime ?? ''),
      h('td', {}, Object.entries(svc.metadata.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ')))));
    note.textContent = rows.length ? '' : 'No Service is applied (Apply one, or oswalk apply -f).';
  };
  return { update };
}

const filesHref = (path) => `#/files${path.split('/').filter(Boolean).map((n) => `/${encodeURIComponent(n)}`).join('')}`;
const joinPath = (dir, name) => (dir === '/' ? `/${name}` : `${dir}/${name}`);

/**
 * A link that downloads a file (or one version of it) from the control plane, which reads its
 * chunks from the nodes: a plain link, so the browser streams it to disk with the session cookie.
 */
const downloadLink = (path, version) => h('a', {
  href: `/v1/fs/download?${new URLSearchParams({ path, ...(version ? { version } : {}) })}`,
  download: path.slice(path.lastIndexOf('/') + 1), class: 'download',
}, 'Download');

/**
 * The unified tree: a directory's names a page at a time (as the server reads them), each with
 * its size, time, the node whose version wins and how many nodes hold its data; a file's
 * versions, any of which can be restored.
 */
function filesPage(view, path) {
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'path' },
    h('a', { href: filesHref('/') }, 'cluster'),
    path.split('/').filter(Boolean).flatMap((n, i, all) => ['/', h('a', { href: filesHref(`/${all.slice(0, i + 1).join('/')}`) }, n)]));
  const body = h('tbody');
  const more = h('button', { type: 'button', id: 'files-more', hidden: true }, 'More names');
  const error = h('p', { class: 'error', role: 'alert' });
  const versions = h('section', { id: 'versions', hidden: true });
  view.append(h('h1', {}, 'Files'), crumbs, error, h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, ['Name', 'Size', 'Modified', 'Winning node', 'Copies', ''].map((t) => h('th', { scope: 'col' }, t)))), body)), more, versions);
  let cursor = '0';
  let pages = 0;
  let shown = '';
  /** The next page of names (`again`: the first page again, in place of what is shown). */
  const load = async (again = false) => {
    let page;
    try {
      page = await api('GET', `/v1/fs/list?${new URLSearchParams({ path, cursor: again ? '0' : cursor })}`);
    } catch (err) {
      if (!(err instanceof LoggedOut)) error.textContent = err.message;
      return;
    }
    // Unchanged: the rows stay as they are (and the keyboard's focus with them).
    const seen = JSON.stringify(page.items);
    if (again && seen === shown) return;
    shown = seen;
    const rows = page.items.map((e) => {
      const p = joinPath(path, e.name);
      const open = e.type === 'dir' ? h('a', { href: filesHref(p) }, `${e.name}/`)
        : h('button', { type: 'button', class: 'link', onclick: () => showVersions(p) }, e.name);
      return h('tr', { 'data-file': e.name }, h('td', {}, open), h('td', {}, e.type === 'dir' ? '' : bytes(e.size)), h('td', {}, when(e.mtime)),
        h('td', {}, e.node), h('td', {}, e.copies === undefined ? '' : String(e.copies)),
        h('td', { class: 'row-actions' }, e.type === 'file' ? [h('button', { type: 'button', onclick: () => showVersions(p) }, 'Versions'), ' ', downloadLink(p)] : ''));
    });
    if (again) body.replaceChildren(...rows);
    else body.append(...rows);
    pages = again ? 1 : pages + 1;
    cursor = page.cursor;
    more.hidden = cursor === '0';
  };
  const showVersions = async (p, said = '') => {
    error.textContent = '';
    let list;
    try {
      list = await api('GET', `/v1/fs/versions?${new URLSearchParams({ path: p })}`);
    } catch (err) {
      if (!(err instanceof LoggedOut)) error.textContent = err.message;
      return;
    }
    const status = h('p', { role: 'status', id: 'restore-status' }, said);
    versions.replaceChildren(h('h2', {}, `Versions of ${p}`), h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Version', 'Modified', 'Size', 'Node', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, list.items.map((v) => h('tr', { 'data-version': v.id, class: v.current ? 'current' : undefined },
        h('td', {}, v.id), h('td', {}, when(Number(BigInt(v.mtimeNs) / 1000000n))), h('td', {}, v.type === 'tombstone' ? 'deleted' : bytes(v.size)), h('td', {}, v.node),
        h('td', { class: 'row-actions' }, v.type === 'file' ? [downloadLink(p, v.id), ' '] : '', v.current ? 'current' : v.type === 'tombstone' ? '' : h('button', { type: 'button', onclick: async () => {
          try {
            // Recorded as made by the node that wrote that version: its data is there.
            await api('POST', '/v1/fs/restore', { path: p, version: v.id, node: v.node });
            await load(true);
            await showVersions(p, `Restored version ${v.id} of ${p}.`);
          } catch (err) {
            if (!(err instanceof LoggedOut)) status.textContent = err.message;
          }
        } }, 'Restore'))))))), status);
    versions.hidden = false;
  };
  more.addEventListener('click', () => load());
  void load();
  // Live while the directory fits one page; a bigger one is read on request (More names).
  return { update: () => (pages === 1 && cursor === '0' ? load(true) : undefined) };
}

function applyPage(view) {
  const text = h('textarea', { id: 'yaml', rows: '16', spellcheck: 'false', 'aria-label': 'manifests (YAML)',
    placeholder: 'apiVersion: oswalk.dev/v1\nkind: Job\nmetadata:\n  name: hello\nspec:\n  command: ["echo", "hello"]' });
  const file = h('input', { type: 'file', id: 'yaml-file', accept: '.yaml,.yml,text/yaml', 'aria-label': 'upload a manifest file' });
  const dry = h('button', { type: 'button', id: 'dry-run' }, 'Dry run');
  const apply = h('button', { type: 'button', id: 'apply', class: 'primary' }, 'Apply');
  const result = h('div', { id: 'apply-result', role: 'status' });
  view.append(h('h1', {}, 'Apply'), h('p', { class: 'muted' }, 'Paste or upload manifests (Job, Service, Node, Mount). A dry run says what would be created or changed; nothing is applied until Apply, and a refused manifest applies nothing.'),
    text, h('div', { class: 'actions' }, file, dry, apply), result);
  let source = 'dashboard';
  file.addEventListener('change', async () => {
    const f = file.files?.[0];
    if (!f) return;
    text.value = await f.text();
    source = f.name;
  });
  text.addEventListener('input', () => { source = 'dashboard'; });
  const send = async (dryRun) => {
    result.replaceChildren();
    dry.disabled = apply.disabled = true;
    try {
      const { items } = await api('POST', '/v1/apply', { source, yaml: text.value, dryRun });
      result.append(h('ul', { class: 'applied' }, items.map((o) => h('li', {}, `${o.kind.toLowerCase()}/${o.name} ${o.result}${dryRun ? ' (dry run)' : ''}`))));
      // What would change, as `oswalk diff` shows it.
      for (const o of items.filter((x) => x.diff)) {
        result.append(h('pre', { class: 'diff', 'aria-label': `what would change in ${o.kind.toLowerCase()}/${o.name}` },
          o.diff.split('\n').map((l) => h('span', { class: l.startsWith('+') && !l.startsWith('+++') ? 'add' : l.startsWith('-') && !l.startsWith('---') ? 'del' : undefined }, `${l}\n`))));
      }
    } catch (err) {
      if (err instanceof LoggedOut) return;
      result.append(h('p', { class: 'error', role: 'alert' }, err.message));
      // The line at fault, with the lines around it, as the CLI points at it.
      if (err.body?.line) {
        const lines = text.value.split('\n');
        const at = err.body.line;
        result.append(h('pre', { class: 'excerpt' }, lines.slice(Math.max(0, at - 3), at + 2).map((l, i) => {
          const n = Math.max(1, at - 2) + i;
          return h('span', { class: n === at ? 'err' : undefined }, `${String(n).padStart(4)} | ${l}\n`);
        })));
      }
    } finally {
      dry.disabled = apply.disabled = false;
    }
  };
  dry.addEventListener('click', () => send(true));
  apply.addEventListener('click', () => send(false));
  return {};
}

// ---- start ------------------------------------------------------------------------------------

api('GET', '/v1/session').then((me) => (me.loggedIn ? loggedIn(me) : loggedOut()), loggedOut);
