"""A metric's runtime built as the daemon builds it (`runtime.slot.assemble`), for the tests
that drive `MetricRuntime` directly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from detectkd.alerting.silences import Silences
from detectkd.alerting.state import SeriesState
from detectkd.collectors.base import Row, Window
from detectkd.resources import Resources
from detectkd.runtime.parts import LIVE, REPLAY
from detectkd.runtime.runner import MetricRuntime
from detectkd.runtime.slot import Deps, assemble
from detectkd.specs.loader import MetricSpec
from detectkd.storage.base import Store
from detectkd.telemetry import Telemetry


def runtime(
    spec: MetricSpec,
    store: Store,
    resources: Resources,
    telemetry: Telemetry | None = None,
    states: Mapping[str, SeriesState] | None = None,
    *,
    link_template: str | None = None,
    silences: Silences | None = None,
    replay: bool = False,
) -> MetricRuntime:
    """The metric's runtime on `store` (no channels, nothing woken by its alerts); `replay`:
    a backtest's, where every period may notify."""
    deps = Deps(store, resources, telemetry=telemetry, generator_url=link_template, silences=silences,
                mode=REPLAY if replay else LIVE, channels=False)  # fmt: skip
    return assemble(spec, deps, states).runtime


def count_queries(rt: MetricRuntime) -> list[Window]:
    """The windows the runtime's (real) collector is asked for, from now on."""
    asked: list[Window] = []
    collect = rt.collector.collect

    async def counted(window: Window) -> list[Row]:
        asked.append(window)
        return await collect(window)

    rt.collector.collect = counted  # type: ignore[method-assign]
    many = getattr(rt.collector, "collect_many", None)
    if many is not None:  # several periods in one call: each window is still one query

        async def counted_many(windows: Sequence[Window]) -> list[list[Row]]:
            asked.extend(windows)
            rows: list[list[Row]] = await many(windows)
            return rows

        rt.collector.collect_many = counted_many  # type: ignore[attr-defined]
    return asked
