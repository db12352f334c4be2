"""The storage contract, and the records that cross it.

Every method may raise `StorageError`; none blocks the event loop. Writes are
idempotent: datapoints and detections are keyed by (metric, series, period
[, detector]); outbox rows by their idempotency key. `commit` applies one
run's results atomically where the backend allows it, so a crash leaves either
the whole run or none of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from detectkd.alerting.state import SeriesState
from detectkd.collectors.points import Point
from detectkd.detectors.base import Result


@dataclass(frozen=True)
class StoredDetection:
    series: str
    period: int
    result: Result


@dataclass(frozen=True)
class OutboxItem:
    id: int
    key: str
    metric: str
    series: str
    channel: int  # alerter index within the metric
    payload: str  # Alert JSON
    attempts: int
    created_at: float
    next_attempt_at: float
    last_error: str | None = None
    status: str = "pending"  # pending | dead


@dataclass(frozen=True)
class NewOutboxItem:
    key: str
    metric: str
    series: str
    channel: int
    payload: str


@dataclass
class RunRecord:
    """Everything one run of one metric wants persisted."""

    metric: str
    points: list[Point] = field(default_factory=list)
    detections: list[StoredDetection] = field(default_factory=list)
    states: dict[str, SeriesState] = field(default_factory=dict)
    outbox: list[NewOutboxItem] = field(default_factory=list)
    watermark: int | None = None
    save_points: bool = True
    forget: list[str] = field(default_factory=list)  # series whose alert state is dropped


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    dead: int
    oldest_created_at: float | None
    next_attempt_at: float | None = None  # earliest pending attempt


@dataclass(frozen=True)
class StoredPoint:
    period: int
    value: float | None
    context: dict[str, Any]


def detection_from_row(r: Sequence[Any]) -> StoredDetection:
    """(series, period, detector, value, expected, lower, upper, score, anomaly, direction, skipped);
    empty strings (ClickHouse) read as None."""
    series, period, detector, value, expected, lower, upper, score, anomaly, direction, skipped = r
    result = Result(
        str(detector), value, bool(anomaly), float(score), expected, lower, upper,
        direction or None, skipped or None,
    )  # fmt: skip
    return StoredDetection(str(series), int(period), result)


def eligible(rows: list[tuple[OutboxItem, float | None]], now: float, limit: int) -> list[OutboxItem]:
    """From pending rows (oldest first, with their lease), the claimable queue heads."""
    heads: dict[tuple[str, str, int], tuple[OutboxItem, float | None]] = {}
    for item, leased_until in rows:
        heads.setdefault((item.metric, item.series, item.channel), (item, leased_until))
    out = [
        item
        for item, leased_until in heads.values()
        if item.next_attempt_at <= now and (leased_until is None or leased_until < now)
    ]
    return sorted(out, key=lambda i: i.id)[:limit]


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...

    async def commit(self, run: RunRecord) -> None:
        """Points, detections, alert states, outbox rows and the watermark, atomically."""
        ...

    async def watermark(self, metric: str) -> int | None: ...

    async def read_points(
        self, metric: str, series: str | None, since: int, until: int
    ) -> dict[str, list[StoredPoint]]:
        """Points with since <= period < until, per series, oldest first."""
        ...

    async def read_detections(self, metric: str, since: int, until: int) -> list[StoredDetection]:
        """Stored detector results of periods in [since, until), by series, period, detector."""
        ...

    async def load_states(self) -> dict[tuple[str, str], SeriesState]: ...

    async def drop_states(self, metric: str) -> None: ...

    async def outbox_claim(
        self, now: float, lease_s: float, limit: int, metric: str | None = None
    ) -> list[OutboxItem]:
        """Lease and return up to `limit` rows (of `metric`, if given) that may be sent now.

        Only the oldest pending row of each (metric, series, channel) is
        eligible (a RESOLVED never overtakes its FIRING), and only when it is
        due and not leased by another claimer. Concurrent claimers get
        disjoint rows. A lease expires by itself, so a crashed sender's rows
        are retried.
        """
        ...

    async def outbox_pending(self, status: str = "pending") -> list[OutboxItem]:
        """Rows with this status (`pending` or `dead`), oldest first."""
        ...

    async def outbox_done(self, item_id: int) -> None: ...

    async def outbox_retry(self, item_id: int, error: str, next_attempt_at: float, dead: bool) -> None: ...

    async def outbox_stats(self) -> OutboxStats: ...

    async def silence_save(self, silence_id: str, data: str, ends_at: float | None) -> None:
        """Insert or replace a silence (its JSON, see `detectkd.alerting.silences`)."""
        ...

    async def silences_load(self) -> list[str]:
        """Every stored silence's JSON, ended ones included."""
        ...

    async def delete_before(self, metric: str, cutoff: int, detections_only: bool = False) -> int: ...
