"""A metric's first start: where its first run begins, and why it may still be in cold start.

A metric without a stored watermark starts from `schedule.start_time` when it has one
(DetectK's history loading). Without it, it loads the history its detectors read (their
`window_size`, at most `schedule.warmup`) before it judges, so a new metric judges from its
first run instead of scoring "cold start" for hours. That is only possible when the query
selects by period (`period_start`, `period_finish`, `execution_time`, ...): a query on
`now()` returns the present for every past period, so its history cannot be asked for.

A warm-up no longer than `max_catch_up` periods is judged by the first run itself, like a
catch-up (only the newest period may notify); a longer one is a history job the daemon's
loader runs beside the live runs (`runtime.history`).

Staged: a detector that judges from less history than it reads (`judge_seconds`: `auto`'s
level baseline) warms up with only that, always through the daemon's loader (paced per
source), and the rest of its window fills in afterwards as a background job
(`runtime.history`, `fill_range`).
"""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from detectkd.durations import parse_duration
from detectkd.specs.loader import MetricSpec
from detectkd.timegrid import Grid


def start_time(spec: MetricSpec, tz: ZoneInfo) -> int | None:
    """`schedule.start_time` as epoch seconds: a date, a datetime, or a duration ago."""
    raw = spec.config.schedule.start_time
    if not raw:
        return None
    try:
        return int(time.time() - parse_duration(raw).total_seconds())
    except ValueError:
        pass
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return int(moment.timestamp())


def warmup_seconds(spec: MetricSpec, window_seconds: int) -> int:
    """How much history a first start loads without `start_time` (0: none)."""
    if not spec.collector.period_aware:
        return 0
    limit = spec.config.schedule.warmup.total_seconds()
    return int(min(window_seconds, limit))


def first_start(
    spec: MetricSpec, grid: Grid, window_seconds: int, last: int, judge_seconds: int | None = None
) -> tuple[int, bool] | None:
    """Where a first run (no watermark) starts, and whether the daemon's loader should load
    it (True) rather than the run itself; None: nothing before `last` to load.
    `judge_seconds`: the history the detectors judge from (staged when shorter)."""
    begin = start_time(spec, grid.tz)
    if begin is not None:
        return (grid.floor(begin), True) if begin < last else None
    span = warmup_seconds(spec, window_seconds)
    short = span if judge_seconds is None else min(span, warmup_seconds(spec, judge_seconds))
    if short <= 0:
        return None
    begin = grid.floor(last - short)
    if begin >= last:
        return None
    inline = short == span and begin >= grid.back(last, spec.config.schedule.max_catch_up - 1)
    return begin, not inline


def fill_range(
    spec: MetricSpec, grid: Grid, window_seconds: int, begin: int, last: int
) -> tuple[int, int] | None:
    """A staged warm-up loaded [begin, last]: the older history the detectors read, still to
    load in the background as [start, begin); None: nothing more."""
    span = warmup_seconds(spec, window_seconds)
    start = grid.floor(last - span)
    return (start, begin) if span > 0 and start < begin else None


def cold_start_reason(spec: MetricSpec, window_seconds: int, loading: bool) -> str:
    """Why a metric's newest period was not judged for lack of history (one log line)."""
    if loading:
        return "its history is loading in the background (detectk_history_progress_ratio)"
    if not spec.collector.period_aware:
        return (
            "the query does not select by period_start/period_finish, so no history can be "
            "loaded; it judges once its own runs have stored enough points"
        )
    if window_seconds and spec.config.schedule.warmup.total_seconds() <= 0:
        return "schedule.warmup is 0, so no history was loaded"
    return "the source has fewer points than the detectors need in their window"
