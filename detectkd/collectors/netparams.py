"""Connection settings for network databases: from keys or a connection string.

The resolved `Endpoint` is hashable: metrics with identical settings share
one pool. `describe()` names host, port and database only, never credentials.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from detectkd.collectors.params import NetworkParams


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
