"""Where, at runtime: on a FIRING of a metric with an `explain:` block, its breakdown query
for the anomalous period and its baseline periods, ranked (`alerting.where`), stored with the
alert as `extra["where"]` before the outbox commit.

Without a query (a multi-series metric), the metric's own series are the segments: their
values in those periods come from the series' windows in memory, nothing is asked.

Bounded: one FIRING period per run (the newest; a catch-up's older FIRINGs say so), the
anomalous period and `baseline_periods` earlier ones (`baseline_step` apart) asked at once,
all under one `timeout`; each result read stops at `max_segments` + 1 rows (the collector's
`max_rows`); the ranking runs in a worker thread. Any failure becomes a note
(`extra["where_error"]`): the alert is committed and sent all the same, at most `timeout`
later than without `explain:`.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import structlog

from detectkd.alerting.alert import Alert
from detectkd.alerting.message import where_lines
from detectkd.alerting.state import SeriesState, Status
from detectkd.alerting.where import baseline, explain
from detectkd.collectors import registry as collector_registry
from detectkd.collectors.base import Collector, Row, Window
from detectkd.collectors.points import parse_series_key
from detectkd.durations import format_duration
from detectkd.errors import CollectError

if TYPE_CHECKING:
    from detectkd.resources import Resources
    from detectkd.runtime.judge import Outcome
    from detectkd.runtime.memory import SeriesMemory
    from detectkd.specs.model import MetricSpec
    from detectkd.storage.base import NewOutboxItem, RunRecord

log = structlog.get_logger("detectkd.where")


WHERE_KEYS = ("where", "where_error", "where_spread")


async def enrich(b: Breakdown | None, record: RunRecord, out: Outcome) -> None:
    """The runner's hook: for a metric with `explain:`, the where of a run that notifies goes
    into its alerts, outbox rows and the FIRING series' alert states (the UI and /api)."""
    if b is None or not record.outbox:
        return
    await b.enrich(record.outbox, out.alerts)
    for i, a in enumerate(out.alerts):
        st = out.states.get(a.series)
        if st is None or a.kind != "anomaly" or a.status != "firing":
            continue
        if a.resent is None and (told := {k: a.extra[k] for k in WHERE_KEYS if k in a.extra}):
            new = replace(st, where=json.dumps({**told, "period": a.period}))
            out.states[a.series] = record.states[a.series] = new
        elif a.resent is not None and st.where:  # an Alertmanager re-send keeps the annotation
            kept = {k: v for k, v in json.loads(st.where).items() if k in WHERE_KEYS}
            out.alerts[i] = replace(a, extra={**a.extra, **kept})
    _payloads(record.outbox, out.alerts)


def where_lines_of(st: SeriesState) -> list[str]:
    """A FIRING series' where lines (the message's), else none."""
    if st.where is None or st.status is not Status.FIRING:
        return []
    try:
        return where_lines(json.loads(st.where))
    except (ValueError, TypeError, AttributeError):
        return []


class Breakdown:
    """A metric's `explain:`: its own collector (the metric's connection, the breakdown query)."""

    def __init__(self, spec: MetricSpec, resources: Resources, memory: SeriesMemory | None = None) -> None:
        e = spec.config.explain
        assert e is not None
        self.explain = e
        self.name = spec.name
        sched = spec.config.schedule
        self.interval, self.tz = sched.interval, ZoneInfo(sched.timezone)
        self.step = int(e.step(sched.interval).total_seconds())
        self.memory = memory  # without a query: the metric's own series, from its windows
        self.collector: Collector | None = None
        if e.query is not None:
            kind = collector_registry.lookup(spec.collector.type)
            assert kind is not None
            params = spec.collector.params.model_copy(update={"query": e.query, "timeout": e.timeout})
            self.collector = kind.build(params, resources, max_rows=e.max_segments)

    @staticmethod
    def of(spec: MetricSpec, resources: Resources, memory: SeriesMemory | None = None) -> Breakdown | None:
        return Breakdown(spec, resources, memory) if spec.config.explain is not None else None

    async def close(self) -> None:
        if self.collector is not None:
            await self.collector.close()

    async def enrich(self, outbox: list[NewOutboxItem], alerts: list[Alert]) -> None:
        """Add the where of the newest FIRING period to its alerts and outbox rows, in place."""
        firing = [a.period for a in alerts if _firing(a)]
        if not firing:
            return
        period = max(firing)
        extra = await self.where(period)
        skipped = {"where_error": "where: not explained (an older period of a catch-up)"}
        for i, a in enumerate(alerts):
            if _firing(a):
                alerts[i] = replace(a, extra={**a.extra, **(extra if a.period == period else skipped)})
        _payloads(outbox, alerts)

    async def where(self, period: int) -> dict[str, Any]:
        """`{"where": [...]}` (or `where_spread`), or `{"where_error": "where: ..."}`."""
        e = self.explain
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(e.timeout.total_seconds()):
                periods = [period - k * self.step for k in range(e.baseline_periods + 1)]
                if self.collector is None:
                    results = self._own(periods)
                else:
                    results = await asyncio.gather(*(self._rows(p) for p in periods))
                out = await asyncio.to_thread(self._rank, results)
        except TimeoutError:
            out = {"where_error": f"where: breakdown failed: timeout after {format_duration(e.timeout)}"}
        except CollectError as exc:
            cap = f"more than explain.max_segments ({e.max_segments:,}) rows"
            why = cap if "max_rows" in str(exc) else exc
            out = {"where_error": f"where: breakdown failed: {why}"}
        except ValueError as exc:  # rows without the dimension or value columns, or too many
            out = {"where_error": f"where: breakdown failed: {exc}"}
        except Exception as exc:  # never the reason an alert is late or lost
            log.exception("where failed", metric=self.name)
            out = {"where_error": f"where: breakdown failed: {type(exc).__name__}"}
        took = round(time.perf_counter() - t0, 3)
        log.info("where", metric=self.name, period=period, seconds=took, error=out.get("where_error"))
        return out

    def _own(self, periods: list[int]) -> list[list[Row]]:
        """A multi-series metric's own series as breakdown rows: each series' value in each
        period from its window (the anomalous period's is this run's); a baseline period no
        window reaches is left out."""
        assert self.memory is not None
        e = self.explain
        out: list[list[Row]] = [[] for _ in periods]
        wanted = np.array(periods, dtype=np.int64)
        for series, w in self.memory.windows.items():
            h = w.history()
            at = np.searchsorted(h.times, wanted)
            labels = parse_series_key(series)
            key = {d: labels.get(d, "") for d in e.dimensions}
            for i, j in enumerate(at):
                if j < len(h.times) and h.times[j] == wanted[i] and np.isfinite(h.values[j]):
                    out[i].append({**key, e.value_column: float(h.values[j])})
        kept = [out[0]] + [rows for rows in out[1:] if rows]
        if len(kept) == 1:
            raise ValueError("the series' windows reach back to no baseline period")
        return kept

    async def _rows(self, period: int) -> list[Row]:
        assert self.collector is not None
        return await self.collector.collect(
            Window(period, period + int(self.interval.total_seconds()), self.interval, self.tz)
        )

    def _rank(self, results: list[list[Row]]) -> dict[str, Any]:
        e = self.explain
        index: dict[tuple[str, ...], int] = {}
        table: list[dict[int, float]] = []
        for rows in results:
            got: dict[int, float] = {}
            for row in rows:
                key = tuple(_text(row, d) for d in e.dimensions)
                if key not in index:
                    if len(index) >= e.max_segments:
                        raise ValueError(f"more than explain.max_segments ({e.max_segments:,}) segments")
                    index[key] = len(index)
                got[index[key]] = got.get(index[key], 0.0) + _number(row, e.value_column)
            table.append(got)
        if not index:
            return {"where_error": "where: the breakdown query returned no rows"}
        grid = np.full((len(table), len(index)), np.nan)
        for i, got in enumerate(table):
            for j, x in got.items():
                grid[i, j] = x
        actual = np.nan_to_num(grid[0])
        b = baseline(grid[1:])
        found = explain(e.dimensions, list(index), actual, b.expected, b.spread, b.common)
        if found.spread:
            return {"where_spread": True, "where": []}
        return {"where": [f.as_dict() for f in found.found]}


def _payloads(outbox: list[NewOutboxItem], alerts: list[Alert]) -> None:
    """The outbox rows of alerts that carry a where: their payloads again."""
    by_key = {a.key: a for a in alerts if a.extra.keys() & set(WHERE_KEYS)}
    for i, item in enumerate(outbox):
        if (told := by_key.get(item.key)) is not None:
            outbox[i] = replace(item, payload=told.to_json())


def _firing(a: Alert) -> bool:
    """A FIRING of an anomaly (its first send or a re-send; not an Alertmanager refresh)."""
    return a.kind == "anomaly" and a.status == "firing" and a.resent is None


def _text(row: Row, column: str) -> str:
    if column not in row:
        raise ValueError(f"the breakdown rows have no column {column!r} (explain.dimensions)")
    value = row[column]
    return "" if value is None else str(value)[:200]


def _number(row: Row, column: str) -> float:
    if column not in row:
        raise ValueError(f"the breakdown rows have no column {column!r} (explain.value_column)")
    try:
        x = float(row[column])
    except (TypeError, ValueError):
        return 0.0
    return x if math.isfinite(x) else 0.0
