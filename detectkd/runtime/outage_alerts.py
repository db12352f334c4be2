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
from datetime import timedelta
from typing import Any

import structlog

from detectkd.alerting import resend
from detectkd.alerting.alert import Alert
from detectkd.alerting.outage import ERROR_SERIES, SOURCE_PREFIX, HealthNotice, Outages
from detectkd.alerting.silences import Labels, Silences
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
        h = outages.metrics.get(n.subject)
        alert = notice_alert(n, spec.config.schedule.timezone if spec else "UTC", h.source if h else "")
        targets = [a.id for a in spec.alerters] if spec else []
        outbox = [NewOutboxItem(alert.key, n.subject, ERROR_SERIES, i, alert.to_json()) for i in targets]
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


def notice_alert(n: HealthNotice, tz: str, source: str = "") -> Alert:
    extra: dict[str, Any] = {}
    if n.error:
        extra["error"] = n.error
    if n.members:
        more = f" and {len(n.members) - 10} more" if len(n.members) > 10 else ""
        extra["metrics"] = f"{len(n.members)}: {', '.join(n.members[:10])}{more}"
    labels = {"source": n.subject} if n.kind == "source_down" else {}
    return Alert(
        metric=n.subject,
        series="",
        labels=labels,
        status=n.status,
        period=n.at or n.since,
        started_at=n.since,
        value=None,
        expected=None,
        lower=None,
        upper=None,
        score=None,
        direction=None,
        detector=None,
        interval_seconds=0,
        timezone=tz,
        extra=extra,
        kind=n.kind,
        source=source,
    )


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
    resend: bool = True,
) -> int:
    """Commit the ERROR and SOURCE DOWN notifications due at `now` (a silenced FIRING stays
    owed: sent when the silence is over, if it still fails), and with `resend` the re-sends
    to Alertmanager (`resend_due`). Returns how many were stored."""
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
        if notice.status == "firing":
            outages.resent[f"{notice.kind}:{notice.subject}"] = now  # that was the first send
        stored += 1
        log.warning(
            f"{notice.kind} {notice.status}",
            subject=notice.subject,
            members=len(notice.members) or None,
            error=notice.error or None,
        )
    return stored + (await resend_due(outages, store, specs, now) if resend else 0)


async def resend_due(outages: Outages, store: StateStore, specs: Mapping[str, MetricSpec], now: int) -> int:
    """Re-send the active ERROR and SOURCE DOWN alerts to the Alertmanager alerters among
    their targets, every shortest `resend_delay` of those (`alerting.resend`);
    `outages.resent` remembers when each was last sent (in memory: a restart re-sends at
    once, Alertmanager de-duplicates). Returns how many were stored."""
    stored, resent = 0, outages.resent
    for n in outages.active():
        key = f"{n.kind}:{n.subject}"
        every, record = _resend_record(n, outages, specs, now)
        if not record.outbox or now - resent.get(key, now - every) < every:
            continue
        try:
            await store.commit(record)
        except StorageError as exc:
            log.warning("alertmanager re-send not stored", subject=n.subject, error=str(exc))
            continue
        resent[key] = now
        stored += 1
    return stored


def _resend_record(
    n: HealthNotice, outages: Outages, specs: Mapping[str, MetricSpec], now: int
) -> tuple[int, RunRecord]:
    if n.kind == "error":
        spec, h = specs.get(n.subject), outages.metrics.get(n.subject)
        am = [a for a in spec.alerters if a.type == resend.KIND] if spec else []
        tz = spec.config.schedule.timezone if spec else "UTC"
        alert = replace(notice_alert(n, tz, h.source if h else ""), resent=now)
        rows = [NewOutboxItem(alert.key, n.subject, ERROR_SERIES, a.id, alert.to_json()) for a in am]
        return resend.every(am, timedelta(0)), RunRecord(n.subject, outbox=rows)
    alert = replace(notice_alert(n, "UTC"), resent=now)
    queue = SOURCE_PREFIX + n.subject
    targets = [
        (m, i) for m, i in source_targets(n.subject, outages, specs) if i.startswith(resend.KIND + ":")
    ]
    alerters = [a for m, i in targets for a in specs[m].alerters if a.id == i]
    rows = [NewOutboxItem(f"{alert.key}|{m}", m, queue, i, alert.to_json()) for m, i in targets]
    return resend.every(alerters, timedelta(0)), RunRecord(queue, outbox=rows)


def _silenced(n: HealthNotice, silences: Silences, labels: Callable[[str, str], Labels], now: float) -> bool:
    if n.kind == "error":
        return silences.silenced(labels(n.subject, ""), now)
    return silences.silenced({"source": n.subject}, now)


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
