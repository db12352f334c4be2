"""Collector types by name: the params model each validates against and how to build it.

Adding a source = one module with `Params` and `build(b: Build) -> Collector`, and one
line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, model_validator

from detectkd.collectors import clickhouse, csvfile, http, mysql, postgres, prometheus, sqlite
from detectkd.collectors.base import Build, Collector
from detectkd.collectors.params import NetworkParams, SingleHostParams, host_count
from detectkd.resources import Resources


@dataclass(frozen=True)
class CollectorType:
    params: type[BaseModel]
    factory: Callable[[Build], Collector]

    def build(
        self,
        params: Any,
        resources: Resources,
        timestamp_column: str = "period_time",
        value_column: str = "value",
        max_rows: int | None = None,
    ) -> Collector:
        return self.factory(Build(params, resources, timestamp_column, value_column, max_rows))


class SqlParams(NetworkParams):
    """DetectK's `type: sql`: the driver comes from the connection string's scheme."""

    @model_validator(mode="after")
    def _needs_url(self) -> SqlParams:
        if not self.connection_string:
            raise ValueError("type `sql` needs a `connection_string` (postgresql://, mysql://, sqlite:///)")
        if sql_driver(self.connection_string) is None:
            raise ValueError(
                "connection_string must start with postgresql://, postgres://, mysql:// or sqlite:///"
            )
        if sql_driver(self.connection_string) == "mysql" and host_count(self) > 1:
            raise ValueError("a host list (failover) works with postgresql://, not mysql://: name one host")
        return self


def sql_driver(url: str) -> str | None:
    scheme = url.split(":", 1)[0].lower()
    return {
        "postgresql": "postgres",
        "postgres": "postgres",
        "mysql": "mysql",
        "mariadb": "mysql",
        "sqlite": "sqlite",
    }.get(scheme.split("+", 1)[0])


def _build_sql(b: Build) -> Collector:
    """DetectK's `type: sql`: routed by the connection string's scheme."""
    driver = sql_driver(b.params.connection_string)
    if driver == "sqlite":
        fields = b.params.model_dump(include=set(sqlite.Params.model_fields), exclude_none=True)
        return sqlite.build(replace(b, params=sqlite.Params.model_validate(fields)))
    return postgres.build(b) if driver == "postgres" else mysql.build(b)


COLLECTORS: dict[str, CollectorType] = {
    "sqlite": CollectorType(sqlite.Params, sqlite.build),
    "http": CollectorType(http.Params, http.build),
    "sql": CollectorType(SqlParams, _build_sql),
    "clickhouse": CollectorType(clickhouse.Params, clickhouse.build),
    "postgres": CollectorType(NetworkParams, postgres.build),
    "mysql": CollectorType(SingleHostParams, mysql.build),
    "csv": CollectorType(csvfile.Params, csvfile.build),
    "prometheus": CollectorType(prometheus.Params, prometheus.build),
}

ALIASES = {"postgresql": "postgres", "mariadb": "mysql", "victoriametrics": "prometheus"}


def lookup(kind: str) -> CollectorType | None:
    return COLLECTORS.get(ALIASES.get(kind, kind))
