"""`detectkd backtest --report out.html`: one self-contained HTML file.

Per series: an SVG chart of the value, the expected band and line, the
anomalous points and the alert episodes (FIRING to RESOLVED, and NO DATA),
and a summary table. No script, no external file or font: it opens offline,
in a mail attachment or a CI artefact. Long series are drawn per pixel
column (min and max of the value, the widest band), so a year of 1-minute
data is a few hundred kilobytes; every anomalous point is still marked.
"""

from __future__ import annotations

import html
import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from detectkd.alerting.alert import Alert

WIDTH, HEIGHT = 1100, 240
PAD_L, PAD_R, PAD_T, PAD_B = 64, 12, 12, 28
Scale = Callable[[float], float]
MAX_MARKS = 3000  # anomaly markers per series; beyond that the densest are merged per column


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


@dataclass(frozen=True)
class Episode:
    kind: str
    start: int
    end: int | None  # None: still open at the end of the backtest


def _f(x: float | None) -> float:
    return math.nan if x is None or not math.isfinite(x) else float(x)


def episodes(alerts: list[Alert]) -> dict[str, list[Episode]]:
    """FIRING..RESOLVED and NO DATA..DATA BACK spans per series, from the alert timeline."""
    open_: dict[tuple[str, str], int] = {}
    out: dict[str, list[Episode]] = {}
    for a in alerts:
        if a.kind not in ("anomaly", "nodata") or a.repeat:
            continue
        key = (a.series, a.kind)
        if a.status == "firing":
            open_.setdefault(key, a.started_at if a.kind == "anomaly" else a.period)
        elif key in open_:
            out.setdefault(a.series, []).append(Episode(a.kind, open_.pop(key), a.period))
    for (series, kind), start in open_.items():
        out.setdefault(series, []).append(Episode(kind, start, None))
    return out


def render(
    metric: str,
    traces: dict[str, SeriesTrace],
    alerts: list[Alert],
    tz: ZoneInfo,
    start: float,
    finish: float,
    detectors: list[str],
) -> str:
    spans = episodes(alerts)
    firing = [a for a in alerts if a.kind == "anomaly" and a.status == "firing" and a.repeat == 0]
    rows = []
    charts = []
    for i, series in enumerate(sorted(traces)):
        tr = traces[series]
        label = series or "(single series)"
        n_anom = sum(tr.anomalous)
        fired = [a for a in firing if a.series == series]
        missing = sum(1 for v in tr.values if math.isnan(v))
        first = _when(fired[0].period, tz) if fired else "—"
        rows.append(
            f'<tr><td><a href="#s{i}">{html.escape(label)}</a></td><td>{len(tr.times):,}</td>'
            f"<td>{missing:,}</td><td>{n_anom:,}</td><td>{len(fired)}</td><td>{first}</td></tr>"
        )
        charts.append(
            f'<section id="s{i}"><h2>{html.escape(label)}</h2>'
            f"<p>{len(tr.times):,} points, {n_anom:,} anomalous, {len(fired)} alerts</p>"
            f"{chart(tr, spans.get(series, []), tz, start, finish)}</section>"
        )
    timeline = "".join(
        f"<tr><td>{_when(a.period, tz)}</td><td class='{a.status}'>{html.escape(a.headline)}</td>"
        f"<td>{html.escape(a.series or '')}</td><td>{_num(a.value)}</td><td>{_num(a.expected)}</td>"
        f"<td>{html.escape(a.detector or '')}</td></tr>"
        for a in alerts
    )
    title = f"detectkd backtest: {metric}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1d2733;background:#fff}}
h1{{font-size:20px;margin:0 0 4px}} h2{{font-size:16px;margin:28px 0 2px}} p{{margin:2px 0 8px;color:#56606b}}
table{{border-collapse:collapse;margin:8px 0 16px}} td,th{{padding:3px 10px;border-bottom:1px solid #e3e6ea;
text-align:left}} th{{background:#f4f6f8}} .firing{{color:#c62828;font-weight:600}} .resolved{{color:#2e7d32}}
svg{{display:block;max-width:100%;height:auto;border:1px solid #e3e6ea}} .legend span{{margin-right:14px}}
.sw{{display:inline-block;width:12px;height:12px;vertical-align:-2px;margin-right:4px}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{_when(start, tz)} .. {_when(finish, tz)} ({html.escape(tz.key)}) · detectors:
{html.escape(", ".join(detectors))} · {len(firing)} alerts would have fired</p>
<p class="legend"><span><i class="sw" style="background:#1f5fa8"></i>value</span>
<span><i class="sw" style="background:#cfe0f3"></i>expected band</span>
<span><i class="sw" style="background:#7d8a96"></i>expected</span>
<span><i class="sw" style="background:#d32f2f"></i>anomaly</span>
<span><i class="sw" style="background:#f6c8c8"></i>alert firing</span>
<span><i class="sw" style="background:#e0e0e0"></i>no data</span></p>
<table><tr><th>series</th><th>points</th><th>missing</th><th>anomalous</th><th>alerts</th>
<th>first alert</th></tr>{"".join(rows)}</table>
{"".join(charts)}
<h2>Alert timeline</h2>
<table><tr><th>period</th><th>status</th><th>series</th><th>value</th><th>expected</th><th>detector</th></tr>
{timeline or '<tr><td colspan="6">no alerts</td></tr>'}</table>
</body></html>
"""


def chart(tr: SeriesTrace, spans: list[Episode], tz: ZoneInfo, start: float, finish: float) -> str:
    n = len(tr.times)
    if n == 0:
        return "<p>no points</p>"
    t0, t1 = float(start), float(max(finish, tr.times[-1] + 1))
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    cols = min(plot_w, n)
    finite = [v for arr in (tr.values, tr.lower, tr.upper) for v in arr if not math.isnan(v)]
    if not finite:
        return "<p>no values</p>"
    lo, hi = min(finite), max(finite)
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    margin = (hi - lo) * 0.05
    lo, hi = lo - margin, hi + margin

    def x(t: float) -> float:
        return PAD_L + (t - t0) / (t1 - t0) * plot_w

    def y(v: float) -> float:
        return PAD_T + (hi - v) / (hi - lo) * plot_h

    # Per pixel column: min/max of value, widest band, mean expected.
    # [min value, max value, min lower, max upper, sum expected, n expected, n points]
    buckets = [[math.inf, -math.inf, math.inf, -math.inf, 0.0, 0.0, 0.0] for _ in range(cols)]
    col_of = [min(cols - 1, max(0, int((t - t0) / (t1 - t0) * cols))) for t in tr.times]
    for i, c in enumerate(col_of):
        b = buckets[c]
        b[6] += 1
        v, lw, up, ex = tr.values[i], tr.lower[i], tr.upper[i], tr.expected[i]
        if not math.isnan(v):
            b[0], b[1] = min(b[0], v), max(b[1], v)
        if not math.isnan(lw) and not math.isnan(up):
            b[2], b[3] = min(b[2], lw), max(b[3], up)
        if not math.isnan(ex):
            b[4] += ex
            b[5] += 1
    parts: list[str] = []
    for ep in spans:
        x0, x1 = x(max(ep.start, t0)), x(min(ep.end, t1) if ep.end is not None else t1)
        colour = "#f6c8c8" if ep.kind == "anomaly" else "#e0e0e0"
        parts.append(
            f'<rect x="{x0:.1f}" y="{PAD_T}" width="{max(x1 - x0, 1.5):.1f}" height="{plot_h}" '
            f'fill="{colour}"><title>{"alert" if ep.kind == "anomaly" else "no data"} '
            f"{_when(ep.start, tz)} .. {_when(ep.end, tz) if ep.end else 'end'}</title></rect>"
        )
    parts.append(_band(buckets, cols, x0=PAD_L, plot_w=plot_w, y=y))
    parts.append(_expected_line(buckets, cols, PAD_L, plot_w, y))
    parts.append(_value_path(buckets, cols, PAD_L, plot_w, y))
    parts.append(_marks(tr, col_of, cols, x, y, tz))
    parts.append(_axes(t0, t1, lo, hi, x, y, tz, plot_w, plot_h))
    body = "".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img">{body}</svg>'
    )


def _col_x(c: int, cols: int, x0: float, plot_w: float) -> float:
    return x0 + (c + 0.5) / cols * plot_w


def _band(buckets: list[list[float]], cols: int, x0: float, plot_w: float, y: Scale) -> str:
    runs: list[list[tuple[float, float, float]]] = [[]]
    for c, b in enumerate(buckets):
        if math.isfinite(b[2]) and math.isfinite(b[3]):
            runs[-1].append((_col_x(c, cols, x0, plot_w), y(b[2]), y(b[3])))
        elif b[6] and runs[-1]:  # points without a band (cold start, skipped): a gap
            runs.append([])
    out = []
    for run in runs:
        if len(run) < 2:
            continue
        top = " ".join(f"{cx:.1f},{yu:.1f}" for cx, _, yu in run)
        bottom = " ".join(f"{cx:.1f},{yl:.1f}" for cx, yl, _ in reversed(run))
        out.append(f'<polygon points="{top} {bottom}" fill="#cfe0f3" stroke="none"/>')
    return "".join(out)


def _expected_line(buckets: list[list[float]], cols: int, x0: float, plot_w: float, y: Scale) -> str:
    """The column means of the expected value, dashed; broken where points have none."""
    runs: list[list[str]] = [[]]
    for c, b in enumerate(buckets):
        if b[5] > 0:
            runs[-1].append(f"{_col_x(c, cols, x0, plot_w):.1f},{y(b[4] / b[5]):.1f}")
        elif b[6] and runs[-1]:
            runs.append([])
    return "".join(
        f'<polyline points="{" ".join(r)}" fill="none" stroke="#7d8a96" stroke-width="1" '
        'stroke-dasharray="4 3"/>'
        for r in runs
        if len(r) >= 2
    )


def _value_path(buckets: list[list[float]], cols: int, x0: float, plot_w: float, y: Scale) -> str:
    """The value: a line through the column means of min and max, plus the column's range."""
    line: list[str] = []
    ranges: list[str] = []
    pen_up = True
    for c, b in enumerate(buckets):
        if not math.isfinite(b[0]):
            pen_up = pen_up or b[6] > 0  # a missing value breaks the line; an empty column does not
            continue
        cx = _col_x(c, cols, x0, plot_w)
        mid = y((b[0] + b[1]) / 2)
        line.append(f"{'M' if pen_up else 'L'}{cx:.1f} {mid:.1f}")
        pen_up = False
        if b[1] > b[0]:
            ranges.append(f"M{cx:.1f} {y(b[1]):.1f}V{y(b[0]):.1f}")
    out = f'<path d="{"".join(line)}" fill="none" stroke="#1f5fa8" stroke-width="1.4"/>'
    if ranges:
        out += f'<path d="{"".join(ranges)}" stroke="#1f5fa8" stroke-width="1" opacity="0.55"/>'
    return out


def _marks(tr: SeriesTrace, col_of: list[int], cols: int, x: Scale, y: Scale, tz: ZoneInfo) -> str:
    idx = [i for i, a in enumerate(tr.anomalous) if a and not math.isnan(tr.values[i])]
    if len(idx) > MAX_MARKS:  # one marker per pixel column and value extreme
        seen: dict[int, int] = {}
        for i in idx:
            c = col_of[i]
            j = seen.get(c)
            if j is None or abs(tr.values[i] - tr.expected[i]) > abs(tr.values[j] - tr.expected[j]):
                seen[c] = i
        idx = sorted(seen.values())
    return "".join(
        f'<circle cx="{x(tr.times[i]):.1f}" cy="{y(tr.values[i]):.1f}" r="3.2" fill="#d32f2f">'
        f"<title>{_when(tr.times[i], tz)}: {_num(tr.values[i])} (expected {_num(tr.expected[i])})</title>"
        "</circle>"
        for i in idx
    )


def _axes(
    t0: float, t1: float, lo: float, hi: float, x: Scale, y: Scale, tz: ZoneInfo, plot_w: int, plot_h: int
) -> str:
    out = [f'<rect x="{PAD_L}" y="{PAD_T}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#b8c0c8"/>']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        yy = y(v)
        out.append(
            f'<line x1="{PAD_L}" x2="{PAD_L + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eef0f2"/>'
            f'<text x="{PAD_L - 6}" y="{yy + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#56606b">{_num(v)}</text>'
        )
    span = t1 - t0
    fmt = "%H:%M" if span <= 2 * 86400 else "%m-%d %H:%M" if span <= 20 * 86400 else "%Y-%m-%d"
    for k in range(7):
        t = t0 + span * k / 6
        xx = x(t)
        anchor = "start" if k == 0 else "end" if k == 6 else "middle"
        out.append(
            f'<text x="{xx:.1f}" y="{HEIGHT - 8}" font-size="11" text-anchor="{anchor}" fill="#56606b">'
            f"{datetime.fromtimestamp(t, tz).strftime(fmt)}</text>"
        )
    return "".join(out)


def _when(ts: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M")


def _num(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
