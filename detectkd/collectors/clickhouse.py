"""ClickHouse source over HTTP (aiochclient).

DetectK's files name ClickHouse's *native* port (9000, or 9440 with TLS);
detectkd speaks HTTP, so those two ports map to 8123 / 8443. Any other port
is used as given; `http_port` overrides the mapping. `detectkd validate`
prints the mapping it applied.

Timeouts are enforced twice: `max_execution_time` makes the server stop the
query itself, and on the client deadline the query is killed by its id.
Concurrency per server is limited to `pool_size` (default 5) queries.
`host: "ch1,ch2,ch3"` (or a host list in the connection string) fails over
between the hosts (collectors/chhosts.py); every host's port is mapped alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiochclient import ChClient, ChClientError

from detectkd.collectors.base import Build, Row, Window, too_many_rows
from detectkd.collectors.chhosts import ChHosts, hostport
from detectkd.collectors.chhosts import session as ch_session
from detectkd.collectors.netparams import error_text
from detectkd.collectors.params import NetworkParams
from detectkd.config.hosts import HostPort, parse_hosts, split_url
from detectkd.errors import CollectError
from detectkd.redact import redact_text
from detectkd.resources import Resources
from detectkd.templating import compile_query

NATIVE_TO_HTTP = {9000: 8123, 9440: 8443}
KILL_TIMEOUT_S = 5.0  # a KILL QUERY to a host that stopped answering gives up after this


class Params(NetworkParams):
    http_port: int | None = None


@dataclass(frozen=True)
class ChEndpoint:
    urls: tuple[str, ...]  # a failover list, in the order to try
    user: str | None
    password: str | None
    database: str
    pool_size: int

    @property
    def url(self) -> str:
        return self.urls[0]

    def describe(self) -> str:
        return f"clickhouse {','.join(hostport(u) for u in self.urls)}/{self.database}"


def http_port(p: Params) -> tuple[int, str | None]:
    """The HTTP port to use, and a note when a native port was mapped (first listed host)."""
    hosts = parse_hosts(p.host) if p.host else ()
    return _http_port(p, hosts[0].port if hosts else None)


def _http_port(p: Params, own: int | None) -> tuple[int, str | None]:
    if p.http_port:
        return p.http_port, None
    port = own or p.port or (8443 if p.secure else 8123)
    if port in NATIVE_TO_HTTP:
        mapped = NATIVE_TO_HTTP[port]
        return mapped, (
            f"port {port} is ClickHouse's native protocol; detectkd uses HTTP on {mapped} "
            "(set http_port to choose another)"
        )
    return port, None


_ALIAS = re.compile(r"([\w.]+\([^()]*\)|[\w.]+)\s+as\s+(\w+)", re.IGNORECASE)
_WHERE = re.compile(r"\bwhere\b(.*?)(?:\bgroup\s+by\b|\border\s+by\b|\bhaving\b|\blimit\b|$)", re.I | re.S)


def shadowed_alias(query: str) -> str | None:
    """ClickHouse sees SELECT aliases in WHERE: `now() AS timestamp ... WHERE timestamp >= ...`
    (as in DetectK's examples) compares now(), so the result no longer depends on the period."""
    where = _WHERE.search(query)
    if where is None:
        return None
    for expr, name in _ALIAS.findall(query[: where.start()]):
        if expr.lower() != name.lower() and re.search(rf"\b{re.escape(name)}\b", where.group(1)):
            return (
                f"the alias {name!r} ({expr}) is also a name in WHERE: ClickHouse reads the alias "
                f"there, so the filter compares {expr}, not the column; rename the alias"
            )
    return None


def ch_endpoint(p: Params) -> ChEndpoint:
    """Keys win over the connection string (clickhouse://user:pass@h1,h2:9000/db)."""
    url = split_url(p.connection_string) if p.connection_string else None
    listed = parse_hosts(p.host) if p.host else (url.hosts if url else ())
    secure = p.secure or (url is not None and url.scheme in ("https", "clickhouses"))
    q = p.model_copy(update={"secure": secure})
    scheme = "https" if secure else "http"
    hosts = listed or (HostPort("localhost", None),)
    return ChEndpoint(
        urls=tuple(f"{scheme}://{_bracket(h)}:{_http_port(q, own)[0]}/" for h, own in hosts),
        user=p.user or (url.user if url else None),
        password=p.password or (url.password if url else None),
        database=p.database or (url.database if url else None) or "default",
        pool_size=p.pool_size or 5,
    )


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _semaphore(size: int) -> asyncio.Semaphore:
    return asyncio.Semaphore(size)


async def _noop(_: Any) -> None:
    return None


async def _session() -> aiohttp.ClientSession:
    return ch_session()


async def _close_session(s: aiohttp.ClientSession) -> None:
    await s.close()


async def _hosts(urls: tuple[str, ...]) -> ChHosts:
    return ChHosts(urls)


class ClickhouseCollector:
    def __init__(self, params: Params, resources: Resources, max_rows: int | None = None) -> None:
        self._ep = ch_endpoint(params)
        self._max_rows = max_rows
        self._verify = params.verify
        self._query = compile_query(params.query)
        self._timeout = params.timeout.total_seconds()
        self._resources = resources

    def _client(self, session: aiohttp.ClientSession, url: str, **settings: Any) -> ChClient:
        ep = self._ep
        return ChClient(
            session, url=url, user=ep.user, password=ep.password, database=ep.database, **settings
        )

    async def collect(self, window: Window) -> list[Row]:
        sql = self._query.render(window.template_vars(self._query.names))
        where = self._ep.describe()
        session = await self._resources.pool("clickhouse-session", _session, _close_session)
        limit = await self._resources.pool(
            ("clickhouse-slots", self._ep), lambda: _semaphore(self._ep.pool_size), _noop
        )
        hosts = await self._resources.pool(
            ("clickhouse-hosts", self._ep), lambda: _hosts(self._ep.urls), _noop
        )
        query_id = f"detectkd-{uuid.uuid4().hex}"
        sent_to: list[str] = []

        async def fetch(url: str) -> list[Row]:
            sent_to.append(url)
            client = self._client(session, url, max_execution_time=max(1, int(self._timeout)))
            return await self._read(client, sql, query_id)

        async with limit:
            try:
                # The server stops the query at max_execution_time; the client's deadline is
                # moved by what hosts passed over cost (a black-holed first host's connect timeout).
                async with asyncio.timeout(self._timeout) as deadline:

                    def allow(spent: float) -> None:
                        deadline.reschedule((deadline.when() or 0.0) + spent)

                    rows: list[Row] = await hosts.call(fetch, allow)
                    return rows
            except CollectError:  # above max_rows: the rest is not read, the query is killed
                await self._kill(session, sent_to[-1] if sent_to else self._ep.url, query_id)
                raise
            except TimeoutError:
                await self._kill(session, sent_to[-1] if sent_to else self._ep.url, query_id)
                raise CollectError(f"{where}: query timed out after {self._timeout:g}s (killed)") from None
            except ChClientError as exc:
                raise CollectError(f"{where}: {_first_line(exc)}") from None
            except (aiohttp.ClientError, OSError) as exc:
                raise CollectError(f"{where}: cannot connect: {error_text(exc)}") from None

    async def _read(self, client: ChClient, sql: str, query_id: str) -> list[Row]:
        """The rows as they stream in, so a result above `max_rows` is refused after
        max_rows + 1 rows, never held whole."""
        rows: list[Row] = []
        limit = self._max_rows
        async with contextlib.aclosing(client.iterate(sql, query_id=query_id)) as records:
            async for r in records:
                rows.append(dict(r.items()))
                if limit is not None and len(rows) > limit:
                    raise too_many_rows(limit)
        return rows

    async def _kill(self, session: aiohttp.ClientSession, url: str, query_id: str) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(KILL_TIMEOUT_S):
                await self._client(session, url).execute(f"KILL QUERY WHERE query_id = '{query_id}' ASYNC")

    async def close(self) -> None:
        return None


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    # ClickHouse errors repeat the query and a stack trace: keep the reason.
    for cut in (", Stack trace", " (version"):
        if cut in text:
            text = text.split(cut, 1)[0]
    return redact_text(text)[:300]


def build(b: Build) -> ClickhouseCollector:
    return ClickhouseCollector(b.params, b.resources, b.max_rows)
