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

import json
import time
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
    RunRecord,
    StoredDetection,
    StoredPoint,
    detection_from_row,
)
from detectkd.storage.clickhouse_docs import ClickhouseDocs, wait_for_mutations
from detectkd.storage.clickhouse_outbox import ClickhouseOutbox, claim_lock
from detectkd.storage.clickhouse_schema import (
    INSERT_STATE,
    ch_time,
    migrate,
)
from detectkd.storage.clickhouse_shadow import ClickhouseShadow


class ClickhouseStore(ClickhouseDocs, ClickhouseShadow, ClickhouseOutbox):
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
        self._claim_lock = claim_lock(self.path)
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
