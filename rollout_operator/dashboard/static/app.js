// The llm-rollout dashboard: plain JavaScript, no build step, no network beyond this server.
// State arrives as server-sent events (/api/stream); actions POST to the same commands as
// `kubectl llmrollout`. Charts are inline SVG drawn from status.history (one point per
// analysis run: per-arm values of every metric and the thresholds it was judged against).
"use strict";

const OPERATOR_SILENT_SECONDS = 45; // status.operatorHeartbeat moves on every 15 s
const app = { data: null, live: false, events: [], eventsFor: "" };

const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const $ = (id) => document.getElementById(id);
const num = (v) => (v === null || v === undefined || v === "" ? null : Number(v));
const fmt = (v, digits = 3) => (v === null ? "n/a" : Number(v.toPrecision(digits)).toString());
const clock = (t) => new Date(t * 1000).toISOString().slice(11, 19);

function seconds(text) {
  const m = text ? /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text) : null;
  return m ? (+m[1] || 0) * 3600 + (+m[2] || 0) * 60 + (+m[3] || 0) : null;
}

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  return parts.length === 2 ? { namespace: parts[0], name: parts[1] } : null;
}

function find(where) {
  return (app.data?.rollouts || []).find(
    (o) => o.metadata.namespace === where.namespace && o.metadata.name === where.name);
}

function operatorSilence(obj) {
  const beat = num(obj.status?.operatorHeartbeat);
  if (beat === null || !app.data) return null;
  const silent = app.data.at - beat;
  return silent > OPERATOR_SILENT_SECONDS ? silent : null;
}

// ---- the banner: the dashboard server, the API server, the operator ----------------------
function banner() {
  const el = $("banner");
  const notes = [];
  let bad = false;
  if (!app.live) {
    notes.push("Lost the dashboard server (was `kubectl llmrollout dashboard` stopped?); reconnecting…");
    bad = true;
  }
  if (app.data?.api) {
    notes.push(`API server unreachable since ${clock(app.data.apiDownSince)}: ${esc(app.data.api)} ` +
      "— showing the last state read, retrying every second.");
    bad = true;
  }
  const silent = (app.data?.rollouts || []).filter((o) => operatorSilence(o) !== null);
  if (silent.length && !app.data?.api) {
    const s = Math.round(operatorSilence(silent[0]));
    notes.push(`The operator has not updated ${silent.map((o) => esc(o.metadata.name)).join(", ")} ` +
      `for ${s} s: is it running? Commands wait until it is back.`);
  }
  el.hidden = notes.length === 0;
  el.className = bad ? "banner bad" : "banner";
  el.innerHTML = notes.join("<br>");
}

// ---- the list ----------------------------------------------------------------------------
function stepsOf(obj) { return obj.spec?.strategy?.steps || []; }

function budgetBar(budget) {
  const spent = num(budget?.spentUSD) || 0;
  const cap = num(budget?.capUSD) ?? num(budget?.monthlyCapUSD);
  if (cap === null) return `<span class="muted">$${fmt(spent, 4)} (no cap)</span>`;
  const share = Math.min(100, (100 * spent) / cap);
  return `<div class="bar" title="$${spent} of $${cap}"><span class="spent" style="width:${share}%"></span></div>` +
    `<small>$${fmt(spent, 4)} of $${cap}</small>`;
}

function listView() {
  const rows = (app.data?.rollouts || []).map((o) => {
    const s = o.status || {};
    const steps = stepsOf(o);
    const progress = steps.length ? `${s.currentStepIndex ?? 0}/${steps.length}` : "static";
    const stale = operatorSilence(o) !== null ? ' <span title="operator silent">⚠</span>' : "";
    return `<tr class="row" data-name="${esc(o.metadata.name)}" data-namespace="${esc(o.metadata.namespace)}">
      <td>${esc(o.metadata.namespace)}</td><td><b>${esc(o.metadata.name)}</b>${stale}</td>
      <td><span class="phase ${esc(s.phase)}">${esc(s.phase || "Pending")}</span></td>
      <td><div class="bar"><span style="width:${s.realWeight || 0}%"></span></div>
          <small class="weight">${s.realWeight || 0}% real</small></td>
      <td class="step">${progress}</td>
      <td>${budgetBar(s.budget)}</td>
      <td>${s.sidecars?.connected ?? 0}</td>
      <td>${esc(s.analysis?.verdict || "-")}</td>
      <td class="muted">${esc(s.message || "")}</td></tr>`;
  });
  return `<div class="card"><h2>Rollouts</h2>
    <table id="rollouts"><thead><tr><th>Namespace</th><th>Name</th><th>Phase</th><th>Weight</th>
    <th>Step</th><th>Budget</th><th>Sidecars</th><th>Analysis</th><th>Message</th></tr></thead>
    <tbody>${rows.join("") || '<tr><td colspan="9" class="muted">No LLMRollouts here.</td></tr>'}</tbody>
    </table></div>`;
}

// ---- one rollout -------------------------------------------------------------------------
function stepText(step) {
  if ("setWeight" in step) return `setWeight ${step.setWeight}`;
  if ("setShadow" in step) return `setShadow ${step.setShadow}`;
  const duration = step.pause?.duration;
  return duration ? `pause ${duration}` : "pause until promoted";
}

function waitingFor(obj, step) {
  const s = obj.status || {};
  if (s.phase === "Degraded") return `${s.message}. Retry starts again from step 0.`;
  if (s.phase === "Aborted") return `aborted: ${s.message || "by hand"}. Retry starts again from step 0.`;
  if (s.phase === "Healthy") return "done: fully promoted";
  if (s.pausedByUser) return "held by hand (pause or set-weight): resume to continue";
  if (step && "pause" in step) {
    const total = seconds(step.pause?.duration);
    if (total === null) return "waiting for promote";
    const left = Math.max(0, Math.round(num(s.stepStartedAt) + total - app.data.at));
    return `waiting ${left} s more${obj.spec?.strategy?.analysis ? " and a passing analysis" : ""}`;
  }
  return s.message || "";
}

function timeline(obj) {
  const s = obj.status || {};
  const steps = stepsOf(obj);
  if (!steps.length) return `<p class="muted">No strategy: a static split at ${obj.spec?.traffic?.realWeight ?? 0}% real.</p>`;
  const current = s.currentStepIndex ?? 0;
  const stopped = ["Degraded", "Aborted"].includes(s.phase);
  const items = steps.map((step, i) => {
    const cls = i < current || s.phase === "Healthy" ? "done" : i === current ? `current${stopped ? " stopped" : ""}` : "";
    const why = i === current && s.phase !== "Healthy" ? `<span class="why">${esc(waitingFor(obj, step))}</span>` : "";
    return `<li class="${cls}" data-step="${i}">${i}: ${esc(stepText(step))}${why}</li>`;
  });
  const verdict = s.analysis ? `<p>Last analysis: <b>${esc(s.analysis.verdict)}</b> — ${esc(s.analysis.detail)}</p>` : "";
  return `<ol class="steps" id="timeline">${items.join("")}</ol>${verdict}`;
}

// Each provider: whether it is in routing (a disable-provider switch or the spec), the last
// analysis window's figures for the real-arm share routed to it (traffic.providers), each
// judged like the arm, and the switch.
function providers(obj) {
  const s = obj.status || {};
  const switched = new Set(s.disabledProviders || []);
  const judged = Object.fromEntries((s.analysis?.providers || []).map((p) => [p.name, p]));
  const rows = (obj.spec?.providers || []).map((p) => {
    const off = p.enabled === false ? "disabled (spec)" : switched.has(p.name) ? "disabled (disable-provider)" : "";
    const j = judged[p.name];
    const figures = !j ? '<span class="muted">-</span>' : !j.judged
      ? `${j.requests} requests <span class="muted">(fewer than minRequests: not judged)</span>`
      : `${j.requests} requests: ` + j.metrics.map((m) => `<span class="${m.ok === false ? "fail" : ""}">${esc(m.name)} ${fmt(m.real)}${m.ok === false ? " ✗" : ""}</span>`).join(" · ");
    const button = p.enabled === false ? "" : switched.has(p.name)
      ? `<button data-verb="enable-provider" data-provider="${esc(p.name)}">Enable</button>`
      : `<button data-verb="disable-provider" data-provider="${esc(p.name)}" class="danger">Disable</button>`;
    return `<tr data-provider="${esc(p.name)}"><td>${esc(p.name)} <small class="muted">${esc(p.type)}</small></td>
      <td class="state ${off ? "phase Degraded" : ""}">${off || "in routing"}</td><td class="figures">${figures}</td><td>${button}</td></tr>`;
  }).join("");
  return `<div class="card"><h2>Providers</h2><table id="providers"><thead><tr><th>Provider</th><th>State</th>
    <th>Last analysis window (real arm)</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

function chart(spec) {
  // spec: {id, title, unit, series: [{cls, label, points: [[t, v]]}], bounds: [...], markers: [t]}
  const W = 560, H = 190, L = 48, R = 10, T = 12, B = 24;
  const all = [...spec.series, ...spec.bounds].flatMap((s) => s.points).filter((p) => p[1] !== null);
  const times = spec.series.flatMap((s) => s.points.map((p) => p[0]));
  if (!times.length) return "";
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 1);
  const vmax = Math.max(...all.map((p) => p[1]), 0) * 1.15 || 1;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / vmax) * (H - T - B);
  const grid = [0, 0.5, 1].map((f) => `<line class="axis" x1="${L}" x2="${W - R}" y1="${y(vmax * f)}" y2="${y(vmax * f)}"/>
    <text x="${L - 4}" y="${y(vmax * f) + 3}" text-anchor="end">${fmt(vmax * f, 2)}</text>`).join("");
  const axis = `<text x="${L}" y="${H - 6}">${clock(t0)}</text><text x="${W - R}" y="${H - 6}" text-anchor="end">${clock(t1)}</text>`;
  const markers = spec.markers.map((t) => `<line class="marker" x1="${x(t)}" x2="${x(t)}" y1="${T}" y2="${H - B}"/>`).join("");
  const line = (s, extra) => {
    const pts = s.points.filter((p) => p[1] !== null);
    if (!pts.length) return "";
    const path = pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    const dots = extra ? pts.map((p) => `<circle class="${p[2] === false ? "fail" : s.cls}" cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="2.5"/>`).join("") : "";
    return `<polyline class="${s.cls}" data-points="${pts.length}" points="${path}"/>${dots}`;
  };
  const legend = [...spec.series, ...spec.bounds.filter((b) => b.points.some((p) => p[1] !== null))]
    .map((s) => `<span><b style="background:${s.cls === "bound" ? "var(--bad)" : `var(--${s.cls})`}"></b>${esc(s.label)}</span>`).join("");
  return `<div class="card"><h2>${esc(spec.title)} <small class="muted">${esc(spec.unit || "")}</small></h2>
    <svg class="chart" data-metric="${esc(spec.id)}" viewBox="0 0 ${W} ${H}">${grid}${axis}${markers}
    ${spec.bounds.map((b) => line(b, false)).join("")}${spec.series.map((s) => line(s, true)).join("")}</svg>
    <div class="legend">${legend}</div></div>`;
}

function charts(obj) {
  const history = obj.status?.history || [];
  if (!history.length) return '<p class="muted">No analysis has run yet: charts appear after the first one.</p>';
  const markers = history.filter((h) => (h.outcome || []).some((r) => /RolledBack|Aborted/.test(r))).map((h) => h.at);
  const out = [chart({
    id: "requests", title: "Requests per analysis window", unit: "count", markers,
    series: ["real", "mock"].map((arm) => ({ cls: arm, label: arm, points: history.map((h) => [h.at, num(h.requests?.[arm])]) })),
    bounds: [],
  }), chart({
    id: "weight", title: "Weight", unit: "% real", markers, bounds: [],
    series: [{ cls: "weight", label: "weight judged", points: history.map((h) => [h.at, num(h.weight)]) }],
  })];
  const names = [...new Set(history.flatMap((h) => (h.metrics || []).map((m) => m.name)))];
  for (const name of names) {
    const pick = (h) => (h.metrics || []).find((m) => m.name === name) || {};
    out.push(chart({
      id: name, title: name, unit: "per analysis run", markers,
      series: ["real", "mock"].map((arm) => ({
        cls: arm, label: `${arm} arm`,
        points: history.map((h) => [h.at, num(pick(h)[arm]), arm === "real" ? pick(h).ok : null]),
      })),
      bounds: ["max", "min"].map((k) => ({ cls: "bound", label: `${k} threshold`, points: history.map((h) => [h.at, num(pick(h)[k])]) })),
    }));
  }
  return `<div class="grid" id="charts">${out.join("")}</div>`;
}

function budget(obj) {
  const b = obj.status?.budget || {};
  const spent = num(b.spentUSD) || 0;
  const cap = num(b.capUSD);
  const start = Date.parse(b.periodStart || "") / 1000;
  const end = start + 86400;
  const points = (obj.status?.history || []).filter((h) => h.at >= start && h.spentUSD !== undefined);
  let projected = null;
  if (points.length >= 2) {
    const first = points[0], last = points[points.length - 1];
    const rate = (num(last.spentUSD) - num(first.spentUSD)) / Math.max(1, last.at - first.at);
    projected = spent + Math.max(0, rate) * Math.max(0, end - app.data.at);
  }
  const scale = Math.max(cap || 0, projected || 0, spent) || 1;
  const over = cap !== null && projected !== null && projected > cap;
  return `<div class="card" id="budget"><h2>Budget</h2>
    <div class="bar" style="height:16px"><span class="spent" style="width:${(100 * spent) / scale}%"></span>
    ${projected !== null ? `<i style="left:${Math.min(99.5, (100 * projected) / scale)}%" title="projected"></i>` : ""}</div>
    <dl class="kv"><dt>Spent</dt><dd class="spent">$${fmt(spent, 6)} today (since ${esc(b.periodStart || "-")})</dd>
    <dt>Cap</dt><dd>${cap === null ? "no daily cap" : `$${esc(b.capUSD)} a day`}${b.monthlyCapUSD ? `; month $${esc(b.monthSpentUSD)} of $${esc(b.monthlyCapUSD)}` : ""}</dd>
    <dt>Reserved</dt><dd>$${esc(b.reservedUSD ?? 0)} in ${(b.leases || []).length} leases</dd>
    <dt>Projection</dt><dd class="${over ? "phase Degraded" : ""}">${projected === null ? "needs two analysis runs today" : `$${fmt(projected, 4)} by the day's end (UTC) at the current rate${over ? " — over the cap" : ""}`}</dd></dl></div>`;
}

function detailView(where) {
  const obj = find(where);
  if (!obj) return `<div class="card"><p>Rollout ${esc(where.namespace)}/${esc(where.name)} is not in this view (deleted, or another namespace). <a href="#/">All rollouts</a></p></div>`;
  const s = obj.status || {};
  const sidecars = s.sidecars || {};
  const names = (sidecars.names || []).map((n) => `<span>${esc(n)}</span>`).join("");
  const events = app.eventsFor === `${where.namespace}/${where.name}` ? app.events : [];
  const eventRows = events.map((e) => `<tr class="ev-${esc(e.type)}"><td>${esc((e.lastTimestamp || e.eventTime || e.metadata?.creationTimestamp || "").slice(11, 19))}</td>
    <td class="reason">${esc(e.reason)}</td><td>${esc(e.message)}</td></tr>`).join("");
  return `<p><a href="#/">← All rollouts</a></p>
    <div class="card"><h1 id="title">${esc(where.namespace)}/${esc(where.name)}
      <span class="phase ${esc(s.phase)}" id="phase">${esc(s.phase || "Pending")}</span></h1>
      <p><b id="weight">${s.realWeight ?? 0}% real</b> — <span id="message">${esc(s.message || "")}</span></p>
      <div class="actions" id="actions">
        <button data-verb="promote">Promote</button><button data-verb="promote-full">Promote fully</button>
        <button data-verb="pause">Pause</button><button data-verb="resume">Resume</button>
        <button data-verb="retry">Retry</button>
        <span><input type="number" id="weight-input" min="0" max="100" value="${s.realWeight ?? 0}">
        <button data-verb="set-weight">Set weight</button></span>
        <button data-verb="abort" class="danger">Abort</button>
      </div></div>
    <div class="grid">
      <div class="card"><h2>Steps</h2>${timeline(obj)}</div>
      ${budget(obj)}
      ${providers(obj)}
      <div class="card"><h2>Sidecars</h2><p id="sidecars">${sidecars.connected ?? 0} connected, config version ${sidecars.configVersion ?? 0}</p>
        <div class="chips">${names}</div></div>
    </div>
    ${charts(obj)}
    <div class="card"><h2>Recent events</h2><table id="events"><tbody>${eventRows || '<tr><td class="muted">none yet</td></tr>'}</tbody></table></div>`;
}

// ---- rendering, events, actions ----------------------------------------------------------
// A click is a press and a release on the same element. The view is rebuilt on every state
// update (about once a second), and a rebuild between the two replaced the button, so the
// click was lost (a browser test caught it under load). Hold rebuilds while a button is down.
const held = { down: false, missed: false };
document.addEventListener("pointerdown", () => { held.down = true; }, true);
function release() {
  held.down = false;
  if (held.missed) { held.missed = false; setTimeout(render, 0); }  // after the click
}
document.addEventListener("pointerup", release, true);
document.addEventListener("pointercancel", release, true);
window.addEventListener("blur", release);

function render() {
  if (held.down) { held.missed = true; return; }
  const where = route();
  banner();
  $("live").className = app.live ? "live on" : "live off";
  $("live").textContent = app.live ? `live · ${app.data ? clock(app.data.at) : ""}` : "disconnected";
  $("scope").textContent = app.data ? `context ${app.data.context || "?"} · ${app.data.namespace ? `namespace ${app.data.namespace}` : "all namespaces"}` : "";
  const keep = document.activeElement?.id === "weight-input" ? $("weight-input").value : null;
  $("view").innerHTML = app.data ? (where ? detailView(where) : listView()) : '<p class="muted">Loading…</p>';
  if (keep !== null) { $("weight-input").value = keep; $("weight-input").focus(); }
}

async function loadEvents() {
  const where = route();
  if (!where) return;
  try {
    const r = await fetch(`/api/rollouts/${encodeURIComponent(where.namespace)}/${encodeURIComponent(where.name)}/events`);
    if (r.ok) { app.events = await r.json(); app.eventsFor = `${where.namespace}/${where.name}`; render(); }
  } catch (e) { /* the banner already says the server is away */ }
}

function toast(text, bad) {
  const el = $("toast");
  el.textContent = text;
  el.className = bad ? "toast bad" : "toast";
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 6000);
}

function confirmAction(text) {
  return new Promise((resolve) => {
    const dialog = $("confirm");
    $("confirm-text").textContent = text;
    dialog.onclose = () => resolve(dialog.returnValue === "ok");
    dialog.showModal();
  });
}

const EXPLAIN = {
  "promote": "leave the current pause and go on to the next step",
  "promote-full": "skip every remaining step: 100% real now",
  "pause": "hold the rollout at its current weight",
  "resume": "continue after a pause or set-weight",
  "retry": "restart the rollout from step 0",
  "abort": "send every sidecar back to 0% real (the mock) now",
  "disable-provider": "take it out of routing and fallback on every sidecar now (its requests go to the next fallback entry)",
  "enable-provider": "put it back in routing and fallback",
};

async function act(verb, provider) {
  const where = route();
  const body = {};
  let what = EXPLAIN[verb];
  if (verb === "set-weight") {
    body.weight = Number($("weight-input").value);
    what = `set the real weight to ${body.weight}% by hand (and pause)`;
  }
  if (provider) body.provider = provider;
  const target = `${where.namespace}/${where.name}${provider ? ` ${provider}` : ""}`;
  if (!(await confirmAction(`${verb} ${target}: ${what}?`))) return;
  toast(`${verb}: sent, waiting for the operator…`);
  try {
    const r = await fetch(`/api/rollouts/${encodeURIComponent(where.namespace)}/${encodeURIComponent(where.name)}/${verb}`,
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const answer = await r.json();
    toast(answer.text, !answer.ok);
  } catch (e) {
    toast(`${verb}: the dashboard server did not answer (${e})`, true);
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-verb]");
  if (button) { act(button.dataset.verb, button.dataset.provider); return; }
  const row = event.target.closest("tr.row");
  if (row) location.hash = `#/${row.dataset.namespace}/${row.dataset.name}`;
});
window.addEventListener("hashchange", () => { app.events = []; render(); loadEvents(); });

function connect() {
  const source = new EventSource("/api/stream");
  source.addEventListener("state", (event) => {
    app.data = JSON.parse(event.data);
    app.live = true;
    render();
    loadEvents();
  });
  source.onerror = () => { app.live = false; render(); };
  source.onopen = () => { app.live = true; };
}
connect();
