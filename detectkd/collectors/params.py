"""Parameter models shared by the SQL-family collectors (DetectK's names)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field

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


class NetworkParams(QueryParams, ConnectionParams):
    """A query against a database server."""
