/**
 * The ops page's script (public/ops/index.html, served at GET /ops by src/api/ops/routes.ts). It
 * asks for the admin token, keeps it in the tab's sessionStorage and calls the API with it:
 *   - every SKU's stock (GET /v1/skus, every 3 s): total, reserved, available, low-stock state;
 *   - for the SKU picked (every 0.5 s): units left, holds/s from the fall of available, refusals/s
 *     from /metrics, its live holds with countdowns (each linking to its workflow in the Temporal
 *     Web UI), and its recent movements;
 *   - webhook subscriptions and their failed deliveries, with a retry button.
 * A SKU shows one reading wherever it appears (the newest, whichever call brought it: the picked
 * SKU's row in the list is the live panel's reading), and each part says how old its reading is.
 * Everything comes through the API's own routes; the page adds no data of its own.
 */
'use strict';

(() => {
  const SETTINGS = JSON.parse(document.querySelector('meta[name="stockhold-ops-settings"]').content);
  const TOKEN_KEY = 'stockhold-admin-token';
  const DETAIL_EVERY_MS = 500;
  const LIST_EVERY_MS = 3000;
  const MAX_LISTED = 2000;
  /** The rates are over this much of the recent readings: long enough to read, short enough to follow a sale. */
  const RATE_WINDOW_MS = 2000;

  const state = {
    /** The SKU picked for the live panel. */
    sku: null,
    /** SKU -> { view, at }: the newest reading of each SKU (`at`: when its request left), from either call. */
    readings: new Map(),
    /** When the list was read last. */
    listAt: null,
    /** When the picked SKU's holds and movements were read last. */
    detailAt: null,
    holds: [],
    /** Reservation id -> when the page first saw its hold without an `expiresAt` (not in PostgreSQL yet). */
    unrecordedSince: new Map(),
    /** The picked SKU's recent live readings, for the rates: [{ at, available, refusals }], oldest first. */
    recent: [],
    /** When any call last succeeded, and what the last one that failed said (null once one succeeds). */
    updatedAt: null,
    problem: null,
  };
  const $ = (id) => document.getElementById(id);

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  async function api(path, options = {}) {
    const sent = token();
    const res = await fetch(path, {
      ...options,
      headers: { authorization: 'Bearer ' + sent, ...(options.headers || {}) },
    });
    const text = await res.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = text;
    }
    if (res.status === 401 || res.status === 403) {
      // Only if this token is still the one in use: a late answer to a token replaced since says nothing.
      if (token() === sent) signOut('the token was refused (' + res.status + ')');
      throw new Error('unauthorised');
    }
    return { status: res.status, body };
  }

  /** "GET /v1/skus: 503 UNAVAILABLE request deadline passed". */
  function failure(what, answer) {
    const error = answer.body && answer.body.error;
    return what + ': ' + answer.status + (error ? ' ' + error.code + ' ' + error.message : '');
  }

  function cell(row, text, cls) {
    const td = document.createElement('td');
    td.textContent = String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function stateOf(view) {
    if (view.available <= 0) return ['soldout', 'sold out'];
    if (
      view.lowStockThreshold !== null &&
      view.lowStockThreshold !== undefined &&
      view.available <= view.lowStockThreshold
    )
      return ['low', 'low stock'];
    return ['ok', 'in stock'];
  }

  function badge(td, view) {
    const [cls, text] = stateOf(view);
    td.textContent = '';
    const span = document.createElement('span');
    span.className = 'state ' + cls;
    span.dataset.state = cls;
    span.textContent = text;
    td.appendChild(span);
  }

  function workflowLink(reservationId) {
    if (!SETTINGS.temporalUiUrl) return null;
    return (
      SETTINGS.temporalUiUrl +
      '/namespaces/' +
      encodeURIComponent(SETTINGS.temporalNamespace) +
      '/workflows/' +
      encodeURIComponent('reservation-' + reservationId)
    );
  }

  function reservationCell(row, reservationId) {
    const td = document.createElement('td');
    const href = workflowLink(reservationId);
    if (href) {
      const a = document.createElement('a');
      a.href = href;
      a.target = '_blank';
      a.rel = 'noopener';
      a.textContent = reservationId;
      a.className = 'reservation-link';
      td.appendChild(a);
    } else {
      td.textContent = reservationId;
    }
    row.appendChild(td);
  }

  /** "0.4 s ago", "12 s ago". */
  function age(at, now) {
    const seconds = Math.max(0, (now - at) / 1000);
    return (seconds < 10 ? seconds.toFixed(1) : String(Math.round(seconds))) + ' s ago';
  }

  /** m:ss */
  function clock(seconds) {
    return Math.floor(seconds / 60) + ':' + String(seconds % 60).padStart(2, '0');
  }

  // ---------------------------------------------------------------- one reading per SKU

  function fillRow(row, view) {
    row.textContent = '';
    cell(row, view.sku);
    cell(row, view.name);
    cell(row, view.total);
    cell(row, view.reserved);
    cell(row, view.available, 'available');
    badge(cell(row, ''), view);
  }

  function rowOf(sku) {
    for (const row of $('skus').tBodies[0].rows) if (row.dataset.sku === sku) return row;
    return null;
  }

  /** Keeps a reading of a SKU unless a newer one is shown, and shows it wherever the SKU appears. */
  function record(view, at) {
    const shown = state.readings.get(view.sku);
    if (shown && shown.at > at) return;
    state.readings.set(view.sku, { view, at });
    const row = rowOf(view.sku);
    if (row) fillRow(row, view);
    if (view.sku === state.sku) showPicked();
  }

  function showPicked() {
    const reading = state.readings.get(state.sku);
    if (!reading) return;
    const [cls, text] = stateOf(reading.view);
    $('units-left').textContent = String(reading.view.available);
    $('picked-state').textContent = text;
    $('picked-state').dataset.state = cls;
  }

  function updated() {
    state.updatedAt = Date.now();
    state.problem = null;
    showStatus();
  }

  function showStatus() {
    if (!token()) return;
    const when =
      state.updatedAt === null ? 'not updated yet' : 'updated ' + new Date(state.updatedAt).toLocaleTimeString();
    $('status').textContent = 'signed in · ' + when + (state.problem ? ' · ' + state.problem : '');
    $('status').className = state.problem ? 'error' : 'muted';
  }

  // ---------------------------------------------------------------- the list

  async function loadSkus() {
    const at = Date.now();
    const all = [];
    let after = null;
    do {
      const answer = await api('/v1/skus?limit=200' + (after ? '&after=' + encodeURIComponent(after) : ''));
      if (answer.status !== 200) throw new Error(failure('GET /v1/skus', answer));
      all.push(...answer.body.skus);
      after = answer.body.next;
    } while (after && all.length < MAX_LISTED);
    if (!token()) return;
    const tbody = $('skus').tBodies[0];
    tbody.textContent = '';
    for (const view of all) {
      const shown = state.readings.get(view.sku);
      if (!shown || shown.at <= at) state.readings.set(view.sku, { view, at });
      const row = document.createElement('tr');
      row.className = 'sku' + (view.sku === state.sku ? ' picked' : '');
      row.dataset.sku = view.sku;
      fillRow(row, state.readings.get(view.sku).view);
      row.addEventListener('click', () => pick(view.sku));
      tbody.appendChild(row);
    }
    showPicked();
    state.listAt = at;
    $('sku-count').textContent = '(' + all.length + (after ? '+' : '') + ')';
    tickAges();
    updated();
  }

  // ---------------------------------------------------------------- the picked SKU

  function pick(sku) {
    state.sku = sku;
    state.detailAt = null;
    state.recent = [];
    state.holds = [];
    $('picked').textContent = sku;
    $('holds-rate').textContent = '–';
    $('refusals-rate').textContent = '–';
    for (const row of $('skus').tBodies[0].rows) row.classList.toggle('picked', row.dataset.sku === sku);
    showPicked();
    renderHolds();
    void refreshDetail().catch(report);
  }

  /** Reservation refusals so far (every code), from /metrics: the whole machine's under npm start (src/processes/). */
  async function refusalsSoFar() {
    const res = await fetch('/metrics');
    const text = await res.text();
    let sum = 0;
    for (const line of text.split('\n')) {
      const m = /^stockhold_reservation_refusals_total\{code="([^"]+)"\} (\d+(?:\.\d+)?)/.exec(line);
      if (m) sum += Number(m[2]);
    }
    return sum;
  }

  async function refreshDetail() {
    const sku = state.sku;
    if (!sku || !token()) return;
    const at = Date.now();
    const enc = encodeURIComponent(sku);
    const [stock, holds, movements, refusals, levels] = await Promise.all([
      api('/v1/skus/' + enc),
      api('/v1/skus/' + enc + '/holds'),
      api('/v1/skus/' + enc + '/movements?limit=20'),
      refusalsSoFar().catch(() => null),
      // Contract v3: the SKU's levels, read through the channel `default` (every location unless
      // an admin replaced it).
      api('/v1/skus/' + enc + '?channel=default'),
    ]);
    // Another SKU picked since, or a newer reading already shown (a pick's call and the loop's overlap).
    if (sku !== state.sku || (state.detailAt !== null && state.detailAt > at)) return;
    const problems = [];
    if (stock.status === 200) {
      record(stock.body, at);
      showRates({ at, available: stock.body.available, refusals });
    } else {
      problems.push(failure('GET /v1/skus/' + sku, stock));
    }
    if (holds.status === 200) {
      state.holds = holds.body.holds;
      state.detailAt = at;
      renderHolds();
    } else {
      problems.push(failure('GET /v1/skus/' + sku + '/holds', holds));
    }
    if (levels.status === 200) renderLevels(levels.body.locations || []);
    if (movements.status === 200) renderMovements(movements.body.movements);
    else problems.push(failure('GET /v1/skus/' + sku + '/movements', movements));
    if (problems.length > 0) throw new Error(problems.join('; '));
    updated();
  }

  /** Holds and refusals per second over the last RATE_WINDOW_MS of readings, `reading` the newest. */
  function showRates(reading) {
    const recent = state.recent;
    if (recent.length > 0 && recent[recent.length - 1].at >= reading.at) return;
    recent.push(reading);
    // The readings inside the window, and the last one before it (where the window starts).
    while (recent.length > 2 && recent[1].at <= reading.at - RATE_WINDOW_MS) recent.shift();
    if (recent.length < 2) return;
    const first = recent[0];
    const seconds = (reading.at - first.at) / 1000;
    // Units taken: a hold lowers available; a sale lowers total and releases its hold (no change);
    // a restock raises it, which takes nothing.
    let taken = 0;
    for (let i = 1; i < recent.length; i++) taken += Math.max(0, recent[i - 1].available - recent[i].available);
    $('holds-rate').textContent = (taken / seconds).toFixed(1);
    if (reading.refusals !== null && first.refusals !== null) {
      $('refusals-rate').textContent = (Math.max(0, reading.refusals - first.refusals) / seconds).toFixed(1);
    }
  }

  /**
   * A hold's time left. Redis takes the units first and PostgreSQL records the reservation, with
   * when it expires, a moment later (a SKU's holds are recorded one at a time), so for that moment
   * GET /v1/skus/:sku/holds answers `expiresAt: null`: the page says so, and for how long once that
   * is noticeable.
   */
  function expiry(hold, now) {
    if (hold.expiresAt) return clock(Math.max(0, Math.round((Date.parse(hold.expiresAt) - now) / 1000)));
    const seconds = Math.floor((now - (state.unrecordedSince.get(hold.reservationId) ?? now)) / 1000);
    return seconds >= 2 ? 'not recorded yet (' + seconds + ' s)' : 'not recorded yet';
  }

  function renderHolds() {
    const now = Date.now();
    const unrecorded = new Set(state.holds.filter((h) => !h.expiresAt).map((h) => h.reservationId));
    for (const id of state.unrecordedSince.keys()) if (!unrecorded.has(id)) state.unrecordedSince.delete(id);
    for (const id of unrecorded) if (!state.unrecordedSince.has(id)) state.unrecordedSince.set(id, now);
    const tbody = $('holds').tBodies[0];
    tbody.textContent = '';
    for (const h of state.holds) {
      const row = document.createElement('tr');
      row.className = 'hold';
      reservationCell(row, h.reservationId);
      cell(row, h.quantity);
      // Where the hold's units are (contract v3): `default` for a SKU with one location.
      cell(
        row,
        (h.allocations || [{ locationId: 'default', quantity: h.quantity }])
          .map((a) => a.locationId + ' ' + a.quantity)
          .join(', '),
        'where',
      );
      const td = cell(row, expiry(h, now), h.expiresAt ? 'countdown' : 'countdown pending');
      td.dataset.reservationId = h.reservationId;
      if (h.expiresAt) {
        td.dataset.expiresAt = h.expiresAt;
        td.title = 'expires at ' + new Date(h.expiresAt).toLocaleTimeString();
      } else {
        td.title = 'Redis holds these units; PostgreSQL has not recorded the reservation (and when it expires) yet';
      }
      tbody.appendChild(row);
    }
    $('hold-count').textContent = state.sku ? '(' + state.holds.length + ')' : '';
  }

  /** A SKU's figures per location; shown only when it has a level elsewhere than `default`. */
  function renderLevels(levels) {
    const spread = levels.some((l) => l.locationId !== 'default');
    $('levels').hidden = !spread;
    $('levels-title').hidden = !spread;
    const tbody = $('levels').tBodies[0];
    tbody.textContent = '';
    for (const l of levels) {
      const row = document.createElement('tr');
      row.className = 'level';
      cell(row, l.locationId);
      cell(row, l.total);
      cell(row, l.reserved);
      cell(row, l.available);
      tbody.appendChild(row);
    }
  }

  function renderMovements(movements) {
    const tbody = $('movements').tBodies[0];
    tbody.textContent = '';
    for (const m of movements) {
      const row = document.createElement('tr');
      cell(row, new Date(m.at).toLocaleTimeString());
      cell(row, m.kind);
      cell(row, m.locationId || 'default');
      cell(row, m.delta > 0 ? '+' + m.delta : m.delta);
      if (m.reservationId) reservationCell(row, m.reservationId);
      else cell(row, '');
      cell(row, m.reason || '');
      tbody.appendChild(row);
    }
  }

  /** Countdowns and the readings' ages, between calls. */
  function tickAges() {
    const now = Date.now();
    for (const td of document.querySelectorAll('#holds td.countdown')) {
      const hold = { reservationId: td.dataset.reservationId, expiresAt: td.dataset.expiresAt };
      td.textContent = expiry(hold, now);
    }
    const listAge = $('list-age');
    listAge.textContent = state.listAt === null ? '' : 'read ' + age(state.listAt, now);
    listAge.classList.toggle('stale', state.listAt !== null && now - state.listAt > 3 * LIST_EVERY_MS + 1000);
    const picked = state.sku && state.readings.get(state.sku);
    const detailAge = $('detail-age');
    detailAge.textContent = picked ? 'read ' + age(picked.at, now) : '';
    detailAge.classList.toggle('stale', Boolean(picked) && now - picked.at > 6 * DETAIL_EVERY_MS + 1000);
  }

  // ---------------------------------------------------------------- webhooks

  async function loadWebhooks() {
    const box = $('webhooks');
    const list = await api('/v1/webhooks');
    if (list.status === 404) {
      box.textContent = 'webhooks are not available on this service';
      return;
    }
    if (list.status !== 200) {
      box.textContent = failure('GET /v1/webhooks', list);
      return;
    }
    box.textContent = '';
    if (list.body.webhooks.length === 0) {
      box.textContent = 'no subscriptions';
      return;
    }
    const table = document.createElement('table');
    const head = table.createTHead().insertRow();
    for (const title of ['subscription', 'url', 'events', 'failed deliveries']) {
      const th = document.createElement('th');
      th.textContent = title;
      head.appendChild(th);
    }
    const tbody = table.createTBody();
    for (const w of list.body.webhooks) {
      const row = document.createElement('tr');
      cell(row, w.id);
      cell(row, w.url);
      cell(row, w.events.join(', '));
      const td = cell(row, '…');
      tbody.appendChild(row);
      const failed = await api('/v1/webhooks/' + encodeURIComponent(w.id) + '/deliveries?status=failed');
      td.textContent = '';
      const deliveries = failed.status === 200 ? failed.body.deliveries : [];
      if (deliveries.length === 0) td.textContent = failed.status === 200 ? 'none' : failure('GET deliveries', failed);
      for (const d of deliveries.slice(0, 20)) {
        const div = document.createElement('div');
        div.textContent = d.type + ' (' + d.attempts + ' attempts: ' + (d.lastError || '') + ') ';
        const retry = document.createElement('button');
        retry.textContent = 'retry';
        retry.addEventListener('click', async () => {
          const path =
            '/v1/webhooks/' + encodeURIComponent(w.id) + '/deliveries/' + encodeURIComponent(d.id) + '/retry';
          const answer = await api(path, { method: 'POST' });
          retry.textContent = answer.status === 202 ? 'queued' : 'failed: ' + answer.status;
          retry.disabled = true;
        });
        div.appendChild(retry);
        td.appendChild(div);
      }
    }
    box.appendChild(table);
  }

  // ---------------------------------------------------------------- signing in, the loops

  function signOut(why) {
    sessionStorage.removeItem(TOKEN_KEY);
    $('status').textContent = why || 'not signed in';
    $('status').className = why ? 'error' : 'muted';
    $('signout').hidden = true;
  }

  /** A failed call: the status line says what failed, beside when the page was last updated. */
  function report(err) {
    const message = String((err && err.message) || err);
    if (message === 'unauthorised' || !token()) return;
    state.problem = message;
    showStatus();
  }

  async function start() {
    $('signout').hidden = false;
    state.updatedAt = null;
    state.problem = null;
    showStatus();
    try {
      await loadSkus();
      await refreshDetail();
    } catch (err) {
      report(err);
    }
    if (token()) await loadWebhooks().catch((err) => ($('webhooks').textContent = String((err && err.message) || err)));
  }

  /** Runs `task` every `ms` while signed in, one call at a time (a slow answer delays the next call, never doubles it). */
  function every(ms, task) {
    const run = async () => {
      const started = Date.now();
      if (token()) await task().catch(report);
      setTimeout(run, Math.max(100, ms - (Date.now() - started)));
    };
    setTimeout(run, ms);
  }

  $('signin').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
    $('token').value = '';
    void start();
  });
  $('signout').addEventListener('click', () => signOut());

  if (token()) void start();
  every(DETAIL_EVERY_MS, refreshDetail);
  every(LIST_EVERY_MS, loadSkus);
  setInterval(tickAges, 250);
})();
