// Troupe dashboard: plain JavaScript, no dependencies and no build step.
// It talks only to this server's API. Every piece of data is put in the
// page as text (textContent, text nodes, attributes), never parsed as HTML.
(() => {
  'use strict';

  const TOKEN_KEY = 'troupe.token';
  const RELATIONS_KEY = 'troupe.relations';
  const PAGE_SIZE = 20;
  const STATUSES = ['scheduled', 'pending', 'running', 'completed', 'failed', 'canceled'];
  // UNFINISHED are the statuses a job can be canceled in.
  const UNFINISHED = new Set(['scheduled', 'pending', 'running']);
  const QUEUE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
  const SCHEDULE_NAME = /^[a-z0-9][a-z0-9_.-]{0,127}$/;
  const TERMINAL = new Set(['completed', 'failed', 'canceled']);
  // The chart spans the time since the page opened, in steps of 30 s, up
  // to 5 minutes.
  const CHART_WINDOW_MS = 5 * 60 * 1000;
  const CHART_STEP_MS = 30 * 1000;
  const LIST_REFRESH_MS = 400;
  const PROBLEM_UNKNOWN_TYPE = 'urn:troupe:problem:unknown-job-type';
  const FIELDS = {
    type: { input: 'submit-type', error: 'submit-type-error', label: 'Type' },
    payload: { input: 'submit-payload', error: 'submit-payload-error', label: 'Payload' },
    maxAttempts: { input: 'submit-max', error: 'submit-max-error', label: 'Max attempts' },
    queue: { input: 'submit-queue', error: 'submit-queue-error', label: 'Queue' },
    priority: { input: 'submit-priority', error: 'submit-priority-error', label: 'Priority' },
    delay: { input: 'submit-delay', error: 'submit-delay-error', label: 'Run in' },
  };

  const $ = (id) => document.getElementById(id);
  const numberFormat = new Intl.NumberFormat();
  const rateFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });

  // ---- DOM helpers ----------------------------------------------------------

  // el builds an element. Attributes are set as attributes and children
  // appended as nodes or text, so nothing is ever parsed as HTML.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === false || value === null || value === undefined) continue;
      if (name === 'class') node.className = value;
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function svgEl(tag, attrs) {
    const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    return node;
  }

  function announce(text) {
    const region = $('announcer');
    region.textContent = '';
    // A fresh text node makes screen readers read a repeated message again.
    requestAnimationFrame(() => { region.textContent = text; });
  }

  function showNotice(text, actionLabel, action) {
    const notice = $('notice');
    notice.replaceChildren(text);
    if (actionLabel) {
      const button = el('button', { type: 'button', class: 'button small' }, actionLabel);
      button.addEventListener('click', action);
      notice.append(' ', button);
    }
    notice.hidden = false;
  }

  function hideNotice() {
    $('notice').hidden = true;
    $('notice').replaceChildren();
  }

  // ---- formatting --------------------------------------------------------------

  // shortId is the last group of a job's UUID. IDs are UUIDv7, whose first
  // groups are a timestamp shared by jobs submitted together; the last one
  // is random.
  function shortId(id) {
    return String(id).slice(-12);
  }

  function jobPath(id) {
    return '/ui/jobs/' + encodeURIComponent(id);
  }

  function formatTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    const now = new Date();
    const sameDay = d.toDateString() === now.toDateString();
    return sameDay ? timeFormat.format(d) : dateTimeFormat.format(d);
  }

  function formatDuration(ms) {
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60000) return `${rateFormat.format(ms / 1000)} s`;
    const minutes = Math.floor(ms / 60000);
    return `${minutes} min ${Math.round((ms % 60000) / 1000)} s`;
  }

  // humanDuration says a retention in words: "24 h", "7 days", "30 s".
  function humanDuration(ms) {
    if (!Number.isFinite(ms)) return '?';
    const day = 86400e3;
    if (ms >= 2 * day && ms % day === 0) return `${ms / day} days`;
    const parts = [];
    for (const [unit, size] of [['h', 3600e3], ['min', 60e3], ['s', 1e3]]) {
      const n = Math.floor(ms / size);
      if (n) parts.push(`${n} ${unit}`);
      ms -= n * size;
    }
    if (ms) parts.push(`${Math.round(ms)} ms`);
    return parts.join(' ') || '0 s';
  }

  function schedulePath(name) {
    return '/ui/schedules#schedule-' + encodeURIComponent(name);
  }

  function scheduleJobsPath(name) {
    return '/?schedule=' + encodeURIComponent(name);
  }

  function statusLabel(status) {
    return status ? status.charAt(0).toUpperCase() + status.slice(1) : '';
  }

  function badge(status) {
    return el('span', { class: 'badge', 'data-status': status }, status);
  }

  // parseDuration reads a Go duration as the API writes it ("1h2m3.5s",
  // "250ms") and returns milliseconds, or NaN.
  function parseDuration(text) {
    const units = { h: 3600e3, m: 60e3, s: 1e3, ms: 1, us: 1e-3, 'µs': 1e-3, ns: 1e-6 };
    const re = /(\d+(?:\.\d*)?)(h|ms|m|s|us|µs|ns)/g;
    let total = 0;
    let matched = '';
    for (const m of String(text).matchAll(re)) {
      total += parseFloat(m[1]) * units[m[2]];
      matched += m[0];
    }
    return matched && matched === String(text) ? total : NaN;
  }

  // isStuck reports whether a running job's attempt has run past its
  // timeout: its handler ignores its context and keeps its worker.
  function isStuck(job, now = Date.now()) {
    if (job.status !== 'running' || !job.timeout || !job.startedAt) return false;
    const limit = parseDuration(job.timeout);
    return Number.isFinite(limit) && now - Date.parse(job.startedAt) > limit;
  }

  // runAtNode shows when a job runs: for a scheduled job the time it waits
  // for, with how long that is from now; for others when it fell due.
  function runAtNode(job) {
    if (!job.runAt) return '';
    const time = el('time', { datetime: job.runAt, title: job.runAt }, formatTime(job.runAt));
    if (job.status !== 'scheduled') return time;
    const wait = Date.parse(job.runAt) - Date.now();
    return el('span', { class: 'run-at scheduled' }, time, wait > 0 ? el('span', { class: 'muted' }, ` in ${formatDuration(wait)}`) : null);
  }

  // ---- the API token -------------------------------------------------------------

  // The token lives in sessionStorage: this tab only, gone when it closes.
  // It is never written into the page or the address bar.
  const tokens = {
    get() {
      try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
    },
    set(token) {
      try { sessionStorage.setItem(TOKEN_KEY, token); } catch { /* private mode: kept for no one */ }
      $('sign-out').hidden = false;
    },
    clear() {
      try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* nothing stored */ }
      $('sign-out').hidden = true;
    },
  };

  let tokenRequest = null;
  let resolveToken = null;

  // askToken opens the token dialog once, however many calls are waiting,
  // and resolves true when a token was entered, false when it was dismissed.
  function askToken(rejected) {
    if (tokenRequest) return tokenRequest;
    tokenRequest = new Promise((resolve) => { resolveToken = resolve; });
    const dialog = $('token-dialog');
    const input = $('token-input');
    input.value = '';
    input.setAttribute('aria-invalid', rejected ? 'true' : 'false');
    $('token-error').textContent = rejected ? 'That token was not accepted. Enter another one.' : '';
    if (!dialog.open) dialog.showModal();
    input.focus();
    return tokenRequest;
  }

  function finishToken(ok) {
    const dialog = $('token-dialog');
    $('token-input').value = '';
    if (dialog.open) dialog.close();
    const resolve = resolveToken;
    tokenRequest = null;
    resolveToken = null;
    if (resolve) resolve(ok);
  }

  function bindTokenDialog() {
    $('token-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const token = $('token-input').value.trim();
      if (!token) {
        $('token-error').textContent = 'Enter the token.';
        $('token-input').setAttribute('aria-invalid', 'true');
        $('token-input').focus();
        return;
      }
      tokens.set(token);
      finishToken(true);
      hideNotice();
      connectLive();
    });
    $('token-cancel').addEventListener('click', () => finishToken(false));
    // Escape closes the dialog; that is a cancel too.
    $('token-dialog').addEventListener('close', () => { if (tokenRequest) finishToken(false); });
    $('sign-out').addEventListener('click', () => {
      tokens.clear();
      closeLive();
      setConnection('offline');
      announce('The token is forgotten.');
      refreshAll();
    });
    if (tokens.get()) $('sign-out').hidden = false;
  }

  // ---- the API ----------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && problem.detail) || (status ? `The server answered ${status}.` : 'The server cannot be reached.'));
      this.status = status;
      this.problem = problem || null;
    }
  }

  async function readBody(res) {
    const type = res.headers.get('Content-Type') || '';
    if (!type.includes('json')) return null;
    try { return await res.json(); } catch { return null; }
  }

  // api calls the API and returns the decoded body. On 401 it asks for a
  // token and tries again; errors are ApiErrors carrying the problem.
  async function api(path, options = {}) {
    for (;;) {
      const headers = { Accept: 'application/json' };
      const token = tokens.get();
      if (token) headers.Authorization = 'Bearer ' + token;
      if (options.body !== undefined) headers['Content-Type'] = 'application/json';
      let res;
      try {
        res = await fetch(path, { method: options.method || 'GET', headers, body: options.body, cache: 'no-store' });
      } catch {
        throw new ApiError(0, null);
      }
      if (res.status === 401) {
        const problem = await readBody(res);
        if (token && tokens.get() === token) tokens.clear();
        if (!tokens.get() && !(await askToken(Boolean(token)))) {
          showNotice('This server needs an API token.', 'Enter token', () => { hideNotice(); refreshAll(); });
          throw new ApiError(401, problem);
        }
        continue;
      }
      const body = await readBody(res);
      if (!res.ok) throw new ApiError(res.status, body);
      return body;
    }
  }

  // ---- relations between re-runs ------------------------------------------------------

  // A job does not record which job it re-runs; the answer of the retry
  // call says it, and the dashboard keeps that for this tab.
  function relations() {
    try {
      const stored = JSON.parse(sessionStorage.getItem(RELATIONS_KEY) || '{}');
      return { retryOf: stored.retryOf || {}, rerunAs: stored.rerunAs || {} };
    } catch {
      return { retryOf: {}, rerunAs: {} };
    }
  }

  function rememberRerun(originalId, newId) {
    const r = relations();
    r.retryOf[newId] = originalId;
    r.rerunAs[originalId] = [...(r.rerunAs[originalId] || []), newId];
    try { sessionStorage.setItem(RELATIONS_KEY, JSON.stringify(r)); } catch { /* not kept */ }
  }

  // ---- live updates ---------------------------------------------------------------------

  const live = { source: null, everOpen: false, retryTimer: 0 };

  function setConnection(state) {
    const labels = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', offline: 'Offline' };
    const node = $('connection');
    if (node.dataset.state === state) return;
    node.dataset.state = state;
    $('connection-text').textContent = labels[state];
  }

  function closeLive() {
    clearTimeout(live.retryTimer);
    if (live.source) live.source.close();
    live.source = null;
  }

  // connectLive opens the event stream. EventSource cannot send headers, so
  // the token goes in the query string of this script-built URL, which is
  // never shown. EventSource reconnects by itself after network errors,
  // such as a server restart, after the delay the server asks for.
  function connectLive() {
    closeLive();
    const token = tokens.get();
    const source = new EventSource('/events' + (token ? '?token=' + encodeURIComponent(token) : ''));
    live.source = source;
    source.addEventListener('open', () => {
      const reconnected = live.everOpen;
      live.everOpen = true;
      setConnection('live');
      // What changed between the page's first load and this moment came
      // before the stream could carry it: load the view once more.
      if (reconnected) refreshAll();
      else refreshView();
    });
    source.addEventListener('error', () => {
      if (source !== live.source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream: a token it does not take, or it
        // is stopping. An API call finds out, asking for a token if needed.
        setConnection('offline');
        live.retryTimer = setTimeout(recoverLive, 3000);
      } else {
        setConnection('reconnecting');
      }
    });
    source.addEventListener('job', (event) => onJob(JSON.parse(event.data)));
    source.addEventListener('stats', (event) => onStats(JSON.parse(event.data)));
    source.addEventListener('resync', () => refreshAll());
  }

  async function recoverLive() {
    try {
      onStats(await api('/stats'));
    } catch (err) {
      if (err.status !== 401) live.retryTimer = setTimeout(recoverLive, 5000);
      return;
    }
    connectLive();
  }

  function refreshAll() {
    loadTypes();
    loadSchedules();
    refreshView();
    api('/stats').then(onStats, () => {});
  }

  function refreshView() {
    if (view.name === 'dashboard') loadJobs();
    if (view.name === 'job') loadJob(view.jobId);
  }

  function onJob(job) {
    if (TERMINAL.has(job.status)) cancels.delete(job.id);
    if (view.name === 'job' && view.jobId === job.id) renderJob(job);
    if (view.name === 'schedules' && job.schedule) scheduleSchedulesRefresh();
    if (view.name === 'dashboard') {
      const row = findRow(job.id);
      if (row && job.updatedAt >= row.dataset.updatedAt) preservingFocus(() => fillRow(row, job));
      scheduleListRefresh();
    }
  }

  // ---- overview ------------------------------------------------------------------------

  const chart = { samples: [] };

  function onStats(stats) {
    if (!stats || !stats.counts) return;
    for (const status of STATUSES) {
      const node = document.querySelector(`[data-count="${status}"]`);
      node.textContent = numberFormat.format(stats.counts[status] || 0);
    }
    const { size, busy } = stats.workers;
    $('workers-value').textContent = `${numberFormat.format(busy)} / ${numberFormat.format(size)}`;
    $('workers-fill').style.width = `${size ? Math.min(100, (busy / size) * 100) : 0}%`;
    const bar = $('workers-bar');
    bar.setAttribute('aria-valuemax', String(size));
    bar.setAttribute('aria-valuenow', String(busy));
    bar.setAttribute('aria-valuetext', `${busy} of ${size} workers busy`);
    $('queue-value').textContent = numberFormat.format(stats.queueDepth);
    const stuck = stats.stuck || 0;
    $('stuck-value').textContent = numberFormat.format(stuck);
    $('stuck-gauge').dataset.stuck = String(stuck);
    renderQueues(stats.queues || []);
    renderRetention(stats.retention);
    markStuckRows();
    // Next runs move on and slots submit jobs: the schedules page follows
    // at the pace of the stats.
    if (view.name === 'schedules') loadSchedules();

    const c = stats.counts;
    const sample = { t: Date.parse(stats.sampledAt), finished: c.completed + c.failed + c.canceled, failed: c.failed };
    const samples = chart.samples;
    if (!samples.length || sample.t > samples[samples.length - 1].t) samples.push(sample);
    while (samples.length > 2 && samples[1].t < sample.t - CHART_WINDOW_MS) samples.shift();
    drawChart();
  }

  // renderRetention says how long finished jobs are kept; null is for ever.
  function renderRetention(retention) {
    const node = $('retention');
    if (!retention) {
      node.hidden = true;
      return;
    }
    const keep = (d) => (d === null || d === undefined ? 'for ever' : humanDuration(parseDuration(d)));
    node.textContent = `Finished jobs are kept: completed ${keep(retention.completed)}, ` +
      `failed ${keep(retention.failed)}, canceled ${keep(retention.canceled)}.`;
    node.hidden = false;
  }

  // niceCeil rounds up to 1, 2 or 5 times a power of ten, for axis labels.
  function niceCeil(v) {
    const power = 10 ** Math.floor(Math.log10(v));
    for (const step of [1, 2, 5, 10]) {
      if (step * power >= v) return step * power;
    }
    return 10 * power;
  }

  function drawChart() {
    const svg = $('chart');
    const width = svg.clientWidth || 600;
    const height = svg.clientHeight || 150;
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.replaceChildren();
    // How many samples the chart has; tests and screenshots wait on it.
    svg.dataset.samples = String(chart.samples.length);

    const s = chart.samples;
    const rates = [];
    for (let i = 1; i < s.length; i++) {
      const dt = (s[i].t - s[i - 1].t) / 1000;
      if (dt <= 0) continue;
      rates.push({
        t: s[i].t,
        finished: Math.max(0, s[i].finished - s[i - 1].finished) / dt,
        failed: Math.max(0, s[i].failed - s[i - 1].failed) / dt,
      });
    }
    if (rates.length < 2) {
      const label = svgEl('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'empty-label' });
      label.textContent = 'Collecting data…';
      svg.append(label);
      $('chart-summary').textContent = 'Collecting…';
      svg.setAttribute('aria-label', 'Throughput chart: collecting data');
      return;
    }

    const pad = { left: 44, right: 8, top: 10, bottom: 22 };
    const end = rates[rates.length - 1].t;
    // A few seconds past a step are cut off rather than doubling the span.
    const steps = Math.ceil((end - s[0].t) / CHART_STEP_MS - 0.1);
    const span = Math.min(CHART_WINDOW_MS, Math.max(1, steps) * CHART_STEP_MS);
    const start = end - span;
    const spanText = span < 60000 ? `${span / 1000} s` : `${rateFormat.format(span / 60000)} min`;
    const peak = Math.max(...rates.map((r) => r.finished));
    const yMax = niceCeil(Math.max(peak, 1));
    const x = (t) => pad.left + ((t - start) / span) * (width - pad.left - pad.right);
    const y = (v) => pad.top + (1 - v / yMax) * (height - pad.top - pad.bottom);

    for (const v of [0, yMax / 2, yMax]) {
      svg.append(svgEl('line', { class: 'grid', x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v) }));
      const label = svgEl('text', { class: 'axis-label', x: pad.left - 6, y: y(v) + 4, 'text-anchor': 'end' });
      label.textContent = `${rateFormat.format(v)}/s`;
      svg.append(label);
    }
    for (const [t, text, anchor] of [[start, `${spanText} ago`, 'start'], [end, 'now', 'end']]) {
      const label = svgEl('text', { class: 'axis-label', x: x(t), y: height - 4, 'text-anchor': anchor });
      label.textContent = text;
      svg.append(label);
    }

    const shown = rates.filter((r) => r.t >= start);
    const line = (key) => shown.map((r, i) => `${i ? 'L' : 'M'}${x(r.t).toFixed(1)},${y(r[key]).toFixed(1)}`).join('');
    const finishedLine = line('finished');
    const first = shown[0];
    const last = shown[shown.length - 1];
    svg.append(svgEl('path', {
      class: 'area',
      d: `${finishedLine}L${x(last.t).toFixed(1)},${y(0)}L${x(first.t).toFixed(1)},${y(0)}Z`,
    }));
    svg.append(svgEl('path', { class: 'line-finished', d: finishedLine }));
    svg.append(svgEl('path', { class: 'line-failed', d: line('failed') }));

    const now = rates[rates.length - 1];
    $('chart-summary').textContent = `${rateFormat.format(now.finished)}/s now · peak ${rateFormat.format(peak)}/s`;
    $('chart-window').textContent = `last ${spanText}`;
    svg.setAttribute('aria-label', `Throughput over the last ${spanText}: ${rateFormat.format(now.finished)} jobs finished ` +
      `per second now, ${rateFormat.format(now.failed)} failed per second; the peak was ${rateFormat.format(peak)} per second.`);
  }

  // ---- the jobs table ------------------------------------------------------------------------

  const list = { status: '', type: '', queue: '', schedule: '', order: 'desc', page: 0, total: null, seq: 0, refreshTimer: 0 };
  const cancels = new Set(); // jobs whose cancel is on its way

  function readListState() {
    const q = new URLSearchParams(location.search);
    list.status = STATUSES.includes(q.get('status')) ? q.get('status') : '';
    list.type = q.get('type') || '';
    list.queue = QUEUE_NAME.test(q.get('queue') || '') ? q.get('queue') : '';
    list.schedule = SCHEDULE_NAME.test(q.get('schedule') || '') ? q.get('schedule') : '';
    list.order = q.get('order') === 'asc' ? 'asc' : 'desc';
    list.page = Math.max(0, (parseInt(q.get('page'), 10) || 1) - 1);
    $('filter-status').value = list.status;
    $('filter-order').value = list.order;
    setTypeFilter(list.type);
    setQueueFilter(list.queue);
    setScheduleFilter(list.schedule);
  }

  function writeListState() {
    const q = new URLSearchParams();
    if (list.status) q.set('status', list.status);
    if (list.type) q.set('type', list.type);
    if (list.queue) q.set('queue', list.queue);
    if (list.schedule) q.set('schedule', list.schedule);
    if (list.order !== 'desc') q.set('order', list.order);
    if (list.page) q.set('page', String(list.page + 1));
    const query = q.toString();
    history.replaceState(null, '', '/' + (query ? '?' + query : ''));
  }

  function setTypeFilter(type) {
    const select = $('filter-type');
    if (type && ![...select.options].some((o) => o.value === type)) select.append(el('option', { value: type }, type));
    select.value = type;
  }

  // setQueueFilter shows the queues in the filter, keeping the one chosen
  // (it may hold no jobs now). The options change only when the names do,
  // so that a live update does not close the list under the pointer.
  function setQueueFilter(chosen, names) {
    const select = $('filter-queue');
    const have = [...select.options].slice(1).map((o) => o.value);
    const want = [...new Set([...(names || have), ...(chosen ? [chosen] : [])])].sort();
    if (want.join('\n') !== have.join('\n')) {
      select.replaceChildren(el('option', { value: '' }, 'Any queue'), ...want.map((q) => el('option', { value: q }, q)));
    }
    select.value = chosen;
  }

  // setScheduleFilter shows the schedules in the filter, as setQueueFilter
  // does the queues; the filter is shown only when there are some.
  function setScheduleFilter(chosen, names) {
    const select = $('filter-schedule');
    const have = [...select.options].slice(1).map((o) => o.value);
    const want = [...new Set([...(names || have), ...(chosen ? [chosen] : [])])].sort();
    if (want.join('\n') !== have.join('\n')) {
      select.replaceChildren(el('option', { value: '' }, 'Any schedule'), ...want.map((n) => el('option', { value: n }, n)));
    }
    select.value = chosen;
    $('filter-schedule-field').hidden = want.length === 0;
  }

  function listQuery(limit, offset) {
    const q = new URLSearchParams();
    if (list.status) q.append('status', list.status);
    if (list.type) q.set('type', list.type);
    if (list.queue) q.set('queue', list.queue);
    if (list.schedule) q.set('schedule', list.schedule);
    q.set('limit', String(limit));
    q.set('offset', String(offset));
    return '/jobs?' + q.toString();
  }

  // fetchPage returns the jobs of the current page and the total. GET /jobs
  // lists oldest first; the newest-first page p is the slice that ends p
  // pages before the end, reversed. Its offset needs the total, taken from
  // the previous answer and checked against the new one; jobs come and go
  // meanwhile, so it tries a few times.
  async function fetchPage() {
    if (list.order === 'asc') {
      const page = await api(listQuery(PAGE_SIZE, list.page * PAGE_SIZE));
      return { jobs: page.jobs, total: page.total };
    }
    let total = list.total;
    let last = null;
    for (let tries = 0; tries < 3; tries++) {
      const end = (total ?? 0) - list.page * PAGE_SIZE;
      if (total === null || end <= 0) {
        // Nothing to show by the last count: count again.
        const counted = (await api(listQuery(1, 0))).total;
        if (counted - list.page * PAGE_SIZE <= 0) return { jobs: [], total: counted };
        total = counted;
        continue;
      }
      const offset = Math.max(0, end - PAGE_SIZE);
      const page = await api(listQuery(end - offset, offset));
      last = { jobs: page.jobs.slice().reverse(), total: page.total };
      if (page.total === total) return last;
      total = page.total;
    }
    return last || { jobs: [], total: total ?? 0 };
  }

  async function loadJobs() {
    const seq = ++list.seq;
    let result;
    try {
      result = await fetchPage();
    } catch (err) {
      if (seq === list.seq && err.status !== 401) showNotice(`The jobs could not be loaded: ${err.message}`);
      return;
    }
    if (seq !== list.seq || view.name !== 'dashboard') return;
    list.total = result.total;
    const lastPage = Math.max(0, Math.ceil(result.total / PAGE_SIZE) - 1);
    if (list.page > lastPage) {
      list.page = lastPage;
      writeListState();
      loadJobs();
      return;
    }
    preservingFocus(() => renderJobs(result.jobs, result.total));
  }

  function scheduleListRefresh() {
    if (list.refreshTimer) return;
    list.refreshTimer = setTimeout(() => {
      list.refreshTimer = 0;
      if (view.name === 'dashboard') loadJobs();
    }, LIST_REFRESH_MS);
  }

  function findRow(id) {
    return $('jobs-body').querySelector(`tr[data-job-id="${CSS.escape(id)}"]`);
  }

  // renderJobs shows the page of jobs, keeping the row of a job that is
  // still listed: a refresh that changes nothing changes nothing in the
  // page, so a pointer or the focus on a row's button stays on that button.
  function renderJobs(jobs, total) {
    const body = $('jobs-body');
    const listed = new Set(jobs.map((job) => job.id));
    const kept = new Map();
    for (const row of [...body.children]) {
      if (listed.has(row.dataset.jobId)) kept.set(row.dataset.jobId, row);
      else row.remove();
    }
    jobs.forEach((job, i) => {
      const row = kept.get(job.id) || el('tr');
      fillRow(row, job);
      // Moved or added only where it is not already in place.
      if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
    });
    $('jobs-empty').hidden = jobs.length > 0;
    const from = list.page * PAGE_SIZE + 1;
    const to = list.page * PAGE_SIZE + jobs.length;
    $('page-info').textContent = total === 0 ? 'No jobs' : `${numberFormat.format(from)}–${numberFormat.format(to)} of ${numberFormat.format(total)}`;
    $('page-prev').disabled = list.page === 0;
    $('page-next').disabled = (list.page + 1) * PAGE_SIZE >= total;
  }

  function fillRow(row, job) {
    // The same version of the job: the row shows it already.
    const stuck = isStuck(job);
    const progressAt = job.progress ? job.progress.updatedAt : '';
    const waitingFor = job.waitingFor || '';
    if (row.dataset.jobId === job.id && row.dataset.updatedAt === job.updatedAt && row.dataset.status === job.status &&
      row.hasAttribute('data-stuck') === stuck && row.dataset.progressAt === progressAt && row.dataset.waitingFor === waitingFor) return row;
    row.dataset.jobId = job.id;
    row.dataset.waitingFor = waitingFor;
    row.dataset.progressAt = progressAt;
    row.dataset.status = job.status;
    row.dataset.updatedAt = job.updatedAt;
    row.toggleAttribute('data-stuck', stuck);
    // Kept for markStuckRows, which marks a running row once its timeout passes.
    if (job.status === 'running' && job.timeout && job.startedAt) {
      row.dataset.startedAt = job.startedAt;
      row.dataset.timeout = job.timeout;
    } else {
      delete row.dataset.startedAt;
      delete row.dataset.timeout;
    }
    const status = el('td', { class: 'status-cell' }, badge(job.status));
    if (stuck) {
      status.append(' ', el('span', { class: 'stuck-mark', title: `Running past its timeout of ${job.timeout}: its handler ignores its context` }, 'stuck'));
    }
    if (job.status === 'running' && job.progress) status.append(progressBar(job.progress, 'row-progress'));
    if (job.status === 'pending' && job.waitingFor) {
      status.append(' ', el('span', { class: 'waiting-for', title: `Waiting: ${WAIT_EXPLAINED[job.waitingFor] || job.waitingFor}` },
        `waits: ${job.waitingFor}`));
    }
    const link = el('a', { class: 'job-link', href: jobPath(job.id), 'data-link': true, title: job.id, 'aria-label': `Job ${job.id}` }, shortId(job.id));
    const created = el('time', { datetime: job.createdAt, title: job.createdAt }, formatTime(job.createdAt));
    row.replaceChildren(
      // In a narrow window the type goes under the ID, in place of its column.
      el('td', null, link, el('span', { class: 'row-type', 'aria-hidden': 'true' }, job.type)),
      el('td', { class: 'type-name col-type' }, job.type),
      el('td', { class: 'queue-name col-queue' }, job.queue || '',
        job.key ? el('span', { class: 'job-key', title: `Key ${job.key}` }, job.key) : null),
      el('td', { class: 'num col-priority' }, job.priority ? String(job.priority) : ''),
      status,
      el('td', { class: 'col-runat' }, runAtNode(job)),
      el('td', { class: 'num col-attempts' }, `${job.attempts} / ${job.maxAttempts}`),
      el('td', { class: 'muted col-created' }, created),
      el('td', { class: 'col-actions' }, actionButton(job, true)),
    );
    return row;
  }

  function actionButton(job, small) {
    const size = small ? ' small' : '';
    if (UNFINISHED.has(job.status)) {
      const busy = cancels.has(job.id);
      return el('button', {
        type: 'button', class: 'button danger' + size, 'data-action': 'cancel', 'data-job-id': job.id,
        'aria-label': `Cancel job ${shortId(job.id)}`, disabled: busy,
      }, busy ? 'Canceling…' : 'Cancel');
    }
    if (job.status === 'failed' || job.status === 'canceled') {
      return el('button', {
        type: 'button', class: 'button' + size, 'data-action': 'rerun', 'data-job-id': job.id,
        'aria-label': `Re-run job ${shortId(job.id)}`,
      }, 'Re-run');
    }
    return null;
  }

  // progressText says how far an attempt got: "40%", and its message.
  function progressText(progress) {
    const pct = `${Number(progress.percent.toFixed(1))}%`;
    return progress.message ? `${pct} — ${progress.message}` : pct;
  }

  // progressBar is a job's progress as a bar; its tooltip and label carry
  // the percentage and the message.
  function progressBar(progress, cls) {
    const text = progressText(progress);
    return el('progress', { class: cls, max: 100, value: progress.percent, title: text, 'aria-label': `Progress: ${text}` });
  }

  // preservingFocus runs fn, which may rebuild rows, and puts the focus
  // back on the same control of the same job, so that live updates do not
  // pull it away from a keyboard user.
  function preservingFocus(fn) {
    const active = document.activeElement;
    const row = active && active.closest ? active.closest('tr[data-job-id]') : null;
    const id = row ? row.dataset.jobId : null;
    const action = active && active.dataset ? active.dataset.action : null;
    fn();
    if (!id || document.contains(active)) return;
    const again = findRow(id);
    if (!again) return;
    const target = (action && again.querySelector(`[data-action="${action}"]`)) || again.querySelector('a, button');
    if (target) target.focus({ preventScroll: true });
  }

  function bindList() {
    $('filters').addEventListener('change', () => {
      list.status = $('filter-status').value;
      list.type = $('filter-type').value;
      list.queue = $('filter-queue').value;
      list.schedule = $('filter-schedule').value;
      list.order = $('filter-order').value;
      list.page = 0;
      list.total = null;
      writeListState();
      loadJobs();
    });
    $('filters').addEventListener('submit', (event) => event.preventDefault());
    $('page-prev').addEventListener('click', () => {
      if (list.page === 0) return;
      list.page--;
      writeListState();
      loadJobs();
    });
    $('page-next').addEventListener('click', () => {
      list.page++;
      writeListState();
      loadJobs();
    });
  }

  async function loadTypes() {
    let body;
    try {
      body = await api('/job-types');
    } catch {
      return;
    }
    const types = body.types;
    // What runs a type, said for those not run by a Go handler in the server.
    const runBy = new Map((body.jobTypes || []).map((t) => [t.type, t.runBy]));
    const label = (t) => (runBy.has(t) && runBy.get(t) !== 'go' ? `${t} (${runBy.get(t)})` : t);
    const submit = $('submit-type');
    const chosen = submit.value;
    submit.replaceChildren(...types.map((t) => el('option', { value: t, 'data-run-by': runBy.get(t) || 'go' }, label(t))));
    if (types.includes(chosen)) submit.value = chosen;
    const filter = $('filter-type');
    filter.replaceChildren(el('option', { value: '' }, 'Any type'), ...types.map((t) => el('option', { value: t }, label(t))));
    setTypeFilter(list.type);
  }

  // ---- actions ----------------------------------------------------------------------------

  async function cancelJob(id, button) {
    const label = button.textContent;
    cancels.add(id);
    button.disabled = true;
    button.textContent = 'Canceling…';
    try {
      const job = await api(`/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
      announce(job.status === 'canceled' ? `Job ${shortId(id)} is canceled.` : `Job ${shortId(id)} is being canceled; it stops when its handler returns.`);
      onJob(job);
    } catch (err) {
      cancels.delete(id);
      button.disabled = false;
      button.textContent = label;
      showActionError(`The job could not be canceled: ${err.message}`);
    }
  }

  async function rerunJob(id, button) {
    button.disabled = true;
    try {
      const job = await api(`/jobs/${encodeURIComponent(id)}/retry`, { method: 'POST' });
      rememberRerun(job.retryOf, job.id);
      announce(`Job ${shortId(id)} is re-run as job ${shortId(job.id)}.`);
      navigate(jobPath(job.id));
    } catch (err) {
      button.disabled = false;
      showActionError(`The job could not be re-run: ${err.message}`);
    }
  }

  // ---- queues ----------------------------------------------------------------------------------

  const queues = new Map(); // the latest state of each queue, by name

  function queueRow(name) {
    return $('queues-body').querySelector(`tr[data-queue="${CSS.escape(name)}"]`);
  }

  // renderQueues shows the queues of a stats sample, keeping rows in place
  // so that a click on a row's button is not lost to a live update.
  function renderQueues(items) {
    const body = $('queues-body');
    const names = new Set(items.map((q) => q.name));
    for (const row of [...body.children]) {
      if (!names.has(row.dataset.queue)) row.remove();
    }
    queues.clear();
    items.forEach((q, i) => {
      queues.set(q.name, q);
      const row = queueRow(q.name) || el('tr');
      fillQueueRow(row, q);
      if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
    });
    $('queues-empty').hidden = items.length > 0;
    setQueueFilter(list.queue, items.map((q) => q.name));
  }

  // WAIT_REASONS are the reasons a pending job waits for its queue's flow
  // settings, in the order the server checks them.
  const WAIT_REASONS = ['queue limit', 'queue rate', 'key limit', 'key order', 'key rate'];

  // WAIT_EXPLAINED says each reason in words, for tooltips and the job page.
  const WAIT_EXPLAINED = {
    'queue limit': 'its queue runs as many jobs as its limit allows',
    'queue rate': "its queue's rate allows no more starts for now",
    'key limit': 'its key runs as many jobs as the per-key limit allows',
    'key order': 'an earlier job of its key must start or finish its retries first',
    'key rate': "its key's rate allows no more starts for now",
  };

  // rateText is a rate as read: "20 / 1s", with its burst when it has one.
  function rateText(rate) {
    const text = `${numberFormat.format(rate.count)} / ${rate.per}`;
    return rate.burst ? `${text} (burst ${numberFormat.format(rate.burst)})` : text;
  }

  // flowNode lists a queue's flow settings other than its limit, one per
  // line, as text.
  function flowNode(q) {
    const lines = [];
    if (q.rate) lines.push(['rate', `rate ${rateText(q.rate)}`]);
    if (q.perKey) {
      const parts = [];
      if (q.perKey.limit) parts.push(`${numberFormat.format(q.perKey.limit)} at a time`);
      if (q.perKey.rate) parts.push(rateText(q.perKey.rate));
      lines.push(['per-key', `per key: ${parts.join(', ')}`]);
    }
    if (q.ordered) lines.push(['ordered', 'ordered per key']);
    if (q.fair) lines.push(['fair', 'fair across keys']);
    if (!lines.length) return '–';
    return el('ul', { class: 'flow-list' }, ...lines.map(([name, text]) => el('li', { 'data-flow': name }, text)));
  }

  // waitingNode counts the jobs waiting for each reason, leaving out the
  // reasons none waits for.
  function waitingNode(q) {
    const waiting = q.waiting || {};
    const items = WAIT_REASONS.filter((r) => waiting[r] > 0).map((r) =>
      el('li', { 'data-reason': r, title: `Pending because ${WAIT_EXPLAINED[r]}` }, `${r}: ${numberFormat.format(waiting[r])}`));
    return items.length ? el('ul', { class: 'flow-list' }, ...items) : '–';
  }

  // limitNode is the queue's limit across all nodes, with this node's own
  // cap under it when it has one.
  function limitNode(q) {
    const global = q.limit ? numberFormat.format(q.limit) : '–';
    if (!q.nodeLimit) return global;
    return el('span', null, global, el('span', { class: 'node-limit', title: "This node's own cap (TROUPE_QUEUE_LIMITS)" },
      `node ${numberFormat.format(q.nodeLimit)}`));
  }

  function fillQueueRow(row, q) {
    const key = JSON.stringify([q.paused, q.scheduled, q.pending, q.running, q.limit, q.nodeLimit,
      q.rate, q.perKey, q.ordered, q.fair, q.waiting]);
    // A row whose pause or resume is on its way is left as it is until the
    // answer comes; the same state is drawn already.
    if (row.dataset.queue === q.name && (row.dataset.key === key || row.querySelector('button[disabled]'))) return;
    row.dataset.queue = q.name;
    row.dataset.key = key;
    row.dataset.paused = String(q.paused);
    const action = q.paused ? 'resume-queue' : 'pause-queue';
    const verb = q.paused ? 'Resume' : 'Pause';
    const focused = row.contains(document.activeElement);
    row.replaceChildren(
      el('th', { scope: 'row', class: 'queue-name' }, q.name),
      el('td', null, el('span', { class: 'badge', 'data-queue-state': q.paused ? 'paused' : 'active' }, q.paused ? 'paused' : 'active')),
      el('td', { class: 'num', 'data-count': 'scheduled' }, numberFormat.format(q.scheduled)),
      el('td', { class: 'num', 'data-count': 'pending' }, numberFormat.format(q.pending)),
      el('td', { class: 'num', 'data-count': 'running' }, numberFormat.format(q.running)),
      el('td', { class: 'num col-limit', 'data-count': 'limit' }, limitNode(q)),
      el('td', { class: 'col-flow' }, flowNode(q)),
      el('td', { class: 'col-waiting' }, waitingNode(q)),
      el('td', { class: 'col-actions' }, el('button', {
        type: 'button', class: 'button small' + (q.paused ? ' primary' : ''), 'data-action': action, 'data-queue': q.name,
        'aria-label': `${verb} queue ${q.name}`,
      }, verb)),
    );
    if (focused) {
      const button = row.querySelector('button');
      if (button) button.focus({ preventScroll: true });
    }
  }

  async function pauseQueue(name, pause, button) {
    button.disabled = true;
    button.textContent = pause ? 'Pausing…' : 'Resuming…';
    try {
      const q = await api(`/queues/${encodeURIComponent(name)}/${pause ? 'pause' : 'resume'}`, { method: 'POST' });
      button.disabled = false;
      queues.set(q.name, q);
      renderQueues([...queues.values()]);
      announce(`Queue ${q.name} is ${q.paused ? 'paused: its jobs start on no node until it is resumed' : 'running again'}.`);
    } catch (err) {
      button.disabled = false;
      button.textContent = pause ? 'Pause' : 'Resume';
      showActionError(`The queue could not be ${pause ? 'paused' : 'resumed'}: ${err.message}`);
    }
  }

  // markStuckRows marks the running rows whose timeout has passed since
  // they were drawn; a stuck job sends no event to redraw it.
  function markStuckRows() {
    const now = Date.now();
    for (const row of $('jobs-body').querySelectorAll('tr[data-status="running"][data-timeout]')) {
      const stuck = isStuck({ status: 'running', timeout: row.dataset.timeout, startedAt: row.dataset.startedAt }, now);
      if (stuck && !row.hasAttribute('data-stuck')) scheduleListRefresh();
    }
  }

  function showActionError(text) {
    if (view.name === 'job') {
      const result = $('job-result');
      result.dataset.kind = 'error';
      result.textContent = text;
    } else {
      showNotice(text);
    }
  }

  function bindActions() {
    document.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action]');
      if (!button || button.disabled) return;
      const id = button.dataset.jobId;
      if (button.dataset.action === 'cancel') cancelJob(id, button);
      if (button.dataset.action === 'rerun') rerunJob(id, button);
      if (button.dataset.action === 'pause-queue') pauseQueue(button.dataset.queue, true, button);
      if (button.dataset.action === 'resume-queue') pauseQueue(button.dataset.queue, false, button);
      if (button.dataset.action === 'pause-schedule') pauseSchedule(button.dataset.schedule, true, button);
      if (button.dataset.action === 'resume-schedule') pauseSchedule(button.dataset.schedule, false, button);
      if (button.dataset.action === 'trigger-schedule') triggerSchedule(button.dataset.schedule, button);
    });
  }

  // ---- the submit form ----------------------------------------------------------------------

  function clearFormErrors() {
    for (const field of Object.values(FIELDS)) {
      $(field.error).textContent = '';
      $(field.input).removeAttribute('aria-invalid');
    }
    $('submit-error').textContent = '';
  }

  function fieldError(name, text) {
    const field = FIELDS[name];
    $(field.error).textContent = text;
    $(field.input).setAttribute('aria-invalid', 'true');
  }

  function focusFirstInvalid() {
    const invalid = document.querySelector('#submit-form [aria-invalid="true"]');
    if (invalid) invalid.focus();
  }

  // showProblem puts each field of a validation problem next to its input,
  // and anything else above the button.
  function showProblem(err) {
    const problem = err.problem || {};
    let placed = false;
    for (const fe of Array.isArray(problem.errors) ? problem.errors : []) {
      const name = String(fe.field).replace(/\[.*$/, '');
      if (FIELDS[name]) {
        fieldError(name, `${FIELDS[name].label} ${fe.message}.`);
        placed = true;
      }
    }
    if (problem.type === PROBLEM_UNKNOWN_TYPE) {
      fieldError('type', problem.detail);
      placed = true;
    }
    if (err.status === 413) {
      fieldError('payload', err.message);
      placed = true;
    }
    if (!placed) $('submit-error').textContent = err.message;
    focusFirstInvalid();
  }

  async function submitJob(event) {
    event.preventDefault();
    clearFormErrors();
    const result = $('submit-result');
    result.textContent = '';
    const type = $('submit-type').value;
    const payload = $('submit-payload').value.trim();
    const maxAttempts = $('submit-max').value.trim();
    let valid = true;
    if (!type) {
      fieldError('type', 'Choose a job type.');
      valid = false;
    }
    if (payload) {
      try {
        JSON.parse(payload);
      } catch (err) {
        fieldError('payload', `Payload is not valid JSON: ${err.message}`);
        valid = false;
      }
    }
    if (maxAttempts && !/^-?\d+$/.test(maxAttempts)) {
      fieldError('maxAttempts', 'Max attempts must be a whole number.');
      valid = false;
    }
    const queue = $('submit-queue').value.trim();
    const priority = $('submit-priority').value;
    const delay = $('submit-delay').value.trim();
    if (queue && !QUEUE_NAME.test(queue)) {
      fieldError('queue', 'Queue must be lower-case letters, digits, - and _, starting with a letter or digit.');
      valid = false;
    }
    if (delay && !Number.isFinite(parseDuration(delay))) {
      fieldError('delay', 'Run in must be a duration such as 90s, 5m or 1h30m.');
      valid = false;
    }
    if (!valid) {
      focusFirstInvalid();
      return;
    }
    // The payload goes as typed, so that numbers keep every digit; it was
    // checked to be one JSON value just above.
    let body = '{"type":' + JSON.stringify(type);
    if (payload) body += ',"payload":' + payload;
    if (maxAttempts) body += ',"maxAttempts":' + Number(maxAttempts);
    if (queue) body += ',"queue":' + JSON.stringify(queue);
    if (priority) body += ',"priority":' + Number(priority);
    if (delay) body += ',"delay":' + JSON.stringify(delay);
    body += '}';

    const button = $('submit-button');
    button.disabled = true;
    try {
      const job = await api('/jobs', { method: 'POST', body });
      delete result.dataset.kind;
      result.replaceChildren('Submitted ', el('a', { href: jobPath(job.id), 'data-link': true, 'data-job-id': job.id }, `${job.type} ${shortId(job.id)}`), '.');
      if (view.name === 'dashboard') scheduleListRefresh();
    } catch (err) {
      showProblem(err);
    } finally {
      button.disabled = false;
    }
  }

  // ---- a job's page ---------------------------------------------------------------------------

  const view = { name: '', jobId: null, job: null };

  async function loadJob(id) {
    let job;
    try {
      job = await api(`/jobs/${encodeURIComponent(id)}`);
    } catch (err) {
      if (view.jobId !== id) return;
      if (err.status === 404 || err.status === 400) showMissing(`There is no job with ID ${id}.`);
      else if (err.status !== 401) showNotice(`The job could not be loaded: ${err.message}`);
      return;
    }
    if (view.name === 'job' && view.jobId === id) renderJob(job);
  }

  function renderJob(job) {
    if (view.job && view.job.id === job.id && job.updatedAt < view.job.updatedAt) return;
    view.job = job;
    $('job-title').textContent = job.type;
    $('job-id').textContent = job.id;
    const status = $('job-status');
    status.dataset.status = job.status;
    status.textContent = job.status;
    document.title = `${job.type} ${shortId(job.id)} · Troupe`;

    const cancel = $('job-cancel');
    cancel.hidden = !UNFINISHED.has(job.status);
    cancel.dataset.action = 'cancel';
    cancel.dataset.jobId = job.id;
    cancel.disabled = cancels.has(job.id);
    cancel.textContent = cancels.has(job.id) ? 'Canceling…' : 'Cancel job';
    const rerun = $('job-rerun');
    rerun.hidden = !(job.status === 'failed' || job.status === 'canceled');
    rerun.dataset.action = 'rerun';
    rerun.dataset.jobId = job.id;
    rerun.disabled = false;

    const rel = relations();
    const relation = $('job-relation');
    const parts = [];
    if (rel.retryOf[job.id]) {
      const orig = rel.retryOf[job.id];
      parts.push('Re-run of ', el('a', { href: jobPath(orig), 'data-link': true, id: 'job-retry-of' }, orig), '. ');
    }
    for (const [i, next] of (rel.rerunAs[job.id] || []).entries()) {
      parts.push(i ? ', ' : 'Re-run as ', el('a', { href: jobPath(next), 'data-link': true }, next));
    }
    relation.replaceChildren(...parts);
    relation.hidden = parts.length === 0;

    const stuck = isStuck(job);
    const rows = [
      ['Status', statusLabel(job.status) + (stuck ? ` — stuck: running past its timeout of ${job.timeout}, ignoring it` : '')],
      ['Schedule', job.schedule ? el('span', null,
        el('a', { href: schedulePath(job.schedule), 'data-link': true, id: 'job-schedule' }, job.schedule), ' · ',
        el('a', { href: scheduleJobsPath(job.schedule), 'data-link': true }, 'its jobs')) : ''],
      ['Waiting for', job.status === 'pending' && job.waitingFor
        ? el('span', { id: 'job-waiting-for' }, `${job.waitingFor}: ${WAIT_EXPLAINED[job.waitingFor] || 'held back by its queue\'s flow settings'}`) : ''],
      ['Queue', job.queue],
      ['Key', job.key ? el('span', { id: 'job-key', class: 'job-key-value' }, job.key) : ''],
      ['Priority', job.priority ? `${job.priority} (1 runs first, 9 last)` : ''],
      ['Attempts', `${job.attempts} of ${job.maxAttempts}`],
      ['Timeout', job.timeout ? `${job.timeout} per attempt` : 'none'],
      ['Unique key', job.uniqueKey],
      ['Unique for', job.uniqueFor],
      ['Created', job.createdAt],
      ['Updated', job.updatedAt],
      [job.status === 'scheduled' ? 'Runs at' : 'Run at', job.runAt],
      ['Started', job.startedAt],
      ['Finished', job.finishedAt],
    ];
    if (job.startedAt && job.finishedAt) {
      rows.push(['Last attempt took', formatDuration(Date.parse(job.finishedAt) - Date.parse(job.startedAt))]);
    }
    const fields = [];
    for (const [label, value] of rows) {
      if (!value) continue;
      const isTime = typeof value === 'string' && /^\d{4}-\d\d-\d\dT/.test(value);
      const content = typeof value !== 'string' ? value : isTime ? el('time', { datetime: value, title: value }, dateTimeFormat.format(new Date(value))) : value;
      fields.push(el('dt', null, label), el('dd', null, content));
    }
    $('job-fields').replaceChildren(...fields);

    const error = $('job-error');
    error.textContent = job.lastError || 'None';
    error.toggleAttribute('data-empty', !job.lastError);

    renderPayload(job);
    renderProgress(job);
    renderResult(job);
  }

  // renderProgress shows what the running (or last) attempt reported.
  function renderProgress(job) {
    const panel = $('job-progress-panel');
    panel.hidden = !job.progress;
    if (!job.progress) return;
    const bar = $('job-progress');
    bar.value = job.progress.percent;
    bar.title = progressText(job.progress);
    $('job-progress-text').textContent = progressText(job.progress);
    $('job-progress-title').textContent = job.status === 'running' ? 'Progress' : 'Last progress';
    $('job-progress-at').textContent = `Reported ${dateTimeFormat.format(new Date(job.progress.updatedAt))}`;
  }

  // renderResult shows the JSON value the job completed with, formatted;
  // it is set as text, so nothing in it is ever markup.
  function renderResult(job) {
    const panel = $('job-output-panel');
    const has = Object.prototype.hasOwnProperty.call(job, 'result');
    panel.hidden = !has;
    if (!has) return;
    const [text, why] = jsonText(job.result);
    const note = $('job-output-note');
    note.hidden = why === '';
    note.textContent = why ? `The result is shown as raw text, unformatted, because ${why}.` : '';
    $('job-output').textContent = text;
  }

  // ---- payloads -----------------------------------------------------------------------------

  // PAYLOAD_MAX_DEPTH is the deepest payload shown formatted; the API
  // refuses deeper ones, but a job stored before that rule, or through the
  // Go API, may be deeper, and formatting recurses.
  const PAYLOAD_MAX_DEPTH = 64;

  // RawText marks text that payloadText writes as it is.
  class RawText {
    constructor(text) { this.text = text; }
  }

  // payloadDepth measures how deeply arrays and objects nest, without
  // recursion, and stops counting past the limit.
  function payloadDepth(value) {
    let deepest = 0;
    const stack = [[value, 1]];
    while (stack.length) {
      const [v, depth] = stack.pop();
      if (v === null || typeof v !== 'object') continue;
      deepest = Math.max(deepest, depth);
      if (deepest > PAYLOAD_MAX_DEPTH) break;
      for (const child of Object.values(v)) stack.push([child, depth + 1]);
    }
    return deepest;
  }

  // payloadText writes a value as compact JSON text without recursion, so
  // that no depth can overflow the stack.
  function payloadText(value) {
    const out = [];
    const stack = [value];
    while (stack.length) {
      const v = stack.pop();
      if (v instanceof RawText) {
        out.push(v.text);
      } else if (Array.isArray(v)) {
        out.push('[');
        stack.push(new RawText(']'));
        for (let i = v.length - 1; i >= 0; i--) {
          stack.push(v[i]);
          if (i > 0) stack.push(new RawText(','));
        }
      } else if (v !== null && typeof v === 'object') {
        const keys = Object.keys(v);
        out.push('{');
        stack.push(new RawText('}'));
        for (let i = keys.length - 1; i >= 0; i--) {
          stack.push(v[keys[i]]);
          stack.push(new RawText(JSON.stringify(keys[i]) + ':'));
          if (i > 0) stack.push(new RawText(','));
        }
      } else {
        out.push(JSON.stringify(v) ?? 'null');
      }
    }
    return out.join('');
  }

  // renderPayload fills the payload box: formatted JSON when it can be,
  // else the payload's text unformatted with a note saying why. The box is
  // never left empty.
  function renderPayload(job) {
    const note = $('job-payload-note');
    const box = $('job-payload');
    if (job.payloadEncoding === 'base64') {
      note.hidden = false;
      note.textContent = 'The payload is not JSON; these are its bytes in base64.';
      box.textContent = String(job.payload);
      return;
    }
    const [text, why] = jsonText(job.payload);
    if (why) note.textContent = `The payload is shown as raw text, unformatted, because ${why}.`;
    note.hidden = why === '';
    box.textContent = text;
  }

  // jsonText formats a JSON value with indentation when it can, and else
  // writes it out unformatted; it returns the text and why it is not
  // formatted ('' when it is).
  function jsonText(value) {
    let text = null;
    let why = '';
    if (payloadDepth(value) > PAYLOAD_MAX_DEPTH) {
      why = `it nests more than ${PAYLOAD_MAX_DEPTH} levels deep`;
    } else {
      try {
        text = JSON.stringify(value, null, 2);
      } catch (err) {
        why = `formatting it failed (${err.message})`;
      }
    }
    if (text === null) {
      try {
        text = payloadText(value);
      } catch (err) {
        text = String(value);
        why += `; writing it out failed too (${err.message})`;
      }
    }
    return [text, why];
  }

  // ---- schedules ------------------------------------------------------------------------------

  const schedules = { seq: 0, refreshTimer: 0 };

  function showSchedules() {
    view.name = 'schedules';
    view.jobId = null;
    view.job = null;
    document.title = 'Schedules · Troupe';
    showView('schedules');
    $('schedules-result').textContent = '';
    loadSchedules();
  }

  // loadSchedules reads the schedules for the schedules page and the jobs
  // filter. A server without the schedules API leaves both as they are.
  async function loadSchedules() {
    const seq = ++schedules.seq;
    let items;
    try {
      items = (await api('/schedules')).schedules;
    } catch (err) {
      if (seq === schedules.seq && view.name === 'schedules' && err.status !== 401) {
        showNotice(`The schedules could not be loaded: ${err.message}`);
      }
      return;
    }
    if (seq !== schedules.seq) return;
    setScheduleFilter(list.schedule, items.map((s) => s.name));
    if (view.name === 'schedules') renderSchedules(items);
  }

  function scheduleSchedulesRefresh() {
    if (schedules.refreshTimer) return;
    schedules.refreshTimer = setTimeout(() => {
      schedules.refreshTimer = 0;
      if (view.name === 'schedules') loadSchedules();
    }, LIST_REFRESH_MS);
  }

  function scheduleRow(name) {
    return $('schedules-body').querySelector(`tr[data-schedule="${CSS.escape(name)}"]`);
  }

  // renderSchedules shows the schedules, keeping rows in place, as
  // renderQueues does, and brings the one the address names into view.
  function renderSchedules(items) {
    const body = $('schedules-body');
    const names = new Set(items.map((s) => s.name));
    for (const row of [...body.children]) {
      if (!names.has(row.dataset.schedule)) row.remove();
    }
    items.forEach((s, i) => {
      const row = scheduleRow(s.name) || el('tr');
      fillScheduleRow(row, s);
      if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
    });
    $('schedules-empty').hidden = items.length > 0;
    let wanted = '';
    try { wanted = decodeURIComponent(location.hash.replace(/^#schedule-/, '')); } catch { /* no such row */ }
    for (const row of body.children) {
      const target = location.hash.startsWith('#schedule-') && row.dataset.schedule === wanted;
      if (target && !row.hasAttribute('data-target')) row.scrollIntoView({ block: 'nearest' });
      row.toggleAttribute('data-target', target);
    }
  }

  function timeNode(iso) {
    return el('time', { datetime: iso, title: iso }, formatTime(iso));
  }

  function fillScheduleRow(row, s) {
    const key = JSON.stringify([s.cron, s.description, s.timezone, s.paused, s.source, s.nextRunAt, s.lastRunAt, s.lastJobId, s.lastJobStatus]);
    // A row whose pause, resume or trigger is on its way is left as it is
    // until the answer comes; the same state is drawn already.
    if (row.dataset.schedule === s.name && (row.dataset.key === key || row.querySelector('button[data-busy]'))) return;
    row.dataset.schedule = s.name;
    row.dataset.key = key;
    row.dataset.paused = String(s.paused);
    row.dataset.source = s.source;
    const fromFile = s.source === 'config';
    const why = 'Declared in the configuration file: change it there and restart';
    const verb = s.paused ? 'Resume' : 'Pause';
    const next = s.paused
      ? el('span', { class: 'badge', 'data-queue-state': 'paused' }, 'paused')
      : (s.nextRunAt ? timeNode(s.nextRunAt) : el('span', { class: 'muted' }, '–'));
    let last = el('span', { class: 'muted' }, 'never');
    if (s.lastJobId) {
      last = el('span', { class: 'last-run' },
        s.lastRunAt ? timeNode(s.lastRunAt) : null, ' ',
        el('a', { class: 'job-link', href: jobPath(s.lastJobId), 'data-link': true, 'data-job-id': s.lastJobId, title: s.lastJobId,
          'aria-label': `Job ${s.lastJobId}` }, shortId(s.lastJobId)), ' ',
        s.lastJobStatus ? badge(s.lastJobStatus) : el('span', { class: 'muted', title: 'The job was deleted by retention' }, 'pruned'));
    }
    const focusedAction = row.contains(document.activeElement) ? document.activeElement.dataset.action : null;
    row.replaceChildren(
      el('th', { scope: 'row' },
        el('span', { class: 'queue-name schedule-name' }, s.name),
        el('a', { class: 'schedule-jobs', href: scheduleJobsPath(s.name), 'data-link': true, 'aria-label': `Jobs of schedule ${s.name}` }, 'jobs')),
      el('td', { class: 'schedule-when', 'data-label': 'When' }, el('span', null,
        el('span', { class: 'schedule-description' }, s.description || s.cron),
        el('code', { class: 'cron' }, s.cron))),
      el('td', { class: 'col-tz', 'data-label': 'Time zone' }, s.timezone),
      el('td', { class: 'schedule-next', 'data-label': 'Next run' }, next),
      el('td', { class: 'col-last', 'data-label': 'Last run' }, last),
      el('td', { class: 'col-source', 'data-label': 'Source' }, el('span', { class: 'badge', 'data-source': s.source, title: fromFile ? why : 'Created through the API' }, s.source)),
      el('td', { class: 'col-actions' }, el('span', { class: 'row-actions' },
        el('button', {
          type: 'button', class: 'button small' + (s.paused ? ' primary' : ''), 'data-action': s.paused ? 'resume-schedule' : 'pause-schedule',
          'data-schedule': s.name, 'aria-label': `${verb} schedule ${s.name}`, disabled: fromFile, title: fromFile ? why : null,
        }, verb),
        el('button', {
          type: 'button', class: 'button small', 'data-action': 'trigger-schedule', 'data-schedule': s.name,
          'aria-label': `Run schedule ${s.name} now`, title: 'Submit its job now, outside its slots',
        }, 'Run now'))),
    );
    if (focusedAction) {
      const button = row.querySelector(`[data-action="${focusedAction}"]`) || row.querySelector('button:not([disabled])');
      if (button) button.focus({ preventScroll: true });
    }
  }

  function scheduleResult(...parts) {
    const result = $('schedules-result');
    delete result.dataset.kind;
    result.replaceChildren(...parts);
  }

  function scheduleError(text) {
    const result = $('schedules-result');
    result.dataset.kind = 'error';
    result.textContent = text;
  }

  async function pauseSchedule(name, pause, button) {
    button.disabled = true;
    button.dataset.busy = '';
    button.textContent = pause ? 'Pausing…' : 'Resuming…';
    try {
      const s = await api(`/schedules/${encodeURIComponent(name)}/${pause ? 'pause' : 'resume'}`, { method: 'POST' });
      delete button.dataset.busy;
      const row = scheduleRow(s.name);
      if (row) {
        row.dataset.key = '';
        fillScheduleRow(row, s);
      }
      announce(`Schedule ${s.name} is ${s.paused ? 'paused: its slots submit nothing until it is resumed' : 'running again'}.`);
    } catch (err) {
      delete button.dataset.busy;
      button.disabled = false;
      button.textContent = pause ? 'Pause' : 'Resume';
      scheduleError(`The schedule could not be ${pause ? 'paused' : 'resumed'}: ${err.message}`);
    }
  }

  async function triggerSchedule(name, button) {
    button.disabled = true;
    button.dataset.busy = '';
    try {
      const job = await api(`/schedules/${encodeURIComponent(name)}/trigger`, { method: 'POST' });
      scheduleResult('Submitted ', el('a', { href: jobPath(job.id), 'data-link': true, 'data-job-id': job.id }, `${job.type} ${shortId(job.id)}`),
        ` for ${name}.`);
      announce(`Schedule ${name} submitted job ${shortId(job.id)}.`);
    } catch (err) {
      scheduleError(`The schedule could not run now: ${err.message}`);
    } finally {
      delete button.dataset.busy;
      button.disabled = false;
    }
    if (view.name === 'schedules') loadSchedules();
  }

  // ---- views and routing ------------------------------------------------------------------------

  function showView(name) {
    for (const id of ['view-dashboard', 'view-job', 'view-schedules', 'view-missing']) $(id).hidden = id !== `view-${name}`;
    const current = { dashboard: '/', schedules: '/ui/schedules' }[name];
    for (const a of document.querySelectorAll('.nav a[data-link]')) {
      if (a.getAttribute('href') === current) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  function showDashboard() {
    view.name = 'dashboard';
    view.jobId = null;
    view.job = null;
    document.title = 'Troupe';
    showView('dashboard');
    readListState();
    list.total = null;
    loadJobs();
  }

  function showJobView(id) {
    view.name = 'job';
    view.jobId = id;
    view.job = null;
    showView('job');
    $('job-title').textContent = 'Job';
    $('job-id').textContent = id;
    $('job-status').textContent = '';
    delete $('job-status').dataset.status;
    $('job-fields').replaceChildren();
    $('job-error').textContent = '';
    $('job-payload').textContent = '';
    $('job-result').textContent = '';
    $('job-cancel').hidden = true;
    $('job-rerun').hidden = true;
    $('job-relation').hidden = true;
    $('job-relation').replaceChildren();
    loadJob(id);
  }

  function showMissing(text) {
    view.name = 'missing';
    document.title = 'Not found · Troupe';
    $('missing-text').textContent = text;
    showView('missing');
  }

  function route() {
    hideNotice();
    const path = location.pathname.replace(/\/+$/, '') || '/';
    const match = /^\/ui\/jobs\/([^/]+)$/.exec(path);
    if (path === '/' || path === '/ui') showDashboard();
    else if (path === '/ui/schedules') showSchedules();
    else if (match) {
      let id;
      try { id = decodeURIComponent(match[1]); } catch (e) { id = null; }
      if (id === null) showMissing('There is no page here.');
      else showJobView(id);
    }
    else showMissing('There is no page here.');
  }

  function navigate(href) {
    history.pushState(null, '', href);
    route();
    // Move the focus to the new page's heading, as a page load would.
    const heading = document.querySelector('.view:not([hidden]) h1');
    if (heading) heading.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }

  function bindRouting() {
    document.addEventListener('click', (event) => {
      const link = event.target.closest('a[data-link]');
      if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      navigate(link.getAttribute('href'));
    });
    window.addEventListener('popstate', route);
  }

  // ---- start ---------------------------------------------------------------------------------------

  async function start() {
    bindTokenDialog();
    bindRouting();
    bindList();
    bindActions();
    $('submit-form').addEventListener('submit', submitJob);
    new ResizeObserver(() => drawChart()).observe($('chart'));

    route();
    loadTypes();
    loadSchedules();
    try {
      onStats(await api('/stats'));
    } catch (err) {
      if (err.status === 401) {
        setConnection('offline');
        return;
      }
    }
    // Entering a token in the dialog has already connected.
    if (!live.source) connectLive();
  }

  start();
})();
