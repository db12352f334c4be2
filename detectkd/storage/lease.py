"""The leader lease of a shard, in PostgreSQL (high availability, docs/scaling.md#ha).

One row per shard: who holds it, until when (the database's clock, so replicas' clocks
never matter), and a fencing token that grows every time the lease changes hands. A
leader's every commit and outbox claim re-reads its row in the same transaction (`FOR
SHARE`, so a takeover waits for it): once another replica has taken the lease, a deposed
leader can neither write a run nor claim a notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detectkd.errors import StorageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS dtk_leases (
    shard text PRIMARY KEY, holder text NOT NULL, token bigint NOT NULL,
    expires_at double precision NOT NULL
);
"""
NOW = "extract(epoch FROM clock_timestamp())"
ACQUIRE = f"""
INSERT INTO dtk_leases AS l (shard, holder, token, expires_at) VALUES ($1, $2, 1, {NOW} + $3)
ON CONFLICT (shard) DO UPDATE
SET holder = excluded.holder, expires_at = excluded.expires_at,
    token = CASE WHEN l.holder = excluded.holder THEN l.token ELSE l.token + 1 END
WHERE l.holder = excluded.holder OR l.expires_at < {NOW}
RETURNING token
"""
# The check also bounds how long this transaction may sit idle (SIGSTOP, a frozen host):
# past the lease the server ends the session, so its row lock never keeps a standby out.
# And it names the session after the lease (`application_name`, for this transaction) for
# what that timeout does not reach: a process frozen half-way through sending a statement
# (between asyncpg's prepare and execute) leaves its session active, waiting for the rest.
HELD = f"""
SELECT set_config('idle_in_transaction_session_timeout', $4, true),
       set_config('application_name', 'detectkd lease ' || shard || ' ' || token, true)
FROM dtk_leases
WHERE shard = $1 AND holder = $2 AND token = $3 AND expires_at > {NOW}
FOR SHARE
"""
# A standby whose takeover waits for such a lock ends the sessions still in a transaction
# under the expired lease (once it has expired: a live leader's are never touched).
EVICT = f"""
SELECT count(*) FILTER (WHERE pg_terminate_backend(a.pid)) FROM dtk_leases l
JOIN pg_stat_activity a ON a.application_name = 'detectkd lease ' || l.shard || ' ' || l.token
WHERE l.shard = $1 AND l.expires_at < {NOW} AND a.datname = current_database()
  AND a.pid <> pg_backend_pid()
"""
RELEASE = "UPDATE dtk_leases SET expires_at = 0 WHERE shard = $1 AND holder = $2"  # the token stays


class LeaseLost(StorageError):
    """This replica no longer holds its shard's lease: it must not write or deliver."""


@dataclass(frozen=True)
class Fence:
    shard: str
    holder: str
    token: int
    ttl_s: float = 15.0  # the lease's length: a fenced transaction idle longer is ended


async def acquire(conn: Any, shard: str, holder: str, ttl_s: float) -> int | None:
    """Take or renew the lease; its token, or None while another replica holds it."""
    token = await conn.fetchval(ACQUIRE, shard, holder, ttl_s)
    return None if token is None else int(token)


async def held(conn: Any, fence: Fence) -> bool:
    """Inside a transaction: is the lease still this fence's (and locked until commit)?"""
    idle_ms = str(max(1000, int(fence.ttl_s * 1000)))
    return await conn.fetchval(HELD, fence.shard, fence.holder, fence.token, idle_ms) is not None


async def require(conn: Any, fence: Fence | None) -> None:
    if fence is not None and not await held(conn, fence):
        raise LeaseLost(f"shard {fence.shard}: the lease (token {fence.token}) is held by another replica")


async def evict(conn: Any, shard: str) -> int:
    """End the sessions fenced by the shard's lease once it has expired (`EVICT`); how many.
    Needs the right to signal them: the same role, or `pg_signal_backend`."""
    return int(await conn.fetchval(EVICT, shard))


async def release(conn: Any, shard: str, holder: str) -> None:
    await conn.execute(RELEASE, shard, holder)
