"""ClickHouse over HTTP with a failover host list (the source and the store).

Each request goes to the first host in HostOrder's order. When the request
never reached a host (refused, unresolvable, no TCP answer within
CONNECT_TIMEOUT_S) the same request goes to the next host. When a host cut
the request off midway, or did not answer by the caller's deadline, it is not
repeated elsewhere: the caller's operation fails (a source run is retried
whole by the next run from its watermark, a store write by the run's retry)
and the next request starts at another host.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp

from detectkd.collectors.failover import CONNECT_TIMEOUT_S, HostOrder

T = TypeVar("T")

# The request was not sent: safe to send it to the next host.
NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


def session(total_s: float | None = None) -> aiohttp.ClientSession:
    """A session whose TCP connect gives up after CONNECT_TIMEOUT_S (a black-holed host)."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=total_s, sock_connect=CONNECT_TIMEOUT_S))


def hostport(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/")


class ChHosts:
    """The base URLs of one ClickHouse endpoint, in the order to try them."""

    def __init__(self, urls: tuple[str, ...]) -> None:
        self.urls = urls
        self.order = HostOrder(len(urls))

    async def call(
        self, fn: Callable[[str], Awaitable[T]], passed_over: Callable[[float], None] | None = None
    ) -> T:
        """`fn(url)` at the first host that takes the request; ConnectionError when none did.

        `passed_over(seconds)` is told what each host that did not take it cost (a caller's
        deadline can allow for it)."""
        errors: list[str] = []
        loop = asyncio.get_running_loop()
        for i in self.order.order():
            started = loop.time()
            try:
                result = await fn(self.urls[i])
            except NOT_SENT as exc:
                if passed_over is not None:
                    passed_over(loop.time() - started)
                self.order.failed(i)
                why = (
                    "no answer"
                    if isinstance(exc, aiohttp.ConnectionTimeoutError)
                    else "refused or unresolved"
                )
                errors.append(f"{hostport(self.urls[i])} {why} ({type(exc).__name__})")
                continue
            except (aiohttp.ClientError, OSError, asyncio.CancelledError):
                # Cut off, or no answer by the caller's deadline (a partition that still
                # takes TCP connections): the next request starts at another host.
                self.order.failed(i)
                raise
            self.order.ok(i)
            return result
        raise ConnectionError(f"no host could be reached ({'; '.join(errors)})")
