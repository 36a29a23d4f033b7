/**
 * The ops page, `GET /ops`: one self-contained HTML page (inline style and script, nothing loaded
 * from elsewhere) that asks for the admin token, keeps it in the tab's sessionStorage, and calls
 * the API with it:
 *   - every SKU's stock (GET /v1/skus): total, reserved, available, low-stock state;
 *   - for the SKU picked: a live view of a sale (units left, holds/s from the fall of available,
 *     refusals/s from /metrics, every API process of the machine), its live holds with countdowns, each linking
 *     to its workflow in the Temporal Web UI, and its recent movements;
 *   - webhook subscriptions and their failed deliveries, with a retry button, when the webhook
 *     routes exist.
 * Everything the page shows comes through the API's own routes; it adds no data of its own.
 */

export interface OpsPageSettings {
  /** The Temporal Web UI, for links to reservations' workflows; without it there are no links. */
  temporalUiUrl?: string;
  temporalNamespace: string;
}

/** JSON that can sit inside a <script> element: no `</script>`, no HTML comment openers. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

export function renderOpsPage(settings: OpsPageSettings): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stockhold ops</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2430; background: #f6f7f9; }
  header { background: #1d2430; color: #fff; padding: 10px 16px; display: flex; gap: 16px; align-items: center; }
  header h1 { font-size: 16px; margin: 0; }
  main { padding: 12px 16px; display: grid; grid-template-columns: minmax(360px, 1fr) minmax(420px, 1.4fr); gap: 16px; }
  section { background: #fff; border: 1px solid #d9dde3; border-radius: 6px; padding: 10px 12px; }
  h2 { font-size: 14px; margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eef0f3; font-variant-numeric: tabular-nums; }
  th { font-weight: 600; color: #5a6472; }
  tr.sku { cursor: pointer; }
  tr.sku:hover, tr.sku.picked { background: #eef4ff; }
  .state { font-size: 12px; padding: 1px 6px; border-radius: 8px; }
  .state.ok { background: #e5f6ea; color: #1b6b33; }
  .state.low { background: #fff3d6; color: #8a5a00; }
  .state.soldout { background: #fde2e1; color: #a32019; }
  .big { font-size: 28px; font-weight: 600; }
  .figures { display: flex; gap: 24px; margin-bottom: 8px; }
  .figures div span { display: block; color: #5a6472; font-size: 12px; }
  .muted { color: #5a6472; }
  .error { color: #a32019; }
  #signin { display: flex; gap: 8px; align-items: center; }
  input, button { font: inherit; }
  .wide { grid-column: 1 / -1; }
</style>
</head>
<body>
<header>
  <h1>Stockhold ops</h1>
  <form id="signin">
    <label for="token">Admin token</label>
    <input id="token" type="password" autocomplete="off" size="28">
    <button id="signin-button" type="submit">Sign in</button>
    <button id="signout" type="button" hidden>Sign out</button>
  </form>
  <span id="status" class="muted">not signed in</span>
</header>
<main>
  <section>
    <h2>Stock <span class="muted" id="sku-count"></span></h2>
    <table id="skus"><thead><tr><th>SKU</th><th>name</th><th>total</th><th>reserved</th><th>available</th><th>state</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="detail">
    <h2>Live: <span id="picked">pick a SKU</span></h2>
    <div class="figures">
      <div><span>units left</span><b class="big" id="units-left">–</b></div>
      <div><span>holds / s</span><b class="big" id="holds-rate">–</b></div>
      <div><span>refusals / s</span><b class="big" id="refusals-rate">–</b></div>
      <div><span>state</span><b id="picked-state">–</b></div>
    </div>
    <h2>Live holds <span class="muted" id="hold-count"></span></h2>
    <table id="holds"><thead><tr><th>reservation</th><th>quantity</th><th>expires in</th></tr></thead><tbody></tbody></table>
    <h2 style="margin-top:12px">Recent movements</h2>
    <table id="movements"><thead><tr><th>when</th><th>kind</th><th>delta</th><th>reservation</th><th>reason</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="wide">
    <h2>Webhooks</h2>
    <div id="webhooks" class="muted">–</div>
  </section>
</main>
<script>
"use strict";
const SETTINGS = ${scriptJson(settings)};
const TOKEN_KEY = "stockhold-admin-token";
const state = { sku: null, skus: [], holds: [], last: null, lastMetrics: null };
const $ = (id) => document.getElementById(id);

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: { authorization: "Bearer " + token(), ...(options.headers || {}) } });
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (res.status === 401 || res.status === 403) { signOut("the token was refused (" + res.status + ")"); throw new Error("unauthorised"); }
  return { status: res.status, body };
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function stateOf(view) {
  if (view.available <= 0) return ["soldout", "sold out"];
  if (view.lowStockThreshold !== null && view.lowStockThreshold !== undefined && view.available <= view.lowStockThreshold) return ["low", "low stock"];
  return ["ok", "in stock"];
}

function badge(td, view) {
  const [cls, text] = stateOf(view);
  td.textContent = "";
  const span = document.createElement("span");
  span.className = "state " + cls;
  span.dataset.state = cls;
  span.textContent = text;
  td.appendChild(span);
}

function workflowLink(reservationId) {
  if (!SETTINGS.temporalUiUrl) return null;
  return SETTINGS.temporalUiUrl + "/namespaces/" + encodeURIComponent(SETTINGS.temporalNamespace) + "/workflows/" + encodeURIComponent("reservation-" + reservationId);
}

function reservationCell(row, reservationId) {
  const td = document.createElement("td");
  const href = workflowLink(reservationId);
  if (href) {
    const a = document.createElement("a");
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener";
    a.textContent = reservationId;
    a.className = "reservation-link";
    td.appendChild(a);
  } else {
    td.textContent = reservationId;
  }
  row.appendChild(td);
}

async function loadSkus() {
  const all = [];
  let after = null;
  do {
    const { status, body } = await api("/v1/skus?limit=200" + (after ? "&after=" + encodeURIComponent(after) : ""));
    if (status !== 200) throw new Error("GET /v1/skus: " + status + " " + (body && body.error ? body.error.message : ""));
    all.push(...body.skus);
    after = body.next;
  } while (after && all.length < 2000);
  state.skus = all;
  const tbody = $("skus").tBodies[0];
  tbody.textContent = "";
  for (const view of all) {
    const row = document.createElement("tr");
    row.className = "sku" + (view.sku === state.sku ? " picked" : "");
    row.dataset.sku = view.sku;
    cell(row, view.sku);
    cell(row, view.name);
    cell(row, view.total);
    cell(row, view.reserved);
    cell(row, view.available, "available");
    badge(cell(row, ""), view);
    row.addEventListener("click", () => pick(view.sku));
    tbody.appendChild(row);
  }
  $("sku-count").textContent = "(" + all.length + ")";
}

function pick(sku) {
  state.sku = sku;
  state.last = null;
  $("picked").textContent = sku;
  for (const row of $("skus").tBodies[0].rows) row.classList.toggle("picked", row.dataset.sku === sku);
  void refreshDetail();
}

/** Reservation refusals so far (every code), from /metrics: the whole machine's under npm start (src/processes.ts). */
async function refusalsSoFar() {
  const res = await fetch("/metrics");
  const text = await res.text();
  let sum = 0;
  for (const line of text.split("\\n")) {
    const m = /^stockhold_reservation_refusals_total\\{code="([^"]+)"\\} (\\d+(?:\\.\\d+)?)/.exec(line);
    if (m) sum += Number(m[2]);
  }
  return sum;
}

async function refreshDetail() {
  const sku = state.sku;
  if (!sku || !token()) return;
  const enc = encodeURIComponent(sku);
  const [stock, holds, movements, refusals] = await Promise.all([
    api("/v1/skus/" + enc),
    api("/v1/skus/" + enc + "/holds"),
    api("/v1/skus/" + enc + "/movements?limit=20"),
    refusalsSoFar().catch(() => null),
  ]);
  if (sku !== state.sku) return;
  if (stock.status !== 200) { $("units-left").textContent = "?"; return; }
  const view = stock.body;
  const now = Date.now();
  $("units-left").textContent = String(view.available);
  $("picked-state").textContent = stateOf(view)[1];
  $("picked-state").dataset.state = stateOf(view)[0];
  if (state.last && now > state.last.at) {
    const seconds = (now - state.last.at) / 1000;
    // Units taken: a hold lowers available; a sale lowers total and releases its hold (no change).
    const taken = Math.max(0, state.last.available - view.available);
    $("holds-rate").textContent = (taken / seconds).toFixed(1);
    if (refusals !== null && state.last.refusals !== null) $("refusals-rate").textContent = (Math.max(0, refusals - state.last.refusals) / seconds).toFixed(1);
  }
  state.last = { at: now, available: view.available, refusals };
  state.holds = holds.status === 200 ? holds.body.holds : [];
  renderHolds();
  const tbody = $("movements").tBodies[0];
  tbody.textContent = "";
  for (const m of movements.status === 200 ? movements.body.movements : []) {
    const row = document.createElement("tr");
    cell(row, new Date(m.at).toLocaleTimeString());
    cell(row, m.kind);
    cell(row, m.delta > 0 ? "+" + m.delta : m.delta);
    if (m.reservationId) reservationCell(row, m.reservationId); else cell(row, "");
    cell(row, m.reason || "");
    tbody.appendChild(row);
  }
}

function renderHolds() {
  const tbody = $("holds").tBodies[0];
  tbody.textContent = "";
  const now = Date.now();
  for (const h of state.holds) {
    const row = document.createElement("tr");
    row.className = "hold";
    reservationCell(row, h.reservationId);
    cell(row, h.quantity);
    const left = h.expiresAt ? Math.max(0, Math.round((Date.parse(h.expiresAt) - now) / 1000)) : null;
    const td = cell(row, left === null ? "?" : Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0"), "countdown");
    if (h.expiresAt) td.dataset.expiresAt = h.expiresAt;
    tbody.appendChild(row);
  }
  $("hold-count").textContent = "(" + state.holds.length + ")";
}

function tickCountdowns() {
  const now = Date.now();
  for (const td of document.querySelectorAll("td.countdown[data-expires-at]")) {
    const left = Math.max(0, Math.round((Date.parse(td.dataset.expiresAt) - now) / 1000));
    td.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
  }
}

async function loadWebhooks() {
  const box = $("webhooks");
  const list = await api("/v1/webhooks");
  if (list.status === 404) { box.textContent = "webhooks are not available on this service"; return; }
  if (list.status !== 200) { box.textContent = "GET /v1/webhooks: " + list.status; return; }
  box.textContent = "";
  if (list.body.webhooks.length === 0) { box.textContent = "no subscriptions"; return; }
  const table = document.createElement("table");
  table.innerHTML = "<thead><tr><th>subscription</th><th>url</th><th>events</th><th>failed deliveries</th></tr></thead><tbody></tbody>";
  for (const w of list.body.webhooks) {
    const row = document.createElement("tr");
    cell(row, w.id);
    cell(row, w.url);
    cell(row, w.events.join(", "));
    const td = cell(row, "…");
    table.tBodies[0].appendChild(row);
    const failed = await api("/v1/webhooks/" + encodeURIComponent(w.id) + "/deliveries?status=failed");
    td.textContent = "";
    const deliveries = failed.status === 200 ? failed.body.deliveries : [];
    if (deliveries.length === 0) td.textContent = "none";
    for (const d of deliveries.slice(0, 20)) {
      const div = document.createElement("div");
      div.textContent = d.type + " (" + d.attempts + " attempts: " + (d.lastError || "") + ") ";
      const retry = document.createElement("button");
      retry.textContent = "retry";
      retry.addEventListener("click", async () => {
        const answer = await api("/v1/webhooks/" + encodeURIComponent(w.id) + "/deliveries/" + encodeURIComponent(d.id) + "/retry", { method: "POST" });
        retry.textContent = answer.status === 202 ? "queued" : "failed: " + answer.status;
        retry.disabled = true;
      });
      div.appendChild(retry);
      td.appendChild(div);
    }
  }
  box.appendChild(table);
}

function signOut(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  $("status").textContent = why || "not signed in";
  $("status").className = why ? "error" : "muted";
  $("signout").hidden = true;
}

async function refreshAll() {
  if (!token()) return;
  try {
    await loadSkus();
    await refreshDetail();
    $("status").textContent = "signed in · updated " + new Date().toLocaleTimeString();
    $("status").className = "muted";
  } catch (err) {
    if (String(err && err.message) !== "unauthorised") { $("status").textContent = String(err && err.message || err); $("status").className = "error"; }
  }
}

$("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  $("signout").hidden = false;
  await refreshAll();
  if (token()) await loadWebhooks().catch((err) => ($("webhooks").textContent = String(err)));
});
$("signout").addEventListener("click", () => signOut());

if (token()) { $("signout").hidden = false; void refreshAll().then(() => loadWebhooks()).catch(() => undefined); }
setInterval(() => void refreshDetail().catch(() => undefined), 500);
setInterval(() => void loadSkus().catch(() => undefined), 3000);
setInterval(tickCountdowns, 250);
</script>
</body>
</html>
`;
}
