"""The web UI's presentation: Jinja2 templates (autoescaped), the static files (uPlot
vendored under `static/uplot`, no CDN) and the pure functions that shape what a page shows.
Serving them is `detectkd.http.pages` (the daemon) and `detectkd.workers.ui` (a
`workers:` supervisor): no HTTP here.

- `/`: every metric with its state, last value, last and next run, last error, tags and
  shard; filtered by name, tag and state, counted per state, paginated; the daemon's own
  health (last reload with its errors, outbox depth).
- `/ui/metrics/{name}`: a chart per series of the stored values with the expected band
  and the anomalies, over a chosen range (drag to zoom, double-click to reset, the legend
  shows the exact values under the cursor), and the config as loaded (secrets redacted).
- `/ui/alerts`, `/ui/silences`, `/ui/outbox`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from detectkd import __version__
from detectkd.runtime.status import MetricState, iso
from detectkd.ui.thin import kept

if TYPE_CHECKING:
    from detectkd.alerting.silences import Silence

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATES = tuple(s.value for s in MetricState)  # NODATA is a series state: on the metric page
RANGES = ("1h", "6h", "1d", "7d", "30d")
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)


def render(name: str, **context: Any) -> str:
    return _ENV.get_template(name).render(version=__version__, **context)


def judging_note(m: Mapping[str, Any]) -> tuple[str, str] | None:
    """What the overview says beside a metric's state about whether it judges (issue 28):
    (the words, the tooltip: the API's reason), or None while it judges every series."""
    why = m.get("not_judging") or ""
    if m.get("judging") is False:
        loading = m.get("history") or {}
        if loading.get("error"):
            return "not judging: loading its history failed", why
        if loading.get("periods"):
            loaded, total = loading["periods"]
            return f"not judging yet ({loaded} of {total} periods of its history loaded)", why
        if loading:
            return f"not judging yet ({loading.get('progress', 0.0):.0%} of its history loaded)", why
        if why.startswith("no data"):
            return "not judging: no data in the source", why
        return "not judging yet", why
    counts = m.get("judging_series") or {}
    if m.get("judging") and counts.get("judging", 0) < counts.get("total", 0):
        named = "; ".join(f"{s}: {r}" for s, r in (m.get("series_not_judging") or {}).items())
        return f"judging {counts['judging']} of {counts['total']} series", named
    return None


_ENV.globals["judging_note"] = judging_note


def alerts_html(rows: list[dict[str, Any]], lifecycle_api: bool) -> str:
    """The alerts page of `/api/v1/alerts` rows."""
    for r in rows:
        r["since_iso"] = iso(r["since"])
        r["matchers"] = [f"{k}={v}" for k, v in sorted(r["labels"].items())]
    return render("alerts.html", rows=rows, writable=writable(lifecycle_api))


def silences_html(silences: list[Silence], lifecycle_api: bool) -> str:
    now = time.time()
    items = sorted(silences, key=lambda s: s.starts_at, reverse=True)
    shown = [
        {
            "id": s.id,
            "matchers": [f"{m.name}{m.op}{m.value}" for m in s.matchers],
            "starts": iso(s.starts_at),
            "ends": iso(s.ends_at),
            "comment": s.comment,
            "by": s.created_by,
            "active": s.active(now),
            "over": not s.current(now),
        }
        for s in items
    ]
    return render("silences.html", silences=shown, writable=writable(lifecycle_api))


def outbox_html(pending: Sequence[Mapping[str, Any]], dead: Sequence[Mapping[str, Any]], stats: Any) -> str:
    """The outbox page of `/api/v1/outbox` rows (`detectkd.http.api.outbox_row`) and the counts
    (`pending`, `dead`)."""
    return render(
        "outbox.html", pending=[_shown(r) for r in pending], dead=[_shown(r) for r in dead], stats=stats
    )


def _shown(r: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "metric": r["metric"],
        "series": r["series"],
        "channel": r["channel"].partition(":")[0],
        "key": r["key"],
        "attempts": r["attempts"],
        "created": r["created_at"],
        "next": r["next_attempt_at"],
        "error": r["last_error"] or "",
    }


def shadow_view(report: Mapping[str, Any], shown: int = 50) -> dict[str, Any]:
    """The metric page's shadow table (`detectkd.http.shadow.report`): a row per variant
    after the metric's own, and the newest would-be notifications of all variants."""
    live = dict(report["live"], name="(the metric as configured)")
    rows = [live | {"agreed": None, "only_variant": None, "missed": None}, *report["variants"]]
    listed = (
        {**n, "variant": v["name"], "time": iso(n["period"])} for v in report["variants"] for n in v["listed"]
    )
    recent = sorted(listed, key=lambda n: -n["period"])[:shown]
    return {"rows": rows, "recent": recent, "truncated": report["truncated"]}


def writable(lifecycle_api: bool, what: str = "silences are") -> str | None:
    """Why the write buttons would be refused, or None (the API decides: this only says it)."""
    return None if lifecycle_api else f"lifecycle_api is off: {what} read-only here"


def thin(data: dict[str, dict[str, list[Any]]]) -> dict[str, dict[str, list[Any]]]:
    """The chart's series, each thinned to its buckets' extremes and every anomaly (CPU
    work: call it in a worker thread)."""
    out = {}
    for key, cols in data.items():
        keep = kept(cols["value"], cols["anomaly"])
        if len(keep) == len(cols["t"]):
            out[key] = cols
            continue
        out[key] = {k: v if k == "anomalies" else [v[i] for i in keep] for k, v in cols.items()}
    return out
