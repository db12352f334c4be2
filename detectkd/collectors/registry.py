"""Collector types by name: the params model each validates against and how to build it.

Adding a source = one module with `Params` and `build`, and one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, model_validator

from detectkd.collectors import clickhouse, csvfile, http, mysql, postgres, sqlite
from detectkd.collectors.base import Collector
from detectkd.collectors.params import NetworkParams
from detectkd.resources import Resources

Builder = Callable[[Any, Resources, str, str], Collector]


@dataclass(frozen=True)
class CollectorType:
    params: type[BaseModel]
    build: Builder


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


def _build_sqlite(params: Any, resources: Resources, ts: str, val: str) -> Collector:
    return sqlite.build(params, resources)


def _build_http(params: Any, resources: Resources, ts: str, val: str) -> Collector:
    return http.build(params, resources, ts, val)


def _build_clickhouse(params: Any, resources: Resources, ts: str, val: str) -> Collector:
    return clickhouse.build(params, resources)


def _build_postgres(params: Any, resources: Resources, ts: str, val: str) -> Collector:
    return postgres.build(params, resources)


def _build_mysql(params: Any, resources: Resources, ts: str, val: str) -> Collector:
    return mysql.build(params, resources)


def _build_csv(params: Any, resources: Resources, ts: str, val: str) -> Collector:
    return csvfile.build(params, ts)


def _build_sql(params: Any, resources: Resources, ts: str, val: str) -> Collector:
    driver = sql_driver(params.connection_string)
    if driver == "sqlite":
        fields = params.model_dump(include=set(sqlite.Params.model_fields), exclude_none=True)
        return sqlite.build(sqlite.Params.model_validate(fields), resources)
    if driver == "postgres":
        return postgres.build(params, resources)
    return mysql.build(params, resources)


COLLECTORS: dict[str, CollectorType] = {
    "sqlite": CollectorType(sqlite.Params, _build_sqlite),
    "http": CollectorType(http.Params, _build_http),
    "sql": CollectorType(SqlParams, _build_sql),
    "clickhouse": CollectorType(clickhouse.Params, _build_clickhouse),
    "postgres": CollectorType(NetworkParams, _build_postgres),
    "mysql": CollectorType(NetworkParams, _build_mysql),
    "csv": CollectorType(csvfile.Params, _build_csv),
}

ALIASES = {"postgresql": "postgres", "mariadb": "mysql"}


def lookup(kind: str) -> CollectorType | None:
    return COLLECTORS.get(ALIASES.get(kind, kind))
