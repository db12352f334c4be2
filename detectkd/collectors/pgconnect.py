"""asyncpg connections and pools over a failover host list (the source and the store).

asyncpg accepts a host list itself, but its `timeout` covers the whole list:
a first host that black-holes the SYN uses it up and the second host is
never tried. So each host is connected here, in HostOrder's order, with its
own timeout; `target_session_attrs` (from the connection string) is checked
by asyncpg per host, `prefer-standby` as libpq does (a standby, else any).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import asyncpg
import structlog
from asyncpg.exceptions import PostgresConnectionError, TargetServerAttributeNotMatched

from detectkd.collectors.failover import CONNECT_TIMEOUT_S, HostOrder
from detectkd.collectors.netparams import Endpoint, error_text
from detectkd.config.hosts import show

log = structlog.get_logger("detectkd")

# Connecting failed at this host: the next one is tried. (A wrong password or a
# missing database is not among them: libpq stops there too.)
NEXT_HOST = (OSError, TimeoutError, asyncpg.CannotConnectNowError, PostgresConnectionError)


async def connect(
    ep: Endpoint, order: HostOrder, per_host_s: float = CONNECT_TIMEOUT_S, **kwargs: Any
) -> tuple[Any, int]:
    """The first host that answers (and fits target_session_attrs), and its index.

    Raises ConnectionError (an OSError) naming every host and why it was passed over.
    """
    attrs = ep.session_attrs or "any"
    # The URL's other parameters (sslmode, sslrootcert, server settings) as asyncpg reads them.
    dsn = f"postgresql:///?{urlencode(ep.options)}" if ep.options else None
    passes = ["standby", "any"] if attrs == "prefer-standby" else [attrs]
    errors: dict[int, str] = {}
    unreachable: set[int] = set()
    for want in passes:
        for i in order.order():
            if i in unreachable:
                continue  # not tried again in prefer-standby's second pass
            host, port = ep.hosts[i]
            try:
                conn = await asyncpg.connect(
                    dsn,
                    host=host,
                    port=port,
                    user=ep.user,
                    password=ep.password,
                    database=ep.database,
                    ssl=ep.ssl_context(),
                    timeout=per_host_s,
                    target_session_attrs=want,
                    **kwargs,
                )
            except TargetServerAttributeNotMatched:
                errors[i] = f"not {want}"
            except NEXT_HOST as exc:
                order.failed(i)
                unreachable.add(i)
                why = f"no answer in {per_host_s:g}s" if isinstance(exc, TimeoutError) else error_text(exc)
                errors[i] = f"{type(exc).__name__}: {why}"
            else:
                order.ok(i)
                return conn, i
    tried = "; ".join(f"{show((ep.hosts[i],))} {why}" for i, why in errors.items())
    raise ConnectionError(f"no host could be used ({tried})")


class HostPool:
    """An asyncpg pool whose new connections go to the first usable host of the list.

    Connections that landed on a later host are replaced once an earlier one
    may be tried again (HostOrder: RETRY_S after it failed) — the way back.
    """

    def __init__(
        self, ep: Endpoint, min_size: int, max_size: int, settings: dict[str, str] | None = None
    ) -> None:
        self.ep = ep
        # Server settings of every connection, unless the URL sets the same one (it wins).
        self._settings = {k: v for k, v in (settings or {}).items() if k not in dict(ep.options)}
        self.order = HostOrder(len(ep.hosts))
        self.on: int | None = None  # the host index the latest connection went to
        self._timeout = ep.connect_timeout or CONNECT_TIMEOUT_S
        self._sizes = {"min_size": min_size, "max_size": max_size}
        self._pool: Any = None

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(**self._sizes, connect=self._connect)

    async def _connect(self, *_: Any, **kwargs: Any) -> Any:
        passed: dict[str, Any] = {k: kwargs[k] for k in ("connection_class", "record_class") if k in kwargs}
        if not self._settings:
            conn, self.on = await connect(self.ep, self.order, self._timeout, **passed)
            return conn
        try:
            conn, self.on = await connect(
                self.ep, self.order, self._timeout, server_settings=self._settings, **passed
            )
        except ConnectionError as exc:
            if "startup parameter" not in str(exc):
                raise
            # A pooler in front (PgBouncer) refuses startup parameters it does not know (unless
            # its `ignore_startup_parameters` lists them: then it drops them without a word):
            # without them, and said once (tests/integration/test_pgbouncer.py).
            log.warning(
                "postgres: the server refused startup settings, connecting without them",
                settings=sorted(self._settings),
                error=str(exc),
            )
            self._settings = {}
            conn, self.on = await connect(self.ep, self.order, self._timeout, **passed)
        return conn

    def connect_budget(self) -> float:
        """What passing over the hosts before the last may take at worst (each timing out)."""
        return self._timeout * (len(self.ep.hosts) - 1)

    @contextlib.asynccontextmanager
    async def acquire(self, wait_s: float | None = None) -> AsyncIterator[Any]:
        if self.on and self.order.better_than(self.on):
            self.on = None
            await self._pool.expire_connections()
        async with self._pool.acquire(timeout=wait_s) as conn:
            yield conn

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
