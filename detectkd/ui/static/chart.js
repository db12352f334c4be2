// The metric page's charts: one uPlot per series from /api/v1/metrics/NAME/series.
// Value line, expected line, the band between lower and upper, anomalies as red points.
// uPlot's own behaviour: drag to zoom, double-click to reset, the legend follows the cursor.
"use strict";
window.dtkCharts = [];
function dtkDraw(root, data) {
  const keys = Object.keys(data.series);
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
    const opts = {
      width: Math.max(400, root.clientWidth - 20), height: 260,
      series: [
        {},
        { label: "value", stroke: "#2b6cb0", width: 1.5 },
        { label: "expected", stroke: "#8a94a6", dash: [4, 4] },
        { label: "lower", stroke: "rgba(43,108,176,0.25)" },
        { label: "upper", stroke: "rgba(43,108,176,0.25)" },
        { label: "anomaly", stroke: "#d0312d", width: 0, points: { show: true, size: 8, fill: "#d0312d" } },
      ],
      bands: [{ series: [4, 3], fill: "rgba(43,108,176,0.10)" }],
      cursor: { drag: { x: true, y: false } },
    };
    const plot = new uPlot(opts, [c.t, c.value, c.expected, c.lower, c.upper, anomalies], box);
    window.dtkCharts.push(plot);
  }
}
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("charts");
  if (!root) return;
  const url = "/api/v1/metrics/" + encodeURIComponent(root.dataset.metric) + "/series?range=" + root.dataset.range;
  fetch(url, { credentials: "same-origin" })
    .then((r) => r.json())
    .then((data) => { dtkDraw(root, data); root.dataset.loaded = "true"; })
    .catch((e) => { root.textContent = "Could not load the series: " + e; root.dataset.loaded = "error"; });
});
