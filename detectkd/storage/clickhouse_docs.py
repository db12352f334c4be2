"""The ClickHouse store's JSON documents: silences, history-loading jobs, feedback labels.

Each is a row of a ReplacingMergeTree under its key, read with FINAL; a delete is a
newer row with `deleted = 1`. The store's `_do` maps errors, `_version` orders rows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from detectkd.errors import StorageError

Do = Callable[[Any], Awaitable[Any]]  # runs fn(client) and maps errors to StorageError

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
    database: str
    path: str

    async def silence_save(self, silence_id: str, data: str, ends_at: float | None) -> None:
        row = (silence_id, data, ends_at, self._version())
        await self._do(lambda c: c.execute("INSERT INTO dtk_silences VALUES", row))

    async def silences_load(self) -> list[str]:
        rows = await self._do(lambda c: c.fetch("SELECT data FROM dtk_silences FINAL ORDER BY id"))
        return [r["data"] for r in rows]

    async def silences_version(self) -> str:
        # Every save is a new row with a newer version (a merge changes the count: one read more).
        rows = await self._do(lambda c: c.fetch("SELECT count() AS n, max(version) AS v FROM dtk_silences"))
        return f"{rows[0]['n']}:{rows[0]['v']}"

    async def silences_purge(self, ended_before: float) -> int:
        """Every version of a silence whose newest one ended before `ended_before` (deleting
        only the newest would bring an older one, with a later end, back)."""
        sql = "SELECT id FROM dtk_silences FINAL WHERE ends_at IS NOT NULL AND ends_at < {b}"
        ids = [str(r["id"]) for r in await self._do(lambda c: c.fetch(sql, params={"b": ended_before}))]
        for lo in range(0, len(ids), 1_000):  # well under max_query_size (256 KiB)
            chunk = ids[lo : lo + 1_000]

            async def delete(c: Any, chunk: list[str] = chunk) -> Any:
                sql = "ALTER TABLE dtk_silences DELETE WHERE has({ids}, id)"
                return await c.execute(sql, params={"ids": chunk})

            await self._do(delete)
        if ids:
            await wait_for_mutations(self._do, self.database, ["dtk_silences"], self.path)
        return len(ids)

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

    async def feedback_near(self, metric: str, series: str, since: int, until: int, limit: int) -> list[str]:
        sql = (
            "SELECT data FROM dtk_feedback FINAL WHERE metric = {m} AND series = {s} AND period >= {lo} "
            "AND period <= {hi} AND deleted = 0 ORDER BY period DESC LIMIT {n}"
        )
        params = {"m": metric, "s": series, "lo": since, "hi": until, "n": limit}
        rows = await self._do(lambda c: c.fetch(sql, params=params))
        return [r["data"] for r in rows]


async def wait_for_mutations(
    do: Do, database: str, tables: list[str], where: str, limit_s: float = 60
) -> None:
    """Until the `ALTER TABLE ... DELETE` mutations on `tables` are done (retention)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        rows = await do(
            lambda c: c.fetch(
                "SELECT count() AS n FROM system.mutations "
                "WHERE database = {d} AND has({t}, table) AND is_done = 0",
                params={"d": database, "t": tables},
            )
        )
        if int(rows[0]["n"]) == 0:
            return
        await asyncio.sleep(0.05)
    raise StorageError(f"clickhouse store {where}: retention delete still running after {limit_s:g}s")
