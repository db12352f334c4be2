"""How to reach a database server: shared by SQL collectors, stores and settings."""

from __future__ import annotations

from pydantic import Field

from detectkd.config.types import Frozen


class ConnectionParams(Frozen):
    """How to reach a database server: keys, or a connection string (keys win)."""

    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None
    password: str | None = None
    connection_string: str | None = None
    secure: bool = False
    verify: bool = True
    ca_file: str | None = None


class StoreParams(ConnectionParams):
    http_port: int | None = None  # ClickHouse
    path: str | None = None  # SQLite
    pool_size: int | None = Field(default=None, ge=1)
