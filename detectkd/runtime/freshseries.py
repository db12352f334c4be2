"""The live runtime's side of a late series' history (`runtime.serieswarm`): which series a
run saw with no history, when their load is asked, and reading their windows once stored.

A series is fresh when a run's source rows hold it and the metric has neither a window for
it (after its windows were read from the store) nor an alert state: it appeared after the
metric's first start (or came back after it was forgotten). Not on a first start (no
watermark yet): the warm-up loads every series' history then.

A load is one range query over the detectors' window for every series of the metric (only
the new ones are kept), so its cost at the source is that of the live runs over that window
(as many periods, the same series). Two bounds, in the metric's periods (not the wall clock:
a run judges its own periods, and catch-up runs count as the periods they judge):

- frequency: at most one load every `spacing(interval)` (10 periods, at least 10 minutes): a
  series seen meanwhile waits, and goes with the others in the next load, asked by the first
  run at or past the spacing;
- cost: at most `BUDGET` loads in any span of the periods a load covers (the window): the
  loads never read more than `BUDGET` times what the live runs read over the same periods.
  Beyond it the waiting series, and new series until the oldest of those loads leaves the
  span, start cold (fill by their own runs); `off` says so, with until when.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence

import numpy as np
import structlog

from detectkd.collectors.points import Point
from detectkd.runtime.coldstart import warmup_seconds
from detectkd.runtime.memory import SeriesMemory
from detectkd.runtime.offloop import sized, window_load
from detectkd.specs.loader import MetricSpec
from detectkd.storage.base import DataStore
from detectkd.storage.window import WindowRows, read_window, rows_of
from detectkd.timegrid import fmt_local

log = structlog.get_logger("detectkd.history")

SPACING_PERIODS = 10  # a metric's late-series loads: at most one every this many periods,
SPACING_FLOOR = 600  # and at least this many seconds apart (a 10 s metric: one a minute)
# Loads in any span of the periods a load covers (its window). Two: a burst of new series (a
# deploy, a new region) that straddles a spacing takes two loads (at once, then the series
# the spacing held back); more within one window is a steady arrival of series (pod names,
# series that come and go with forget_after), whose loads would each read the whole window
# again. So the loads read at most twice what the live runs read over the same periods.
BUDGET = 2
BATCH_READ = 16  # more series stored at once (and a tenth of the metric's): one read of all


def spacing(step: int) -> int:
    """Seconds of periods between a metric's late-series loads (`step`: its interval)."""
    return step * max(SPACING_PERIODS, -(-SPACING_FLOOR // step))


class FreshSeries:
    def __init__(self, spec: MetricSpec, memory: SeriesMemory, judge_span: int) -> None:
        self.memory = memory
        self.name = spec.name
        many, switch = bool(spec.collector.points.series_columns), spec.config.schedule.late_series_warmup
        self.window = warmup_seconds(spec, judge_span)  # the periods a load covers (the budget's span)
        # Worth a load: many series, a window longer than a period, history that can be asked for.
        self.worth = bool(many and switch and spec.storage.enabled and self.window > memory.grid.step)
        self.spacing = spacing(memory.grid.step)
        # Why late series are not loaded (the API's `late_series`); None: loaded, or no such load.
        self.off: str | None = "off: schedule.late_series_warmup is false" if many and not switch else None
        self.hook: Callable[[Mapping[str, int]], None] | None = None  # the daemon's loader (`serieswarm`)
        self.loading: set[str] = set()  # waiting or asked for, not judged with their history yet
        self.waiting: dict[str, int] = {}  # seen, held back by the spacing -> first period seen
        self.stored: set[str] = set()  # loaded: their windows are read at the next run
        self.asked: int | None = None  # the newest period of the run that asked the last load
        self.recent: list[int] = []  # the newest periods of the runs that asked loads, in the span
        self.until: int | None = None  # the budget is spent: new series start cold before this period

    def seen(self, points: list[Point], states: Mapping[str, object]) -> dict[str, int]:
        """The run's fresh series, each with its first period in the run."""
        if self.hook is None or not self.worth:
            return {}
        windows = self.memory.windows
        out: dict[str, int] = {}
        for p in points:
            s = p.series
            if s not in windows and s not in states and p.value is not None and s not in self.loading:
                out[s] = min(p.period, out.get(s, p.period))
        return out

    def ask(self, series: Mapping[str, int], newest: int) -> None:
        """After the run that saw `series` committed (`newest`: its newest period): they wait
        for the next load, asked now if the spacing allows it."""
        if self.hook is None or not self.worth:
            return
        if self.until is not None:
            if newest < self.until:
                return  # the budget is spent: they start cold
            self.until, self.off = None, None
        for s, first in series.items():
            self.waiting[s] = min(first, self.waiting.get(s, first))
        self.loading.update(series)
        if not self.waiting or (self.asked is not None and newest < self.asked + self.spacing):
            return
        self.recent = [a for a in self.recent if a > newest - self.window]
        if len(self.recent) >= BUDGET:
            self._spent(self.recent[0] + self.window)
            return
        asked, self.waiting, self.asked = self.waiting, {}, newest
        self.recent.append(newest)
        self.hook(asked)

    def _spent(self, until: int) -> None:
        """`BUDGET` loads in the window: the waiting series, and new ones before `until`,
        start cold (logged once a time)."""
        self.until = until
        at = fmt_local(until, self.memory.grid.tz)
        self.off = (
            f"off until {at}: {BUDGET} loads in the last {self.window // self.memory.grid.step} periods, "
            "the most per window a load reads (each reads it for every series); new series start cold"
        )
        self.loading -= set(self.waiting)
        self.waiting = {}
        log.warning("late series not loaded: load budget spent", metric=self.name, loads=BUDGET, until=at)

    def stop(self, why: str) -> None:
        """No more loads for this runtime (until a reload or restart): the waiting series fill
        by their own runs; a load already asked goes on."""
        self.worth, self.off = False, why
        self.loading -= set(self.waiting)
        self.waiting = {}

    def loaded(self, series: set[str], ok: bool) -> None:
        """The loader is done with `series`: stored (read at the next run), or not (they fill
        by their own runs: cold start)."""
        if ok:
            self.stored |= series & self.loading
        else:
            self.loading -= series
            for s in series:
                self.waiting.pop(s, None)

    def unread(self) -> set[str]:
        """Series whose windows a snapshot leaves out (the next start reads them from the
        store): their history is loading, or stored and not read back yet."""
        return self.loading | self.stored

    async def adopt(
        self, data: Callable[[], Awaitable[DataStore]], metric: str, before: int, also: Sequence[SeriesMemory]
    ) -> None:
        """The stored series' windows read again from the store (their history in them now),
        before the run judges from `before` on; `also`: the `shadow:` variants' memories.
        As a first run's window load: a read per series, or one of the metric's window for
        many (thousands from one load), under `window_load`'s bound, and the windows loaded
        in a judge thread when they are many points (`sized`)."""
        if not self.stored:
            return
        memories, store = [self.memory, *also], await data()
        span = max(m.span for m in memories)
        todo = sorted(self.stored)
        async with window_load(True):  # (a many-series metric: `worth`)
            read = await read_series(store, metric, todo, before - span, before, len(self.memory.windows))
            await sized(sum(map(len, read.values())), _adopt, read, memories, before)
        self.stored.difference_update(todo)
        self.loading.difference_update(todo)


def _adopt(read: Mapping[str, WindowRows], memories: Sequence[SeriesMemory], before: int) -> None:
    """Each memory's windows of `read`'s series replaced by what was read (a series forgotten
    meanwhile, or with nothing stored in its span, left as it is)."""
    for memory in memories:
        first = before - memory.span
        own = {s: part for s, rows in read.items() if s in memory.windows and len(part := since(rows, first))}
        if not own:
            continue
        for s in own:
            memory.forget(s)
        memory.load(own)


def batched(series: int, known: int) -> bool:
    """`series` of a metric of `known` read in one read of the metric's window."""
    return series > BATCH_READ and series * 10 >= known


async def read_series(
    store: DataStore, metric: str, series: Sequence[str], first: int, until: int, known: int
) -> dict[str, WindowRows]:
    """The stored windows [first, until) of `series` (of a metric of `known`): a read per
    series, or one of the metric's window for many."""
    if batched(len(series), known):
        every = await read_window(store, metric, first, until)
        return {s: every[s] for s in series if s in every}
    out = {}
    for s in series:
        if points := (await store.read_points(metric, s, first, until)).get(s, []):
            out[s] = rows_of(points)
    return out


def since(rows: WindowRows, first: int) -> WindowRows:
    """`rows` of periods at or after `first`."""
    i = int(np.searchsorted(rows.times, first))
    if i == 0:
        return rows
    contexts = None if rows.contexts is None else rows.contexts[i:]
    last = rows.last if rows.last >= first else -math.inf
    return WindowRows(rows.times[i:], rows.values[i:], contexts, last)
