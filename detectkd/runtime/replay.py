"""Replay: judge a past range period by period as the daemon would have live, on an
in-memory store, sending nothing. The engine under `detectkd backtest` and the metric
page's "Backtest this config" (`POST /api/v1/metrics/{name}/backtest`)."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from detectkd.alerting.alert import Alert
from detectkd.resources import Resources
from detectkd.runtime.parts import REPLAY
from detectkd.runtime.runner import RunReport
from detectkd.runtime.slot import Deps, assemble
from detectkd.specs.loader import MetricSpec
from detectkd.storage.memory import MemoryStore


@dataclass
class Tally:
    """What a replay found, per series."""

    points: Counter[str] = field(default_factory=Counter)
    missing: Counter[str] = field(default_factory=Counter)
    anomalous: Counter[str] = field(default_factory=Counter)
    alerts: list[Alert] = field(default_factory=list)
    flagged: dict[str, list[int]] = field(default_factory=dict)  # anomalous periods, oldest first


def tally(report: RunReport, t: Tally) -> None:
    """Count one batch of a replay into `t`."""
    for pr in report.points:
        series = pr.point.series
        t.points[series] += 1
        t.missing[series] += pr.point.value is None
        t.anomalous[series] += pr.verdict.anomalous
        if pr.verdict.anomalous:
            t.flagged.setdefault(series, []).append(pr.point.period)
    t.alerts.extend(report.alerts)


async def replay(
    spec: MetricSpec,
    start: float,
    finish: float,
    account: Callable[[RunReport], None],
    quiet_gc: bool = True,
) -> None:
    """Judge [start, finish) period by period as the daemon would have live, on an in-memory
    store, sending nothing; `account` sees each batch's report. Raises CollectError or
    ValueError when the source fails. `quiet_gc`: pause the cyclic GC (the process's, so
    not inside the daemon)."""
    resources = Resources()
    slot = assemble(spec, Deps(MemoryStore(keep_data=False), resources, mode=REPLAY, channels=False))
    rt = slot.runtime
    # The replay allocates millions of short-lived, acyclic objects next to a large cache of
    # source rows: the cyclic GC would re-scan that cache over and over (half the run time
    # for a year of 1-minute data). Reference counting frees them; young generations are
    # collected between batches.
    gc_was_enabled = gc.isenabled()
    if quiet_gc:
        gc.disable()
    try:
        size = spec.config.schedule.batch_load_days * 86400
        for lo, hi in rt.grid.batches(rt.grid.floor(start), rt.grid.floor(finish), size):
            run = await rt.check(lo, hi, notify=True, commit=True)
            account(run)
            del run
            if quiet_gc:
                gc.collect(1)
    finally:
        if quiet_gc and gc_was_enabled:
            gc.enable()
        await slot.stop()
        await resources.close()
