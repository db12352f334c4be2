"""Connection settings for network databases: from keys or a connection string.

The resolved `Endpoint` is hashable: metrics with identical settings share
one pool. `describe()` names the hosts, ports and database only, never
credentials. `hosts` holds a failover list in the order to try (config/hosts.py).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from detectkd.collectors.base import Window
from detectkd.collectors.params import NetworkParams
from detectkd.config.connection import ConnectionParams
from detectkd.config.hosts import UrlParts, parse_hosts, show, split_url
from detectkd.redact import redact_text
from detectkd.resources import Resources
from detectkd.templating import compile_query


@dataclass(frozen=True)
class Endpoint:
    kind: str
    hosts: tuple[tuple[str, int], ...]
    database: str | None
    user: str | None
    password: str | None
    secure: bool
    verify: bool
    ca_file: str | None
    pool_size: int
    # From a PostgreSQL connection string's query: target_session_attrs, connect_timeout
    # (seconds, per host); the rest (sslmode, sslrootcert, passfile, server settings ...)
    # is handed to asyncpg as the URL's query, which reads it as libpq does.
    session_attrs: str | None = None
    connect_timeout: float | None = None
    options: tuple[tuple[str, str], ...] = ()

    @property
    def host(self) -> str:
        return self.hosts[0][0]

    @property
    def port(self) -> int:
        return self.hosts[0][1]

    def describe(self) -> str:
        return f"{self.kind} {show(self.hosts)}/{self.database or ''}"

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.secure:
            return None
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def endpoint(kind: str, p: ConnectionParams, default_port: int, pool_size: int | None = None) -> Endpoint:
    """Keys win over the connection string; an entry's own port over `port`, over the default."""
    url = split_url(p.connection_string) if p.connection_string else UrlParts("")
    listed = parse_hosts(p.host) if p.host else url.hosts
    port = p.port or default_port
    hosts = tuple((h, own or port) for h, own in listed) or (("localhost", port),)
    query = dict(url.query)
    sslmode = query.get("sslmode") if kind == "postgres" else query.pop("sslmode", None)
    secure = p.secure or query.pop("ssl", None) == "true" or (kind != "postgres" and sslmode == "require")
    timeout = query.pop("connect_timeout", None)
    return Endpoint(
        kind=kind,
        hosts=hosts,
        database=p.database or url.database,
        user=p.user or url.user,
        password=p.password or url.password,
        secure=secure,
        verify=p.verify,
        ca_file=p.ca_file,
        pool_size=pool_size or getattr(p, "pool_size", None) or 5,
        session_attrs=query.pop("target_session_attrs", None),
        connect_timeout=float(timeout) if timeout else None,
        options=tuple(sorted(query.items())),
    )


class PooledSource:
    """What the pooled SQL collectors share: endpoint, compiled query, timeout, errors."""

    kind = ""
    default_port = 0

    def __init__(self, params: NetworkParams, resources: Resources, max_rows: int | None = None) -> None:
        self._ep = endpoint(self.kind, params, self.default_port)
        self._max_rows = max_rows
        self._query = compile_query(params.query)
        self._timeout = params.timeout.total_seconds()
        self._resources = resources

    def _render(self, window: Window) -> str:
        return self._query.render(window.template_vars(self._query.names))

    async def close(self) -> None:
        return None


def error_text(exc: BaseException) -> str:
    """One line, credentials redacted, bounded."""
    return redact_text(" ".join(str(exc).split()))[:300] or type(exc).__name__
