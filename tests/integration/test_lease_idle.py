"""HA on the real PostgreSQL: a leader frozen inside a fenced transaction (SIGSTOP, a hung
event loop) must not keep its standby out by the lease row's lock. The fence check bounds
how long the transaction may sit idle to the lease's length; before, the standby's acquire
waited for the lock for as long as the leader stayed frozen."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from detectkd.storage import lease
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
