"""The embedded store: one SQLite file, WAL mode, one dedicated thread.

All SQLite calls run on a single-thread executor that owns the connection,
so the event loop never blocks and writes are naturally serialised (SQLite
allows one writer anyway). Periods are UTC epoch seconds.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

from detectkd.alerting.state import STATE_COLUMNS, SeriesState, state_from_row, state_row
from detectkd.config.connection import StoreParams
from detectkd.detectors.base import IntArray
from detectkd.errors import StorageError
from detectkd.storage.base import (
    OutboxItem,
    OutboxStats,
    OutboxStatus,
    RunRecord,
    StoredDetection,
    StoredPoint,
    detection_from_row,
    detection_row,
    eligible,
    point_row,
)
from detectkd.storage.sqlite_schema import MIGRATIONS, SCHEMA
from detectkd.storage.sqlite_shadow import SqliteShadow
from detectkd.storage.window import WindowRows, same_times

T = TypeVar("T")


class SqliteStore(SqliteShadow):
    def __init__(self, path: Path | str, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s  # how long a write waits for another writer's lock
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="dtk-store-sqlite")
        self._conn: sqlite3.Connection | None = None

    # -- plumbing ---------------------------------------------------------------

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()

        def run() -> T:
            if self._conn is None:
                raise StorageError("store is not open")
            try:
                return fn(self._conn)
            except sqlite3.Error as exc:
                raise StorageError(f"sqlite store {self.path}: {exc}") from None

        return await loop.run_in_executor(self._pool, run)

    async def open(self) -> None:
        def connect() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=self.busy_timeout_s)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            # Stores created by 0.1.0 development builds lack later columns.
            for table, column, ddl in MIGRATIONS:
                if column not in {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")
            self._conn = conn

        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pool, connect)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open sqlite store {self.path}: {exc}") from None

    async def close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._pool, shut)
        self._pool.shutdown(wait=True)

    async def ping(self) -> None:
        await self._call(lambda c: c.execute("SELECT 1").fetchone())

    # -- runs -------------------------------------------------------------------

    async def commit(self, run: RunRecord) -> None:
        now = time.time()

        def write(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            try:
                if run.save_points and run.points:
                    c.executemany(
                        "INSERT OR REPLACE INTO dtk_datapoints VALUES (?,?,?,?,?,?)",
                        [(run.metric, *point_row(p), now) for p in run.points],
                    )
                if run.save_points and run.detections:
                    c.executemany(
                        "INSERT OR REPLACE INTO dtk_detections VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        [(run.metric, *detection_row(d), now) for d in run.detections],
                    )
                if run.states:
                    c.executemany(
                        "INSERT OR REPLACE INTO dtk_alert_state (metric, series, updated_at, "
                        f"{STATE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        [(run.metric, series, now, *state_row(s)) for series, s in run.states.items()],
                    )
                if run.forget:
                    c.executemany(
                        "DELETE FROM dtk_alert_state WHERE metric = ? AND series = ?",
                        [(run.metric, series) for series in run.forget],
                    )
                if run.outbox:
                    c.executemany(
                        "INSERT OR IGNORE INTO dtk_outbox "
                        "(key, metric, series, channel, payload, created_at, next_attempt_at) "
                        "VALUES (?,?,?,?,?,?,?)",
                        [(o.key, o.metric, o.series, o.channel, o.payload, now, now) for o in run.outbox],
                    )
                if run.watermark is not None:
                    c.execute(
                        "INSERT INTO dtk_watermarks VALUES (?,?,?) ON CONFLICT(metric) DO UPDATE "
                        "SET period = max(period, excluded.period), updated_at = excluded.updated_at",
                        (run.metric, run.watermark, now),
                    )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

        await self._call(write)

    async def watermark(self, metric: str) -> int | None:
        row = await self._call(
            lambda c: c.execute("SELECT period FROM dtk_watermarks WHERE metric = ?", (metric,)).fetchone()
        )
        return None if row is None else int(row[0])

    async def read_points(
        self, metric: str, series: str | None, since: int, until: int
    ) -> dict[str, list[StoredPoint]]:
        def read(c: sqlite3.Connection) -> dict[str, list[StoredPoint]]:
            sql = (
                "SELECT series, period, value, context FROM dtk_datapoints "
                "WHERE metric = ? AND period >= ? AND period < ?"
            )
            args: list[Any] = [metric, since, until]
            if series is not None:
                sql += " AND series = ?"
                args.append(series)
            out: dict[str, list[StoredPoint]] = {}
            for s, period, value, ctx in c.execute(sql + " ORDER BY series, period", args):
                out.setdefault(s, []).append(StoredPoint(int(period), value, json.loads(ctx) if ctx else {}))
            return out

        return await self._call(read)

    async def read_window(self, metric: str, since: int, until: int) -> dict[str, WindowRows]:
        """`read_points` of every series as arrays (`storage.window`): no object per point."""

        def read(c: sqlite3.Connection) -> dict[str, WindowRows]:
            sql = (
                "SELECT series, period, value, context FROM dtk_datapoints "
                "WHERE metric = ? AND period >= ? AND period < ? ORDER BY series, period"
            )
            out: dict[str, WindowRows] = {}
            seen: dict[tuple[int, int, int], IntArray] = {}  # the series on one grid: one times array
            for s, rows in groupby(c.execute(sql, (metric, since, until)), key=itemgetter(0)):
                _, times, values, raw = zip(*rows, strict=True)  # one series' columns at a time
                contexts = [json.loads(x) if x else {} for x in raw] if any(raw) else None
                out[s] = same_times(WindowRows.of(list(times), list(values), contexts), seen)
            return out

        return await self._call(read)

    async def read_detections(self, metric: str, since: int, until: int) -> list[StoredDetection]:
        def read(c: sqlite3.Connection) -> list[StoredDetection]:
            rows = c.execute(
                "SELECT series, period, detector, value, expected, lower, upper, score, anomaly, direction, "
                "skipped FROM dtk_detections WHERE metric = ? AND period >= ? AND period < ? "
                "ORDER BY series, period, detector",
                (metric, since, until),
            ).fetchall()
            return [detection_from_row(r) for r in rows]

        return await self._call(read)

    # -- alert state --------------------------------------------------------------

    async def load_states(self) -> dict[tuple[str, str], SeriesState]:
        def read(c: sqlite3.Connection) -> dict[tuple[str, str], SeriesState]:
            rows = c.execute(f"SELECT metric, series, {STATE_COLUMNS} FROM dtk_alert_state").fetchall()
            return {(r[0], r[1]): state_from_row(r[2:]) for r in rows}

        return await self._call(read)

    async def drop_states(self, metric: str) -> None:
        await self._call(lambda c: c.execute("DELETE FROM dtk_alert_state WHERE metric = ?", (metric,)))

    # -- silences -----------------------------------------------------------------

    async def silence_save(self, silence_id: str, data: str, ends_at: float | None) -> None:
        await self._call(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO dtk_silences VALUES (?, ?, ?, ?)",
                (silence_id, data, ends_at, time.time()),
            )
        )

    async def history_save(self, metric: str, data: str | None) -> None:
        if data is None:
            await self._call(lambda c: c.execute("DELETE FROM dtk_history WHERE metric = ?", (metric,)))
            return
        row = (metric, data, time.time())
        await self._call(lambda c: c.execute("INSERT OR REPLACE INTO dtk_history VALUES (?, ?, ?)", row))

    async def history_load(self) -> dict[str, str]:
        return await self._call(
            lambda c: dict(c.execute("SELECT metric, data FROM dtk_history ORDER BY metric").fetchall())
        )

    async def feedback_save(self, metric: str, series: str, period: int, data: str | None) -> None:
        key = (metric, series, period)
        if data is None:
            sql = "DELETE FROM dtk_feedback WHERE metric = ? AND series = ? AND period = ?"
            await self._call(lambda c: c.execute(sql, key))
            return
        row = (*key, data, time.time())
        await self._call(lambda c: c.execute("INSERT OR REPLACE INTO dtk_feedback VALUES (?,?,?,?,?)", row))

    async def feedback_load(self, metric: str) -> list[str]:
        sql = "SELECT data FROM dtk_feedback WHERE metric = ? ORDER BY series, period"
        return await self._call(lambda c: [r[0] for r in c.execute(sql, (metric,))])

    async def feedback_near(self, metric: str, series: str, since: int, until: int, limit: int) -> list[str]:
        sql = (
            "SELECT data FROM dtk_feedback WHERE metric = ? AND series = ? AND period >= ? AND period <= ? "
            "ORDER BY period DESC LIMIT ?"
        )
        return await self._call(
            lambda c: [r[0] for r in c.execute(sql, (metric, series, since, until, limit))]
        )

    async def silences_load(self) -> list[str]:
        return await self._call(
            lambda c: [r[0] for r in c.execute("SELECT data FROM dtk_silences ORDER BY id")]
        )

    async def silences_version(self) -> str:
        sql = "SELECT count(*), max(updated_at) FROM dtk_silences"
        return await self._call(lambda c: repr(c.execute(sql).fetchone()))

    async def silences_purge(self, ended_before: float) -> int:
        sql = "DELETE FROM dtk_silences WHERE ends_at IS NOT NULL AND ends_at < ?"
        return await self._call(lambda c: c.execute(sql, (ended_before,)).rowcount)

    # -- outbox -------------------------------------------------------------------

    _OUTBOX_COLS = (
        "id, key, metric, series, CAST(channel AS TEXT), payload, attempts, created_at, next_attempt_at, "
        "last_error, status"
    )

    async def outbox_claim(
        self,
        now: float,
        lease_s: float,
        limit: int,
        metric: str | None = None,
        owner: str = "",
        sent: Collection[int] = (),
    ) -> list[OutboxItem]:
        def claim(c: sqlite3.Connection) -> list[OutboxItem]:
            c.execute("BEGIN IMMEDIATE")
            try:
                rows = c.execute(
                    f"SELECT {self._OUTBOX_COLS}, leased_until FROM dtk_outbox "
                    "WHERE status = 'pending' AND (? IS NULL OR metric = ?) ORDER BY id",
                    (metric, metric),
                ).fetchall()
                items = eligible([(OutboxItem(*r[:-1]), r[-1]) for r in rows], now, limit, sent)
                c.executemany(
                    "UPDATE dtk_outbox SET leased_until = ?, leased_by = ? WHERE id = ?",
                    [(now + lease_s, owner, i.id) for i in items],
                )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            return items

        return await self._call(claim)

    async def outbox_release(self, owner: str, ids: Collection[int] | None = None) -> int:
        sql = "UPDATE dtk_outbox SET leased_until = NULL WHERE status = 'pending' AND leased_by = ?"
        sql += " AND leased_until IS NOT NULL"
        if ids is not None:
            sql += f" AND id IN ({','.join(str(int(i)) for i in ids) or 'NULL'})"
        return await self._call(lambda c: c.execute(sql, (owner,)).rowcount)

    async def outbox_pending(self, status: str = OutboxStatus.PENDING) -> list[OutboxItem]:
        status = OutboxStatus(status).value  # a plain str for the driver
        return await self._call(
            lambda c: [
                OutboxItem(*row)
                for row in c.execute(
                    f"SELECT {self._OUTBOX_COLS} FROM dtk_outbox WHERE status = ? ORDER BY id", (status,)
                )
            ]
        )

    async def outbox_history(self, metric: str, since: float) -> list[OutboxItem]:
        sql = f"SELECT {self._OUTBOX_COLS} FROM dtk_outbox WHERE metric = ? AND created_at >= ? ORDER BY id"
        return await self._call(lambda c: [OutboxItem(*row) for row in c.execute(sql, (metric, since))])

    async def outbox_done(self, item_id: int) -> None:
        # Kept as `sent` until `outbox_purge`: re-committing its key is then a no-op.
        await self._call(
            lambda c: c.execute(
                "UPDATE dtk_outbox SET status = 'sent', next_attempt_at = ?, leased_until = NULL "
                "WHERE id = ?",
                (time.time(), item_id),
            )
        )

    async def outbox_retry(self, item_id: int, error: str, next_attempt_at: float, dead: bool) -> None:
        await self._call(
            lambda c: c.execute(
                "UPDATE dtk_outbox SET attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = ?, status = ?, leased_until = NULL WHERE id = ?",
                (
                    error,
                    next_attempt_at,
                    (OutboxStatus.DEAD if dead else OutboxStatus.PENDING).value,
                    item_id,
                ),
            )
        )

    async def outbox_rechannel(self, metric: str, renames: dict[str, str]) -> int:
        def move(c: sqlite3.Connection) -> int:
            moved = 0
            for old, new in renames.items():
                moved += c.execute(
                    "UPDATE OR IGNORE dtk_outbox SET channel = ? WHERE metric = ? AND channel = ? "
                    "AND status = 'pending'",
                    (new, metric, old),
                ).rowcount
            return moved

        return await self._call(move)

    async def outbox_purge(self, sent_before: float) -> int:
        sql = "DELETE FROM dtk_outbox WHERE status = 'sent' AND next_attempt_at < ?"
        return await self._call(lambda c: c.execute(sql, (sent_before,)).rowcount)

    async def outbox_stats(self) -> OutboxStats:
        def read(c: sqlite3.Connection) -> OutboxStats:
            pending, oldest, due = c.execute(
                "SELECT count(*), min(created_at), min(max(next_attempt_at, coalesce(leased_until, 0))) "
                "FROM dtk_outbox WHERE status = 'pending'"
            ).fetchone()
            (dead,) = c.execute("SELECT count(*) FROM dtk_outbox WHERE status = 'dead'").fetchone()
            return OutboxStats(int(pending), int(dead), oldest, due)

        return await self._call(read)

    # -- retention ------------------------------------------------------------------

    async def delete_before(self, metric: str, cutoff: int, detections_only: bool = False) -> int:
        def delete(c: sqlite3.Connection) -> int:
            n = c.execute(
                "DELETE FROM dtk_detections WHERE metric = ? AND period < ?", (metric, cutoff)
            ).rowcount
            if not detections_only:
                n += c.execute(
                    "DELETE FROM dtk_datapoints WHERE metric = ? AND period < ?", (metric, cutoff)
                ).rowcount
            return int(n)

        return await self._call(delete)


def build(params: StoreParams) -> SqliteStore:
    path = params.path or (params.connection_string or "")[len("sqlite:///") :]
    return SqliteStore(Path(path))
