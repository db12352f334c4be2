"""The live runtime's side of a late series' history (`runtime.serieswarm`): which series a
run saw with no history, which are loading, and reading their windows once they are stored.

A series is fresh when a run's source rows hold it and the metric has neither a window for
it (after its windows were read from the store) nor an alert state: it appeared after the
metric's first start (or came back after it was forgotten). Not on a first start (no
watermark yet): the warm-up loads every series' history then.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from detectkd.collectors.points import Point
from detectkd.runtime.coldstart import warmup_seconds
from detectkd.runtime.memory import SeriesMemory
from detectkd.specs.loader import MetricSpec
from detectkd.storage.base import DataStore
from detectkd.storage.window import rows_of


class FreshSeries:
    def __init__(self, spec: MetricSpec, memory: SeriesMemory, judge_span: int) -> None:
        self.memory = memory
        # Worth a load: many series, a window longer than a period, history that can be asked for.
        self.worth = bool(
            spec.collector.points.series_columns
            and spec.storage.enabled
            and warmup_seconds(spec, judge_span) > memory.grid.step
        )
        self.hook: Callable[[Mapping[str, int]], None] | None = None  # the daemon's loader (`serieswarm`)
        self.loading: set[str] = set()  # asked for, not judged with their history yet
        self.stored: set[str] = set()  # loaded: their windows are read at the next run

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

    def ask(self, series: Mapping[str, int]) -> None:
        """After the run that saw them committed: load their history."""
        if series and self.hook is not None:
            self.loading.update(series)
            self.hook(series)

    def loaded(self, series: set[str], ok: bool) -> None:
        """The loader is done with `series`: stored (read at the next run), or not (they fill
        by their own runs: cold start)."""
        if ok:
            self.stored |= series & self.loading
        else:
            self.loading -= series

    async def adopt(
        self, data: Callable[[], Awaitable[DataStore]], metric: str, before: int, also: Sequence[SeriesMemory]
    ) -> None:
        """The stored series' windows read again from the store (their history in them now),
        before the run judges from `before` on; `also`: the `shadow:` variants' memories."""
        if not self.stored:
            return
        memories, store = [self.memory, *also], await data()
        span = max(m.span for m in memories)
        for s in sorted(self.stored):  # (a failed read leaves the rest for the next run)
            points = (await store.read_points(metric, s, before - span, before)).get(s, [])
            for memory in memories:
                since = before - memory.span
                own = [p for p in points if p.period >= since]
                if s in memory.windows and own:  # (forgotten meanwhile: left out)
                    memory.forget(s)
                    memory.load({s: rows_of(own)})
            self.stored.discard(s)
            self.loading.discard(s)
