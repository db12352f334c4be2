"""MySQL / MariaDB source via aiomysql.

One pool per identical connection settings (size `pool_size`, default 5).
On timeout the query is killed on the server (`KILL QUERY <thread id>` from a
separate connection), then the error is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiomysql
import pymysql

from detectkd.collectors.base import Build, Row, Window, next_chunk, too_many_rows
from detectkd.collectors.netparams import Endpoint, PooledSource, error_text
from detectkd.errors import CollectError

CONNECT_TIMEOUT_S = 10


def _kwargs(ep: Endpoint) -> dict[str, Any]:
    return {
        "host": ep.host,
        "port": ep.port,
        "user": ep.user or "root",
        "password": ep.password or "",
        "db": ep.database,
        "ssl": ep.ssl_context(),
        "connect_timeout": CONNECT_TIMEOUT_S,
        "autocommit": True,
    }


async def _create(ep: Endpoint) -> Any:
    return await aiomysql.create_pool(minsize=0, maxsize=ep.pool_size, **_kwargs(ep))


async def _close(pool: Any) -> None:
    pool.close()
    await pool.wait_closed()


async def _kill(ep: Endpoint, thread_id: int) -> None:
    with contextlib.suppress(Exception):
        conn = await aiomysql.connect(**_kwargs(ep))
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"KILL QUERY {int(thread_id)}")
        finally:
            conn.close()


class MysqlCollector(PooledSource):
    kind = "mysql"
    default_port = 3306

    async def collect(self, window: Window) -> list[Row]:
        sql = self._render(window)
        where = self._ep.describe()
        try:
            pool = await self._resources.pool(self._ep, lambda: _create(self._ep), _close)
            async with pool.acquire() as conn:
                read = False
                try:
                    async with asyncio.timeout(self._timeout):
                        rows = await _fetch(conn, sql, self._max_rows)
                    read = True
                    return rows
                except (TimeoutError, CollectError) as exc:  # stopped mid-result: kill the query
                    await _kill(self._ep, conn.thread_id())
                    if isinstance(exc, CollectError):
                        raise
                    raise CollectError(
                        f"{where}: query timed out after {self._timeout:g}s (killed)"
                    ) from None
                finally:
                    if not read:  # a result left half read (failed, cancelled): never reused
                        conn.close()
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] in (2003, 2006, 2013):
                self._resources.drop_pool(self._ep)
                raise CollectError(f"{where}: cannot connect: {error_text(exc)}") from None
            raise CollectError(f"{where}: {error_text(exc)}") from None
        except pymysql.err.MySQLError as exc:
            raise CollectError(f"{where}: {error_text(exc)}") from None
        except OSError as exc:
            self._resources.drop_pool(self._ep)
            raise CollectError(f"{where}: cannot connect: {error_text(exc)}") from None


async def _fetch(conn: Any, sql: str, max_rows: int | None) -> list[Row]:
    """The rows of `sql`, streamed from the server (an unbuffered cursor) in chunks, so a
    result above `max_rows` is refused after max_rows + 1 rows, never held whole."""
    cur = await conn.cursor(aiomysql.SSDictCursor)
    rows: list[Row] = []
    await cur.execute(sql)
    while True:
        size = next_chunk(max_rows, len(rows))
        chunk = await cur.fetchmany(size)
        rows.extend(chunk)
        if max_rows is not None and len(rows) > max_rows:
            raise too_many_rows(max_rows)  # the caller kills the query and drops the connection
        if len(chunk) < size:
            await cur.close()
            return rows


def build(b: Build) -> MysqlCollector:
    return MysqlCollector(b.params, b.resources, b.max_rows)
