"""`detectkd backtest --report out.html`: one self-contained HTML file with the web UI's
chart (uPlot, and the metric page's `chart.js`, both inlined).

Per series: the value, the expected band and line, the anomalous points and the alert
episodes (FIRING to RESOLVED, and NO DATA) on a chart that zooms (drag), resets
(double-click) and shows the exact values under the cursor; a summary table and the
alert timeline. Nothing is fetched: it opens offline, in a mail attachment or a CI
artefact. A series longer than 20,000 points keeps, per bucket of points, its lowest and
highest value and every anomaly, so a year of 1-minute data stays a few MiB.
"""

from __future__ import annotations

import html
import json
import math
from array import array
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from detectkd.alerting.alert import Alert
from detectkd.alerting.episodes import episodes
from detectkd.ui.thin import kept

STATIC = Path(__file__).resolve().parent.parent / "ui" / "static"


@dataclass
class SeriesTrace:
    times: array[int] = field(default_factory=lambda: array("q"))
    values: array[float] = field(default_factory=lambda: array("d"))
    expected: array[float] = field(default_factory=lambda: array("d"))
    lower: array[float] = field(default_factory=lambda: array("d"))
    upper: array[float] = field(default_factory=lambda: array("d"))
    anomalous: array[int] = field(default_factory=lambda: array("b"))

    def add(
        self,
        t: int,
        value: float | None,
        expected: float | None,
        lower: float | None,
        upper: float | None,
        anomalous: bool,
    ) -> None:
        self.times.append(t)
        self.values.append(_f(value))
        self.expected.append(_f(expected))
        self.lower.append(_f(lower))
        self.upper.append(_f(upper))
        self.anomalous.append(1 if anomalous else 0)

    def columns(self) -> dict[str, list[Any]]:
        """The series as the metric page's chart takes it (`/api/v1/metrics/NAME/series`)."""
        idx = kept(self.values, self.anomalous)
        return {
            "t": [self.times[i] for i in idx],
            "value": [_j(self.values[i]) for i in idx],
            "expected": [_j(self.expected[i]) for i in idx],
            "lower": [_j(self.lower[i]) for i in idx],
            "upper": [_j(self.upper[i]) for i in idx],
            "anomaly": [bool(self.anomalous[i]) for i in idx],
        }


def _f(x: float | None) -> float:
    return math.nan if x is None or not math.isfinite(x) else float(x)


def _j(x: float) -> float | None:
    return None if math.isnan(x) else x


def render(
    metric: str,
    traces: dict[str, SeriesTrace],
    alerts: list[Alert],
    tz: ZoneInfo,
    start: float,
    finish: float,
    detectors: list[str],
    events: list[dict[str, object]] | None = None,
) -> str:
    firing = [a for a in alerts if a.kind == "anomaly" and a.status == "firing" and a.repeat == 0]
    rows = []
    for series in sorted(traces):
        tr = traces[series]
        fired = [a for a in firing if a.series == series]
        missing = sum(1 for v in tr.values if math.isnan(v))
        first = _when(fired[0].period, tz) if fired else "—"
        rows.append(
            f"<tr><td>{html.escape(series or '(single series)')}</td><td>{len(tr.times):,}</td>"
            f"<td>{missing:,}</td><td>{sum(tr.anomalous):,}</td><td>{len(fired)}</td><td>{first}</td></tr>"
        )
    spans = [e.api() for e in episodes((a, "backtest") for a in alerts if a.kind in ("anomaly", "nodata"))]
    data = {
        "metric": metric,
        "since": int(start),
        "until": int(finish),
        "feedback": [],
        "silences": [],
        "series": {s: traces[s].columns() for s in sorted(traces)},
        "alerts": spans,
        "events": events or [],  # the calendar's, drawn as the metric page draws them
    }
    timeline = "".join(
        f"<tr><td>{_when(a.period, tz)}</td><td class='{a.status}'>{html.escape(a.headline)}</td>"
        f"<td>{html.escape(a.series or '')}</td><td>{_num(a.value)}</td><td>{_num(a.expected)}</td>"
        f"<td>{html.escape(a.detector or '')}</td></tr>"
        for a in alerts
    )
    title = f"detectkd backtest: {metric}"
    # JSON in a <script> block: "</" is escaped so no value can close the element.
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_static("ui.css")}{_static("uplot/uPlot.min.css")}
body{{margin:0}} main{{padding:16px 24px}} .firing{{color:#c62828;font-weight:600}} .resolved{{color:#2e7d32}}
</style>
<script>{_static("uplot/uPlot.iife.min.js")}</script>
<script>{_static("chart.js")}</script>
</head><body><main>
<h1>{html.escape(title)}</h1>
<p class="muted">{_when(start, tz)} .. {_when(finish, tz)} ({html.escape(tz.key)}) · detectors:
{html.escape(", ".join(detectors))} · {len(firing)} alerts would have fired · drag to zoom,
double-click to reset; alert episodes shaded red, no data grey; times in {html.escape(tz.key)}</p>
<table id="summary"><tr><th>series</th><th>points</th><th>missing</th><th>anomalous</th><th>alerts</th>
<th>first alert</th></tr>{"".join(rows)}</table>
<div id="report-charts" data-metric="{html.escape(metric)}" data-tz="{html.escape(tz.key)}"></div>
<h2>Alert timeline</h2>
<table id="timeline"><tr><th>period</th><th>status</th><th>series</th><th>value</th><th>expected</th>
<th>detector</th></tr>
{timeline or '<tr><td colspan="6">no alerts</td></tr>'}</table>
<script id="report-data" type="application/json">{payload}</script>
<script>
const dtkReport = JSON.parse(document.getElementById("report-data").textContent);
window.dtkData = dtkReport;
dtkDraw(document.getElementById("report-charts"), dtkReport);
document.getElementById("report-charts").dataset.loaded = "true";
</script>
</main></body></html>
"""


def _static(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _when(ts: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M")


def _num(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
