"""The PostgreSQL store's JSON documents: silences, history-loading jobs, feedback labels,
`shadow:` variants' states and would-be alerts.

Each is one row of JSON text under its key, upserted; the store's `_run` maps errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from detectkd.storage.base import ShadowAlert

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
CREATE TABLE IF NOT EXISTS dtk_shadow_state (
    metric text NOT NULL, variant text NOT NULL, data text NOT NULL, updated_at timestamptz NOT NULL,
    PRIMARY KEY (metric, variant)
);
CREATE TABLE IF NOT EXISTS dtk_shadow_alerts (
    metric text NOT NULL, variant text NOT NULL, key text NOT NULL, series text NOT NULL,
    period bigint NOT NULL, payload text NOT NULL, created_at timestamptz NOT NULL,
    PRIMARY KEY (metric, variant, key)
);
CREATE INDEX IF NOT EXISTS dtk_shadow_alerts_period ON dtk_shadow_alerts (metric, period);
"""


class PostgresDocs:
    _run: Callable[[Callable[[Any], Awaitable[Any]]], Awaitable[Any]]

    async def silence_save(self, silence_id: str, data: str, ends_at: float | None) -> None:
        await self._run(
            lambda c: c.execute(
                "INSERT INTO dtk_silences VALUES ($1, $2, $3, now()) ON CONFLICT (id) DO UPDATE "
                "SET data = excluded.data, ends_at = excluded.ends_at, updated_at = excluded.updated_at",
                silence_id,
                data,
                ends_at,
            )
        )

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
                metric,
                data,
            )
        )

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
                metric,
                series,
                period,
                data,
            )
        )

    async def feedback_load(self, metric: str) -> list[str]:
        sql = "SELECT data FROM dtk_feedback WHERE metric = $1 ORDER BY series, period"
        rows = await self._run(lambda c: c.fetch(sql, metric))
        return [r["data"] for r in rows]

    async def shadow_commit(
        self, metric: str, variant: str, state: str | None, alerts: Sequence[ShadowAlert]
    ) -> None:
        async def write(c: Any) -> None:
            async with c.transaction():
                await c.executemany(
                    "INSERT INTO dtk_shadow_alerts VALUES ($1, $2, $3, $4, $5, $6, now()) "
                    "ON CONFLICT DO NOTHING",
                    [(metric, variant, a.key, a.series, a.period, a.payload) for a in alerts],
                )
                if state is None:
                    await c.execute(
                        "DELETE FROM dtk_shadow_state WHERE metric = $1 AND variant = $2", metric, variant
                    )
                    return
                await c.execute(
                    "INSERT INTO dtk_shadow_state VALUES ($1, $2, $3, now()) ON CONFLICT (metric, variant) "
                    "DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                    metric,
                    variant,
                    state,
                )

        await self._run(write)

    async def shadow_load(self, metric: str) -> dict[str, str]:
        sql = "SELECT variant, data FROM dtk_shadow_state WHERE metric = $1 ORDER BY variant"
        rows = await self._run(lambda c: c.fetch(sql, metric))
        return {r["variant"]: r["data"] for r in rows}

    async def shadow_alerts(self, metric: str, since: int, until: int, limit: int) -> list[ShadowAlert]:
        sql = (
            "SELECT metric, variant, key, series, period, payload FROM dtk_shadow_alerts "
            "WHERE metric = $1 AND period >= $2 AND period < $3 ORDER BY period, variant, key LIMIT $4"
        )
        rows = await self._run(lambda c: c.fetch(sql, metric, since, until, limit))
        return [ShadowAlert(r[0], r[1], r[2], r[3], int(r[4]), r[5]) for r in rows]

    async def shadow_purge(self, before: int) -> int:
        status: str = await self._run(
            lambda c: c.execute("DELETE FROM dtk_shadow_alerts WHERE period < $1", before)
        )
        return int(status.rsplit(" ", 1)[-1])

    async def feedback_near(self, metric: str, series: str, since: int, until: int, limit: int) -> list[str]:
        sql = (
            "SELECT data FROM dtk_feedback WHERE metric = $1 AND series = $2 AND period BETWEEN $3 AND $4 "
            "ORDER BY period DESC LIMIT $5"
        )
        rows = await self._run(lambda c: c.fetch(sql, metric, series, since, until, limit))
        return [r["data"] for r in rows]
