"""The ClickHouse store's JSON documents: silences, history-loading jobs, feedback labels.

Each is a row of a ReplacingMergeTree under its key, read with FINAL; a delete is a
newer row with `deleted = 1`. The store's `_do` maps errors, `_version` orders rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

TABLES = [
    """CREATE TABLE IF NOT EXISTS dtk_silences (
        id String, data String, ends_at Nullable(Float64), version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY id""",
    """CREATE TABLE IF NOT EXISTS dtk_history (
        metric String, data String, deleted UInt8, version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY metric""",
    """CREATE TABLE IF NOT EXISTS dtk_feedback (
        metric String, series String, period Int64, data String, deleted UInt8, version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY (metric, series, period)""",
]


class ClickhouseDocs:
    _do: Callable[[Callable[[Any], Awaitable[Any]]], Awaitable[Any]]
    _version: Callable[[], int]

    async def silence_save(self, silence_id: str, data: str, ends_at: float | None) -> None:
        row = (silence_id, data, ends_at, self._version())
        await self._do(lambda c: c.execute("INSERT INTO dtk_silences VALUES", row))

    async def silences_load(self) -> list[str]:
        rows = await self._do(lambda c: c.fetch("SELECT data FROM dtk_silences FINAL ORDER BY id"))
        return [r["data"] for r in rows]

    async def history_save(self, metric: str, data: str | None) -> None:
        row = (metric, data or "", 0 if data is not None else 1, self._version())
        await self._do(lambda c: c.execute("INSERT INTO dtk_history VALUES", row))

    async def history_load(self) -> dict[str, str]:
        rows = await self._do(
            lambda c: c.fetch("SELECT metric, data FROM dtk_history FINAL WHERE deleted = 0 ORDER BY metric")
        )
        return {r["metric"]: r["data"] for r in rows}

    async def feedback_save(self, metric: str, series: str, period: int, data: str | None) -> None:
        row = (metric, series, period, data or "", 0 if data is not None else 1, self._version())
        await self._do(lambda c: c.execute("INSERT INTO dtk_feedback VALUES", row))

    async def feedback_load(self, metric: str) -> list[str]:
        sql = "SELECT data FROM dtk_feedback FINAL WHERE metric = {m} AND deleted = 0 ORDER BY series, period"
        rows = await self._do(lambda c: c.fetch(sql, params={"m": metric}))
        return [r["data"] for r in rows]
