"""PostgreSQL source via asyncpg.

One pool per identical connection settings, shared by every metric that uses
them; its size (`pool_size`, default 5) is the per-source concurrency limit.
The per-query timeout is asyncpg's: on expiry the query is cancelled on the
server, not just abandoned. A host list fails over (collectors/pgconnect.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from detectkd.collectors.base import Build, Row, Window, next_chunk, too_many_rows
from detectkd.collectors.netparams import Endpoint, PooledSource, error_text
from detectkd.collectors.pgconnect import HostPool
from detectkd.errors import CollectError


async def _create(ep: Endpoint) -> HostPool:
    pool = HostPool(ep, min_size=0, max_size=ep.pool_size)
    await pool.open()
    return pool


async def _close(pool: HostPool) -> None:
    await pool.close()


class PostgresCollector(PooledSource):
    kind = "postgres"
    default_port = 5432

    async def collect(self, window: Window) -> list[Row]:
        sql = self._render(window)
        where = self._ep.describe()
        try:
            pool = await self._resources.pool(self._ep, lambda: _create(self._ep), _close)
            async with pool.acquire(self._timeout + pool.connect_budget()) as conn:
                return await _fetch(conn, sql, self._timeout, self._max_rows)
        except TimeoutError:
            raise CollectError(f"{where}: query timed out after {self._timeout:g}s (cancelled)") from None
        except asyncpg.PostgresError as exc:
            raise CollectError(f"{where}: {type(exc).__name__}: {error_text(exc)}") from None
        except (OSError, asyncpg.InterfaceError) as exc:
            self._resources.drop_pool(self._ep)
            raise CollectError(f"{where}: cannot connect: {error_text(exc)}") from None


CLEANUP_S = 2.0  # a failed read's ROLLBACK, before the connection is given up


async def _fetch(conn: Any, sql: str, budget_s: float, max_rows: int | None) -> list[Row]:
    """The rows of `sql`, read by a cursor in chunks (asyncpg's cursors live in a
    transaction), so a result above `max_rows` is refused after max_rows + 1 rows, never
    held whole. Every round trip (BEGIN, the query, each chunk) gets what is left of
    `budget_s`; the ROLLBACK after a failure at most `CLEANUP_S`, then the connection is
    terminated: a host that stopped answering (a partition) cannot hold the run."""
    deadline = time.monotonic() + budget_s

    def left() -> float:
        return max(deadline - time.monotonic(), 0.001)

    rows: list[Row] = []
    tr = conn.transaction(readonly=True)
    try:
        async with asyncio.timeout(left()):  # not `wait_for`: see `_end`
            await tr.start()
        cur = await conn.cursor(sql, timeout=left())
        while True:
            size = next_chunk(max_rows, len(rows))
            chunk = await cur.fetch(size, timeout=left())
            rows.extend(dict(r) for r in chunk)
            if max_rows is not None and len(rows) > max_rows:
                raise too_many_rows(max_rows)
            if len(chunk) < size:  # the result is exhausted: no round trip to hear it
                break
    except BaseException:
        await _end(conn, tr, CLEANUP_S)
        raise
    await _end(conn, tr, left())  # read only: nothing to keep
    return rows


async def _end(conn: Any, tr: Any, wait_s: float) -> None:
    """ROLLBACK (after a timeout asyncpg has asked the server to cancel the query first);
    a connection that does not answer in `wait_s` is terminated rather than waited for, and
    so is one whose ROLLBACK was cancelled (the cancellation goes on: the run stops).
    `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` returns the result of an
    awaitable that completed as the caller was cancelled, losing the cancellation (cpython
    gh-86296), and a run cancelled by a reload or a shutdown went on to commit."""
    try:
        async with asyncio.timeout(wait_s):
            await tr.rollback()
    except Exception:  # timed out, or the connection broke
        conn.terminate()
    except BaseException:  # cancelled: the transaction's state is not known
        conn.terminate()
        raise


def build(b: Build) -> PostgresCollector:
    return PostgresCollector(b.params, b.resources, b.max_rows)
