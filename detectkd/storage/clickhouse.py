"""ClickHouse store over HTTP (aiochclient); works on Debian's 18.16 and current releases.

ClickHouse has no transactions, so idempotence comes from the table engines
and from write order:

- every table is a ReplacingMergeTree with a `version` column (nanoseconds),
  read with `FINAL`: re-writing a (metric, series, period) replaces it;
- a run writes points, detections, outbox rows, alert states, then the
  watermark: a crash anywhere leaves the watermark behind, the next run
  recomputes the same periods, and an outbox row that already exists is not
  written again (rows are kept with status `sent` for that reason, for a
  week: the daily retention pass purges older ones, see `outbox_purge`);
- retention is `ALTER TABLE ... DELETE` (a mutation; 18.16 has no TTL),
  waited for until done.

Kept out for 18.16: DateTime64, LowCardinality, JSONExtract, TTL,
`toStartOfInterval`. Outbox claims are exclusive within one daemon (a lock);
several daemons sharing one ClickHouse should keep alert state and outbox in
PostgreSQL instead. A host list (`host: "ch1,ch2"`) fails over per request as
the ClickHouse source does (collectors/chhosts.py): replicas of one database.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Collection
from typing import Any

import aiohttp
from aiochclient import ChClient, ChClientError

from detectkd.alerting.state import STATE_COLUMNS, SeriesState, state_from_row, state_row
from detectkd.collectors.chhosts import ChHosts, hostport, session
from detectkd.collectors.clickhouse import Params as ChParams
from detectkd.collectors.clickhouse import ch_endpoint
from detectkd.config.connection import StoreParams
from detectkd.errors import StorageError
from detectkd.redact import redact_text
from detectkd.storage.base import (
    OutboxItem,
    OutboxStats,
    OutboxStatus,
    RunRecord,
    StoredDetection,
    StoredPoint,
    detection_from_row,
    eligible,
)
from detectkd.storage.clickhouse_docs import ClickhouseDocs, wait_for_mutations
from detectkd.storage.clickhouse_schema import (
    ALL_OUTBOX_COLS,
    INSERT_STATE,
    OUTBOX_COLS,
    ch_time,
    migrate,
)
from detectkd.storage.clickhouse_shadow import ClickhouseShadow

# Claims are exclusive per database within this process (ClickHouse has no row locks).
_CLAIM_LOCKS: dict[str, asyncio.Lock] = {}


def _or_none(text: str) -> str | None:
    return text or None


class ClickhouseStore(ClickhouseDocs, ClickhouseShadow):
    def __init__(
        self,
        url: str | tuple[str, ...],
        database: str = "default",
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.url = url  # one base URL, or a failover list of them
        self.database = database
        self._hosts = ChHosts((url,) if isinstance(url, str) else url)
        self.path = (
            f"{self._hosts.urls[0].split('://')[0]}://{','.join(map(hostport, self._hosts.urls))}/{database}"
        )
        self._user = user
        self._password = password
        self._session: aiohttp.ClientSession | None = None
        self._claim_lock = _CLAIM_LOCKS.setdefault(self.path, asyncio.Lock())
        self._last_version = 0

    def _version(self) -> int:
        # Strictly increasing even within one nanosecond tick.
        self._last_version = max(time.time_ns(), self._last_version + 1)
        return self._last_version

    async def _do(self, fn: Any, database: str | None = None) -> Any:
        assert self._session is not None, "store is not open"
        session, user, password = self._session, self._user, self._password
        db = database or self.database
        try:
            return await self._hosts.call(lambda u: fn(ChClient(session, u, user, password, db)))
        except ChClientError as exc:
            text = " ".join(str(exc).split()).split(", Stack trace")[0]
            raise StorageError(f"clickhouse store {self.path}: {redact_text(text)[:300]}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            why = redact_text(str(exc))[:300] if isinstance(exc, ConnectionError) else type(exc).__name__
            raise StorageError(f"clickhouse store {self.path}: cannot connect: {why}") from None

    async def open(self) -> None:
        self._session = session(total_s=60)
        try:
            await self._do(lambda c: c.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}"), "default")
        except StorageError as exc:
            await self._session.close()
            raise StorageError(f"cannot open {exc}") from None
        await migrate(self._do, self.database)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def ping(self) -> None:
        await self._do(lambda c: c.fetchval("SELECT 1"))

    # -- runs -----------------------------------------------------------------------------

    async def commit(self, run: RunRecord) -> None:
        now = ch_time(time.time())
        v = self._version()
        if run.save_points and run.points:
            rows = [
                (
                    run.metric,
                    p.series,
                    ch_time(p.period),
                    p.value,
                    json.dumps(p.context) if p.context else "",
                    now,
                    v,
                )
                for p in run.points
            ]
            await self._do(lambda c: c.execute("INSERT INTO dtk_datapoints VALUES", *rows))
        if run.save_points and run.detections:
            det = [
                (
                    run.metric,
                    d.series,
                    ch_time(d.period),
                    d.result.detector,
                    d.result.value,
                    d.result.expected,
                    d.result.lower,
                    d.result.upper,
                    float(d.result.score),
                    int(d.result.anomaly),
                    d.result.direction or "",
                    d.result.skipped or "",
                    now,
                    v,
                )
                for d in run.detections
            ]
            await self._do(lambda c: c.execute("INSERT INTO dtk_detections VALUES", *det))
        if run.outbox:
            await self._insert_outbox(run)
        if run.states:
            states = [(run.metric, series, 0, now, v, *state_row(st)) for series, st in run.states.items()]
            await self._do(lambda c: c.execute(INSERT_STATE, *states))
        if run.forget:
            blank = state_row(SeriesState())
            tomb = [(run.metric, series, 1, now, v, *blank) for series in run.forget]
            await self._do(lambda c: c.execute(INSERT_STATE, *tomb))
        if run.watermark is not None:
            wm = (run.metric, run.watermark, now)
            await self._do(lambda c: c.execute("INSERT INTO dtk_watermarks VALUES", wm))

    async def _insert_outbox(self, run: RunRecord) -> None:
        keys = [o.key for o in run.outbox]
        existing = await self._do(
            lambda c: c.fetch(
                "SELECT key, channel FROM dtk_outbox FINAL WHERE has({keys}, key)", params={"keys": keys}
            )
        )
        have = {(r["key"], r["channel"]) for r in existing}
        now = time.time()
        rows = []
        for o in run.outbox:
            if (o.key, o.channel) in have:
                continue
            item_id = self._version()
            row = (item_id, o.key, o.metric, o.series, o.channel, o.payload, now, 0, now, "", "pending", 0.0)
            rows.append((*row, item_id, ""))  # version, leased_by
        if rows:
            await self._do(lambda c: c.execute("INSERT INTO dtk_outbox VALUES", *rows))

    async def watermark(self, metric: str) -> int | None:
        rows = await self._do(
            lambda c: c.fetch(
                "SELECT max(period) AS p, count() AS n FROM dtk_watermarks WHERE metric = {m}",
                params={"m": metric},
            )
        )
        return int(rows[0]["p"]) if rows and rows[0]["n"] else None

    async def read_points(
        self, metric: str, series: str | None, since: int, until: int
    ) -> dict[str, list[StoredPoint]]:
        sql = (
            "SELECT series, toUInt32(period) AS p, value, context FROM dtk_datapoints FINAL "
            "WHERE metric = {m} AND period >= toDateTime({since}) AND period < toDateTime({until})"
        )
        params: dict[str, Any] = {"m": metric, "since": since, "until": until}
        if series is not None:
            sql += " AND series = {s}"
            params["s"] = series
        rows = await self._do(lambda c: c.fetch(sql + " ORDER BY series, period", params=params))
        out: dict[str, list[StoredPoint]] = {}
        for r in rows:
            ctx = json.loads(r["context"]) if r["context"] else {}
            out.setdefault(r["series"], []).append(StoredPoint(int(r["p"]), r["value"], ctx))
        return out

    async def read_detections(self, metric: str, since: int, until: int) -> list[StoredDetection]:
        sql = (
            "SELECT series, toUInt32(period) AS p, detector, value, expected, lower, upper, score, anomaly, "
            "direction, skipped FROM dtk_detections FINAL "
            "WHERE metric = {m} AND period >= toDateTime({since}) AND period < toDateTime({until}) "
            "ORDER BY series, period, detector"
        )
        params = {"m": metric, "since": since, "until": until}
        rows = await self._do(lambda c: c.fetch(sql, params=params))
        return [detection_from_row(tuple(r.values())) for r in rows]

    # -- alert state ---------------------------------------------------------------------------

    async def load_states(self) -> dict[tuple[str, str], SeriesState]:
        rows = await self._do(
            lambda c: c.fetch(
                f"SELECT metric, series, {STATE_COLUMNS} FROM dtk_alert_state FINAL WHERE deleted = 0"
            )
        )
        return {(r["metric"], r["series"]): state_from_row(list(r.values())[2:]) for r in rows}

    async def drop_states(self, metric: str) -> None:
        rows = await self._do(
            lambda c: c.fetch(
                "SELECT series FROM dtk_alert_state FINAL WHERE metric = {m} AND deleted = 0",
                params={"m": metric},
            )
        )
        if not rows:
            return
        now, v = ch_time(time.time()), self._version()
        blank = state_row(SeriesState())
        tomb = [(metric, r["series"], 1, now, v, *blank) for r in rows]
        await self._do(lambda c: c.execute(INSERT_STATE, *tomb))

    # -- outbox ------------------------------------------------------------------------------

    async def _outbox_rows(self, where: str, params: dict[str, Any] | None = None) -> list[Any]:
        rows: list[Any] = await self._do(
            lambda c: c.fetch(
                f"SELECT {OUTBOX_COLS}, leased_by FROM dtk_outbox FINAL WHERE {where} ORDER BY id",
                params=params or {},
            )
        )
        return rows

    @staticmethod
    def _item(r: Any) -> OutboxItem:
        return OutboxItem(
            int(r["id"]),
            r["key"],
            r["metric"],
            r["series"],
            str(r["channel"]),
            r["payload"],
            int(r["attempts"]),
            r["created_at"],
            r["next_attempt_at"],
            _or_none(r["last_error"]),
            r["status"],
        )

    async def _update(self, item_id: int, **changes: Any) -> None:
        (row,) = await self._outbox_rows("id = {i}", {"i": item_id})
        values = {**dict(row.items()), **changes, "version": self._version()}
        record = tuple(values[c] for c in ALL_OUTBOX_COLS)
        await self._do(lambda c: c.execute("INSERT INTO dtk_outbox VALUES", record))

    async def outbox_claim(
        self,
        now: float,
        lease_s: float,
        limit: int,
        metric: str | None = None,
        owner: str = "",
        sent: Collection[int] = (),
    ) -> list[OutboxItem]:
        async with self._claim_lock:
            where = "status = 'pending'" + (" AND metric = {m}" if metric is not None else "")
            rows = await self._outbox_rows(where, {"m": metric} if metric is not None else None)
            leases = [(self._item(r), r["leased_until"] or None) for r in rows]
            items = eligible(leases, now, limit, sent)
            for item in items:
                await self._update(item.id, leased_until=now + lease_s, leased_by=owner)
            return items

    async def outbox_release(self, owner: str, ids: Collection[int] | None = None) -> int:
        async with self._claim_lock:
            rows = await self._outbox_rows(
                "status = 'pending' AND leased_by = {o} AND leased_until > 0", {"o": owner}
            )
            rows = [r for r in rows if ids is None or int(r["id"]) in ids]
            for r in rows:
                await self._update(int(r["id"]), leased_until=0.0)
            return len(rows)

    async def outbox_pending(self, status: str = OutboxStatus.PENDING) -> list[OutboxItem]:
        status = OutboxStatus(status).value  # a plain str for the driver
        return [self._item(r) for r in await self._outbox_rows("status = {s}", {"s": status})]

    async def outbox_history(self, metric: str, since: float) -> list[OutboxItem]:
        where = "metric = {m} AND created_at >= {t} AND status != 'moved'"  # moved: re-written as another
        rows = await self._outbox_rows(where, {"m": metric, "t": since})
        return [self._item(r) for r in rows]

    async def outbox_done(self, item_id: int) -> None:
        # Kept as `sent` (a re-run of the same periods must not write it again) until
        # `outbox_purge`; next_attempt_at records when it was sent.
        await self._update(
            item_id, status=OutboxStatus.SENT.value, leased_until=0.0, next_attempt_at=time.time()
        )

    async def outbox_rechannel(self, metric: str, renames: dict[str, str]) -> int:
        """The channel is in the sorting key: each moved row is written anew under the new
        channel (a new id) and its old version is marked `moved` (purged like `sent`)."""
        rows = await self._outbox_rows(
            "status = 'pending' AND metric = {m} AND has({old}, channel)", {"m": metric, "old": list(renames)}
        )
        for r in rows:
            item_id = self._version()
            values = {**dict(r.items()), "id": item_id, "channel": renames[r["channel"]], "version": item_id}
            record = tuple(values[c] for c in ALL_OUTBOX_COLS)
            await self._do(lambda c, record=record: c.execute("INSERT INTO dtk_outbox VALUES", record))
            await self._update(int(r["id"]), status=OutboxStatus.MOVED.value, next_attempt_at=time.time())
        return len(rows)

    async def outbox_purge(self, sent_before: float) -> int:
        """Delete the rows sent before `sent_before`, every version of them (a mutation that
        matched only the `sent` version would bring the older `pending` one back)."""
        rows = await self._do(
            lambda c: c.fetch(
                "SELECT id FROM dtk_outbox FINAL WHERE status IN ('sent', 'moved') AND next_attempt_at < {b}",
                params={"b": sent_before},
            )
        )
        ids = [int(r["id"]) for r in rows]
        for lo in range(0, len(ids), 2_000):  # well under max_query_size (256 KiB)
            chunk = ids[lo : lo + 2_000]
            await self._do(
                lambda c, chunk=chunk: c.execute(
                    "ALTER TABLE dtk_outbox DELETE WHERE has({ids}, id)", params={"ids": chunk}
                )
            )
        if ids:
            await wait_for_mutations(self._do, self.database, ["dtk_outbox"], self.path)
        return len(ids)

    async def outbox_retry(self, item_id: int, error: str, next_attempt_at: float, dead: bool) -> None:
        (row,) = await self._outbox_rows("id = {i}", {"i": item_id})
        await self._update(
            item_id,
            attempts=int(row["attempts"]) + 1,
            last_error=error,
            next_attempt_at=next_attempt_at,
            status=(OutboxStatus.DEAD if dead else OutboxStatus.PENDING).value,
            leased_until=0.0,
        )

    async def outbox_stats(self) -> OutboxStats:
        rows = await self._do(
            lambda c: c.fetch(
                "SELECT countIf(status = 'pending') AS pending, countIf(status = 'dead') AS dead, "
                "minIf(created_at, status = 'pending') AS oldest, "
                "minIf(greatest(next_attempt_at, leased_until), status = 'pending') AS due "
                "FROM dtk_outbox FINAL"
            )
        )
        r = rows[0]
        pending = int(r["pending"])
        return OutboxStats(
            pending, int(r["dead"]), r["oldest"] if pending else None, r["due"] if pending else None
        )

    # -- retention -----------------------------------------------------------------------------

    async def delete_before(self, metric: str, cutoff: int, detections_only: bool = False) -> int:
        tables = ["dtk_detections"] if detections_only else ["dtk_detections", "dtk_datapoints"]
        total = 0
        params = {"m": metric, "c": cutoff}
        where = "metric = {m} AND period < toDateTime({c})"
        for table in tables:
            count_sql = f"SELECT count() AS n FROM {table} FINAL WHERE {where}"
            delete_sql = f"ALTER TABLE {table} DELETE WHERE {where}"
            rows = await self._do(lambda c, q=count_sql: c.fetch(q, params=params))
            total += int(rows[0]["n"])
            await self._do(lambda c, q=delete_sql: c.execute(q, params=params))
        await wait_for_mutations(self._do, self.database, tables, self.path)
        return total


def build(params: StoreParams) -> ClickhouseStore:
    """Connection keys map native ports to HTTP exactly as the ClickHouse collector does."""
    fields = params.model_dump(exclude={"path"}, exclude_none=True)
    ep = ch_endpoint(ChParams.model_validate({**fields, "query": ""}))
    database = ep.database if (params.database or params.connection_string) else "detectk"
    url = ep.urls[0] if len(ep.urls) == 1 else ep.urls
    return ClickhouseStore(url, database=database, user=ep.user, password=ep.password)
