"""Evidence that a metric's newest period is complete before it is judged (`completeness:`).

`Gate.hold(finish, now)` looks at the newest due period only (older periods of a catch-up
were due long ago): with `complete_when`, a query on the metric's source (its own collector
type and connection, the same templating, timeout and row cap) must say the period is
complete; with `settle`, the period's value read twice, `settle` apart, must agree within
`tolerance`. Both set: both must hold. While not complete, the run judges up to the
period before it and is asked again (`retry`): every `poll` for `complete_when`, when the
second read is due for `settle`. Once `max_wait` (default: one interval) has passed since
the period became due, it is judged anyway and the status says "judged incomplete".

What the metric waits for is in its status (`/api/v1/metrics`: `completeness`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import structlog

from detectkd.collectors import registry as collector_registry
from detectkd.collectors.base import Collector, Window
from detectkd.errors import CollectError, error_line
from detectkd.resources import Resources
from detectkd.runtime.collect import collect
from detectkd.runtime.runner import MetricRuntime
from detectkd.timegrid import fmt_local

log = structlog.get_logger("detectkd.run")
PROBE_ROWS = 1000  # a complete_when answer with more rows is refused (only the first is read)
FALSE_TEXT = frozenset({"", "0", "f", "false", "no", "n"})


@dataclass(frozen=True)
class Held:
    finish: int | None  # run up to here (None: nothing new is due)
    retry: float | None = None  # ask again in this many seconds
    why: str | None = None  # what the newest period waits for
    incomplete: bool = False  # judged although not complete (`max_wait` passed)


class Gate:
    def __init__(self, rt: MetricRuntime, resources: Resources) -> None:
        self.rt = rt
        self.cfg = rt.spec.config.completeness
        self.probe: Collector | None = None
        self.reads: dict[int, tuple[float, dict[str, float | None]]] = {}  # settle's first read
        self.held: dict[int, str] = {}  # periods held back, and what they waited for
        if self.cfg is not None and self.cfg.complete_when is not None:
            c = rt.spec.collector
            kind = collector_registry.lookup(c.type)
            assert kind is not None
            params = c.params.model_copy(update={"query": self.cfg.complete_when})
            p = c.points
            self.probe = kind.build(params, resources, p.timestamp_column, p.value_column, PROBE_ROWS)

    @property
    def active(self) -> bool:
        return self.cfg is not None and (self.cfg.complete_when is not None or self.cfg.settle is not None)

    async def hold(self, finish: int, now: float) -> Held:
        """Up to where the run may judge at `now`: the oldest due period not complete yet,
        unless its `max_wait` is over (then judged, marked incomplete if it was waited on)."""
        rt, cfg = self.rt, self.cfg
        if cfg is None or not self.active:
            return Held(finish)
        grid = rt.grid
        wm = rt.settled if rt.settled is not None else await rt.store.watermark(rt.name)
        if wm is None or wm >= grid.prev(finish):  # a first start (its history decides), or judged
            return Held(finish)
        delay = rt.spec.config.schedule.delay.total_seconds()
        limit = (cfg.max_wait or rt.interval).total_seconds()
        due = grid.periods(grid.next(wm), finish)
        expired = [p for p in due if grid.next(p) + delay + limit <= now]
        late = expired[-1] if expired and expired[-1] in self.held else None
        judged = None
        if late is not None:
            when, why = fmt_local(late, rt.tz), self.held[late]
            judged = f"judged incomplete: {when}: {why}"
            log.warning("period judged incomplete", metric=rt.name, period=when, why=why)
        for period in due[len(expired) :]:
            waits, retry = await self._evidence(period, now)
            if waits:
                why = self.held[period] = "; ".join(waits)
                self._prune(period)
                waiting = f"waiting: {fmt_local(period, rt.tz)}: {why}"
                rt.status.completeness = f"{judged}; {waiting}" if judged else waiting
                left = grid.next(period) + delay + limit - now
                return Held(period if period > grid.next(wm) else None, max(1.0, min(retry, left)), why)
        rt.status.completeness = judged
        self._prune(grid.next(grid.prev(finish)))
        return Held(finish, incomplete=late is not None)

    async def _evidence(self, period: int, now: float) -> tuple[list[str], float]:
        """What the period still waits for (nothing: complete) and when to ask again."""
        cfg = self.cfg
        assert cfg is not None
        finish = self.rt.grid.next(period)
        waits: list[str] = []
        retry = math.inf
        if self.probe is not None and (why := await self._asked(period, finish)) is not None:
            waits.append(why)
            retry = cfg.poll.total_seconds()
        if cfg.settle is not None and (left := await self._settled(period, finish, now)) is not None:
            waits.append(f"settle: the value changed or was read once; read again in {math.ceil(left)}s")
            retry = min(retry, left)
        return waits, retry

    def _prune(self, oldest: int) -> None:
        """Forget what periods before `oldest` waited for (they are judged)."""
        self.reads = {p: r for p, r in self.reads.items() if p >= oldest}
        self.held = {p: w for p, w in self.held.items() if p >= oldest}

    async def _asked(self, period: int, finish: int) -> str | None:
        """None when `complete_when` says the period is complete, else why not."""
        assert self.probe is not None
        window = Window(period, finish, self.rt.interval, self.rt.tz)
        try:
            rows = await self.probe.collect(window)
        except CollectError as exc:
            line = error_line(exc)
            if "max_rows" in line:  # the collector's wording names the metric's own cap
                return f"complete_when returned more than {PROBE_ROWS:,} rows (only the first is read)"
            return f"complete_when failed: {line}"
        value = next(iter(rows[0].values()), None) if rows and rows[0] else None
        if complete(value, finish, self.rt.tz.key):
            return None
        return f"complete_when returned {_shown(value)}"

    async def _settled(self, period: int, finish: int, now: float) -> float | None:
        """None when two reads `settle` apart agree, else the seconds to the next read."""
        cfg = self.cfg
        assert cfg is not None and cfg.settle is not None
        rt = self.rt
        conv = await collect(rt.collector, rt.spec, rt.grid, period, finish)
        values = {p.series: p.value for p in conv.points if p.period == period}
        settle = cfg.settle.total_seconds()
        first = self.reads.get(period)
        if first is not None and agree(first[1], values, cfg.tolerance):
            left = first[0] + settle - now
            return None if left <= 0 else left
        self.reads[period] = (now, values)
        return settle

    async def close(self) -> None:
        if self.probe is not None:
            await self.probe.close()


def complete(value: Any, finish: int, tz: str) -> bool:
    """A `complete_when` answer: a time (a watermark) must reach the period's end; any other
    value must be truthy. Naive times are in the metric's timezone, as `period_finish` is."""
    moment = _moment(value, tz)
    if moment is not None:
        return moment >= finish
    if isinstance(value, str):
        return value.strip().lower() not in FALSE_TEXT
    return bool(value)


def _moment(value: Any, tz: str) -> float | None:
    from zoneinfo import ZoneInfo

    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=ZoneInfo(tz))).timestamp()
    return None


def agree(a: Mapping[str, float | None], b: Mapping[str, float | None], tolerance: float) -> bool:
    """The same series, each value within `tolerance` (relative) of the other."""
    if set(a) != set(b):
        return False
    for series, x in a.items():
        y = b[series]
        if x is None or y is None or x != x or y != y:
            if (x is None or x != x) != (y is None or y != y):
                return False
            continue
        if abs(x - y) > tolerance * max(abs(x), abs(y)):
            return False
    return True


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
