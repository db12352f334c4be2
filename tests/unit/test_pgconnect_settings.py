"""The store's startup settings (`idle_in_transaction_session_timeout`) against a pooler that
refuses startup parameters it does not know (PgBouncer without `ignore_startup_parameters`
answers "unsupported startup parameter"): the store connects without them instead of failing
to open. The driver's connect is replaced here, for the connection-level details (asked again
without them at once; another refusal is not taken for a pooler); the store through a real
PgBouncer is tests/integration/test_pgbouncer.py's, the setting's effect on a real server
tests/integration/test_lease_idle.py's."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from detectkd.collectors.netparams import endpoint
from detectkd.collectors.pgconnect import HostPool
from detectkd.config.connection import ConnectionParams

SETTINGS = {"idle_in_transaction_session_timeout": "60000"}


def pool(url: str) -> HostPool:
    return HostPool(endpoint("postgres", ConnectionParams(connection_string=url), 5432, 10), 1, 1, SETTINGS)


@pytest.mark.parametrize("pooler", [True, False])
async def test_a_pooler_that_refuses_startup_settings_is_connected_without_them(
    monkeypatch: pytest.MonkeyPatch, pooler: bool
) -> None:
    asked: list[dict[str, str] | None] = []

    async def connect(*_: Any, server_settings: dict[str, str] | None = None, **__: Any) -> object:
        asked.append(server_settings)
        if pooler and server_settings:
            raise asyncpg.exceptions.ProtocolViolationError(
                "unsupported startup parameter: idle_in_transaction_session_timeout"
            )
        return object()

    monkeypatch.setattr(asyncpg, "connect", connect)
    hosts = pool("postgresql://u@db:6432/d")
    assert await hosts._connect() is not None
    assert await hosts._connect() is not None  # the next connection asks without them at once
    assert asked == ([SETTINGS, None, None] if pooler else [SETTINGS, SETTINGS])


async def test_another_refusal_is_not_taken_for_a_pooler(monkeypatch: pytest.MonkeyPatch) -> None:
    async def connect(*_: Any, **__: Any) -> object:
        raise asyncpg.exceptions.ProtocolViolationError("no pg_hba.conf entry")

    monkeypatch.setattr(asyncpg, "connect", connect)
    with pytest.raises(ConnectionError, match="pg_hba"):
        await pool("postgresql://u@db:6432/d")._connect()


def test_the_url_sets_its_own_value() -> None:
    assert pool("postgresql://u@db/d?idle_in_transaction_session_timeout=0")._settings == {}
