"""The storage contracts (`DataStore`, `StateStore`), and the records that cross them.

Every method may raise `StorageError`; none blocks the event loop. Writes are
idempotent: datapoints and detections are keyed by (metric, series, period
[, detector]); outbox rows by their idempotency key. `commit` applies one
run's results atomically where the backend allows it, so a crash leaves either
the whole run or none of it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from detectkd.alerting.state import SeriesState
from detectkd.collectors.points import Point
from detectkd.detectors.base import Result


@dataclass(frozen=True, slots=True)
class StoredDetection:
    series: str
    period: int
    result: Result


class OutboxStatus(StrEnum):
    PENDING = "pending"  # to be sent
    DEAD = "dead"  # gave up (permanent error, or `alert_retry_for` passed)
    SENT = "sent"  # delivered; kept `SENT_KEPT_S`, then purged
    MOVED = "moved"  # ClickHouse: re-written under another channel id (purged like sent)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    key: str
    metric: str
    series: str
    channel: str  # the alerter's stable id (`AlerterSpec.id`); older rows: its index as text
    payload: str  # Alert JSON
    attempts: int
    created_at: float
    next_attempt_at: float
    last_error: str | None = None
    status: str = OutboxStatus.PENDING  # an `OutboxStatus` value


@dataclass(frozen=True)
class NewOutboxItem:
    key: str
    metric: str
    series: str
    channel: str
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
class ShadowAlert:
    """A notification a `shadow:` variant would have sent (never sent): kept for comparison."""

    metric: str
    variant: str  # the variant's name; "" for what the metric itself sent (the comparison's base)
    key: str  # the alert's idempotency key (`Alert.key`)
    series: str
    period: int
    payload: str  # Alert JSON


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


def point_row(p: Point) -> tuple[Any, ...]:
    """(series, period, value, context as JSON or None): a point as the SQL stores write it."""
    return (p.series, p.period, p.value, json.dumps(p.context) if p.context else None)


def detection_row(d: StoredDetection) -> tuple[Any, ...]:
    """The columns `detection_from_row` reads, as the SQL stores write them."""
    r = d.result
    bounds = (r.expected, r.lower, r.upper)
    return (d.series, d.period, r.detector, r.value, *bounds, r.score, r.anomaly, r.direction, r.skipped)


def detection_from_row(r: Sequence[Any]) -> StoredDetection:
    """(series, period, detector, value, expected, lower, upper, score, anomaly, direction, skipped);
    empty strings (ClickHouse) read as None."""
    series, period, detector, value, expected, lower, upper, score, anomaly, direction, skipped = r
    result = Result(
        str(detector),
        value,
        bool(anomaly),
        float(score),
        expected,
        lower,
        upper,
        direction or None,
        skipped or None,
    )
    return StoredDetection(str(series), int(period), result)


SENT_KEPT_S = 7 * 86400.0  # how long a store that keeps sent outbox rows keeps them


def eligible(
    rows: list[tuple[OutboxItem, float | None]], now: float, limit: int, sent: Collection[int] = ()
) -> list[OutboxItem]:
    """From pending rows (oldest first, with their lease), the claimable queue heads; rows in
    `sent` count as gone."""
    heads: dict[tuple[str, str, str], tuple[OutboxItem, float | None]] = {}
    for item, leased_until in rows:
        if item.id not in sent:
            heads.setdefault((item.metric, item.series, item.channel), (item, leased_until))
    out = [
        item
        for item, leased_until in heads.values()
        if item.next_attempt_at <= now and (leased_until is None or leased_until < now)
    ]
    return sorted(out, key=lambda i: i.id)[:limit]


class Lifecycle(Protocol):
    async def open(self) -> None:
        """Connect and create or migrate the tables. Raises StorageError naming the store."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """A round trip to the backend (readiness)."""
        ...


class DataStore(Lifecycle, Protocol):
    """Datapoints and detections: what was measured and what the detectors said about it.

    Timeouts and cancellation: every call is bounded by the backend's own timeouts (SQLite's
    30 s busy timeout, the connection timeout of PostgreSQL and ClickHouse) and raises
    `StorageError` when they expire; a cancelled call (CancelledError passes through) leaves
    the store as if it had not been made or had completed, never half-written.
    """

    async def commit(self, run: RunRecord) -> None:
        """Write `run.points` and `run.detections` (when `run.save_points`) idempotently by
        (metric, series, period[, detector]), all or nothing. A state store's share of the
        record (states, outbox, watermark) is written too when this is also the state store."""
        ...

    async def read_points(
        self, metric: str, series: str | None, since: int, until: int
    ) -> dict[str, list[StoredPoint]]:
        """Points with since <= period < until, per series, oldest first."""
        ...

    async def read_detections(self, metric: str, since: int, until: int) -> list[StoredDetection]:
        """Stored detector results of periods in [since, until), by series, period, detector."""
        ...

    async def delete_before(self, metric: str, cutoff: int, detections_only: bool = False) -> int:
        """Retention: delete the metric's rows of periods before `cutoff`. Returns how many."""
        ...


class StateStore(Lifecycle, Protocol):
    """Watermarks, alert states, the outbox and silences: what must survive a restart for
    no alert to be lost or sent twice. Same timeout and cancellation contract as `DataStore`;
    in addition a cancelled `commit` never leaves outbox rows without the alert states that
    produced them (one transaction, or in ClickHouse an order that a redo repairs)."""

    async def commit(self, run: RunRecord) -> None:
        """Alert states, forgotten series, outbox rows and the watermark of one run,
        atomically (with points and detections when this is also the data store). An outbox
        row whose (key, channel) was ever written (and not yet purged) is not written again."""
        ...

    async def watermark(self, metric: str) -> int | None:
        """The newest period committed for `metric` (only ever moves forward)."""
        ...

    async def load_states(self) -> dict[tuple[str, str], SeriesState]: ...

    async def drop_states(self, metric: str) -> None: ...

    async def outbox_claim(
        self,
        now: float,
        lease_s: float,
        limit: int,
        metric: str | None = None,
        owner: str = "",
        sent: Collection[int] = (),
    ) -> list[OutboxItem]:
        """Lease (to `owner`) and return up to `limit` rows (of `metric`, if given) that may be
        sent now.

        Only the oldest pending row of each (metric, series, channel) is
        eligible (a RESOLVED never overtakes its FIRING), and only when it is
        due and not leased by another claimer. Rows in `sent` (the caller
        delivered them; their `outbox_done` is not stored yet) count as gone,
        so the next row of their queue is eligible. Concurrent claimers get
        disjoint rows. A lease expires by itself, so a crashed sender's rows
        are retried; its owner, restarted, ends them at once (`outbox_release`).
        """
        ...

    async def outbox_release(self, owner: str, ids: Collection[int] | None = None) -> int:
        """End every lease of a pending row held by `owner` (a restarted daemon, whose
        claims died with its previous process), or only those of rows `ids` (rows of
        another shard's metrics, claimed from a shared store). Returns how many."""
        ...

    async def outbox_pending(self, status: str = OutboxStatus.PENDING) -> list[OutboxItem]:
        """Rows with this status (`pending`, `dead` or `sent`), oldest first."""
        ...

    async def outbox_history(self, metric: str, since: float) -> list[OutboxItem]:
        """Every row of `metric` created at or after `since`, whatever its status, oldest
        first: the notifications of the last days (sent rows are kept `SENT_KEPT_S`)."""
        ...

    async def outbox_done(self, item_id: int) -> None:
        """The row was delivered: kept as `sent` until `outbox_purge`."""
        ...

    async def outbox_retry(self, item_id: int, error: str, next_attempt_at: float, dead: bool) -> None: ...

    async def outbox_stats(self) -> OutboxStats: ...

    async def outbox_rechannel(self, metric: str, renames: dict[str, str]) -> int:
        """Pending rows of `metric` whose channel id is a key of `renames` now name its value
        (reload: an alerter edited in place, e.g. a rotated webhook URL). Returns how many."""
        ...

    async def outbox_purge(self, sent_before: float) -> int:
        """Delete the rows sent before `sent_before`. Until then a sent row is kept, so that
        committing its key again writes nothing (and nothing is sent twice). Returns how many."""
        ...

    async def silence_save(self, silence_id: str, data: str, ends_at: float | None) -> None:
        """Insert or replace a silence (its JSON, see `detectkd.alerting.silences`); `ends_at`:
        when it is over (its end, or when it was expired), what `silences_purge` reads."""
        ...

    async def silences_load(self) -> list[str]:
        """Every stored silence's JSON, ended ones included (until purged), by id."""
        ...

    async def silences_version(self) -> str:
        """A token that changes when a silence is saved or purged, by any client; cheap (no
        document is read), so that an unchanged set is not read again."""
        ...

    async def silences_purge(self, ended_before: float) -> int:
        """Delete the silences whose `ends_at` (as saved: when it is over) is before
        `ended_before`; those without one are kept. Returns how many."""
        ...

    async def history_save(self, metric: str, data: str | None) -> None:
        """Insert or replace a metric's history-loading job (its JSON, see
        `detectkd.runtime.history`); None deletes it."""
        ...

    async def history_load(self) -> dict[str, str]:
        """Every stored history-loading job's JSON, by metric."""
        ...

    async def feedback_save(self, metric: str, series: str, period: int, data: str | None) -> None:
        """Insert or replace the label on (metric, series, period) (its JSON, see
        `detectkd.alerting.feedback`); None deletes it."""
        ...

    async def feedback_load(self, metric: str) -> list[str]:
        """Every label of `metric` (JSON), by series and period."""
        ...

    async def shadow_commit(
        self, metric: str, variant: str, state: str | None, alerts: Sequence[ShadowAlert]
    ) -> None:
        """A shadow variant's run (`detectkd.runtime.shadow`): its would-be `alerts`, written
        once per (metric, variant, key) (a redo writes nothing twice), then its state
        document (JSON) replaced; None deletes the document."""
        ...

    async def shadow_load(self, metric: str) -> dict[str, str]:
        """The state documents of `metric`'s shadow variants, by variant."""
        ...

    async def shadow_alerts(self, metric: str, since: int, until: int, limit: int) -> list[ShadowAlert]:
        """Would-be alerts of `metric` with since <= period < until, by period, variant and key;
        at most `limit`."""
        ...

    async def shadow_purge(self, before: int) -> int:
        """Delete the would-be alerts of periods before `before` (retention). Returns how many."""
        ...

    async def feedback_near(self, metric: str, series: str, since: int, until: int, limit: int) -> list[str]:
        """The labels of one series put on periods in [since, until] (JSON), newest period
        first, at most `limit`: one bounded read of the key's index (a FIRING's precedent)."""
        ...


class Store(DataStore, StateStore, Protocol):
    """A backend that is both (every built-in one is; a metric's `storage:` may name another
    backend as its data store while the daemon's store keeps its state)."""
