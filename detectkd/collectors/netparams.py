"""Connection settings for network databases: from keys or a connection string.

The resolved `Endpoint` is hashable: metrics with identical settings share
one pool. `describe()` names host, port and database only, never credentials.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from detectkd.collectors.base import Window
from detectkd.collectors.params import NetworkParams
from detectkd.redact import redact_text
from detectkd.resources import Resources
from detectkd.templating import compile_template


@dataclass(frozen=True)
class Endpoint:
    kind: str
    host: str
    port: int
    database: str | None
    user: str | None
    password: str | None
    secure: bool
    verify: bool
    ca_file: str | None
    pool_size: int

    def describe(self) -> str:
        return f"{self.kind} {self.host}:{self.port}/{self.database or ''}"

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.secure:
            return None
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def endpoint(kind: str, p: NetworkParams, default_port: int) -> Endpoint:
    host, port, database, user, password = p.host, p.port, p.database, p.user, p.password
    secure = p.secure
    if p.connection_string:
        url = urlsplit(p.connection_string)
        host = host or url.hostname
        port = port or url.port
        database = database or (unquote(url.path.lstrip("/")) or None)
        user = user or (unquote(url.username) if url.username else None)
        password = password or (unquote(url.password) if url.password else None)
        secure = secure or "sslmode=require" in url.query or "ssl=true" in url.query
    return Endpoint(
        kind=kind,
        host=host or "localhost",
        port=port or default_port,
        database=database,
        user=user,
        password=password,
        secure=secure,
        verify=p.verify,
        ca_file=p.ca_file,
        pool_size=p.pool_size or 5,
    )


class PooledSource:
    """What the pooled SQL collectors share: endpoint, compiled query, timeout, errors."""

    kind = ""
    default_port = 0

    def __init__(self, params: NetworkParams, resources: Resources, max_rows: int | None = None) -> None:
        self._ep = endpoint(self.kind, params, self.default_port)
        self._max_rows = max_rows
        self._query = compile_template(params.query)
        self._timeout = params.timeout.total_seconds()
        self._resources = resources

    def _render(self, window: Window) -> str:
        return self._query.render(**window.template_vars())

    async def close(self) -> None:
        return None


def error_text(exc: BaseException) -> str:
    """One line, credentials redacted, bounded."""
    return redact_text(" ".join(str(exc).split()))[:300] or type(exc).__name__
