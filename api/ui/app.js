// posgate status page: plain JS, no external assets. The API key lives in
// sessionStorage and goes out only as the X-Api-Key header.
"use strict";
const KEY = "posgate-api-key";
const $ = (s) => document.querySelector(s);
let timer = null;

function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function money(minor, cur) { return (Number(minor) / 100).toFixed(2) + " " + esc(cur || ""); }
function time(t) { return t ? new Date(t).toLocaleTimeString() : ""; }
function badge(s) { return `<span class="state-${esc(s)}">${esc(s)}</span>`; }

async function api(method, path, body) {
  const headers = { "X-Api-Key": sessionStorage.getItem(KEY) || "" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (res.status === 401) { logout("The key was refused."); throw new Error("unauthorized"); }
  if (!res.ok) { const e = new Error((data && data.error && data.error.message) || res.statusText); e.status = res.status; throw e; }
  return data;
}

function todayISO() { const d = new Date(); d.setHours(0, 0, 0, 0); return d.toISOString(); }

async function refresh() {
  const errors = [];
  await Promise.all([health(), devices(), payments(), invoices(), webhooks()].map((p) => p.catch((e) => { if (e.status !== 403 && e.status !== 503) errors.push(e.message); })));
  $("#status").textContent = (errors.length ? "Errors: " + errors.join("; ") + " · " : "") + "updated " + new Date().toLocaleTimeString();
}

// health shows /healthz's components (store, certificates, and whatever
// others report there), devices and the tax service aside.
async function health() {
  const res = await fetch("/healthz", { cache: "no-store" });
  const h = await res.json();
  taxService(h.tax_service);
  $("#health tbody").innerHTML = Object.keys(h).filter((k) => k !== "devices" && k !== "tax_service").sort().map((k) => {
    const v = h[k];
    const text = typeof v === "object" ? `<pre>${esc(JSON.stringify(v, null, 1))}</pre>` : badge(v);
    return `<tr data-health="${esc(k)}"><td>${esc(k)}</td><td>${text}</td></tr>`;
  }).join("");
}

// taxService shows /healthz's tax_service: its state, the registration
// backlog and the oldest invoice still without a FIC.
function taxService(ts) {
  const el = $("#taxsvc");
  if (!ts) { el.innerHTML = `<p class="muted">no tax service configured</p>`; return; }
  const b = ts.backlog || {};
  const o = b.oldest_without_fic;
  const oldest = o
    ? `<span class="oldest" data-invoice="${esc(o.invoice_id)}">${esc(o.invoice_id)}</span>, issued ${esc(new Date(o.issued_at).toLocaleString())}, deadline ${esc(new Date(o.deadline_at).toLocaleString())} (${esc(o.status)})`
    : `<span class="oldest muted">none: every invoice has its FIC</span>`;
  el.innerHTML = `<table><tbody>
    <tr><td>State</td><td class="state">${badge(ts.status)}${b.offline ? ` <span class="muted">last attempt found it unreachable</span>` : ""}</td></tr>
    <tr><td>Registrations</td><td>pending ${esc(b.pending ?? "")} · errors ${esc(b.errors ?? "")} · dead ${esc(b.dead ?? "")}</td></tr>
    <tr><td>Oldest invoice without a FIC</td><td>${oldest}</td></tr></tbody></table>`;
}

async function devices() {
  const list = (await api("GET", "/v1/devices")).data;
  $("#devices tbody").innerHTML = list.map((d) => `<tr data-device="${esc(d.id)}"><td>${esc(d.id)}</td><td>${esc(d.kind)} ${esc(d.protocol || "")}</td><td class="state">${badge(d.state)}</td><td>${esc(d.last_error || "")}</td></tr>`).join("");
  const terms = list.filter((d) => d.kind === "terminal");
  const parts = await Promise.all(terms.map(async (d) => {
    try {
      const frames = (await api("GET", `/v1/devices/${encodeURIComponent(d.id)}/frames`)).data.slice(-8);
      return `<h3>${esc(d.id)}: last frames</h3><pre>${frames.map((f) => `${time(f.at)} ${esc(f.dir)} ${esc(f.summary)}`).join("\n") || "none yet"}</pre>`;
    } catch (e) { return ""; }
  }));
  $("#frames").innerHTML = parts.join("");
}

async function payments() {
  const list = (await api("GET", "/v1/payments?limit=200&since=" + encodeURIComponent(todayISO()))).data;
  $("#payments tbody").innerHTML = list.map((p) => `<tr><td>${time(p.created_at)}</td><td>${esc(p.id)}</td><td>${esc(p.terminal_id)}</td><td>${money(p.amount, p.currency)}</td><td>${badge(p.status)}</td><td>${esc(p.result_text || p.terminal_message || "")}</td></tr>`).join("") || `<tr><td colspan="6" class="muted">none today</td></tr>`;
}

// The print-job requeue route, if this posgate has one: found in the
// OpenAPI document (a POST path with "requeue"), so the page needs no
// change when the route is added. Its first path parameter is the invoice.
let requeuePath;
async function requeueRoute() {
  if (requeuePath !== undefined) return requeuePath;
  try {
    const doc = await (await fetch("/v1/openapi.json", { cache: "no-store" })).json();
    requeuePath = Object.keys(doc.paths).find((p) => /requeue/.test(p) && /print/.test(p) && doc.paths[p].post) || null;
  } catch (e) { requeuePath = null; }
  return requeuePath;
}

async function invoices() {
  const rq = await requeueRoute();
  let list;
  try { list = (await api("GET", "/v1/invoices?limit=200&since=" + encodeURIComponent(todayISO()))).data; } catch (e) {
    $("#invoices tbody").innerHTML = `<tr><td colspan="5" class="muted">${esc(e.message)}</td></tr>`;
    return;
  }
  $("#invoices tbody").innerHTML = list.map((i) => {
    const fisc = i.fiscalization ? badge(i.fiscalization.state || i.fiscalization.status) : `<span class="muted">signed ${esc((i.fiscal_signature || {}).code || "")}</span>`;
    let pr = i.print ? badge(i.print.state) + (i.print.last_error ? " " + esc(i.print.last_error) : "") : `<span class="muted">not printed</span>`;
    if (rq && i.print && i.print.state === "dead") pr += ` <button class="requeue" data-path="${esc(rq.replace(/\{[^}]+\}/, encodeURIComponent(i.id)))}">Requeue print</button>`;
    return `<tr data-invoice="${esc(i.id)}"><td>${time(i.issued_at)}</td><td>${esc(i.number)}</td><td>${money((i.totals || {}).total, i.currency)}</td><td>${fisc}</td><td>${pr}</td></tr>`;
  }).join("") || `<tr><td colspan="5" class="muted">none today</td></tr>`;
}

async function webhooks() {
  let eps;
  try { eps = (await api("GET", "/v1/webhooks")).data; } catch (e) {
    $("#webhooks").innerHTML = `<p class="muted">${e.status === 403 ? "Needs an admin key." : esc(e.message)}</p>`;
    return;
  }
  const parts = await Promise.all(eps.map(async (ep) => {
    const ds = (await api("GET", `/v1/webhooks/${encodeURIComponent(ep.id)}/deliveries?limit=10`)).data;
    const rows = ds.map((d) => {
      const last = (d.attempts || []).slice(-1)[0] || {};
      const btn = d.state === "dead" ? `<button class="retry" data-id="${esc(d.id)}">Retry</button>` : "";
      return `<tr data-delivery="${esc(d.id)}"><td>${esc(d.id)}</td><td>${esc(d.event_type)}</td><td class="state">${badge(d.state)}</td><td>${esc(d.attempt_count)}</td><td>${esc(d.last_status || "")} ${esc(last.error_class || d.last_error || "")}</td><td><pre>${esc((last.response || "").slice(0, 200))}</pre></td><td>${btn}</td></tr>`;
    }).join("");
    return `<div class="endpoint" data-endpoint="${esc(ep.id)}"><h3>${esc(ep.url)} ${badge(ep.status)} · pending <b class="pending">${esc(ep.pending)}</b> · dead <b class="dead">${esc(ep.dead)}</b>
      <button class="recover" data-id="${esc(ep.id)}">Recover dead (7 days)</button></h3>
      <table><thead><tr><th>Delivery</th><th>Event</th><th>State</th><th>Attempts</th><th>Last status</th><th>Answer</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>`;
  }));
  $("#webhooks").innerHTML = parts.join("") || `<p class="muted">no endpoints</p>`;
}

document.addEventListener("click", async (ev) => {
  const b = ev.target.closest("button.retry, button.recover, button.requeue");
  if (!b) return;
  b.disabled = true;
  try {
    if (b.classList.contains("retry")) await api("POST", `/v1/deliveries/${encodeURIComponent(b.dataset.id)}/retry`);
    else if (b.classList.contains("requeue")) await api("POST", b.dataset.path);
    else await api("POST", `/v1/webhooks/${encodeURIComponent(b.dataset.id)}/recover`, { since: new Date(Date.now() - 7 * 864e5).toISOString() });
  } catch (e) { $("#status").textContent = "Error: " + e.message; }
  refresh();
});

function logout(msg) {
  sessionStorage.removeItem(KEY);
  clearInterval(timer);
  $("#app").hidden = true; $("#logout").hidden = true; $("#login").hidden = false;
  $("#login-error").textContent = msg || "";
  $("#who").textContent = "";
}

function start() {
  $("#login").hidden = true; $("#app").hidden = false; $("#logout").hidden = false;
  $("#who").textContent = (sessionStorage.getItem(KEY) || "").split(":")[0];
  refresh();
  timer = setInterval(refresh, 2000);
}

$("#login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY, $("#key").value.trim());
  $("#key").value = "";
  start();
});
$("#logout").addEventListener("click", () => logout());
if (sessionStorage.getItem(KEY)) start(); else logout();
