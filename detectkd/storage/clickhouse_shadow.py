"""The ClickHouse store's share of `shadow:` variants: their state documents and would-be
alerts, each a ReplacingMergeTree read with FINAL (a redo's row replaces its twin; a
deleted state is a newer row with `deleted = 1`). The store's `_do` maps errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from detectkd.storage.base import ShadowAlert
from detectkd.storage.clickhouse_docs import wait_for_mutations

TABLES = [
    """CREATE TABLE IF NOT EXISTS dtk_shadow_state (
        metric String, variant String, data String, deleted UInt8, version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY (metric, variant)""",
    """CREATE TABLE IF NOT EXISTS dtk_shadow_alerts (
        metric String, variant String, key String, series String, period Int64, payload String,
        version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY (metric, variant, key)""",
]


class ClickhouseShadow:
    _do: Callable[[Callable[[Any], Awaitable[Any]]], Awaitable[Any]]
    _version: Callable[[], int]
    database: str
    path: str

    async def shadow_commit(
        self, metric: str, variant: str, state: str | None, alerts: Sequence[ShadowAlert]
    ) -> None:
        """Alerts first: a failure between the two leaves the state behind, and the run that
        repeats them writes the same keys (FINAL shows each once)."""
        if alerts:
            v = self._version()
            rows = [(metric, variant, a.key, a.series, a.period, a.payload, v) for a in alerts]
            await self._do(lambda c: c.execute("INSERT INTO dtk_shadow_alerts VALUES", *rows))
        doc = (metric, variant, state or "", 0 if state is not None else 1, self._version())
        await self._do(lambda c: c.execute("INSERT INTO dtk_shadow_state VALUES", doc))

    async def shadow_load(self, metric: str) -> dict[str, str]:
        sql = (
            "SELECT variant, data FROM dtk_shadow_state FINAL WHERE metric = {m} AND deleted = 0 "
            "ORDER BY variant"
        )
        rows = await self._do(lambda c: c.fetch(sql, params={"m": metric}))
        return {r["variant"]: r["data"] for r in rows}

    async def shadow_alerts(self, metric: str, since: int, until: int, limit: int) -> list[ShadowAlert]:
        sql = (
            "SELECT metric, variant, key, series, period, payload FROM dtk_shadow_alerts FINAL "
            "WHERE metric = {m} AND period >= {s} AND period < {u} ORDER BY period, variant, key LIMIT {n}"
        )
        params = {"m": metric, "s": since, "u": until, "n": limit}
        rows = await self._do(lambda c: c.fetch(sql, params=params))
        return [
            ShadowAlert(r["metric"], r["variant"], r["key"], r["series"], int(r["period"]), r["payload"])
            for r in rows
        ]

    async def shadow_purge(self, before: int) -> int:
        count = "SELECT count() AS n FROM dtk_shadow_alerts FINAL WHERE period < {b}"
        n = int((await self._do(lambda c: c.fetch(count, params={"b": before})))[0]["n"])
        if n:
            sql = "ALTER TABLE dtk_shadow_alerts DELETE WHERE period < {b}"
            await self._do(lambda c: c.execute(sql, params={"b": before}))
            await wait_for_mutations(self._do, self.database, ["dtk_shadow_alerts"], self.path)
        return n
