"""PostgreSQL source via asyncpg.

One pool per identical connection settings, shared by every metric that uses
them; its size (`pool_size`, default 5) is the per-source concurrency limit.
The per-query timeout is asyncpg's: on expiry the query is cancelled on the
server, not just abandoned. A host list fails over (collectors/pgconnect.py).
"""

from __future__ import annotations

import asyncpg

from detectkd.collectors.base import Build, Row, Window
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
                records = await conn.fetch(sql, timeout=self._timeout)
        except TimeoutError:
            raise CollectError(f"{where}: query timed out after {self._timeout:g}s (cancelled)") from None
        except asyncpg.PostgresError as exc:
            raise CollectError(f"{where}: {type(exc).__name__}: {error_text(exc)}") from None
        except (OSError, asyncpg.InterfaceError) as exc:
            self._resources.drop_pool(self._ep)
            raise CollectError(f"{where}: cannot connect: {error_text(exc)}") from None
        return [dict(r) for r in records]


def build(b: Build) -> PostgresCollector:
    return PostgresCollector(b.params, b.resources)
