"""Shadow variants against the metric: the would-be alerts of each variant over a range, the
metric's own alerts in the same range, and how both meet the feedback labels. Pure: the
caller reads the stored rows (`StateStore.shadow_alerts`) and labels.

Per variant: `alerts` (anomaly episodes it would have opened), `agreed` (of those, the ones
that overlap an episode of the metric on the same series), `only_variant` (the others),
`missed` (the metric's episodes it would not have raised), the labelled incidents it caught
and the labelled false alarms it raised (a label is caught or raised when an episode of the
series overlaps its span, as `detectkd backtest` scores verdicts); the metric itself is
`live`, scored the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from detectkd.alerting.alert import Alert
from detectkd.alerting.episodes import Episode, episodes
from detectkd.alerting.feedback import Feedback, score
from detectkd.storage.base import ShadowAlert

LIVE = ""  # the stored variant name of the metric's own notifications (runtime.shadow)
SHOWN = 200  # notifications listed per variant (counts cover all of them)


@dataclass(frozen=True)
class Span:
    series: str
    start: int
    end: int  # the resolving period, or the range's end while open


def spans(found: Iterable[Episode], until: int) -> list[Span]:
    return [
        Span(e.series, e.started_at, e.resolved_at if e.resolved_at is not None else until)
        for e in found
        if e.kind == "anomaly"
    ]


def overlaps(a: Span, others: Sequence[Span]) -> bool:
    return any(o.series == a.series and o.start <= a.end and a.start <= o.end for o in others)


def _covers(found: Sequence[Span]) -> Any:
    def flagged(fb: Feedback) -> bool:
        return overlaps(Span(fb.series, fb.period, fb.until), found)

    return flagged


def compare(
    rows: Sequence[ShadowAlert], labels: Sequence[Feedback], variants: Sequence[str], until: int
) -> dict[str, Any]:
    """`rows`: the stored would-be alerts of the range (the metric's own under `LIVE`);
    `variants`: the variants configured now (a variant with rows but no longer configured is
    listed too, after them)."""
    by: dict[str, list[Alert]] = {}
    for r in rows:
        by.setdefault(r.variant, []).append(Alert.from_json(r.payload))
    live = spans(episodes((a, "sent") for a in by.get(LIVE, [])), until)
    names = list(variants) + sorted(set(by) - set(variants) - {LIVE})
    out: dict[str, Any] = {"live": _scored(live, labels, by.get(LIVE, [])), "variants": []}
    for name in names:
        alerts = by.get(name, [])
        mine = spans(episodes((a, "would-be") for a in alerts), until)
        entry = _scored(mine, labels, alerts)
        entry |= {
            "name": name,
            "configured": name in variants,
            "agreed": sum(overlaps(s, live) for s in mine),
            "only_variant": sum(not overlaps(s, live) for s in mine),
            "missed": sum(not overlaps(s, mine) for s in live),
        }
        out["variants"].append(entry)
    return out


def _scored(found: list[Span], labels: Sequence[Feedback], alerts: list[Alert]) -> dict[str, Any]:
    s = score(labels, _covers(found))
    return {
        "alerts": len(found),
        "notifications": len(alerts),
        "incidents": s.incidents,
        "incidents_caught": s.hits,
        "false_alarms": s.false_alarms,
        "false_alarms_raised": s.raised,
        "listed": [_shown(a) for a in alerts[-SHOWN:]],
    }


def _shown(a: Alert) -> dict[str, Any]:
    return {
        "period": a.period,
        "series": a.series,
        "status": a.status,
        "kind": a.kind,
        "value": a.value,
        "expected": a.expected,
        "lower": a.lower,
        "upper": a.upper,
        "detector": a.detector,
        "score": a.score,
        "started_at": a.started_at,
    }


def chart_spans(rows: Sequence[ShadowAlert], variants: Sequence[str]) -> list[dict[str, Any]]:
    """What the metric page's chart draws of the configured variants: each anomaly episode
    (`index`: the variant's place in the file, its row of strips)."""
    by: dict[str, list[Alert]] = {}
    for r in rows:
        if r.variant in variants:
            by.setdefault(r.variant, []).append(Alert.from_json(r.payload))
    out = []
    for index, name in enumerate(variants):
        for e in episodes((a, "would-be") for a in by.get(name, [])):
            if e.kind == "anomaly":
                out.append(
                    {
                        "variant": name,
                        "index": index,
                        "series": e.series,
                        "started_at": e.started_at,
                        "resolved_at": e.resolved_at,
                    }
                )
    return out
