// The admin console's page: polls /api/state, draws the farm table and the
// charts, and posts the controls' orders with the session's CSRF token.
"use strict";

const POLL_MS = 2000;
let csrf = "";
const charts = {};
/** The router's newest sample (seconds since the epoch): the charts end there, an hour wide. */
let lastSample = 0;

const $ = (sel) => document.querySelector(sel);

function notice(text, error) {
  const p = $("#notice");
  p.textContent = text;
  p.className = error ? "error" : "";
}

async function post(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body ?? {}),
  });
  if (res.status === 401) location.href = "/login";
  const answer = await res.json().catch(() => ({ ok: false, error: `HTTP ${res.status}` }));
  return answer;
}

async function act(label, path, body) {
  const r = await post(path, body);
  notice(r.ok ? `${label}: done${r.error ? ` (${r.error})` : ""}` : `${label}: ${r.error}`, !r.ok);
  await refresh();
  return r;
}

function cell(tr, text, num) {
  const td = document.createElement("td");
  td.textContent = text;
  if (num) td.className = "num";
  tr.appendChild(td);
  return td;
}

// Drained by a report made while draining (it carries drainStarted), as cli/farm-commands.ts isDrained.
function c2sState(e) {
  const info = e.info || {};
  const load = e.load;
  const drained = load && load.connections === 0 && (load.drainStarted !== undefined || load.started === undefined);
  if (info.draining) return drained ? "drained" : "draining";
  return info.full ? "full" : "active";
}

function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

function renderFarm(state) {
  const body = $("#farm tbody");
  body.replaceChildren();
  const order = { router: 0, c2s: 1, sm: 2 };
  const rows = [...state.entries].sort((a, b) => (order[a.role] ?? 9) - (order[b.role] ?? 9) || a.name.localeCompare(b.name));
  for (const e of rows) {
    const tr = document.createElement("tr");
    tr.id = `row-${e.name}`;
    const l = e.load || {};
    const state = e.role === "c2s" ? c2sState(e) : e.role === "router" ? ((e.info || {}).active ? "active" : "passive") : "active";
    cell(tr, e.name);
    cell(tr, e.role);
    cell(tr, state).className = "state";
    cell(tr, e.load ? String(l.sessions) : "-", true).className = "num sessions";
    cell(tr, e.load ? String(l.connections) : "-", true);
    cell(tr, e.load ? String(l.lag) : "-", true);
    cell(tr, l.pid ?? "-", true);
    cell(tr, l.host ?? "-");
    cell(tr, l.rss ? (l.rss / 1048576).toFixed(0) : "-", true);
    cell(tr, l.cpu !== undefined ? (l.cpu * 100).toFixed(0) : "-", true);
    cell(tr, ago(Date.now() - e.linkedAt), true);
    const actions = cell(tr, "");
    if (e.role === "c2s") {
      const draining = Boolean((e.info || {}).draining);
      const b = document.createElement("button");
      b.type = "button";
      b.id = `${draining ? "undrain" : "drain"}-${e.name}`;
      b.textContent = draining ? "Undrain" : "Drain";
      b.addEventListener("click", () => act(`${b.textContent} ${e.name}`, draining ? "/api/undrain" : "/api/drain", { name: e.name }));
      actions.appendChild(b);
    }
    body.appendChild(tr);
  }
}

function chart(id, title, data, color) {
  const el = document.getElementById(id);
  if (!charts[id]) {
    charts[id] = new uPlot(
      {
        title,
        width: 420,
        height: 200,
        series: [{}, { label: title, stroke: color, fill: `${color}22` }],
        axes: [{}, { size: 50 }],
        // The last hour, however few samples there are yet.
        scales: { x: { time: true, range: () => [lastSample - 3600, lastSample] }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
      },
      data,
      el,
    );
  } else charts[id].setData(data);
}

function renderCharts(h) {
  lastSample = h.t.length ? h.t[h.t.length - 1] : Math.round(Date.now() / 1000);
  chart("chart-sessions", "sessions", [h.t, h.sessions], "#1f77b4");
  chart("chart-logins", "logins/s", [h.t, h.logins], "#2ca02c");
  chart("chart-messages", "messages/s", [h.t, h.messages], "#d62728");
}

async function refresh() {
  const res = await fetch("/api/state");
  if (res.status === 401) {
    location.href = "/login";
    return;
  }
  const state = await res.json();
  csrf = state.csrf;
  $("#router").textContent = `${state.router} (${state.active ? "active" : "passive"})`;
  $("#user").textContent = state.user;
  renderFarm(state);
  renderCharts(state.history);
  document.body.dataset.loaded = "true";
}

async function refreshAccounts() {
  const res = await fetch("/api/accounts");
  if (!res.ok) return;
  const { total, accounts } = await res.json();
  $("#account-count").textContent = accounts.length < total ? `${total} accounts, the first ${accounts.length} shown` : `${total} accounts`;
  const body = $("#accounts tbody");
  body.replaceChildren();
  for (const a of accounts) {
    const tr = document.createElement("tr");
    tr.id = `account-${a.jid}`;
    cell(tr, a.jid);
    cell(tr, a.disabled ? "disabled" : "enabled").className = "state";
    const actions = cell(tr, "");
    const button = (label, path, confirmText) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.dataset.action = label.toLowerCase();
      b.addEventListener("click", async () => {
        if (confirmText && !confirm(confirmText)) return;
        await act(`${label} ${a.jid}`, path, { user: a.jid });
        await refreshAccounts();
      });
      actions.appendChild(b);
    };
    button(a.disabled ? "Enable" : "Disable", a.disabled ? "/api/account-enable" : "/api/account-disable");
    button("Delete", "/api/account-delete", `Delete ${a.jid} with everything it holds?`);
    body.appendChild(tr);
  }
}

function form(id, label, path, after) {
  const f = document.getElementById(id);
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = Object.fromEntries(new FormData(f));
    const r = await act(label, path, body);
    if (r.ok) f.reset();
    if (after) await after();
  });
}

form("kick", "Kick", "/api/kick");
form("announce", "Announcement", "/api/announce");
form("account-add", "Add account", "/api/account-add", refreshAccounts);
$("#logout").addEventListener("click", async () => {
  await post("/logout");
  location.href = "/login";
});
refresh().then(refreshAccounts);
setInterval(refresh, POLL_MS);
