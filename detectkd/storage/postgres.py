"""PostgreSQL store (asyncpg): unique keys and upserts, one transaction per run.

Times are `timestamptz` in the tables (readable from Grafana or psql) and
epoch seconds in Python. Outbox claims use `FOR UPDATE SKIP LOCKED`, so
several daemons sharing one database never send the same row twice at once.
A host list fails over as the PostgreSQL source does (collectors/pgconnect.py):
name the primary first, or add `?target_session_attrs=read-write`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from typing import Any

import asyncpg

from detectkd.alerting.state import STATE_COLUMNS, SeriesState, state_from_row, state_row
from detectkd.collectors.netparams import endpoint
from detectkd.collectors.pgconnect import HostPool
from detectkd.config.connection import ConnectionParams, StoreParams
from detectkd.errors import StorageError
from detectkd.redact import redact_text
from detectkd.storage import lease
from detectkd.storage import postgres_docs as docs
from detectkd.storage.base import (
    OutboxItem,
    OutboxStats,
    OutboxStatus,
    RunRecord,
    StoredDetection,
    StoredPoint,
    detection_from_row,
    detection_row,
    point_row,
)
from detectkd.storage.postgres_schema import (
    INSERT_OUTBOX,
    OUTBOX_COLS,
    OUTBOX_STATS,
    SCHEMA,
    UPSERT_DETECTIONS,
    UPSERT_POINTS,
    UPSERT_STATE,
    UPSERT_WATERMARK,
)

# What the driver raises when the store or the connection fails. `InternalClientError` too:
# a session the server ended while this process was frozen mid-transaction (SIGSTOP, a stalled
# loop past the fence's idle timeout, `storage.lease`) leaves asyncpg's protocol half-way, and
# the next statement fails with it ("cannot switch to state 15; another operation (2) is in
# progress"); the connection is gone like any lost one. Uncaught, it ended the outbox loop.
DRIVER_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


class PostgresStore(docs.PostgresDocs):
    # A transaction of this store left idle longer is ended by the server: a process frozen
    # inside one (SIGSTOP, a hung loop) must not hold its row locks against a standby, an
    # outbox claim or a silence's write for as long as it stays frozen. The fenced ones are
    # bounded tighter, to the lease (`storage.lease`); the URL may set its own value.
    idle_transaction_s = 60.0

    def __init__(self, dsn: str | None = None, **connect: Any) -> None:
        self._dsn, self._connect = dsn, connect
        self._ep = endpoint("postgres", ConnectionParams(connection_string=dsn, **connect), 5432, 10)
        self._pool: HostPool | None = None
        self.path = self._ep.describe()
        self.fence: lease.Fence | None = None  # HA: commits and claims need this lease

    async def open(self) -> None:
        try:
            idle = {"idle_in_transaction_session_timeout": str(int(self.idle_transaction_s * 1000))}
            pool = HostPool(self._ep, min_size=1, max_size=10, settings=idle)
            await pool.open()
            self._pool = pool
            # One DDL at a time across daemons starting together.
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(7215834)")
                await conn.execute(SCHEMA + docs.SCHEMA + lease.SCHEMA)
        except DRIVER_ERRORS as exc:
            raise StorageError(f"cannot open postgres store: {redact_text(str(exc))}") from None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def _run(self, fn: Any) -> Any:
        assert self._pool is not None, "store is not open"
        try:
            async with self._pool.acquire() as conn:
                return await fn(conn)
        except DRIVER_ERRORS as exc:
            raise StorageError(f"postgres store: {redact_text(' '.join(str(exc).split()))}") from None

    async def ping(self) -> None:
        await self._run(lambda c: c.fetchval("SELECT 1"))

    async def lease_acquire(self, shard: str, holder: str, ttl_s: float) -> int | None:
        token: int | None = await self._run(lambda c: lease.acquire(c, shard, holder, ttl_s))
        return token

    async def lease_evict(self, shard: str) -> int:
        ended: int = await self._run(lambda c: lease.evict(c, shard))
        return ended

    async def lease_release(self, shard: str, holder: str) -> None:
        await self._run(lambda c: lease.release(c, shard, holder))

    async def commit(self, run: RunRecord) -> None:
        now = time.time()

        async def write(c: Any) -> None:
            async with c.transaction():
                await lease.require(c, self.fence)
                if run.save_points and run.points:
                    await c.executemany(
                        UPSERT_POINTS,
                        [(run.metric, *point_row(p), now) for p in run.points],
                    )
                if run.save_points and run.detections:
                    await c.executemany(
                        UPSERT_DETECTIONS,
                        [(run.metric, *detection_row(d), now) for d in run.detections],
                    )
                if run.states:
                    await c.executemany(
                        UPSERT_STATE,
                        [(run.metric, series, now, *state_row(st)) for series, st in run.states.items()],
                    )
                if run.forget:
                    await c.execute(
                        "DELETE FROM dtk_alert_state WHERE metric = $1 AND series = ANY($2::text[])",
                        run.metric,
                        run.forget,
                    )
                if run.outbox:
                    await c.executemany(
                        INSERT_OUTBOX,
                        [(o.key, o.metric, o.series, o.channel, o.payload, now) for o in run.outbox],
                    )
                if run.watermark is not None:
                    await c.execute(
                        UPSERT_WATERMARK,
                        run.metric,
                        run.watermark,
                        now,
                    )

        await self._run(write)

    async def watermark(self, metric: str) -> int | None:
        value = await self._run(
            lambda c: c.fetchval("SELECT period FROM dtk_watermarks WHERE metric = $1", metric)
        )
        return None if value is None else int(value)

    async def read_points(
        self, metric: str, series: str | None, since: int, until: int
    ) -> dict[str, list[StoredPoint]]:
        async def read(c: Any) -> dict[str, list[StoredPoint]]:
            rows = await c.fetch(
                "SELECT series, extract(epoch FROM period)::bigint AS p, value, context FROM dtk_datapoints "
                "WHERE metric = $1 AND period >= to_timestamp($2) AND period < to_timestamp($3) "
                "AND ($4::text IS NULL OR series = $4) ORDER BY series, period",
                metric,
                since,
                until,
                series,
            )
            out: dict[str, list[StoredPoint]] = {}
            for r in rows:
                ctx = json.loads(r["context"]) if r["context"] else {}
                out.setdefault(r["series"], []).append(StoredPoint(int(r["p"]), r["value"], ctx))
            return out

        result: dict[str, list[StoredPoint]] = await self._run(read)
        return result

    async def read_detections(self, metric: str, since: int, until: int) -> list[StoredDetection]:
        rows = await self._run(
            lambda c: c.fetch(
                "SELECT series, extract(epoch FROM period)::bigint, detector, value, expected, lower, upper, "
                "score, anomaly, direction, skipped FROM dtk_detections "
                "WHERE metric = $1 AND period >= to_timestamp($2) AND period < to_timestamp($3) "
                "ORDER BY series, period, detector",
                metric,
                since,
                until,
            )
        )
        return [detection_from_row(tuple(r.values())) for r in rows]

    async def load_states(self) -> dict[tuple[str, str], SeriesState]:
        rows = await self._run(
            lambda c: c.fetch(f"SELECT metric, series, {STATE_COLUMNS} FROM dtk_alert_state")
        )
        return {(r["metric"], r["series"]): state_from_row(list(r.values())[2:]) for r in rows}

    async def drop_states(self, metric: str) -> None:
        await self._run(lambda c: c.execute("DELETE FROM dtk_alert_state WHERE metric = $1", metric))

    async def outbox_claim(
        self,
        now: float,
        lease_s: float,
        limit: int,
        metric: str | None = None,
        owner: str = "",
        sent: Collection[int] = (),
    ) -> list[OutboxItem]:
        async def claim(c: Any) -> list[OutboxItem]:
            async with c.transaction():
                if self.fence is not None and not await lease.held(c, self.fence):
                    return []
                rows = await c.fetch(
                    f"""
                    WITH heads AS (
                        SELECT DISTINCT ON (metric, series, channel) id FROM dtk_outbox
                        WHERE status = 'pending' AND ($3::text IS NULL OR metric = $3)
                          AND id <> ALL($4::bigint[])
                        ORDER BY metric, series, channel, id
                    )
                    SELECT {OUTBOX_COLS} FROM dtk_outbox
                    WHERE id IN (SELECT id FROM heads) AND next_attempt_at <= $1
                      AND (leased_until IS NULL OR leased_until < $1)
                    ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
                    """,
                    now,
                    limit,
                    metric,
                    list(sent),
                )
                items = [OutboxItem(*r.values()) for r in rows]
                if items:
                    await c.execute(
                        "UPDATE dtk_outbox SET leased_until = $1, leased_by = $3 "
                        "WHERE id = ANY($2::bigint[])",
                        now + lease_s,
                        [i.id for i in items],
                        owner,
                    )
                return items

        items: list[OutboxItem] = await self._run(claim)
        return items

    async def outbox_release(self, owner: str, ids: Collection[int] | None = None) -> int:
        status = await self._run(
            lambda c: c.execute(
                "UPDATE dtk_outbox SET leased_until = NULL WHERE status = 'pending' AND leased_by = $1 "
                "AND leased_until IS NOT NULL AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[]))",
                owner,
                None if ids is None else [int(i) for i in ids],
            )
        )
        return int(str(status).split()[-1])

    async def outbox_pending(self, status: str = OutboxStatus.PENDING) -> list[OutboxItem]:
        status = OutboxStatus(status).value  # a plain str for the driver
        rows = await self._run(
            lambda c: c.fetch(f"SELECT {OUTBOX_COLS} FROM dtk_outbox WHERE status = $1 ORDER BY id", status)
        )
        return [OutboxItem(*r.values()) for r in rows]

    async def outbox_history(self, metric: str, since: float) -> list[OutboxItem]:
        sql = f"SELECT {OUTBOX_COLS} FROM dtk_outbox WHERE metric = $1 AND created_at >= $2 ORDER BY id"
        rows = await self._run(lambda c: c.fetch(sql, metric, since))
        return [OutboxItem(*r.values()) for r in rows]

    async def outbox_done(self, item_id: int) -> None:
        # Kept as `sent` until `outbox_purge`: re-committing its key is then a no-op.
        await self._run(
            lambda c: c.execute(
                "UPDATE dtk_outbox SET status = 'sent', next_attempt_at = $1, leased_until = NULL "
                "WHERE id = $2",
                time.time(),
                item_id,
            )
        )

    async def outbox_retry(self, item_id: int, error: str, next_attempt_at: float, dead: bool) -> None:
        await self._run(
            lambda c: c.execute(
                "UPDATE dtk_outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, "
                "status = $3, leased_until = NULL WHERE id = $4",
                error,
                next_attempt_at,
                (OutboxStatus.DEAD if dead else OutboxStatus.PENDING).value,
                item_id,
            )
        )

    async def outbox_rechannel(self, metric: str, renames: dict[str, str]) -> int:
        async def move(c: Any) -> int:
            moved = 0
            async with c.transaction():
                for old, new in renames.items():
                    status = await c.execute(
                        "UPDATE dtk_outbox o SET channel = $3 WHERE metric = $1 AND channel = $2 "
                        "AND status = 'pending' AND NOT EXISTS "
                        "(SELECT 1 FROM dtk_outbox x WHERE x.key = o.key AND x.channel = $3)",
                        metric,
                        old,
                        new,
                    )
                    moved += int(status.split()[-1])
            return moved

        result: int = await self._run(move)
        return result

    async def outbox_purge(self, sent_before: float) -> int:
        status = await self._run(
            lambda c: c.execute(
                "DELETE FROM dtk_outbox WHERE status = 'sent' AND next_attempt_at < $1", sent_before
            )
        )
        return int(str(status).split()[-1])

    async def outbox_stats(self) -> OutboxStats:
        row = await self._run(lambda c: c.fetchrow(OUTBOX_STATS))
        return OutboxStats(int(row["pending"]), int(row["dead"]), row["oldest"], row["due"])

    async def delete_before(self, metric: str, cutoff: int, detections_only: bool = False) -> int:
        async def delete(c: Any) -> int:
            n = 0
            tables = ["dtk_detections"] if detections_only else ["dtk_detections", "dtk_datapoints"]
            for table in tables:
                status = await c.execute(
                    f"DELETE FROM {table} WHERE metric = $1 AND period < to_timestamp($2)", metric, cutoff
                )
                n += int(status.split()[-1])
            return n

        count: int = await self._run(delete)
        return count


def build(params: StoreParams) -> PostgresStore:
    keys = {
        "host": params.host,
        "port": params.port,
        "database": params.database,
        "user": params.user,
        "password": params.password,
    }
    return PostgresStore(params.connection_string, **{k: v for k, v in keys.items() if v is not None})
