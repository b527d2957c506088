/// The dashboard's script: reads the admin API (`/v1/rollouts`, `/v1/agents`), follows the
/// selected rollout's event stream (read with fetch, so it can carry the admin token, which
/// EventSource cannot), draws progress over time, and posts pause/resume/abort/rollback. Every
/// text it shows goes in as text, never as markup.
enum DashboardScript {
    static let javascript = #"""
"use strict";
const $ = (id) => document.getElementById(id);
const ui = { token: sessionStorage.getItem("fledge-token") || "", selected: null, following: null, series: [], doneAt: [], createdAt: 0, agents: [] };
const STATES = ["pending", "admitted", "downloading", "installing", "restarting", "confirming", "done", "failed", "absent"];

function bytes(n) {
  const units = ["B", "kB", "MB", "GB", "TB"]; let u = 0;
  while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
  return u === 0 ? `${n} B` : `${n.toFixed(1)} ${units[u]}`;
}
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
function headers() { return ui.token ? { Authorization: `Bearer ${ui.token}` } : {}; }

async function api(method, path) {
  const response = await fetch(path, { method, headers: headers() });
  if (response.status === 401 || response.status === 403) {
    $("token-form").hidden = false;
    $("hbs-status").textContent = "this HBS needs the admin token";
    throw new Error("forbidden");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  $("hbs-status").textContent = "live";
  return body;
}

async function loadRollouts() {
  const rollouts = await api("GET", "/v1/rollouts");
  const list = $("rollouts"); list.replaceChildren();
  for (const r of rollouts.slice().reverse()) {
    const li = el("li", `${r.id} · ${r.version} · ${r.phase} · ${r.counts.done || 0}/${r.hosts}`);
    li.dataset.id = r.id;
    if (r.id === ui.selected) li.classList.add("selected");
    li.onclick = () => select(r.id);
    list.append(li);
  }
  if (!ui.selected && rollouts.length) {
    const active = rollouts.filter((r) => r.phase === "running" || r.phase === "paused");
    select((active.length ? active : rollouts)[active.length ? 0 : rollouts.length - 1].id);
  }
}

function select(id) {
  if (ui.selected === id) return;
  ui.selected = id; ui.series = []; ui.doneAt = []; $("events").replaceChildren();
  if (ui.following) ui.following.abort();
  loadSummary(); follow(id); loadRollouts().catch(() => {});
}

async function loadSummary() {
  if (!ui.selected) return;
  const s = await api("GET", `/v1/rollouts/${encodeURIComponent(ui.selected)}`);
  $("rollout-id").textContent = s.id;
  $("release").textContent = `${s.name} ${s.version}`;
  $("phase").textContent = s.phase;
  $("pause-reason").textContent = s.pauseReason ? `(${s.pauseReason})` : "";
  $("done").textContent = s.counts.done || 0;
  $("hosts").textContent = s.hosts;
  $("eta").textContent = s.etaSeconds == null ? "–" : `${Math.round(s.etaSeconds)} s`;
  $("bar-fill").style.width = s.hosts ? `${100 * (s.counts.done || 0) / s.hosts}%` : "0";
  const counts = $("counts"); counts.replaceChildren();
  for (const state of STATES) {
    if (!s.counts[state]) continue;
    counts.append(el("dt", state)); const dd = el("dd", s.counts[state]); dd.id = `count-${state}`; counts.append(dd);
  }
  const cdn = s.bytesBySourceKind.cdn || 0, peer = s.bytesBySourceKind.peer || 0;
  $("bytes-cdn").textContent = bytes(cdn); $("bytes-peer").textContent = bytes(peer);
  const batches = $("batches"); batches.replaceChildren();
  for (const b of s.batches) {
    const tr = el("tr"); tr.append(el("td", b.batch + (b.batch === s.currentBatch ? " (now)" : "")));
    tr.append(el("td", Object.entries(b.counts).map(([k, v]) => `${k} ${v}`).join(", "))); batches.append(tr);
  }
  const failed = $("failed"); failed.replaceChildren();
  for (const f of s.failed) { const li = el("li", `${f.host}: ${f.reason}`); li.dataset.host = f.host; failed.append(li); }
  const active = s.phase === "running" || s.phase === "paused";
  $("btn-pause").disabled = s.phase !== "running"; $("btn-resume").disabled = s.phase !== "paused";
  $("btn-abort").disabled = !active; $("btn-rollback").disabled = false;
  ui.createdAt = s.createdAt;
  ui.series.push({ t: Date.now() / 1000, done: s.counts.done || 0, cdn, peer, hosts: s.hosts });
  if (ui.series.length > 2000) ui.series.shift();
  draw();
}

// Hosts done from the events (the whole rollout), bytes from the samples since the page opened.
function draw() {
  const svg = $("chart"); svg.replaceChildren();
  const points = ui.series; if (!points.length) return;
  const last = points[points.length - 1];
  const t0 = Math.min(ui.createdAt || points[0].t, points[0].t), span = Math.max(1, last.t - t0);
  const maxBytes = Math.max(1, ...points.map((p) => Math.max(p.cdn, p.peer))), maxHosts = Math.max(1, last.hosts);
  const x = (t) => (600 * (t - t0) / span).toFixed(1), y = (v, max) => (210 - 200 * v / max).toFixed(1);
  const polyline = (coordinates, cls) => {
    const path = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    path.setAttribute("points", coordinates.join(" ")); path.setAttribute("class", `line ${cls}`); svg.append(path);
  };
  const done = [`${x(t0)},${y(0, maxHosts)}`];
  ui.doneAt.slice().sort((a, b) => a - b).forEach((t, i) => { done.push(`${x(t)},${y(i, maxHosts)}`, `${x(t)},${y(i + 1, maxHosts)}`); });
  done.push(`${x(last.t)},${y(ui.doneAt.length, maxHosts)}`);
  polyline(done, "done");
  for (const key of ["cdn", "peer"]) polyline(points.map((p) => `${x(p.t)},${y(p[key], maxBytes)}`), key);
}

function showEvent(id, event) {
  const time = new Date(event.at * 1000).toLocaleTimeString();
  const text = [event.host, event.kind === "batchStarted" ? `batch ${event.batch} started` : event.kind, event.reason].filter(Boolean).join(" · ");
  const li = el("li", `${time} ${text}`, event.kind); li.dataset.id = id; $("events").prepend(li);
  while ($("events").childElementCount > 500) $("events").lastElementChild.remove();  // the latest 500
}

async function follow(id) {
  const controller = new AbortController(); ui.following = controller;
  let last = 0, pending = null;
  while (ui.selected === id && !controller.signal.aborted) {
    try {
      const response = await fetch(`/v1/rollouts/${encodeURIComponent(id)}/events`, {
        headers: { ...headers(), "Last-Event-ID": String(last) }, signal: controller.signal });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const reader = response.body.getReader(); const decoder = new TextDecoder(); let buffer = "";
      for (;;) {
        const { value, done } = await reader.read(); if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          let eventID = null; const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("id:")) eventID = Number(line.slice(3).trim());
            else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
          }
          if (!data.length) continue;
          if (eventID) last = eventID;
          const event = JSON.parse(data.join("\n"));
          if (event.kind === "done") ui.doneAt.push(event.at);
          showEvent(eventID, event);
          clearTimeout(pending); pending = setTimeout(() => { loadSummary().catch(() => {}); loadRollouts().catch(() => {}); }, 200);
        }
      }
      const s = await api("GET", `/v1/rollouts/${encodeURIComponent(id)}`);
      if (s.phase === "completed" || s.phase === "aborted") return;
    } catch (error) {
      if (controller.signal.aborted) return;
      $("hbs-status").textContent = `reconnecting: ${error.message}`;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function act(action, button) {
  if (button.classList.contains("danger") && button.dataset.armed !== "1") {
    button.dataset.armed = "1"; const label = button.textContent; button.textContent = `Really ${label.toLowerCase()}?`;
    setTimeout(() => { button.dataset.armed = ""; button.textContent = label; }, 4000);
    return;
  }
  button.dataset.armed = "";
  try {
    const s = await api("POST", `/v1/rollouts/${encodeURIComponent(ui.selected)}/${action}`);
    $("action-status").textContent = `${action}: ${s.id} ${s.phase}`;
    if (action === "rollback") select(s.id); else loadSummary();
  } catch (error) { $("action-status").textContent = `${action} failed: ${error.message}`; }
}

async function loadAgents() {
  ui.agents = await api("GET", "/v1/agents");
  for (const [id, key] of [["filter-state", "state"], ["filter-version", "version"]]) {
    const select = $(id), keep = select.value, values = [...new Set(ui.agents.map((a) => a[key]))].sort();
    select.replaceChildren(el("option", "any")); select.firstChild.value = "";
    for (const v of values) { const o = el("option", v); o.value = v; select.append(o); }
    select.value = values.includes(keep) ? keep : "";
  }
  renderAgents();
}

function renderAgents() {
  const state = $("filter-state").value, version = $("filter-version").value, label = $("filter-label").value.trim();
  const [lk, lv] = label.includes("=") ? label.split("=", 2) : [label, null];
  const shown = ui.agents.filter((a) => (!state || a.state === state) && (!version || a.version === version)
    && (!lk || (lv === null ? lk in a.labels : a.labels[lk] === lv)));
  const body = $("agents"); body.replaceChildren();
  for (const a of shown) {
    const tr = el("tr"); tr.dataset.host = a.host;
    for (const v of [a.host, a.release ? `${a.version} (${a.release})` : a.version, a.state, a.starts ?? "–",
      Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(" "), a.error || ""]) tr.append(el("td", String(v)));
    body.append(tr);
  }
  $("agents-count").textContent = `${shown.length} of ${ui.agents.length}`;
}

function refresh() {
  loadRollouts().catch(() => {}); loadAgents().catch(() => {});
  if (ui.selected) loadSummary().catch(() => {});
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = ui.token;
  $("token-form").onsubmit = (e) => { e.preventDefault(); ui.token = $("token").value.trim(); sessionStorage.setItem("fledge-token", ui.token); $("token-form").hidden = true; refresh(); };
  for (const button of document.querySelectorAll(".actions button")) button.onclick = () => act(button.dataset.action, button);
  for (const id of ["filter-state", "filter-version", "filter-label"]) $(id).oninput = renderAgents;
  // The agents list is the fleet: every 10 s; the rollouts every 2 s.
  refresh(); setInterval(() => { loadRollouts().catch(() => {}); if (ui.selected) loadSummary().catch(() => {}); }, 2000);
  setInterval(() => loadAgents().catch(() => {}), 10000);
});
"""#
}
