// The metric page's charts: one uPlot per series from /api/v1/metrics/NAME/series.
// Value line, expected line, the band between lower and upper, anomalies as red points,
// feedback as rings (green: real incident, grey: false alarm), alert episodes shaded red,
// silences as a purple strip along the top, `shadow:` variants' would-be alerts as teal strips
// along the bottom (one row per variant), calendar events shaded behind with their names
// (teal: judged like another weekday, grey: excluded, amber: alerted as usual; names are
// drawn as canvas text and listed as text, never as markup). uPlot's own behaviour:
// drag to zoom, double-click to reset, the legend follows the cursor. A click on the plot
// selects the anomaly under the cursor in the detections table below.
"use strict";
window.dtkCharts = [];
window.dtkPlots = {};  // series key -> {plot, c}: the backtest redraws into them
const DTK_LABELS = { incident: "real incident", false_alarm: "false alarm" };

function dtkLabelAt(labels, series, t) {
  return labels.find((f) => f.series === series && f.period <= t && t <= f.until) || null;
}

function dtkTime(t) {
  return new Date(t * 1000).toISOString().slice(0, 19).replace("T", " ");
}

function dtkNum(v) {
  return v === null || v === undefined ? "" : Number(v.toPrecision(6)).toString();
}

function dtkDraw(root, data) {
  const keys = Object.keys(data.series);
  const labels = data.feedback || [];
  if (keys.length === 0) {
    root.innerHTML = '<p class="muted" id="no-data">No stored points in this range.</p>';
    return;
  }
  for (const key of keys) {
    const c = data.series[key];
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.series = key;
    const title = document.createElement("h3");
    title.textContent = key === "" ? root.dataset.metric : key;
    box.appendChild(title);
    root.appendChild(box);
    const anomalies = c.value.map((v, i) => (c.anomaly[i] ? v : null));
    const marked = (which) => c.t.map((t, i) => {
      const f = dtkLabelAt(labels, key, t);
      return f && f.label === which && (c.anomaly[i] || f.period === t) ? c.value[i] : null;
    });
    const ring = (color) => ({ show: true, size: 14, width: 2, stroke: color, fill: "rgba(0,0,0,0)" });
    const opts = {
      width: Math.max(400, root.clientWidth - 20), height: 260,
      series: [
        {},
        { label: "value", stroke: "#2b6cb0", width: 1.5 },
        { label: "expected", stroke: "#8a94a6", dash: [4, 4] },
        { label: "lower", stroke: "rgba(43,108,176,0.25)" },
        { label: "upper", stroke: "rgba(43,108,176,0.25)" },
        { label: "anomaly", stroke: "#d0312d", width: 0, points: { show: true, size: 8, fill: "#d0312d" } },
        { label: "real incident", stroke: "#1e7b34", width: 0, points: ring("#1e7b34") },
        { label: "false alarm", stroke: "#6b7385", width: 0, points: ring("#6b7385") },
        { label: "backtest", stroke: "#dd8a00", width: 0, points: { show: true, size: 10, width: 2, stroke: "#dd8a00", fill: "rgba(221,138,0,0.35)" } },
      ],
      bands: [{ series: [4, 3], fill: "rgba(43,108,176,0.10)" }],
      cursor: { drag: { x: true, y: false } },
      hooks: { drawClear: [(u) => dtkSpans(u, data, key)] },
    };
    if (root.dataset.tz) opts.tzDate = (ts) => uPlot.tzDate(new Date(ts * 1e3), root.dataset.tz);
    const rows = [c.t, c.value, c.expected, c.lower, c.upper, anomalies, marked("incident"), marked("false_alarm"),
      c.t.map(() => null)];
    const plot = new uPlot(opts, rows, box);
    plot.over.addEventListener("click", () => {
      const i = plot.cursor.idx;
      if (i === null || i === undefined) return;
      const row = document.querySelector(`#detections tr[data-series="${CSS.escape(key)}"][data-t="${c.t[i]}"]`);
      document.querySelectorAll("#detections tr.selected").forEach((r) => r.classList.remove("selected"));
      if (row) { row.classList.add("selected"); row.scrollIntoView({ block: "nearest" }); }
    });
    window.dtkCharts.push(plot);
    window.dtkPlots[key] = { plot, c };
    const some = (col) => col.some((v) => v !== null);
    dtkLegend(plot, 6, some(rows[6]));
    dtkLegend(plot, 7, some(rows[7]));
    dtkLegend(plot, 8, false);  // until a backtest has run
  }
  dtkEvents(root, data);
  dtkTable(root, data, labels);
  dtkEpisodes(root, data, labels);
}

const DTK_EVENT_FILL = { like: "rgba(44,122,123,0.13)", exclude: "rgba(107,115,133,0.20)", alert: "rgba(221,138,0,0.12)" };

// The calendar events of the range under the charts, as text: name, when, what it means.
function dtkEvents(root, data) {
  const events = data.events || [];
  if (events.length === 0) return;
  const box = document.createElement("div");
  box.id = "events";
  box.className = "events muted";
  box.appendChild(document.createTextNode("Calendar events in this range: "));
  events.forEach((ev, i) => {
    const span = document.createElement("span");
    span.className = "event event-" + ev.mode;
    const how = ev.mode === "like" ? "judged like " + ev.like : ev.mode === "exclude" ? "excluded" : "alerted as usual";
    span.textContent = `${ev.name} (${dtkTime(ev.start)} .. ${dtkTime(ev.end)}, ${how})`;
    if (i) box.appendChild(document.createTextNode("; "));
    box.appendChild(span);
  });
  root.appendChild(box);
}

// A legend entry only for what the chart has (feedback rings, a backtest).
function dtkLegend(plot, i, shown) {
  const row = plot.root.querySelectorAll(".u-legend .u-series")[i];
  if (row) row.style.display = shown ? "" : "none";
}

// Behind the series: each alert episode of this series (FIRING to RESOLVED, open ones to the
// right edge) in red, NO DATA in grey; silences as a strip at the top of the plot.
function dtkSpans(u, data, key) {
  const ctx = u.ctx, top = u.bbox.top, height = u.bbox.height, right = u.bbox.left + u.bbox.width;
  const x = (t) => Math.min(right, Math.max(u.bbox.left, u.valToPos(t, "x", true)));
  ctx.save();
  for (const e of data.alerts || []) {
    if (e.series !== key && e.series !== "") continue;
    const a = x(e.started_at), b = e.resolved_at === null ? right : x(e.resolved_at);
    ctx.fillStyle = e.kind === "anomaly" ? "rgba(208,49,45,0.10)" : "rgba(107,115,133,0.12)";
    ctx.fillRect(a, top, Math.max(2, b - a), height);
  }
  const strip = Math.max(4, height * 0.04);
  for (const e of (data.backtest && data.backtest.alerts) || []) {  // what the backtest would have alerted
    if (e.series !== key) continue;
    const a = x(e.started_at), b = e.resolved_at === null ? right : x(e.resolved_at);
    ctx.fillStyle = "rgba(221,138,0,0.55)";
    ctx.fillRect(a, top + height - strip, Math.max(2, b - a), strip);
  }
  for (const e of data.shadow || []) {  // `shadow:` variants' would-be alerts: a teal row each
    if (e.series !== key) continue;
    const a = x(e.started_at), b = e.resolved_at === null ? right : x(e.resolved_at);
    ctx.fillStyle = "rgba(0,128,128,0.55)";
    ctx.fillRect(a, top + height - strip * (2.2 + 1.2 * e.index), Math.max(2, b - a), strip);
  }
  ctx.font = "11px sans-serif";
  for (const ev of data.events || []) {  // calendar events: a band, their name at the top left
    const a = x(ev.start), b = x(ev.end);
    if (b <= u.bbox.left || a >= right) continue;
    ctx.fillStyle = DTK_EVENT_FILL[ev.mode] || DTK_EVENT_FILL.alert;
    ctx.fillRect(a, top + strip, Math.max(2, b - a), height - strip);
    ctx.fillStyle = "#2c5f60";
    ctx.fillText(String(ev.name).slice(0, 40), a + 3, top + strip + 12, Math.max(30, b - a - 4));
  }
  ctx.fillStyle = "rgba(107,79,163,0.35)";
  for (const s of data.silences || []) {
    const a = x(s.from), b = x(s.to);
    ctx.fillRect(a, top, Math.max(2, b - a), strip);
  }
  ctx.restore();
}

// A table row: its cells, then the feedback cell and one for the buttons (`act`, or none).
function dtkRow(series, t, cells, f, act) {
  const tr = document.createElement("tr");
  tr.dataset.series = series;
  tr.dataset.t = t;
  for (const text of [...cells, f ? DTK_LABELS[f.label] + (f.by ? ` (${f.by})` : "") : ""]) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
  }
  tr.lastChild.className = "feedback" + (f ? " label-" + f.label : "");
  const td = document.createElement("td");
  for (const [label, text] of act ? Object.entries(DTK_LABELS) : []) {
    const b = document.createElement("button");
    b.className = "label " + label;
    b.textContent = text;
    Object.assign(b.dataset, act, { label });
    td.appendChild(b);
  }
  if (act && f) {
    const b = document.createElement("button");
    b.className = "unlabel";
    b.textContent = "clear";
    Object.assign(b.dataset, { metric: act.metric, series, period: f.period });
    td.appendChild(b);
  }
  tr.appendChild(td);
  return tr;
}

// The alert history of the range (from the outbox, a week back), newest first.
function dtkEpisodes(root, data, labels) {
  const body = document.querySelector("#episodes tbody");
  if (!body) return;
  const writable = root.dataset.writable === "true";
  body.innerHTML = "";
  for (const e of data.alerts || []) {
    const f = e.kind === "anomaly" ? dtkLabelAt(labels, e.series, e.started_at) : null;
    const sent = Object.entries(e.deliveries).map(([k, n]) => `${n} ${k}`).join(", ");
    const cells = [dtkTime(e.started_at), e.series, e.headline, e.fired_at === null ? "not sent" : dtkTime(e.fired_at),
      e.resolved_at === null ? "open" : dtkTime(e.resolved_at), dtkNum(e.value), dtkNum(e.expected), e.detector || "",
      sent];
    const last = e.resolved_at === null ? Math.max(e.started_at, data.until - 1) : e.resolved_at;
    const act = writable && e.kind === "anomaly"
      ? { metric: root.dataset.metric, series: e.series, period: e.started_at, until: last } : null;
    body.appendChild(dtkRow(e.series, e.started_at, cells, f, act));
  }
  if (!body.children.length) body.innerHTML = '<tr><td colspan="11" class="muted">No alerts in this range.</td></tr>';
}

// The anomalies of the range, newest first, each with its feedback and the buttons to give it.
function dtkTable(root, data, labels) {
  const body = document.querySelector("#detections tbody");
  if (!body) return;
  const writable = root.dataset.writable === "true";
  const found = [];
  for (const [key, c] of Object.entries(data.series)) {
    const at = new Map(c.t.map((t, i) => [t, i]));
    for (const a of c.anomalies || []) found.push({ key, a, i: at.get(a.t), c });
  }
  found.sort((x, y) => y.a.t - x.a.t);
  // Why: the change; where a FIRING was notified at that period, also its rarity and precedent.
  const fired = new Map((data.alerts || []).filter((e) => e.kind === "anomaly" && e.fired_at !== null)
    .map((e) => [`${e.series}\n${e.fired_at}`, e.why || {}]));
  body.innerHTML = "";
  for (const { key, a, i, c } of found) {
    const why = fired.get(`${key}\n${a.t}`) || {};
    const said = [why.change || a.change, why.rarity, why.precedent].filter((x) => x).join("; ");
    const cells = [dtkTime(a.t), key, dtkNum(c.value[i]), dtkNum(c.expected[i]),
      c.lower[i] === null ? "" : `${dtkNum(c.lower[i])} .. ${dtkNum(c.upper[i])}`, a.detector, dtkNum(a.score),
      said];
    const act = writable ? { metric: root.dataset.metric, series: key, period: a.t } : null;
    body.appendChild(dtkRow(key, a.t, cells, dtkLabelAt(labels, key, a.t), act));
  }
  if (found.length === 0) body.innerHTML = '<tr><td colspan="10" class="muted">No anomalies in this range.</td></tr>';
}

// "Backtest this config": the replay's anomalies drawn on the same charts (orange), its
// alert episodes as an orange strip along the bottom, and a summary line.
async function dtkBacktest(root, button) {
  const out = document.getElementById("backtest-summary");
  button.disabled = true;
  out.textContent = "replaying the source over the last " + root.dataset.range + " ...";
  try {
    const r = await fetch("/api/v1/metrics/" + encodeURIComponent(root.dataset.metric) + "/backtest", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ range: root.dataset.range }),
    });
    const b = await r.json();
    if (!r.ok) { out.textContent = b.error || r.status; out.className = "error"; return; }
    window.dtkData.backtest = b;
    let anomalous = 0, stored = 0;
    for (const [key, { plot, c }] of Object.entries(window.dtkPlots)) {
      const hits = new Set(b.anomalies[key] || []);
      anomalous += hits.size;
      stored += c.anomaly.filter((a) => a).length;
      const d = plot.data.slice();
      d[8] = c.t.map((t, i) => (hits.has(t) ? c.value[i] : null));
      plot.setData(d, false);
      dtkLegend(plot, 8, true);
    }
    const fired = b.alerts.filter((e) => e.fired_at !== null).length;
    const fb = b.feedback;
    let text = `${b.points} points replayed in ${b.seconds} s: ${anomalous} anomalous (stored: ${stored}), ${fired} alerts would have fired`;
    if (fb.incidents + fb.false_alarms > 0) text += `; feedback: ${fb.hits} of ${fb.incidents} real incidents caught, ${fb.raised} of ${fb.false_alarms} false alarms raised`;
    out.textContent = text;
    out.className = "";
    out.dataset.done = "true";
  } catch (e) {
    out.textContent = "backtest failed: " + e;
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("click", (ev) => {
  const b = ev.target;
  if (b instanceof HTMLButtonElement && b.id === "backtest") dtkBacktest(document.getElementById("charts"), b);
});

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("charts");
  if (!root) return;
  const url = "/api/v1/metrics/" + encodeURIComponent(root.dataset.metric) + "/series?range=" + root.dataset.range;
  fetch(url, { credentials: "same-origin" })
    .then((r) => r.json())
    .then((data) => { window.dtkData = data; dtkDraw(root, data); root.dataset.loaded = "true"; })
    .catch((e) => { root.textContent = "Could not load the series: " + e; root.dataset.loaded = "error"; });
});
