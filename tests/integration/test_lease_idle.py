"""HA on the real PostgreSQL: a leader frozen inside a fenced transaction (SIGSTOP, a hung
event loop) must not keep its standby out by the lease row's lock. The fence check bounds
how long the transaction may sit idle to the lease's length; before, the standby's acquire
waited for the lock for as long as the leader stayed frozen. Resumed, the leader finds its
session ended: a store failure, never an error that ends its loops."""

from __future__ import annotations

import asyncio
import threading
import time

import asyncpg
import pytest

from detectkd.errors import StorageError
from detectkd.runtime.leader import Leadership
from detectkd.storage import lease
from detectkd.storage.postgres import PostgresStore
from tests.support.databases import pg_database


async def test_a_frozen_fenced_transaction_does_not_keep_the_standby_out() -> None:
    async with pg_database(lease.SCHEMA) as name:
        leader = await asyncpg.connect(host="127.0.0.1", user="postgres", database=name)
        standby = await asyncpg.connect(host="127.0.0.1", user="postgres", database=name)
        try:
            token = await lease.acquire(leader, "0/1", "a", 1.0)
            assert token is not None
            fence = lease.Fence("0/1", "a", token, ttl_s=1.0)
            tr = leader.transaction()
            await tr.start()
            assert await lease.held(leader, fence)  # the row is locked FOR SHARE until commit
            started = time.monotonic()  # ... and the leader freezes here, its transaction open
            took = None
            while time.monotonic() - started < 10:
                try:
                    got = await asyncio.wait_for(lease.acquire(standby, "0/1", "b", 5.0), 1.0)
                except TimeoutError:  # blocked by the frozen leader's lock
                    continue
                if got is not None:
                    took = time.monotonic() - started
                    break
                await asyncio.sleep(0.1)
            assert took is not None and took < 5, "the standby never took the lease"
        finally:
            leader.terminate()
            await standby.close()


async def test_a_claim_whose_session_ended_while_frozen_is_a_store_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Frozen right after sending a claim's query, past the fence's idle timeout: the answer
    and the server's end of the session wait in the socket. Resumed, asyncpg reads the answer,
    its protocol is left half-way, and the COMMIT raised `InternalClientError`, which passed
    the store as it was and ended the outbox loop of a leader resumed after SIGSTOP (seen under
    load in tests/e2e/test_ha.py: the old leader exited 1 at its stop)."""
    async with pg_database("") as name:
        store = PostgresStore(f"postgresql://postgres@127.0.0.1:5432/{name}")
        await store.open()
        try:
            token = await store.lease_acquire("0/1", "a", 60.0)
            assert token is not None
            store.fence = lease.Fence("0/1", "a", token, ttl_s=1.0)  # idle 1 s in it: ended
            # Once unfrozen first: on a new connection the freeze would fall in asyncpg's
            # prepare step, where the server's idle timeout does not run.
            assert await store.outbox_claim(time.time(), 120.0, 10) == []
            held = lease.held

            async def then_freeze(conn: asyncpg.Connection, fence: lease.Fence) -> bool:
                ok = await held(conn, fence)
                asyncio.get_running_loop().call_soon(time.sleep, 2.5)  # once the next query is sent
                return ok

            monkeypatch.setattr(lease, "held", then_freeze)
            with pytest.raises(StorageError):
                await store.outbox_claim(time.time(), 120.0, 10)
            monkeypatch.undo()
            assert await store.outbox_claim(time.time(), 120.0, 10) == []  # on a new connection
        finally:
            await store.close()


def freeze_mid_statement(dsn: str, freeze_s: float, frozen: threading.Event, ended: list[str]) -> None:
    """The leader, on a thread of its own: takes the lease (1 s), checks its fence in a
    transaction, then freezes right after sending a statement it has not prepared on this
    connection. The server then waits for the rest of the statement: the session counts as
    active, not idle, so no idle timeout ends it, and the lease row stays locked FOR SHARE."""

    async def lead() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            token = await lease.acquire(conn, "0/1", "a", 1.0)
            assert token is not None
            fence = lease.Fence("0/1", "a", token, ttl_s=1.0)
            async with conn.transaction():
                assert await lease.held(conn, fence)

                def freeze() -> None:
                    frozen.set()
                    time.sleep(freeze_s)

                asyncio.get_running_loop().call_soon(freeze)
                await conn.fetch("SELECT 'a statement new to this connection'")
        except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
            ended.append(type(exc).__name__)
        finally:
            conn.terminate()

    asyncio.run(lead())


async def test_a_leader_frozen_mid_statement_is_ended_by_the_standby_taking_over() -> None:
    """Before, the standby could not take the expired lease until the frozen leader woke up
    (for as long as a SIGSTOP lasts): its acquire waited for the lock and timed out, try
    after try. Now, blocked past the lease's expiry, it ends the expired holder's fenced
    sessions and leads within the lease and two tries."""
    async with pg_database("") as name:
        dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
        store = PostgresStore(dsn)
        await store.open()
        frozen, ended = threading.Event(), list[str]()
        leader = threading.Thread(target=freeze_mid_statement, args=(dsn, 6.0, frozen, ended))
        leader.start()
        try:
            assert await asyncio.to_thread(frozen.wait, 10)
            started, leads, stop = time.monotonic(), asyncio.Event(), asyncio.Event()

            async def on_change(leader: bool) -> None:
                if leader:
                    leads.set()

            election = asyncio.create_task(Leadership(store, "0/1", 1.0, on_change).run(stop))
            try:
                await asyncio.wait_for(leads.wait(), 10)  # before: until the leader woke up
            finally:
                stop.set()
                await election
            took = time.monotonic() - started
            print(f"the standby led {took:.2f}s after the freeze (lease 1s)")
            assert took < 1.0 + 2 * 0.25 + 1.0, took  # the lease and two tries (+ slack for load)
        finally:
            await asyncio.to_thread(leader.join, 30)
            await store.close()
        assert ended, "the frozen leader's transaction was not ended"


def freeze_in_a_store_transaction(dsn: str, freeze_s: float, frozen: threading.Event) -> None:
    """A process frozen inside one of the store's unfenced transactions (the outbox's
    re-channel, a silence's or a shadow's write): it holds a lock on the outbox that every
    write of the other replica's outbox needs, and sends nothing more."""

    async def hold() -> None:
        store = PostgresStore(dsn)
        store.idle_transaction_s = 1.0
        await store.open()

        async def frozen_inside(c: asyncpg.Connection) -> None:
            async with c.transaction():
                await c.execute("LOCK TABLE dtk_outbox IN SHARE MODE")
                frozen.set()
                asyncio.get_running_loop().call_soon(time.sleep, freeze_s)  # the process freezes
                await asyncio.sleep(0)

        try:
            await store._run(frozen_inside)  # the store's own way to a connection
        except StorageError:
            pass  # its session was ended while it was frozen
        finally:
            await store.close()

    asyncio.run(hold())


async def test_a_frozen_unfenced_store_transaction_is_ended_by_the_server() -> None:
    """Before, only the fenced transactions (commits, claims) had an idle bound: a replica
    frozen in any other store transaction held its locks for as long as the freeze lasted,
    and the other replica's outbox writes waited for all of it."""
    async with pg_database("") as name:
        dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
        store = PostgresStore(dsn)
        await store.open()
        frozen = threading.Event()
        holder = threading.Thread(target=freeze_in_a_store_transaction, args=(dsn, 8.0, frozen))
        holder.start()
        try:
            assert await asyncio.to_thread(frozen.wait, 10)
            started = time.monotonic()
            async with asyncio.timeout(6.0):  # before: until the freeze ended (8 s)
                assert await store.outbox_rechannel("m", {"a": "b"}) == 0
            print(f"the write went through {time.monotonic() - started:.2f}s after the freeze")
        finally:
            await asyncio.to_thread(holder.join, 30)
            await store.close()


async def test_the_url_sets_its_own_idle_bound() -> None:
    async with pg_database("") as name:
        url = f"postgresql://postgres@127.0.0.1:5432/{name}?idle_in_transaction_session_timeout=0"
        for dsn, want in ((url, "0"), (url.split("?")[0], "1min")):
            store = PostgresStore(dsn)
            await store.open()
            try:
                got = await store._run(lambda c: c.fetchval("SHOW idle_in_transaction_session_timeout"))
                assert got == want
            finally:
                await store.close()
