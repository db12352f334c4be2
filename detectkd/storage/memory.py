"""An in-memory store: the whole contract, nothing on disk (backtests, tests).

It passes the same contract suite as the database stores. A backtest uses
`MemoryStore(keep_data=False)`: points and detections are not kept (the
runtime holds its own windows), so a year of 1-minute data costs no memory.
Several `MemoryStore(shared=other)` are clients of one database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from detectkd.alerting.state import SeriesState
from detectkd.storage.base import (
    OutboxItem,
    OutboxStats,
    OutboxStatus,
    RunRecord,
    ShadowAlert,
    StoredDetection,
    StoredPoint,
    eligible,
)


@dataclass
class _Data:
    points: dict[tuple[str, str], dict[int, StoredPoint]] = field(default_factory=dict)
    detections: dict[tuple[str, str, int, str], StoredDetection] = field(default_factory=dict)
    watermarks: dict[str, int] = field(default_factory=dict)
    states: dict[tuple[str, str], SeriesState] = field(default_factory=dict)
    outbox: dict[int, tuple[OutboxItem, float | None]] = field(default_factory=dict)  # id -> (row, lease)
    keys: dict[tuple[str, str], int] = field(default_factory=dict)  # (key, channel) -> row id
    lessees: dict[int, str] = field(default_factory=dict)  # row id -> owner of its lease
    silences: dict[str, str] = field(default_factory=dict)
    silence_ends: dict[str, float | None] = field(default_factory=dict)
    silence_writes: int = 0
    history: dict[str, str] = field(default_factory=dict)
    feedback: dict[tuple[str, str, int], str] = field(default_factory=dict)
    shadow_states: dict[tuple[str, str], str] = field(default_factory=dict)
    shadow_alerts: dict[tuple[str, str, str], ShadowAlert] = field(default_factory=dict)
    next_id: int = 1


def _as_json(context: Any) -> Any:
    """`context` as the JSON a database store keeps gives it back (raises when it is not JSON)."""
    if type(context) is dict and not context:  # (most points: no context; a round trip gives `{}`)
        return {}
    return json.loads(json.dumps(context))


class MemoryStore:
    def __init__(self, keep_data: bool = True, shared: MemoryStore | None = None) -> None:
        self.keep_data = keep_data
        self._d: _Data = shared._d if shared is not None else _Data()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    # -- runs -------------------------------------------------------------------------

    async def commit(self, run: RunRecord) -> None:
        d = self._d
        # Checked before anything is applied: a bad record changes nothing.
        rows = [(p.series, int(p.period), p.value, _as_json(p.context)) for p in run.points]
        if run.save_points and self.keep_data:
            for series, period, value, context in rows:
                d.points.setdefault((run.metric, series), {})[period] = StoredPoint(period, value, context)
            for det in run.detections:
                d.detections[(run.metric, det.series, det.period, det.result.detector)] = det
        for series, st in run.states.items():
            d.states[(run.metric, series)] = st
        for series in run.forget:
            d.states.pop((run.metric, series), None)
        now = time.time()
        for o in run.outbox:
            if (o.key, o.channel) in d.keys:
                continue
            d.keys[(o.key, o.channel)] = d.next_id
            item = OutboxItem(d.next_id, o.key, o.metric, o.series, o.channel, o.payload, 0, now, now)
            d.outbox[item.id] = (item, None)
            d.next_id += 1
        if run.watermark is not None:
            d.watermarks[run.metric] = max(run.watermark, d.watermarks.get(run.metric, run.watermark))

    async def watermark(self, metric: str) -> int | None:
        return self._d.watermarks.get(metric)

    async def read_points(
        self, metric: str, series: str | None, since: int, until: int
    ) -> dict[str, list[StoredPoint]]:
        out: dict[str, list[StoredPoint]] = {}
        for (m, s), by_period in sorted(self._d.points.items()):
            if m != metric or (series is not None and s != series):
                continue
            found = [by_period[p] for p in sorted(by_period) if since <= p < until]
            if found:
                out[s] = found
        return out

    async def read_detections(self, metric: str, since: int, until: int) -> list[StoredDetection]:
        return [
            det
            for (m, _, period, _), det in sorted(self._d.detections.items(), key=lambda kv: kv[0])
            if m == metric and since <= period < until
        ]

    async def delete_before(self, metric: str, cutoff: int, detections_only: bool = False) -> int:
        d = self._d
        gone = [k for k in d.detections if k[0] == metric and k[2] < cutoff]
        for k in gone:
            del d.detections[k]
        deleted = len(gone)
        if not detections_only:
            for (m, _), by_period in d.points.items():
                if m == metric:
                    old = [p for p in by_period if p < cutoff]
                    for p in old:
                        del by_period[p]
                    deleted += len(old)
        return deleted

    # -- alert state --------------------------------------------------------------------

    async def load_states(self) -> dict[tuple[str, str], SeriesState]:
        return dict(self._d.states)

    async def drop_states(self, metric: str) -> None:
        self._d.states = {k: v for k, v in self._d.states.items() if k[0] != metric}

    # -- outbox ------------------------------------------------------------------------

    async def outbox_claim(
        self,
        now: float,
        lease_s: float,
        limit: int,
        metric: str | None = None,
        owner: str = "",
        sent: Collection[int] = (),
    ) -> list[OutboxItem]:
        rows = [
            (item, lease)
            for item, lease in sorted(self._d.outbox.values(), key=lambda r: r[0].id)
            if item.status == OutboxStatus.PENDING and (metric is None or item.metric == metric)
        ]
        items = eligible(rows, now, limit, sent)
        for item in items:
            self._d.outbox[item.id] = (item, now + lease_s)
            self._d.lessees[item.id] = owner
        return items

    async def outbox_release(self, owner: str, ids: Collection[int] | None = None) -> int:
        mine = [
            item
            for item, lease in self._d.outbox.values()
            if lease is not None
            and item.status == OutboxStatus.PENDING
            and self._d.lessees.get(item.id) == owner
            and (ids is None or item.id in ids)
        ]
        for item in mine:
            self._d.outbox[item.id] = (item, None)
        return len(mine)

    async def outbox_pending(self, status: str = OutboxStatus.PENDING) -> list[OutboxItem]:
        return sorted((i for i, _ in self._d.outbox.values() if i.status == status), key=lambda i: i.id)

    async def outbox_history(self, metric: str, since: float) -> list[OutboxItem]:
        rows = (i for i, _ in self._d.outbox.values() if i.metric == metric and i.created_at >= since)
        return sorted(rows, key=lambda i: i.id)

    def _set(self, item_id: int, **changes: Any) -> None:
        item, _ = self._d.outbox[item_id]
        self._d.outbox[item_id] = (replace(item, **changes), None)

    async def outbox_done(self, item_id: int) -> None:
        self._set(item_id, status=OutboxStatus.SENT, next_attempt_at=time.time())

    async def outbox_retry(self, item_id: int, error: str, next_attempt_at: float, dead: bool) -> None:
        item, _ = self._d.outbox[item_id]
        self._set(
            item_id,
            attempts=item.attempts + 1,
            last_error=error,
            next_attempt_at=next_attempt_at,
            status=OutboxStatus.DEAD if dead else OutboxStatus.PENDING,
        )

    async def outbox_rechannel(self, metric: str, renames: dict[str, str]) -> int:
        moved = 0
        for item, _ in list(self._d.outbox.values()):
            new = renames.get(item.channel)
            pending = item.metric == metric and item.status == OutboxStatus.PENDING
            if pending and new is not None and (item.key, new) not in self._d.keys:
                del self._d.keys[(item.key, item.channel)]
                self._d.keys[(item.key, new)] = item.id
                self._set(item.id, channel=new)
                moved += 1
        return moved

    async def outbox_purge(self, sent_before: float) -> int:
        gone = [
            i
            for i, _ in self._d.outbox.values()
            if i.status == OutboxStatus.SENT and i.next_attempt_at < sent_before
        ]
        for item in gone:
            del self._d.outbox[item.id]
            self._d.lessees.pop(item.id, None)
            del self._d.keys[(item.key, item.channel)]
        return len(gone)

    async def outbox_stats(self) -> OutboxStats:
        pending = [(i, lease) for i, lease in self._d.outbox.values() if i.status == OutboxStatus.PENDING]
        dead = sum(1 for i, _ in self._d.outbox.values() if i.status == OutboxStatus.DEAD)
        oldest = min((i.created_at for i, _ in pending), default=None)
        due = min((max(i.next_attempt_at, lease or 0.0) for i, lease in pending), default=None)
        return OutboxStats(len(pending), dead, oldest, due)

    # -- silences ----------------------------------------------------------------------

    async def silence_save(self, silence_id: str, data: str, ends_at: float | None) -> None:
        self._d.silences[silence_id] = data
        self._d.silence_ends[silence_id] = ends_at
        self._d.silence_writes += 1

    async def history_save(self, metric: str, data: str | None) -> None:
        if data is None:
            self._d.history.pop(metric, None)
        else:
            self._d.history[metric] = data

    async def history_load(self) -> dict[str, str]:
        return dict(sorted(self._d.history.items()))

    async def feedback_save(self, metric: str, series: str, period: int, data: str | None) -> None:
        if data is None:
            self._d.feedback.pop((metric, series, period), None)
        else:
            self._d.feedback[(metric, series, period)] = data

    async def feedback_load(self, metric: str) -> list[str]:
        return [v for k, v in sorted(self._d.feedback.items()) if k[0] == metric]

    async def shadow_commit(
        self, metric: str, variant: str, state: str | None, alerts: Sequence[ShadowAlert]
    ) -> None:
        for a in alerts:
            self._d.shadow_alerts.setdefault((metric, variant, a.key), a)
        if state is None:
            self._d.shadow_states.pop((metric, variant), None)
        else:
            self._d.shadow_states[(metric, variant)] = state

    async def shadow_load(self, metric: str) -> dict[str, str]:
        return {v: data for (m, v), data in sorted(self._d.shadow_states.items()) if m == metric}

    async def shadow_alerts(self, metric: str, since: int, until: int, limit: int) -> list[ShadowAlert]:
        found = [
            a for (m, _, _), a in self._d.shadow_alerts.items() if m == metric and since <= a.period < until
        ]
        return sorted(found, key=lambda a: (a.period, a.variant, a.key))[:limit]

    async def shadow_purge(self, before: int) -> int:
        gone = [k for k, a in self._d.shadow_alerts.items() if a.period < before]
        for k in gone:
            del self._d.shadow_alerts[k]
        return len(gone)

    async def feedback_near(self, metric: str, series: str, since: int, until: int, limit: int) -> list[str]:
        found = sorted(
            (k, v)
            for k, v in self._d.feedback.items()
            if k[:2] == (metric, series) and since <= k[2] <= until
        )
        return [v for _, v in reversed(found)][:limit]

    async def silences_load(self) -> list[str]:
        return [self._d.silences[k] for k in sorted(self._d.silences)]

    async def silences_version(self) -> str:
        return f"{len(self._d.silences)}:{self._d.silence_writes}"

    async def silences_purge(self, ended_before: float) -> int:
        d = self._d
        gone = [k for k, end in d.silence_ends.items() if end is not None and end < ended_before]
        for k in gone:
            del d.silences[k], d.silence_ends[k]
        return len(gone)
