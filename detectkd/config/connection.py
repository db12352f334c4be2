"""How to reach a database server: shared by SQL collectors, stores and settings."""

from __future__ import annotations

from pydantic import Field, field_validator

from detectkd.config.hosts import check_connection_string, parse_hosts
from detectkd.config.types import Frozen


class ConnectionParams(Frozen):
    """How to reach a database server: keys, or a connection string (keys win).

    `host` may be a failover list (`"h1,h2:5433"`, see config/hosts.py), and so may
    the host part of `connection_string` (`postgresql://u@h1,h2/db`).
    """

    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    database: str | None = None
    user: str | None = None
    password: str | None = None
    connection_string: str | None = None
    secure: bool = False
    verify: bool = True
    ca_file: str | None = None

    @field_validator("host")
    @classmethod
    def _host_list(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hosts(value)
        return value

    @field_validator("connection_string")
    @classmethod
    def _url_hosts(cls, value: str | None) -> str | None:
        if value is not None:
            check_connection_string(value)
        return value


class StoreParams(ConnectionParams):
    http_port: int | None = None  # ClickHouse
    path: str | None = None  # SQLite
    pool_size: int | None = Field(default=None, ge=1)
