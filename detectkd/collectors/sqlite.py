"""SQLite source (`type: sqlite`, or DetectK's `type: sql` with `sqlite:///path`).

Queries run on a shared thread pool with one read-only connection per thread
and database file. The timeout is enforced inside SQLite through a progress
handler, so a slow query is really interrupted, not just abandoned. Several
windows (a warm-up's periods) are asked in one hop to the pool, each still its
own query with its own timeout: the hop, not the query, was most of a one-row
query's cost.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import model_validator

from detectkd.collectors.base import Build, Row, Window, next_chunk, too_many_rows
from detectkd.collectors.params import QueryParams
from detectkd.errors import CollectError
from detectkd.resources import Resources
from detectkd.templating import compile_query

_local = threading.local()


class Params(QueryParams):
    database: str | None = None
    connection_string: str | None = None

    @model_validator(mode="after")
    def _where(self) -> Params:
        if not self.database and not self.connection_string:
            raise ValueError("sqlite needs `database` (a file path) or `connection_string`")
        if self.connection_string and not self.connection_string.startswith("sqlite:///"):
            raise ValueError("sqlite connection_string must look like sqlite:///path/to/file.db")
        return self

    def path(self) -> str:
        if self.database:
            return self.database
        assert self.connection_string is not None
        return self.connection_string[len("sqlite:///") :]


def _connection(path: str) -> sqlite3.Connection:
    cache: dict[str, sqlite3.Connection] | None = getattr(_local, "conns", None)
    if cache is None:
        cache = _local.conns = {}
    conn = cache.get(path)
    if conn is None:
        uri = f"{Path(path).absolute().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=True)
        cache[path] = conn
    return conn


def _run(path: str, sql: str, timeout_s: float, max_rows: int | None) -> list[Row]:
    try:
        conn = _connection(path)
    except sqlite3.Error as exc:
        raise CollectError(f"cannot open sqlite database {path}: {exc}") from None
    deadline = time.monotonic() + timeout_s
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
    try:
        cur = conn.execute(sql)
        names = [d[0] for d in cur.description or ()]
        rows: list[Row] = []
        while True:  # at most max_rows + 1 rows read
            size = next_chunk(max_rows, len(rows))
            chunk = cur.fetchmany(size)
            rows.extend(dict(zip(names, r, strict=True)) for r in chunk)
            if max_rows is not None and len(rows) > max_rows:
                cur.close()  # the rest of the result is never computed
                raise too_many_rows(max_rows)
            if len(chunk) < size:
                break
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            raise CollectError(f"sqlite query timed out after {timeout_s:g}s") from None
        raise CollectError(f"sqlite query failed: {exc}") from None
    except sqlite3.Error as exc:
        raise CollectError(f"sqlite query failed: {exc}") from None
    finally:
        conn.set_progress_handler(None, 0)
    return rows


def _run_many(
    path: str, sqls: Sequence[str], timeout_s: float, max_rows: int | None, stop: threading.Event
) -> list[list[Row]]:
    """Each query in turn; none is started once `stop` is set (the caller was cancelled or
    gave up: a shutdown waits for one query at most, as with one query per hop)."""
    out = []
    for sql in sqls:
        if stop.is_set():
            raise CollectError("sqlite queries abandoned")
        out.append(_run(path, sql, timeout_s, max_rows))
    return out


class SqliteCollector:
    def __init__(self, params: Params, resources: Resources, max_rows: int | None = None) -> None:
        self._path = params.path()
        self._query = compile_query(params.query)
        self._timeout = params.timeout.total_seconds()
        self._pool = resources.sqlite_pool
        self._max_rows = max_rows

    async def collect(self, window: Window) -> list[Row]:
        return (await self._ask([window]))[0]

    async def collect_many(self, windows: Sequence[Window]) -> list[list[Row]]:
        """One query per window, all in one hop to the pool (`collectors.base.ManyWindows`)."""
        return await self._ask(windows)

    async def _ask(self, windows: Sequence[Window]) -> list[list[Row]]:
        sqls = [self._query.render(w.template_vars(self._query.names)) for w in windows]
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        future = loop.run_in_executor(
            self._pool, _run_many, self._path, sqls, self._timeout, self._max_rows, stop
        )
        try:
            # Backstop in case the thread pool itself is saturated. Not `wait_for`: on Python
            # 3.11 it returns the result of a query that finished just as the caller was
            # cancelled, and the cancellation is lost (cpython gh-86296); a history job then
            # went on loading for minutes after SIGTERM (issue 28).
            async with asyncio.timeout(self._timeout * len(sqls) + 5):
                return await future
        except TimeoutError:
            raise CollectError(f"sqlite query timed out after {self._timeout:g}s") from None
        finally:
            stop.set()  # cancelled or timed out: the queries not started yet are not

    async def close(self) -> None:
        return None


def build(b: Build) -> SqliteCollector:
    return SqliteCollector(b.params, b.resources, b.max_rows)
