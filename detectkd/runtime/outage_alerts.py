"""ERROR and SOURCE DOWN notices as alerts and outbox rows, sent when due.

An ERROR goes to the metric's own alerters (outbox series `@error`, so its
queue never waits behind the metric's anomaly alerts). A SOURCE DOWN goes
once to every distinct channel among the source's metrics (same type and
params: one delivery), through the first metric that has it, in the same
order for DOWN and UP, so a SOURCE UP queues behind its SOURCE DOWN.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import structlog

from detectkd.alerting.alert import Alert
from detectkd.alerting.outage import ERROR_SERIES, SOURCE_PREFIX, HealthNotice, Outages
from detectkd.alerting.silences import Labels, Silences, load_silences
from detectkd.alerting.state import SeriesState, Status
from detectkd.errors import StorageError
from detectkd.specs.loader import MetricSpec
from detectkd.storage.base import NewOutboxItem, RunRecord, StateStore

log = structlog.get_logger("detectkd")


def notice_record(n: HealthNotice, outages: Outages, specs: Mapping[str, MetricSpec]) -> RunRecord:
    """The notification and the state that says it was sent, for one commit."""
    notified = n.since if n.status == "firing" else None
    if n.kind == "error":
        spec = specs.get(n.subject)
        alert = notice_alert(n, spec.config.schedule.timezone if spec else "UTC")
        targets = [a.id for a in spec.alerters] if spec else []
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


def source_targets(source: str, outages: Outages, specs: Mapping[str, MetricSpec]) -> list[tuple[str, str]]:
    """One (metric, alerter id) per distinct channel among the source's metrics."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for name, h in sorted(outages.metrics.items()):
        spec = specs.get(name)
        if h.source != source or spec is None:
            continue
        for a in spec.alerters:
            identity = a.id.partition("~")[0]  # same type and params: the same channel
            if identity not in seen:
                seen.add(identity)
                out.append((name, a.id))
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


async def send_due(
    outages: Outages,
    silences: Silences,
    store: StateStore,
    specs: Mapping[str, MetricSpec],
    labels: Callable[[str, str], Labels],
    now: int,
) -> int:
    """Commit the ERROR and SOURCE DOWN notifications due at `now` (a silenced FIRING stays
    owed: sent when the silence is over, if it still fails). Returns how many were stored."""
    stored = 0
    for notice in outages.due(now):
        if notice.status == "firing" and _silenced(notice, silences, labels, now):
            continue
        try:
            await store.commit(notice_record(notice, outages, specs))
        except StorageError as exc:
            log.warning("error notification not stored", subject=notice.subject, error=str(exc))
            continue
        outages.sent(notice)
        stored += 1
        log.warning(f"{notice.kind} {notice.status}", subject=notice.subject,
                    members=len(notice.members) or None, error=notice.error or None)  # fmt: skip
    return stored


def _silenced(n: HealthNotice, silences: Silences, labels: Callable[[str, str], Labels], now: float) -> bool:
    if n.kind == "error":
        return silences.silenced(labels(n.subject, ""), now)
    return silences.silenced({"source": n.subject}, now)


async def refresh_silences(silences: Silences, store: StateStore) -> None:
    """Silences from the store (`detectkd silence` in another process writes them there)."""
    try:
        texts = await store.silences_load()
    except StorageError as exc:
        log.warning("silences not refreshed", error=str(exc))
        return
    loaded, problems = load_silences(texts)
    for problem in problems:
        log.warning("unreadable silence skipped", error=problem)
    silences.replace_all(loaded)


def split_saved(
    saved: Mapping[tuple[str, str], SeriesState], outages: Outages
) -> tuple[dict[str, dict[str, SeriesState]], dict[str, SeriesState]]:
    """Stored states at startup: per metric and series, and each metric's ERROR state (to
    restore once the metrics are tracked); SOURCE DOWN states go to `outages` at once."""
    states: dict[str, dict[str, SeriesState]] = {}
    errors: dict[str, SeriesState] = {}
    for (metric, series), st in saved.items():
        if metric.startswith(SOURCE_PREFIX):
            outages.restore_source(metric.removeprefix(SOURCE_PREFIX), st)
        elif series == ERROR_SERIES:
            errors[metric] = st
        else:
            states.setdefault(metric, {})[series] = st
    return states, errors
