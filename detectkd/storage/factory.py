"""Build a store from settings or a metric's `storage:` block.

Kinds: `sqlite` (a file), `postgres`, `clickhouse`. DetectK's `type: sql`
picks by `connection_string` scheme. ClickHouse connection keys map native
ports to HTTP exactly as the ClickHouse collector does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path
from typing import Any

from pydantic import Field

from detectkd.collectors.params import ConnectionParams
from detectkd.storage.base import Store


class StoreParams(ConnectionParams):
    http_port: int | None = None  # ClickHouse
    path: str | None = None  # SQLite
    pool_size: int | None = Field(default=None, ge=1)


KINDS = ("sqlite", "postgres", "clickhouse")
_ALIASES = {"postgresql": "postgres", "sqlite3": "sqlite"}


def resolve_kind(kind: str | None, params: StoreParams) -> str:
    """The backend for a storage block, or ValueError with what is accepted."""
    if kind in (None, "sql"):
        url = params.connection_string or ""
        scheme = url.split(":", 1)[0].lower().split("+", 1)[0]
        if scheme in ("postgres", "postgresql"):
            return "postgres"
        if scheme in ("clickhouse", "clickhouses"):
            return "clickhouse"
        if scheme == "sqlite" or (kind is None and params.path):
            return "sqlite"
        if scheme in ("mysql", "mariadb"):
            raise ValueError("MySQL is a source, not a store: use postgres, clickhouse or sqlite for storage")
        raise ValueError("storage needs a type (sqlite, postgres, clickhouse) or a connection_string")
    kind = _ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise ValueError(f"unknown storage type {kind!r}; known: {', '.join(KINDS)}")
    return kind


def store_key(kind: str, params: StoreParams) -> Hashable:
    return (kind, params.model_dump_json())


def build_store(kind: str, params: StoreParams) -> Store:
    if kind == "sqlite":
        from detectkd.storage.sqlite import SqliteStore

        path = params.path or (params.connection_string or "")[len("sqlite:///") :]
        return SqliteStore(Path(path))
    if kind == "postgres":
        from detectkd.storage.postgres import PostgresStore

        connect: dict[str, Any] = {
            k: v
            for k, v in {
                "host": params.host,
                "port": params.port,
                "database": params.database,
                "user": params.user,
                "password": params.password,
            }.items()
            if v is not None
        }
        return PostgresStore(params.connection_string, **connect)
    from detectkd.collectors.clickhouse import Params as ChParams
    from detectkd.collectors.clickhouse import ch_endpoint
    from detectkd.storage.clickhouse import ClickhouseStore

    fields = params.model_dump(exclude={"path"}, exclude_none=True)
    ep = ch_endpoint(ChParams.model_validate({**fields, "query": ""}))
    database = ep.database if (params.database or params.connection_string) else "detectk"
    return ClickhouseStore(ep.url, database=database, user=ep.user, password=ep.password)


class DataStores:
    """Opened-on-first-use stores for metrics with their own `storage:` block.

    A store that fails to open is not kept: the run fails with StorageError
    and the next run tries again (a dead ClickHouse does not wedge a metric).
    """

    def __init__(self) -> None:
        self._stores: dict[Hashable, Store] = {}
        self._lock: asyncio.Lock | None = None

    def getter(
        self, enabled: bool, kind: str | None, raw: dict[str, Any]
    ) -> Callable[[], Awaitable[Store]] | None:
        if not enabled or kind is None:
            return None
        params = StoreParams.model_validate(raw)
        key = store_key(kind, params)

        async def get() -> Store:
            existing = self._stores.get(key)
            if existing is not None:
                return existing
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                existing = self._stores.get(key)
                if existing is None:
                    candidate = build_store(kind, params)
                    await candidate.open()
                    self._stores[key] = existing = candidate
                return existing

        return get

    async def close(self) -> None:
        for store in self._stores.values():
            await store.close()
        self._stores.clear()
