"""The PostgreSQL store's JSON documents: silences, history-loading jobs, feedback labels.

Each is one row of JSON text under its key, upserted; the store's `_run` maps errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS dtk_silences (
    id text PRIMARY KEY, data text NOT NULL, ends_at double precision, updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS dtk_history (
    metric text PRIMARY KEY, data text NOT NULL, updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS dtk_feedback (
    metric text NOT NULL, series text NOT NULL, period bigint NOT NULL, data text NOT NULL,
    updated_at timestamptz NOT NULL, PRIMARY KEY (metric, series, period)
);
"""


class PostgresDocs:
    _run: Callable[[Callable[[Any], Awaitable[Any]]], Awaitable[Any]]

    async def silence_save(self, silence_id: str, data: str, ends_at: float | None) -> None:
        await self._run(
            lambda c: c.execute(
                "INSERT INTO dtk_silences VALUES ($1, $2, $3, now()) ON CONFLICT (id) DO UPDATE "
                "SET data = excluded.data, ends_at = excluded.ends_at, updated_at = excluded.updated_at",
                silence_id, data, ends_at,
            )
        )  # fmt: skip

    async def silences_load(self) -> list[str]:
        rows = await self._run(lambda c: c.fetch("SELECT data FROM dtk_silences ORDER BY id"))
        return [r["data"] for r in rows]

    async def silences_version(self) -> str:
        sql = "SELECT count(*) AS n, max(updated_at) AS at FROM dtk_silences"
        row = await self._run(lambda c: c.fetchrow(sql))
        return f"{row['n']}:{row['at']}"

    async def silences_purge(self, ended_before: float) -> int:
        sql = "DELETE FROM dtk_silences WHERE ends_at IS NOT NULL AND ends_at < $1"
        status: str = await self._run(lambda c: c.execute(sql, ended_before))
        return int(status.rsplit(" ", 1)[-1])  # "DELETE 3"

    async def history_save(self, metric: str, data: str | None) -> None:
        if data is None:
            await self._run(lambda c: c.execute("DELETE FROM dtk_history WHERE metric = $1", metric))
            return
        await self._run(
            lambda c: c.execute(
                "INSERT INTO dtk_history VALUES ($1, $2, now()) ON CONFLICT (metric) DO UPDATE "
                "SET data = excluded.data, updated_at = excluded.updated_at",
                metric, data,
            )
        )  # fmt: skip

    async def history_load(self) -> dict[str, str]:
        rows = await self._run(lambda c: c.fetch("SELECT metric, data FROM dtk_history ORDER BY metric"))
        return {r["metric"]: r["data"] for r in rows}

    async def feedback_save(self, metric: str, series: str, period: int, data: str | None) -> None:
        if data is None:
            sql = "DELETE FROM dtk_feedback WHERE metric = $1 AND series = $2 AND period = $3"
            await self._run(lambda c: c.execute(sql, metric, series, period))
            return
        await self._run(
            lambda c: c.execute(
                "INSERT INTO dtk_feedback VALUES ($1, $2, $3, $4, now()) "
                "ON CONFLICT (metric, series, period) DO UPDATE "
                "SET data = excluded.data, updated_at = excluded.updated_at",
                metric, series, period, data,
            )
        )  # fmt: skip

    async def feedback_load(self, metric: str) -> list[str]:
        sql = "SELECT data FROM dtk_feedback WHERE metric = $1 ORDER BY series, period"
        rows = await self._run(lambda c: c.fetch(sql, metric))
        return [r["data"] for r in rows]

    async def feedback_near(self, metric: str, series: str, since: int, until: int, limit: int) -> list[str]:
        sql = (
            "SELECT data FROM dtk_feedback WHERE metric = $1 AND series = $2 AND period BETWEEN $3 AND $4 "
            "ORDER BY period DESC LIMIT $5"
        )
        rows = await self._run(lambda c: c.fetch(sql, metric, series, since, until, limit))
        return [r["data"] for r in rows]
