"""Parameter models shared by the SQL-family collectors (DetectK's names)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, model_validator

from detectkd.config.connection import ConnectionParams
from detectkd.config.hosts import parse_hosts, split_url
from detectkd.config.types import Duration, Frozen


class QueryParams(Frozen):
    """What every query-based collector accepts.

    DetectK read `timestamp_column`, `value_column` and `context_columns` from
    inside `params`; they are accepted here as well as beside `params`.
    """

    query: str
    timeout: Duration = timedelta(seconds=30)
    timestamp_column: str | None = None
    value_column: str | None = None
    context_columns: list[str] | None = None
    # DetectK SQLAlchemy pool settings; detectkd sizes pools per profile.
    pool_size: int | None = Field(default=None, ge=1)
    max_overflow: int | None = Field(default=None, ge=0)
    interval: Any = None


class NetworkParams(QueryParams, ConnectionParams):
    """A query against a database server."""


def host_count(p: NetworkParams) -> int:
    if p.host:
        return len(parse_hosts(p.host))
    return len(split_url(p.connection_string).hosts) if p.connection_string else 1


class SingleHostParams(NetworkParams):
    """A server whose driver has no failover (MySQL / MariaDB via aiomysql): one host."""

    @model_validator(mode="after")
    def _one_host(self) -> SingleHostParams:
        if host_count(self) > 1:
            raise ValueError(
                "a host list (failover) is supported for postgres and clickhouse, not mysql: name one host"
            )
        return self
