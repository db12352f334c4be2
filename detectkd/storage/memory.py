"""An in-memory store for backtests: the runtime's contract, nothing kept on disk.

Keeps watermarks, alert states and the outbox (the alerts a backtest
reports); points and detections are not kept (the runtime holds its own
window), so a year of 1-minute data costs no storage.
"""

from __future__ import annotations

from detectkd.alerting.state import SeriesState
from detectkd.storage.base import (
    NewOutboxItem,
    OutboxItem,
    OutboxStats,
    RunRecord,
    StoredDetection,
    StoredPoint,
)


class MemoryStore:
    def __init__(self) -> None:
        self.watermarks: dict[str, int] = {}
        self.states: dict[tuple[str, str], SeriesState] = {}
        self.outbox: list[NewOutboxItem] = []
        self.silences: dict[str, str] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def commit(self, run: RunRecord) -> None:
        for series, st in run.states.items():
            self.states[(run.metric, series)] = st
        for series in run.forget:
            self.states.pop((run.metric, series), None)
        self.outbox.extend(run.outbox)
        if run.watermark is not None:
            self.watermarks[run.metric] = max(run.watermark, self.watermarks.get(run.metric, run.watermark))

    async def watermark(self, metric: str) -> int | None:
        return self.watermarks.get(metric)

    async def read_points(
        self, metric: str, series: str | None, since: int, until: int
    ) -> dict[str, list[StoredPoint]]:
        return {}

    async def read_detections(self, metric: str, since: int, until: int) -> list[StoredDetection]:
        return []

    async def load_states(self) -> dict[tuple[str, str], SeriesState]:
        return dict(self.states)

    async def drop_states(self, metric: str) -> None:
        self.states = {k: v for k, v in self.states.items() if k[0] != metric}

    async def outbox_claim(
        self, now: float, lease_s: float, limit: int, metric: str | None = None
    ) -> list[OutboxItem]:
        return []  # a backtest never sends

    async def outbox_pending(self, status: str = "pending") -> list[OutboxItem]:
        return []

    async def outbox_done(self, item_id: int) -> None:
        return None

    async def outbox_retry(self, item_id: int, error: str, next_attempt_at: float, dead: bool) -> None:
        return None

    async def outbox_stats(self) -> OutboxStats:
        return OutboxStats(0, 0, None)

    async def silence_save(self, silence_id: str, data: str, ends_at: float | None) -> None:
        self.silences[silence_id] = data

    async def silences_load(self) -> list[str]:
        return list(self.silences.values())

    async def delete_before(self, metric: str, cutoff: int, detections_only: bool = False) -> int:
        return 0
