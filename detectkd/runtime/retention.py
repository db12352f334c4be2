"""Retention: each metric's stored datapoints and detections past their days are deleted,
never inside a detector's window (the cutoff is at least the window's span back)."""

from __future__ import annotations

import time

import structlog

from detectkd.errors import StorageError
from detectkd.runtime.slot import MetricSlot
from detectkd.storage.base import SENT_KEPT_S, StateStore
from detectkd.telemetry import Telemetry

log = structlog.get_logger("detectkd.retention")
SHADOW_KEPT_DAYS = 90  # without retention_days


async def run(slots: list[MetricSlot], default_days: int | None, now: float) -> int:
    """Delete what is past retention, per metric and store. Returns the rows deleted."""
    deleted = 0
    for slot in slots:
        rt, name = slot.runtime, slot.name
        storage = rt.spec.storage
        days = storage.datapoints_retention_days or default_days
        det_days = storage.detections_retention_days or days
        if not storage.enabled or (days is None and det_days is None):
            continue
        floor = now - rt.span - rt.grid.step
        try:
            store = await rt.data()
            if days is not None:
                deleted += await store.delete_before(name, int(min(now - days * 86400, floor)))
            if det_days is not None and (days is None or det_days < days):
                cutoff = int(min(now - det_days * 86400, floor))
                deleted += await store.delete_before(name, cutoff, detections_only=True)
        except StorageError as exc:
            log.warning("retention failed", metric=name, error=str(exc))
    return deleted


async def daily(
    slots: list[MetricSlot], store: StateStore, default_days: int | None, telemetry: Telemetry, now: float
) -> int:
    """The daemon's daily pass: `run`, then the outbox rows sent more than a week ago."""
    deleted = await run(slots, default_days, now)
    try:
        deleted += await store.outbox_purge(now - SENT_KEPT_S)
    except StorageError as exc:
        log.warning("outbox purge failed", error=str(exc))
    try:  # `shadow:` variants' would-be alerts, kept as long as datapoints (default 90 days)
        deleted += await store.shadow_purge(int(now - (default_days or SHADOW_KEPT_DAYS) * 86400))
    except StorageError as exc:
        log.warning("shadow alerts purge failed", error=str(exc))
    telemetry.retention_deleted.inc(deleted)
    telemetry.retention_last.set(time.time())
    log.info("retention pass", deleted_rows=deleted, metrics=len(slots))
    return deleted
