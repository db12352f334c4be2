"""Build a store from settings or a metric's `storage:` block.

Kinds: `sqlite` (a file), `postgres`, `clickhouse`. DetectK's `type: sql`
picks by `connection_string` scheme. ClickHouse connection keys map native
ports to HTTP exactly as the ClickHouse collector does.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any

from detectkd.config.connection import StoreParams
from detectkd.storage.base import Store

if TYPE_CHECKING:
    from detectkd.config.settings import Settings


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
    if kind not in STORES:
        raise ValueError(f"unknown storage type {kind!r}; known: {', '.join(STORES)}")
    return kind


def store_key(kind: str, params: StoreParams) -> Hashable:
    return (kind, params.model_dump_json())


# Store types by name -> the module whose `build(params: StoreParams) -> Store` makes one
# (imported on first use: a daemon on SQLite never loads the drivers of the others).
STORES: dict[str, str] = {
    "sqlite": "detectkd.storage.sqlite",
    "postgres": "detectkd.storage.postgres",
    "clickhouse": "detectkd.storage.clickhouse",
}


def build_store(kind: str, params: StoreParams) -> Store:
    build: Callable[[StoreParams], Store] = importlib.import_module(STORES[kind]).build
    return build(params)


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


def daemon_store(settings: Settings) -> Store:
    """The daemon's own store, as `detectkd.yaml` configures it."""
    fields = settings.storage.model_dump(exclude={"type"}, exclude_none=True)
    fields["path"] = str(settings.store_path)
    return build_store(settings.storage.type, StoreParams.model_validate(fields))
