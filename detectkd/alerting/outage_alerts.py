"""ERROR and SOURCE DOWN notices as alerts and outbox rows.

An ERROR goes to the metric's own alerters (outbox series `@error`, so its
queue never waits behind the metric's anomaly alerts). A SOURCE DOWN goes
once to every distinct channel among the source's metrics (same type and
params: one delivery), through the first metric that has it, in the same
order for DOWN and UP, so a SOURCE UP queues behind its SOURCE DOWN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from detectkd.alerting.alert import Alert
from detectkd.alerting.outage import ERROR_SERIES, SOURCE_PREFIX, HealthNotice, Outages
from detectkd.alerting.state import SeriesState, Status
from detectkd.config.loader import MetricSpec
from detectkd.storage.base import NewOutboxItem, RunRecord


def notice_record(n: HealthNotice, outages: Outages, specs: Mapping[str, MetricSpec]) -> RunRecord:
    """The notification and the state that says it was sent, for one commit."""
    notified = n.since if n.status == "firing" else None
    if n.kind == "error":
        spec = specs.get(n.subject)
        alert = notice_alert(n, spec.config.schedule.timezone if spec else "UTC")
        targets = [a.index for a in spec.alerters] if spec else []
        outbox = [NewOutboxItem(alert.key, n.subject, ERROR_SERIES, i, alert.to_json()) for i in targets]
        h = outages.metrics.get(n.subject)
        state = _marked(h.state() if h is not None else SeriesState(), notified)
        return RunRecord(n.subject, states={ERROR_SERIES: state}, outbox=outbox)
    alert = notice_alert(n, "UTC")
    queue = SOURCE_PREFIX + n.subject
    outbox = [
        NewOutboxItem(f"{alert.key}|{m}", m, queue, i, alert.to_json())
        for m, i in source_targets(n.subject, outages, specs)
    ]
    src = outages.sources.get(n.subject)
    state = _marked(src.state() if src is not None else SeriesState(), notified)
    return RunRecord(queue, states={"": state}, outbox=outbox)


def source_targets(source: str, outages: Outages, specs: Mapping[str, MetricSpec]) -> list[tuple[str, int]]:
    """One (metric, alerter index) per distinct channel among the source's metrics."""
    seen: set[str] = set()
    out: list[tuple[str, int]] = []
    for name, h in sorted(outages.metrics.items()):
        spec = specs.get(name)
        if h.source != source or spec is None:
            continue
        for a in spec.alerters:
            identity = f"{a.type}:{a.params.model_dump_json()}"
            if identity not in seen:
                seen.add(identity)
                out.append((name, a.index))
    return out


def notice_alert(n: HealthNotice, tz: str) -> Alert:
    extra: dict[str, Any] = {}
    if n.error:
        extra["error"] = n.error
    if n.members:
        more = f" and {len(n.members) - 10} more" if len(n.members) > 10 else ""
        extra["metrics"] = f"{len(n.members)}: {', '.join(n.members[:10])}{more}"
    labels = {"source": n.subject} if n.kind == "source_down" else {}
    return Alert(
        metric=n.subject, series="", labels=labels, status=n.status, period=n.at or n.since,
        started_at=n.since, value=None, expected=None, lower=None, upper=None, score=None,
        direction=None, detector=None, interval_seconds=0, timezone=tz, extra=extra, kind=n.kind,
    )  # fmt: skip


def _marked(state: SeriesState, notified: int | None) -> SeriesState:
    status = Status.FIRING if notified is not None else Status.OK
    return replace(state, status=status, notified_since=notified)
