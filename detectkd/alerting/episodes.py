"""Alert episodes for people: what the outbox says was notified, grouped into spans.

One episode per (series, kind, started_at): opened by its FIRING (or NO DATA, ERROR...),
closed by its RESOLVED (DATA BACK, RECOVERED...). Repeats and Alertmanager re-sends are
counted in `deliveries` but do not open anything. A series that is FIRING or NO DATA now
without any notification (silenced, or no alerter) is an open episode from its state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from detectkd.alerting.alert import HEADLINES, Alert

WHY = ("change", "rarity", "precedent")  # what an episode shows of its FIRING's explanation


@dataclass
class Episode:
    series: str
    kind: str
    started_at: int  # the first anomalous (or empty, failing) period
    fired_at: int | None = None  # the period whose notification opened it (None: not notified)
    resolved_at: int | None = None  # the period that closed it (None: still open)
    headline: str = ""
    value: float | None = None
    expected: float | None = None
    detector: str | None = None
    deliveries: dict[str, int] = field(default_factory=dict)  # outbox status -> rows
    why: dict[str, str] = field(default_factory=dict)  # its FIRING's change, rarity, precedent (texts)

    def api(self) -> dict[str, Any]:
        return asdict(self)


def episodes(
    rows: Iterable[tuple[Alert, str]], open_now: Iterable[tuple[str, str, int]] = ()
) -> list[Episode]:
    """From outbox rows (alert, row status), oldest first, and the series open now
    (series, kind, since): the episodes, newest first."""
    found: dict[tuple[str, str, int], Episode] = {}
    for alert, status in rows:
        ep = found.setdefault(
            (alert.series, alert.kind, alert.started_at), Episode(alert.series, alert.kind, alert.started_at)
        )
        ep.deliveries[status] = ep.deliveries.get(status, 0) + 1
        if alert.resent is not None or alert.repeat:
            continue
        if alert.status == "firing" and ep.fired_at is None:
            ep.fired_at = alert.period
            ep.headline = HEADLINES[alert.kind][1]
            ep.value, ep.expected, ep.detector = alert.value, alert.expected, alert.detector
            ep.why = {k: str(alert.extra[k]) for k in WHY if alert.extra.get(k)}
        elif alert.status == "resolved":
            ep.resolved_at = alert.period
            ep.headline = ep.headline or HEADLINES[alert.kind][1]
    for series, kind, since in open_now:
        if (series, kind, since) not in found:
            found[(series, kind, since)] = Episode(series, kind, since, headline=HEADLINES[kind][1])
    return sorted(found.values(), key=lambda e: (-e.started_at, e.series, e.kind))
