"""The PostgreSQL store through a real PgBouncer (tests/support/pgbouncer_server.py, Debian's
1.18) in front of the machine's PostgreSQL. The store asks every connection for
`idle_in_transaction_session_timeout` (60 s) as a startup parameter. PgBouncer refuses a startup
parameter it does not know ("unsupported startup parameter") unless its
`ignore_startup_parameters` lists it, and then drops it. Either way the store must open and
work, in session pooling; refused, it says so once. Connected directly, the bound is set."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from detectkd.collectors.points import Point
from detectkd.errors import StorageError
from detectkd.storage import lease
from detectkd.storage.base import NewOutboxItem, RunRecord
from detectkd.storage.postgres import PostgresStore
from tests.support.databases import pg_database
from tests.support.pgbouncer_server import running

REFUSED = "postgres: the server refused startup settings, connecting without them"
IDLE = "SHOW idle_in_transaction_session_timeout"
DIRECT = "postgresql://postgres@127.0.0.1:5432/"


async def works(store: PostgresStore) -> str:
    """Points and an outbox row in one transaction, read back; an outbox claim (a transaction
    with FOR UPDATE SKIP LOCKED); fenced (HA) commits side by side on several of the store's
    connections. Returns the idle bound its connections have outside a transaction."""
    m = f"m{uuid.uuid4().hex[:8]}"
    item = NewOutboxItem(f"{m}||firing|0", m, "", "webhook:a", "{}")
    points = [Point("", p, float(p), {"h": p}) for p in (0, 60, 120)]
    await store.commit(RunRecord(m, points=points, outbox=[item], watermark=120))
    got = await store.read_points(m, "", 0, 1000)
    assert [(p.period, p.value, p.context) for p in got[""]] == [
        (0, 0.0, {"h": 0}),
        (60, 60.0, {"h": 60}),
        (120, 120.0, {"h": 120}),
    ]
    assert await store.watermark(m) == 120
    claimed = await store.outbox_claim(time.time() + 1, 60, 10, metric=m)
    assert [(c.key, c.channel) for c in claimed] == [(item.key, "webhook:a")]
    # HA: fenced commits; a fenced transaction's own, tighter bound is set inside it (SET LOCAL),
    # so a pooler does not drop it.
    token = await store.lease_acquire(m, "a", 15.0)
    assert token is not None
    store.fence = lease.Fence(m, "a", token, ttl_s=15.0)

    async def fenced(c: Any) -> str:
        async with c.transaction():
            assert store.fence is not None and await lease.held(c, store.fence)
            return str(await c.fetchval(IDLE))

    assert await store._run(fenced) == "15s"
    runs = [
        RunRecord(f"{m}_{i}", points=[Point("", 60 * j, float(j), {}) for j in range(20)]) for i in range(8)
    ]
    await asyncio.gather(*(store.commit(r) for r in runs))
    for r in runs:
        assert len((await store.read_points(r.metric, "", 0, 10**6))[""]) == 20
    bound: str = await store._run(lambda c: c.fetchval(IDLE))
    return bound


async def opened(url: str) -> PostgresStore:
    store = PostgresStore(url)
    await store.open()
    return store


async def test_through_a_pgbouncer_that_refuses_the_idle_bound_the_store_works_without_it() -> None:
    async with pg_database("") as name:
        server = await asyncpg.connect(DIRECT + name)
        try:
            server_default = await server.fetchval(IDLE)
        finally:
            await server.close()
        with running() as bouncer, capture_logs() as logs:
            store = await opened(bouncer.url(name))
            try:
                through = await works(store)
            finally:
                await store.close()
        assert through == server_default  # no idle bound through it
        refused = [e for e in logs if e["event"] == REFUSED]
        assert len(refused) == 1, logs  # said once, not at each of its connections
        assert refused[0]["log_level"] == "warning"
        assert refused[0]["settings"] == ["idle_in_transaction_session_timeout"]
        assert "unsupported startup parameter: idle_in_transaction_session_timeout" in refused[0]["error"]

        with capture_logs() as logs:  # the same database, directly: the bound is set
            store = await opened(DIRECT + name)
            try:
                assert await works(store) == "1min"
            finally:
                await store.close()
        assert not [e for e in logs if e["event"] == REFUSED]


async def test_a_pgbouncer_that_ignores_it_drops_it_silently_and_the_database_sets_its_own() -> None:
    """Listed in `ignore_startup_parameters`, the parameter is dropped without a word: the bound
    there is the role's or the database's (`ALTER ... SET`), what docs/storage.md advises."""
    async with pg_database("") as name:
        admin = await asyncpg.connect(DIRECT + "postgres")
        try:
            await admin.execute(f"ALTER DATABASE {name} SET idle_in_transaction_session_timeout = '45s'")
        finally:
            await admin.close()
        with (
            running(ignore_startup_parameters=("idle_in_transaction_session_timeout",)) as bouncer,
            capture_logs() as logs,
        ):
            store = await opened(bouncer.url(name))
            try:
                assert await works(store) == "45s"  # the database's, not the store's 1min
            finally:
                await store.close()
        assert not [e for e in logs if e["event"] == REFUSED]


async def test_statement_pooling_is_refused_at_open() -> None:
    """The store needs transactions; PgBouncer's statement pooling refuses them. The store does
    not open, and says why."""
    async with pg_database("") as name:
        with running(pool_mode="statement") as bouncer:
            store = PostgresStore(bouncer.url(name))
            try:
                with pytest.raises(StorageError, match="transaction blocks not allowed in statement pooling"):
                    await store.open()
            finally:
                await store.close()
