"""Things shared by many metrics: the HTTP client session and thread pools.

One instance lives for the daemon's lifetime (or one `check` run); metrics
borrow from it and never close what they borrowed.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import aiohttp


class Resources:
    def __init__(self, sqlite_threads: int = 4) -> None:
        self._http: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self.sqlite_pool = ThreadPoolExecutor(sqlite_threads, thread_name_prefix="dtk-src-sqlite")

    async def http(self) -> aiohttp.ClientSession:
        async with self._lock:
            if self._http is None or self._http.closed:
                connector = aiohttp.TCPConnector(limit=100, limit_per_host=20)
                self._http = aiohttp.ClientSession(connector=connector)
            return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        self.sqlite_pool.shutdown(wait=False, cancel_futures=True)
