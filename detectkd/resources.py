"""Things shared by many metrics: the HTTP client session and thread pools.

One instance lives for the daemon's lifetime (or one `check` run); metrics
borrow from it and never close what they borrowed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp

if TYPE_CHECKING:
    from detectkd.telemetry import Telemetry

T = TypeVar("T")


class Resources:
    def __init__(self, sqlite_threads: int = 4) -> None:
        self._http: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self.sqlite_pool = ThreadPoolExecutor(sqlite_threads, thread_name_prefix="dtk-src-sqlite")
        self._pools: dict[Hashable, Any] = {}
        self._pool_locks: dict[Hashable, asyncio.Lock] = {}
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self.telemetry: Telemetry | None = None  # the daemon's, for channels' own metrics

    async def pool(
        self,
        key: Hashable,
        create: Callable[[], Awaitable[T]],
        close: Callable[[T], Awaitable[None]],
    ) -> T:
        """One connection pool per key (identical connection settings), created on first use.

        A failed creation is not cached: the next call tries again.
        """
        existing = self._pools.get(key)
        if existing is not None:
            return existing  # type: ignore[no-any-return]
        lock = self._pool_locks.setdefault(key, asyncio.Lock())
        async with lock:
            existing = self._pools.get(key)
            if existing is not None:
                return existing  # type: ignore[no-any-return]
            created = await create()
            self._pools[key] = created
            self._closers.append(lambda: close(created))
            return created

    def drop_pool(self, key: Hashable) -> None:
        """Forget a pool (e.g. its server went away) so the next use reconnects."""
        self._pools.pop(key, None)

    async def http(self) -> aiohttp.ClientSession:
        async with self._lock:
            if self._http is None or self._http.closed:
                connector = aiohttp.TCPConnector(limit=100, limit_per_host=20)
                self._http = aiohttp.ClientSession(connector=connector)
            return self._http

    async def close(self) -> None:
        for closer in self._closers:
            # Closing a broken pool must not stop the others.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(closer(), 5)
        self._closers.clear()
        self._pools.clear()
        if self._http is not None:
            await self._http.close()
        self.sqlite_pool.shutdown(wait=False, cancel_futures=True)
