"""Parameter models shared by the SQL-family collectors (DetectK's names)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field

from detectkd.config.connection import ConnectionParams
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
