"""The SQLite store's share of `shadow:` variants: their state documents and would-be alerts
(tables in `sqlite_schema`); the store's `_call` runs a function on its connection."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

from detectkd.storage.base import ShadowAlert

ALERT_COLUMNS = "metric, variant, key, series, period, payload"


class SqliteShadow:
    _call: Callable[[Callable[[sqlite3.Connection], Any]], Any]

    async def shadow_commit(
        self, metric: str, variant: str, state: str | None, alerts: Sequence[ShadowAlert]
    ) -> None:
        now = time.time()

        def write(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            try:
                c.executemany(
                    f"INSERT OR IGNORE INTO dtk_shadow_alerts ({ALERT_COLUMNS}, created_at) "
                    "VALUES (?,?,?,?,?,?,?)",
                    [(metric, variant, a.key, a.series, a.period, a.payload, now) for a in alerts],
                )
                if state is None:
                    c.execute(
                        "DELETE FROM dtk_shadow_state WHERE metric = ? AND variant = ?", (metric, variant)
                    )
                else:
                    c.execute(
                        "INSERT OR REPLACE INTO dtk_shadow_state VALUES (?,?,?,?)",
                        (metric, variant, state, now),
                    )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

        await self._call(write)

    async def shadow_load(self, metric: str) -> dict[str, str]:
        sql = "SELECT variant, data FROM dtk_shadow_state WHERE metric = ? ORDER BY variant"
        rows: dict[str, str] = await self._call(lambda c: dict(c.execute(sql, (metric,)).fetchall()))
        return rows

    async def shadow_alerts(self, metric: str, since: int, until: int, limit: int) -> list[ShadowAlert]:
        sql = (
            f"SELECT {ALERT_COLUMNS} FROM dtk_shadow_alerts WHERE metric = ? AND period >= ? AND period < ? "
            "ORDER BY period, variant, key LIMIT ?"
        )
        rows = await self._call(lambda c: c.execute(sql, (metric, since, until, limit)).fetchall())
        return [ShadowAlert(m, v, k, s, int(p), d) for m, v, k, s, p, d in rows]

    async def shadow_purge(self, before: int) -> int:
        sql = "DELETE FROM dtk_shadow_alerts WHERE period < ?"
        n: int = await self._call(lambda c: c.execute(sql, (before,)).rowcount)
        return n
