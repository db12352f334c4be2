"""PostgreSQL source via asyncpg.

One pool per identical connection settings, shared by every metric that uses
them; its size (`pool_size`, default 5) is the per-source concurrency limit.
The per-query timeout is asyncpg's: on expiry the query is cancelled on the
server, not just abandoned.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from detectkd.collectors.base import Build, Row, Window, next_chunk, too_many_rows
from detectkd.collectors.netparams import Endpoint, PooledSource, error_text
from detectkd.errors import CollectError

CONNECT_TIMEOUT_S = 10.0


async def _create(ep: Endpoint) -> Any:
    return await asyncpg.create_pool(
        host=ep.host,
        port=ep.port,
        user=ep.user,
        password=ep.password,
        database=ep.database,
        ssl=ep.ssl_context(),
        min_size=0,
        max_size=ep.pool_size,
        timeout=CONNECT_TIMEOUT_S,
    )


async def _close(pool: Any) -> None:
    await pool.close()


class PostgresCollector(PooledSource):
    kind = "postgres"
    default_port = 5432

    async def collect(self, window: Window) -> list[Row]:
        sql = self._render(window)
        where = self._ep.describe()
        try:
            pool = await self._resources.pool(self._ep, lambda: _create(self._ep), _close)
            async with pool.acquire(timeout=self._timeout) as conn:
                return await _fetch(conn, sql, self._timeout, self._max_rows)
        except TimeoutError:
            raise CollectError(f"{where}: query timed out after {self._timeout:g}s (cancelled)") from None
        except asyncpg.PostgresError as exc:
            raise CollectError(f"{where}: {type(exc).__name__}: {error_text(exc)}") from None
        except (OSError, asyncpg.InterfaceError) as exc:
            self._resources.drop_pool(self._ep)
            raise CollectError(f"{where}: cannot connect: {error_text(exc)}") from None


async def _fetch(conn: Any, sql: str, budget_s: float, max_rows: int | None) -> list[Row]:
    """The rows of `sql`, read by a cursor in chunks (asyncpg's cursors live in a
    transaction), so a result above `max_rows` is refused after max_rows + 1 rows, never
    held whole. Each round trip gets what is left of `budget_s`; asyncpg cancels the query
    on the server when it expires."""
    deadline = time.monotonic() + budget_s

    def left() -> float:
        return max(deadline - time.monotonic(), 0.001)

    rows: list[Row] = []
    async with conn.transaction():
        cur = await conn.cursor(sql, timeout=left())
        while True:
            size = next_chunk(max_rows, len(rows))
            chunk = await cur.fetch(size, timeout=left())
            rows.extend(dict(r) for r in chunk)
            if max_rows is not None and len(rows) > max_rows:
                raise too_many_rows(max_rows)  # the transaction ends: the server stops too
            if len(chunk) < size:  # the result is exhausted: no round trip to hear it
                return rows


def build(b: Build) -> PostgresCollector:
    return PostgresCollector(b.params, b.resources, b.max_rows)
